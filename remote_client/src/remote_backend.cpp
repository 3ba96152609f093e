#include "inkstream/remote_client/remote_backend.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>

#include "endpoint_client.h"
#include "inkstream/model_runtime/errors.h"
#include "inkstream/model_runtime/stop_strings.h"
#include "inkstream/model_runtime/json_numbers.h"
#include "inkstream/model_runtime/tokenizer.h"
#include "sse.h"
#include "wire.h"

namespace inkstream {
namespace {

using Clock = std::chrono::steady_clock;
using remote::EndpointClient;
using remote::Exchange;

// Why an attempt failed, in the writer's words, and what may follow it.
struct Failure {
  std::string kind;     // "unreachable", "unauthorized", "model_not_found", "overloaded", "interrupted", "tls", ...
  std::string message;  // names the endpoint
  bool retry = false;    // may go to the next endpoint / round (nothing was shown yet)
  bool breaker = false;  // counts towards the endpoint's circuit breaker
  int retry_after_ms = -1;
};

struct Endpoint {
  std::unique_ptr<EndpointClient> client;
  DialectTraits traits;
  std::mutex mutex;  // guards the rest
  std::string model;  // configured, or the first of its /v1/models
  int failures = 0;
  bool open = false;
  Clock::time_point open_until{};
};

// What one request's alternatives have so far (the fan-out threads share
// it: each owns its own indices; `emit` serialises the callbacks).
struct Progress {
  std::vector<std::string> texts;
  std::vector<std::uint8_t> done;  // (not vector<bool>: fan-out threads write their own elements)
  std::vector<FinishReason> reasons;
  std::mutex emit_mutex;
  StreamCallback on_token;
  int chunks = 0;  // deltas received, all alternatives
  remote::WireUsage usage;
  bool usage_seen = false;
  std::optional<Clock::time_point> first_text;

  void emit(int index, std::string_view delta, bool finished, FinishReason reason) {
    std::lock_guard lock(emit_mutex);
    if (!first_text && !delta.empty()) first_text = Clock::now();
    if (!delta.empty()) ++chunks;
    if (on_token) on_token({index, delta, texts[static_cast<std::size_t>(index)], finished, reason});
  }
};

// Where, within `delta`, the first stop string ends the text `before` +
// `delta` (npos: nowhere). A stop string that began in text already shown
// ends it at the start of the delta.
std::size_t first_stop(const std::string& before, std::string_view delta, const std::vector<std::string>& stops) {
  if (stops.empty() || delta.empty()) return std::string::npos;
  std::size_t longest = 0;
  for (const auto& s : stops) longest = std::max(longest, s.size());
  const std::size_t keep = std::min(before.size(), longest);  // all a stop string ending in delta can reach back
  const std::string window = before.substr(before.size() - keep) + std::string(delta);
  const std::size_t at = find_stop(window, stops, keep);
  return at == std::string::npos ? at : at < keep ? 0 : at - keep;
}

std::string http_summary(const Exchange& ex) {
  const remote::WireError e = remote::parse_error_body(ex.body, ex.status);
  return "HTTP " + std::to_string(ex.status) + (e.message == "HTTP " + std::to_string(ex.status) ? "" : ": " + e.message);
}

class RemoteBackend final : public CompletionBackend {
 public:
  RemoteBackend(std::string name, RemoteConfig config, RemoteBackendOptions options)
      : name_(std::move(name)), config_(std::move(config)), options_(std::move(options)),
        tokenizer_(Tokenizer::from_folder(config_.tokenizer.empty() ? options_.default_tokenizer_dir : std::filesystem::path(config_.tokenizer))),
        rng_(std::random_device{}()) {
    const remote::EnvReader env = options_.env ? options_.env : remote::EnvReader(remote::read_env);
    for (const RemoteEndpoint& e : config_.endpoints) {
      auto endpoint = std::make_unique<Endpoint>();
      endpoint->client = std::make_unique<EndpointClient>(e, config_, env);
      endpoint->traits = dialect_traits(e.dialect);
      endpoint->model = e.model;
      endpoints_.push_back(std::move(endpoint));
    }
    context_ = config_.context_tokens;
    if (!context_) learn_context();
  }

  std::string model_name() const override { return name_; }
  int context_tokens() const override { return context_; }
  std::vector<std::size_t> token_starts(std::string_view text) const override { return token_start_offsets(tokenizer_, text); }
  const char* source() const override { return "remote"; }

  EngineStats stats() const override {
    EngineStats s;
    s.running = running_.load();
    s.requests = requests_.load();
    s.prompt_tokens = prompt_tokens_.load();
    s.cached_prompt_tokens = cached_tokens_.load();
    return s;
  }

  GenerationResult generate(const std::string& prompt, const GenerationRequest& params, const StreamCallback& on_token,
                            const CancellationToken* cancel) override {
    if (params.n < 1 || params.n > 64) throw InvalidRequest("n must be between 1 and 64");
    ++running_;
    ++requests_;
    struct Done {
      std::atomic<int>& n;
      ~Done() { --n; }
    } done_guard{running_};
    const auto started = Clock::now();
    const std::size_t n = static_cast<std::size_t>(params.n);
    Progress p;
    p.texts.assign(n, "");
    p.done.assign(n, 0);
    p.reasons.assign(n, FinishReason::Length);
    p.on_token = on_token;

    // One stream per alternative where an endpoint cannot stream n (the
    // first endpoint's dialect decides: failover keeps the same shape).
    std::optional<Failure> failure;
    const bool fan_out = n > 1 && !endpoints_.front()->traits.streams_n;
    if (!fan_out) {
      std::vector<int> all(n);
      for (std::size_t i = 0; i < n; ++i) all[i] = static_cast<int>(i);
      failure = stream_with_failover(prompt, params, all, params.seed, p, cancel);
    } else {
      std::vector<std::optional<Failure>> failures(n);
      std::vector<std::thread> threads;
      for (std::size_t i = 1; i < n; ++i)
        threads.emplace_back([&, i] {
          failures[i] = stream_with_failover(prompt, params, {static_cast<int>(i)}, params.seed + i, p, cancel);
        });
      failures[0] = stream_with_failover(prompt, params, {0}, params.seed, p, cancel);
      for (auto& t : threads) t.join();
      for (auto& f : failures)
        if (f && !failure) failure = f;
    }

    GenerationResult result;
    const bool cancelled = cancel && cancel->cancelled();
    const bool nothing_shown = !p.first_text;
    if (failure && !cancelled && nothing_shown && options_.load_fallback) {
      if (CompletionBackend* local = fallback()) {
        spdlog::warn("remote: {}: {}; using the local fallback model", name_, failure->message);
        result = local->generate(prompt, params, on_token, cancel);
        result.warning = failure->message + "; suggestions come from the local model (" + local->model_name() + ") meanwhile";
        result.error_kind = "fallback:" + failure->kind;
        return result;
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      Alternative a;
      a.index = static_cast<int>(i);
      a.text = p.texts[i];
      a.finish_reason = cancelled ? FinishReason::Cancelled : failure ? FinishReason::Error : p.reasons[i];
      result.alternatives.push_back(std::move(a));
    }
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
    Timings& t = result.timings;
    t.prompt_ms = p.first_text ? std::chrono::duration<double, std::milli>(*p.first_text - started).count() : ms;
    t.cache_n = p.usage.cached_tokens;
    t.prompt_n = p.usage_seen ? std::max(0, p.usage.prompt_tokens - p.usage.cached_tokens) : 0;
    t.predicted_n = p.usage_seen && p.usage.completion_tokens > 0 ? p.usage.completion_tokens : p.chunks;
    t.predicted_ms = ms - t.prompt_ms;
    t.predicted_per_second = t.predicted_ms > 0 ? t.predicted_n * 1000.0 / t.predicted_ms : 0;
    prompt_tokens_ += static_cast<std::uint64_t>(t.prompt_n + t.cache_n);
    cached_tokens_ += static_cast<std::uint64_t>(t.cache_n);
    if (failure && !cancelled) {
      result.error = failure->message;
      result.error_kind = failure->kind;
    }
    return result;
  }

 private:
  // Streams `indices` (one request) from the first endpoint that takes it;
  // returns the failure that ended it, or nullopt (done or cancelled).
  std::optional<Failure> stream_with_failover(const std::string& prompt, const GenerationRequest& params, const std::vector<int>& indices,
                                              std::uint64_t seed, Progress& p, const CancellationToken* cancel) {
    std::optional<Failure> last;
    int skipped = 0;
    for (int round = 0; round <= config_.retries; ++round) {
      if (round > 0) {
        // Jittered backoff before another round, honouring Retry-After up to
        // what a writer waits for a suggestion.
        int wait = last && last->retry_after_ms >= 0 ? last->retry_after_ms : 100 * (1 << (round - 1));
        if (wait > 2000) break;  // "retry after 30 s": tell the writer instead
        {
          std::lock_guard lock(rng_mutex_);
          wait += std::uniform_int_distribution<int>(0, 100)(rng_);
        }
        for (const auto until = Clock::now() + std::chrono::milliseconds(wait); Clock::now() < until;) {
          if (cancel && cancel->cancelled()) return std::nullopt;
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      }
      skipped = 0;
      for (auto& endpoint : endpoints_) {
        if (cancel && cancel->cancelled()) return std::nullopt;
        if (!available(*endpoint)) {
          ++skipped;
          continue;
        }
        std::optional<Failure> f = attempt(*endpoint, prompt, params, indices, seed, p, cancel);
        if (!f) {
          succeeded(*endpoint);
          return std::nullopt;
        }
        if (f->breaker) failed(*endpoint);
        else if (f->kind != "overloaded") succeeded(*endpoint);  // it answered: the endpoint itself is fine
        if (!f->retry) return f;
        spdlog::info("remote: {} ({}); trying the next endpoint", f->message, f->kind);
        last = std::move(f);
      }
      if (skipped == static_cast<int>(endpoints_.size())) break;  // every circuit is open: no point in waiting here
    }
    if (!last) {
      Failure f;
      f.kind = "unreachable";
      f.message = "remote " + name_ + ": every endpoint failed recently (its circuit is open; probed again in at most " +
                  std::to_string(config_.breaker_open_ms / 1000) + " s)";
      return f;
    }
    return last;
  }

  // One request to one endpoint.
  std::optional<Failure> attempt(Endpoint& e, const std::string& prompt, const GenerationRequest& params, const std::vector<int>& indices,
                                 std::uint64_t seed, Progress& p, const CancellationToken* cancel) {
    const std::string url = e.client->url();
    std::string model;
    if (auto f = model_of(e, model)) return f;
    remote::WireRequest w;
    w.model = model;
    const std::vector<TokenId> ids = tokenizer_.encode(prompt);
    if (e.traits.token_prompts) w.prompt = ids;  // exactly the tokens the context was fitted with
    else w.prompt = prompt;
    w.n = static_cast<int>(indices.size());
    // What the context leaves (servers refuse prompt + max_tokens beyond it).
    w.max_tokens = std::max(1, std::min(params.max_tokens, context_ - static_cast<int>(ids.size())));
    w.sampling = params.sampling;
    w.seed = seed;
    w.stop = params.stop;
    const std::string body = remote::completion_body(w, e.traits).dump();

    remote::SseParser sse;
    bool got_done = false, text_seen = false, stopped_here = false;
    std::optional<std::string> stream_error, bad_stream;
    auto all_done = [&] {
      for (int i : indices)
        if (!p.done[static_cast<std::size_t>(i)]) return false;
      return true;
    };
    auto on_event = [&](std::string_view data) {
      remote::WireEvent ev;
      try {
        ev = remote::parse_event(data);
      } catch (const std::invalid_argument& x) {
        bad_stream = x.what();
        return false;
      }
      if (ev.done) {
        got_done = true;
        return false;
      }
      if (ev.error) {
        stream_error = *ev.error;
        return false;
      }
      if (ev.usage) {
        std::lock_guard lock(p.emit_mutex);
        p.usage.prompt_tokens = std::max(p.usage.prompt_tokens, ev.usage->prompt_tokens);
        p.usage.cached_tokens = std::max(p.usage.cached_tokens, ev.usage->cached_tokens);
        p.usage.completion_tokens += ev.usage->completion_tokens;
        p.usage_seen = true;
      }
      for (const remote::WireChoice& c : ev.choices) {
        if (c.index >= static_cast<int>(indices.size())) {
          bad_stream = "a choice index " + std::to_string(c.index) + " beyond n = " + std::to_string(indices.size());
          return false;
        }
        const int i = indices[static_cast<std::size_t>(c.index)];
        const auto ui = static_cast<std::size_t>(i);
        if (p.done[ui]) continue;  // (stopped at a boundary: the rest is not shown)
        std::string_view delta = c.text;
        bool finished = !c.finish_reason.empty();
        FinishReason reason = c.finish_reason == "length" ? FinishReason::Length : FinishReason::Stop;
        // Stop strings beyond what the endpoint takes (or that it ignored)
        // end the alternative here, the string itself left out.
        if (const std::size_t at = first_stop(p.texts[ui], delta, params.stop); at != std::string::npos) {
          delta = delta.substr(0, at);
          finished = true;
          reason = FinishReason::Stop;
          stopped_here = true;
        }
        p.texts[ui] += delta;
        if (!delta.empty()) text_seen = true;
        if (!finished && params.stop_when && params.stop_when(i, p.texts[ui])) {
          finished = true;  // its boundary is complete: generating further is wasted
          reason = FinishReason::Stop;
          stopped_here = true;
        }
        if (finished) {
          p.done[ui] = true;
          p.reasons[ui] = reason;
        }
        if (!delta.empty() || finished) p.emit(i, delta, finished, reason);
      }
      // Every alternative ended: close the stream — at once when we stopped
      // one at its boundary (that stops the server's generation too); after
      // the usage chunk and [DONE] when the server finished on its own.
      return !(all_done() && (stopped_here || !e.traits.usage));
    };
    const Exchange ex = e.client->post_stream(
        "/v1/completions", body, [&](std::string_view bytes) { return sse.feed(bytes, on_event); }, cancel);
    const bool shown = text_seen;
    auto fail = [&](std::string kind, std::string message, bool retry, bool breaker) {
      Failure f;
      f.kind = std::move(kind);
      f.message = "remote " + url + ": " + message;
      f.retry = retry && !shown;
      f.breaker = breaker;
      f.retry_after_ms = ex.retry_after_ms;
      return std::optional<Failure>(f);
    };
    switch (ex.end) {
      case Exchange::End::Cancelled: return std::nullopt;
      case Exchange::End::Unreachable:
        return fail("unreachable", "cannot connect (" + ex.detail + ")", true, true);
      case Exchange::End::Tls:
        return fail("tls", "the TLS connection failed (" + ex.detail +
                               "): is its certificate trusted? (ca_file names a CA; insecure skips the check, for testing)",
                    true, true);
      case Exchange::End::NoAnswer:
        return fail("timeout", "no answer within " + std::to_string(config_.first_byte_timeout_ms) + " ms", true, true);
      case Exchange::End::Stalled:
        return fail(shown ? "interrupted" : "timeout",
                    std::string(shown ? "stream interrupted: " : "") + "nothing for " + std::to_string(config_.token_timeout_ms) + " ms",
                    true, true);
      case Exchange::End::TimedOut:
        return fail("timeout", std::string(shown ? "stream interrupted: " : "") + "over the total time limit of " +
                                   std::to_string(config_.total_timeout_ms) + " ms",
                    false, false);
      case Exchange::End::Cut:
        return fail(shown ? "interrupted" : "unreachable",
                    std::string(shown ? "stream interrupted" : "the connection closed before any text") + " (" + ex.detail + ")", true,
                    true);
      case Exchange::End::Http: return http_failure(ex, model, fail);
      case Exchange::End::Ok: break;
    }
    if (bad_stream) return fail("bad_response", "not an OpenAI completion stream: " + *bad_stream, false, false);
    if (stream_error) return fail("server_error", std::string(shown ? "stream interrupted: " : "") + *stream_error, false, false);
    if (!got_done && !all_done()) {
      sse.finish(on_event);
      if (bad_stream) return fail("bad_response", "not an OpenAI completion stream: " + *bad_stream, false, false);
      if (stream_error) return fail("server_error", *stream_error, false, false);
      if (!got_done && !all_done())
        return fail(shown ? "interrupted" : "bad_response",
                    shown ? "stream interrupted (it ended before its end)" : "the stream ended without a completion", true, true);
    }
    return std::nullopt;
  }

  template <typename Fail>
  std::optional<Failure> http_failure(const Exchange& ex, const std::string& model, Fail& fail) {
    const std::string what = http_summary(ex);
    switch (ex.status) {
      case 401:
      case 403: return fail("unauthorized", "the API key was refused (" + what + ")", false, false);
      case 404:
        return fail("model_not_found", remote::parse_error_body(ex.body, 404).message.find(model) != std::string::npos || ex.body.find("model") != std::string::npos
                                           ? "no model '" + model + "' there (" + what + ")"
                                           : "no completions API at this URL (" + what + ")",
                    false, false);
      case 400:
      case 413:
      case 422: return fail("rejected", "the request was rejected (" + what + ")", false, false);
      case 429:
        return fail("overloaded", "overloaded (" + what + (ex.retry_after_ms >= 0 ? ", retry after " + std::to_string((ex.retry_after_ms + 999) / 1000) + " s" : "") + ")", true, false);
      case 503: return fail("overloaded", "not ready (" + what + ")", true, true);
      case 502:
      case 504: return fail("unreachable", "its gateway failed (" + what + ")", true, true);
      default: return fail("server_error", "failed (" + what + ")", false, ex.status >= 500);
    }
  }

  // The endpoint's model: configured, or learnt once from GET /v1/models.
  std::optional<Failure> model_of(Endpoint& e, std::string& model) {
    {
      std::lock_guard lock(e.mutex);
      model = e.model;
    }
    if (!model.empty()) return std::nullopt;
    const Exchange ex = e.client->get("/v1/models", std::chrono::milliseconds(config_.first_byte_timeout_ms));
    Failure f;
    f.message = "remote " + e.client->url() + ": ";
    f.retry = true;
    f.breaker = true;
    if (ex.end == Exchange::End::Ok) {
      try {
        const auto j = nlohmann::json::parse(ex.body);
        model = j.at("data").at(0).at("id").get<std::string>();
        std::lock_guard lock(e.mutex);
        e.model = model;
        return std::nullopt;
      } catch (const nlohmann::json::exception&) {
        f.kind = "bad_response";
        f.message += "GET /v1/models lists no model: set the endpoint's model";
        f.retry = f.breaker = false;
        return f;
      }
    }
    if (ex.end == Exchange::End::Http && (ex.status == 401 || ex.status == 403)) {
      f.kind = "unauthorized";
      f.message += "the API key was refused (" + http_summary(ex) + ")";
      f.retry = f.breaker = false;
    } else if (ex.end == Exchange::End::Http) {
      f.kind = "model_not_found";
      f.message += "GET /v1/models failed (" + http_summary(ex) + "): set the endpoint's model";
      f.retry = false;
    } else {
      f.kind = ex.end == Exchange::End::Tls ? "tls" : "unreachable";
      f.message += "cannot connect (" + ex.detail + ")";
    }
    return f;
  }

  // Once, when loaded: the model's context window (max_model_len) and name
  // from the first endpoint that lists its models; GPT-2's 1024 otherwise.
  void learn_context() {
    context_ = 1024;
    for (auto& e : endpoints_) {
      const Exchange ex = e->client->get("/v1/models", std::chrono::milliseconds(config_.connect_timeout_ms + 1000));
      if (ex.end != Exchange::End::Ok) {
        spdlog::info("remote: {}: GET /v1/models: {} (the context window stays {})", e->client->url(),
                     ex.end == Exchange::End::Http ? http_summary(ex) : ex.detail, context_);
        continue;
      }
      try {
        const auto j = nlohmann::json::parse(ex.body);
        for (const auto& m : j.at("data")) {
          const std::string id = m.at("id").get<std::string>();
          if (!e->model.empty() && id != e->model) continue;
          if (e->model.empty()) e->model = id;
          if (m.contains("max_model_len"))
            if (const auto n = json_numbers::integer<int>(m["max_model_len"], 2, 1 << 20)) context_ = *n;
          spdlog::info("remote: {}: model {}, context {} tokens", e->client->url(), id, context_);
          return;
        }
      } catch (const nlohmann::json::exception&) {
      }
    }
  }

  // Closed: yes. Open: no until its time is up, then one probe decides.
  bool available(Endpoint& e) {
    {
      std::lock_guard lock(e.mutex);
      if (!e.open) return true;
      if (Clock::now() < e.open_until) return false;
      e.open_until = Clock::now() + std::chrono::milliseconds(config_.breaker_open_ms);  // one prober at a time
    }
    Exchange ex = e.client->get("/health", std::chrono::milliseconds(config_.connect_timeout_ms + 1000));
    if (ex.end == Exchange::End::Http && ex.status == 404)  // engines without /health
      ex = e.client->get("/v1/models", std::chrono::milliseconds(config_.connect_timeout_ms + 1000));
    const bool ok = ex.end == Exchange::End::Ok;
    spdlog::info("remote: probe of {}: {}", e.client->url(), ok ? "healthy, circuit closed" : "still failing (" + ex.detail + ")");
    if (ok) succeeded(e);
    return ok;
  }

  void failed(Endpoint& e) {
    std::lock_guard lock(e.mutex);
    if (++e.failures >= config_.breaker_failures && !e.open) {
      e.open = true;
      e.open_until = Clock::now() + std::chrono::milliseconds(config_.breaker_open_ms);
      spdlog::warn("remote: {} failed {} times in a row: skipped for {} ms, then probed", e.client->url(), e.failures,
                   config_.breaker_open_ms);
    } else if (e.open) {
      e.open_until = Clock::now() + std::chrono::milliseconds(config_.breaker_open_ms);
    }
  }

  static void succeeded(Endpoint& e) {
    std::lock_guard lock(e.mutex);
    e.failures = 0;
    e.open = false;
  }

  CompletionBackend* fallback() {
    std::lock_guard lock(fallback_mutex_);
    if (!fallback_ && !fallback_failed_) {
      try {
        fallback_ = options_.load_fallback();
      } catch (const std::exception& x) {
        spdlog::error("remote: {}: cannot load the fallback model: {}", name_, x.what());
        fallback_failed_ = true;
      }
    }
    return fallback_.get();
  }

  std::string name_;
  RemoteConfig config_;
  RemoteBackendOptions options_;
  Tokenizer tokenizer_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  std::mutex rng_mutex_;
  std::mt19937 rng_;
  std::mutex fallback_mutex_;
  std::unique_ptr<CompletionBackend> fallback_;
  bool fallback_failed_ = false;
  int context_ = 1024;
  std::atomic<int> running_{0};
  std::atomic<std::uint64_t> requests_{0}, prompt_tokens_{0}, cached_tokens_{0};
};

}  // namespace

std::unique_ptr<CompletionBackend> make_remote_backend(const std::string& name, const RemoteConfig& config, RemoteBackendOptions options) {
  if (config.endpoints.empty()) throw std::invalid_argument("remote " + name + " has no endpoint");
  if (config.tokenizer.empty() && options.default_tokenizer_dir.empty())
    throw std::invalid_argument("remote " + name + ": no tokenizer (set its tokenizer to a folder with vocab.json and merges.txt)");
  try {
    return std::make_unique<RemoteBackend>(name, config, std::move(options));
  } catch (const std::invalid_argument&) {
    throw;
  } catch (const std::exception& e) {
    throw std::invalid_argument("remote " + name + ": " + e.what());
  }
}

}  // namespace inkstream
