#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "admission.h"
#include "auth.h"
#include "inkstream/http_server/serve.h"
#include "inkstream/model_runtime/engine.h"
#include "inkstream/model_runtime/errors.h"
#include "metrics.h"
#include "openai.h"

namespace inkstream {

namespace {

using Clock = std::chrono::steady_clock;
using openai::ApiError;
using openai::Json;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(openai::error_body(e).dump(), "application/json");
}


struct LoadedModel {
  std::string name;
  std::shared_ptr<const Gpt2Model> model;
  std::unique_ptr<Engine> engine;
};

// One streamed request: events from the engine's scheduler thread, written
// to the socket by the HTTP worker (never block the scheduler).
struct Stream {
  std::mutex mutex;
  std::condition_variable wake;
  struct Event {
    int index;
    std::string delta;
    bool done;
    FinishReason reason;
  };
  std::deque<Event> events;
  std::optional<GenerationResult> result;
  CancellationToken cancel;
};

}  // namespace

struct HttpServer::Impl {
  explicit Impl(ServeOptions options)
      : o(std::move(options)), admission(o.max_running, o.max_queued, std::chrono::milliseconds(o.max_queue_wait_ms)) {}

  ServeOptions o;
  httplib::Server http;
  Admission admission;
  Metrics metrics;
  std::thread listener, loader;
  std::atomic<bool> ready{false}, draining{false}, failed{false};
  std::mutex models_mutex;
  std::map<std::string, std::unique_ptr<LoadedModel>> models;  // complete once `ready`
  std::mutex streams_mutex;
  std::set<CancellationToken*> live;  // running requests, cancelled when the grace period ends
  std::atomic<std::uint64_t> next_id{1};
  std::mutex drain_mutex;
  bool drained = false;
  std::condition_variable drained_cv;
  int port = 0;

  bool check_auth(const httplib::Request& req, httplib::Response& res) {
    if (authorized(o.api_keys, req.get_header_value("Authorization"))) return true;
    send_error(res, ApiError(401, "invalid or missing API key (Authorization: Bearer ...)", "invalid_request_error", "", "invalid_api_key"));
    return false;
  }

  void load_models() {
    for (const auto& m : o.models) {
      try {
        const auto t0 = Clock::now();
        auto model = Gpt2Model::load(m.dir, {o.device, o.dtype, /*copy_weights=*/true});
        EngineOptions eo;
        eo.kv_cache_bytes = static_cast<std::size_t>(o.kv_cache_mb) << 20;
        eo.prefill_chunk = o.prefill_chunk;
        auto loaded = std::make_unique<LoadedModel>();
        loaded->name = m.name;
        loaded->model = model;
        loaded->engine = std::make_unique<Engine>(model, eo);
        spdlog::info("serve: model {} loaded from {} in {:.2f} s", m.name, m.dir, seconds_since(t0));
        std::lock_guard lock(models_mutex);
        models[m.name] = std::move(loaded);
      } catch (const std::exception& e) {
        spdlog::error("serve: model {} ({}) could not be loaded: {}", m.name, m.dir, e.what());
        failed = true;
        drain();
        return;
      }
    }
    ready = true;
    spdlog::info("serve: ready");
  }

  LoadedModel* find_model(const std::string& name) {
    std::lock_guard lock(models_mutex);
    const auto it = models.find(name);
    return it == models.end() ? nullptr : it->second.get();
  }

  void routes() {
    http.Get("/livez", [](const httplib::Request&, httplib::Response& res) { res.set_content("{\"status\":\"ok\"}", "application/json"); });
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      const char* state = draining ? "draining" : ready ? "ok" : "loading";
      res.status = ready && !draining ? 200 : 503;
      res.set_content(Json{{"status", state}}.dump(), "application/json");
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      // Running: generating in an engine; waiting: admitted but not yet
      // there, or queued inside an engine (its row and KV limits).
      long running = 0, waiting = admission.waiting();
      double kv = 0;
      {
        std::size_t used = 0, budget = 0;
        std::lock_guard lock(models_mutex);
        for (const auto& [name, m] : models) {
          const EngineStats st = m->engine->stats();
          running += st.running;
          waiting += st.waiting;
          used += st.kv_used_bytes;
          budget += st.kv_budget_bytes;
        }
        kv = budget ? static_cast<double>(used) / static_cast<double>(budget) : 0.0;
      }
      metrics.running = running;
      metrics.waiting = waiting;
      res.set_content(metrics.prometheus(kv), "text/plain; version=0.0.4");
    });
    http.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
      if (!check_auth(req, res)) return;
      Json data = Json::array();
      for (const auto& m : o.models) {
        Json entry = {{"id", m.name}, {"object", "model"}, {"owned_by", "inkstream"}, {"created", 0}};
        // vLLM's field: remote clients fit their context to it.
        if (const LoadedModel* loaded = find_model(m.name)) entry["max_model_len"] = loaded->model->config().n_positions;
        data.push_back(std::move(entry));
      }
      res.set_content(Json{{"object", "list"}, {"data", data}}.dump(), "application/json");
    });
    http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      try {
        completions(req, res);
      } catch (const ApiError& e) {
        send_error(res, e);
      } catch (const Json::exception& e) {  // a field of the wrong type the parser met first
        send_error(res, ApiError(400, std::string("invalid request: ") + e.what(), "invalid_request_error"));
      } catch (const std::exception& e) {
        spdlog::error("serve: completion failed: {}", e.what());
        send_error(res, ApiError(500, e.what(), "server_error"));
      }
    });
  }

  void completions(const httplib::Request& req, httplib::Response& res) {
    const auto received = Clock::now();
    if (!check_auth(req, res)) return;
    Json body;
    try {
      body = Json::parse(req.body);
    } catch (const std::exception& e) {
      throw ApiError(400, std::string("the body is not valid JSON: ") + e.what(), "invalid_request_error");
    }
    openai::CompletionRequest r = openai::parse_completion_request(body, std::random_device{}());
    if (draining) throw ApiError(503, "the server is shutting down", "server_error", "", "draining");
    if (!ready) throw ApiError(503, "the models are still loading", "server_error", "", "loading");
    LoadedModel* m = find_model(r.model);
    if (!m) throw ApiError(404, "the model '" + r.model + "' does not exist (see GET /v1/models)", "invalid_request_error", "model", "model_not_found");
    GenerationRequest& g = r.generation;
    const ModelConfig& cfg = m->model->config();
    if (auto* text = std::get_if<std::string>(&r.prompt)) {
      g.prompt = m->model->tokenizer().encode(*text);
    } else {
      g.prompt = std::get<std::vector<TokenId>>(r.prompt);
      for (TokenId id : g.prompt)
        if (id >= cfg.vocab_size) throw openai::invalid("prompt", "token id " + std::to_string(id) + " is outside the vocabulary");
    }
    const auto prompt_tokens = static_cast<std::int64_t>(g.prompt.size());
    const std::int64_t context_used = std::max<std::int64_t>(prompt_tokens, 1);  // (an empty prompt starts from <|endoftext|>)
    if (context_used >= cfg.n_positions)
      throw openai::invalid("prompt", "the prompt has " + std::to_string(prompt_tokens) + " tokens; the model's context is " +
                                          std::to_string(cfg.n_positions));
    if (context_used + g.max_tokens > cfg.n_positions)
      throw openai::invalid("max_tokens", "the prompt (" + std::to_string(prompt_tokens) + " tokens) plus max_tokens (" +
                                              std::to_string(g.max_tokens) + ") exceed the model's context of " +
                                              std::to_string(cfg.n_positions) + " tokens");
    try {
      m->engine->validate(g);
    } catch (const InvalidRequest& e) {
      throw ApiError(400, e.what(), "invalid_request_error");
    }
    // Admission, before anything is sent.
    if (auto why = admission.acquire()) {
      metrics.rejected(*why);
      res.set_header("Retry-After", "1");
      if (*why == "draining") throw ApiError(503, "the server is shutting down", "server_error", "", "draining");
      throw ApiError(429, "the server is busy (" + *why + "); retry later", "server_error", "", *why);
    }
    metrics.queue_time.observe(seconds_since(received));
    const std::string id = "cmpl-" + std::to_string(next_id++);
    const std::int64_t created = std::time(nullptr);
    if (!r.stream) {
      // (released and untracked however this ends)
      struct Slot {
        Impl& s;
        CancellationToken cancel;
        explicit Slot(Impl& s) : s(s) { s.track(&cancel, true); }
        ~Slot() {
          s.track(&cancel, false);
          s.admission.release();
        }
      } slot(*this);
      const GenerationResult result = m->engine->generate(g, {}, &slot.cancel);
      account(result, received, prompt_tokens);
      if (!result.error.empty()) throw ApiError(500, result.error, "server_error", "", result.error_kind);
      if (cut_short(result)) throw ApiError(503, "the server is shutting down; the completion was cut short", "server_error", "", "draining");
      res.set_content(openai::completion(id, created, r.model, result, usage_of(result, prompt_tokens))
                          .dump(-1, ' ', false, Json::error_handler_t::replace),
                      "application/json");
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    auto stream = std::make_shared<Stream>();
    auto started = std::make_shared<bool>(false);
    Engine* engine = m->engine.get();
    const bool include_usage = r.include_usage;
    const std::string model_name = r.model;
    res.set_chunked_content_provider(
        "text/event-stream",
        [=, this](std::size_t, httplib::DataSink& sink) {
          *started = true;
          track(&stream->cancel, true);
          if (draining) stream->cancel.cancel();  // admitted, but the grace period is over: ends at once
          try {
            engine->submit(
                g,
                [stream](const StreamEvent& e) {
                  std::lock_guard lock(stream->mutex);
                  stream->events.push_back({e.index, std::string(e.delta), e.done, e.finish_reason});
                  stream->wake.notify_one();
                },
                &stream->cancel,
                [stream](GenerationResult result) {
                  std::lock_guard lock(stream->mutex);
                  stream->result = std::move(result);
                  stream->wake.notify_one();
                });
          } catch (const std::exception& e) {
            std::lock_guard lock(stream->mutex);
            stream->result = GenerationResult{};
            stream->result->error = e.what();
          }
          const bool ok = pump(*stream, sink, id, created, model_name, received, include_usage, prompt_tokens);
          track(&stream->cancel, false);
          if (ok) sink.done();
          return ok;
        },
        [=, this](bool) {
          // Runs once the response ends, whether or not the stream started.
          if (*started) {
            stream->cancel.cancel();  // (a finished request ignores it)
            std::unique_lock lock(stream->mutex);
            stream->wake.wait(lock, [&] { return stream->result.has_value(); });
          }
          admission.release();
        });
  }

  // Writes the stream's events as they come; false if the client went away
  // (its generation is then cancelled: it ends within one step).
  bool pump(Stream& s, httplib::DataSink& sink, const std::string& id, std::int64_t created, const std::string& model,
            Clock::time_point received, bool include_usage, std::int64_t prompt_tokens) {
    bool first = true, connected = true;
    std::map<int, Clock::time_point> last;  // per alternative, for the inter-token latency
    for (;;) {
      std::deque<Stream::Event> batch;
      std::optional<GenerationResult> result;
      {
        std::unique_lock lock(s.mutex);
        s.wake.wait_for(lock, std::chrono::milliseconds(50), [&] { return !s.events.empty() || s.result.has_value(); });
        batch.swap(s.events);
        if (batch.empty() && s.result) result = s.result;
      }
      if (connected && !sink.is_writable()) {
        connected = false;
        s.cancel.cancel();
      }
      const auto now = Clock::now();
      std::string out;  // one write for everything that arrived: a syscall per token would lag behind the engine
      for (const auto& e : batch) {
        if (first) metrics.ttft.observe(std::chrono::duration<double>(now - received).count());
        else if (auto it = last.find(e.index); it != last.end()) metrics.inter_token.observe(std::chrono::duration<double>(now - it->second).count());
        first = false;
        last[e.index] = now;
        if (!connected) continue;
        // A cut alternative (draining, shutdown) gets no finish: the error event below says why.
        const bool cut = e.done && e.reason == FinishReason::Cancelled;
        const std::optional<FinishReason> fin = e.done && !cut ? std::optional(e.reason) : std::nullopt;
        if (e.delta.empty() && !fin) continue;
        out += openai::sse(openai::chunk(id, created, model, e.index, e.delta, fin));
      }
      if (connected && !out.empty() && !sink.write(out.data(), out.size())) {
        connected = false;
        s.cancel.cancel();
      }
      if (!result) continue;
      account(*result, received, prompt_tokens);
      if (!connected) return false;
      std::string tail;
      if (!result->error.empty())
        tail += openai::sse(openai::error_body(ApiError(500, result->error, "server_error", "", result->error_kind)));
      else if (cut_short(*result))
        tail += openai::sse(openai::error_body(ApiError(503, "the server is shutting down; the stream was cut short", "server_error", "", "draining")));
      if (include_usage) tail += openai::sse(openai::usage_chunk(id, created, model, usage_of(*result, prompt_tokens)));
      tail += "data: [DONE]\n\n";
      return sink.write(tail.data(), tail.size());
    }
  }

  static bool cut_short(const GenerationResult& r) {
    return std::any_of(r.alternatives.begin(), r.alternatives.end(), [](const Alternative& a) { return a.finish_reason == FinishReason::Cancelled; });
  }

  static Json usage_of(const GenerationResult& r, std::int64_t prompt_tokens) {
    return openai::usage(static_cast<int>(prompt_tokens), r.timings.predicted_n, r.timings.cache_n);
  }

  void account(const GenerationResult& r, Clock::time_point received, std::int64_t prompt_tokens) {
    metrics.prompt_tokens += static_cast<std::uint64_t>(prompt_tokens);
    metrics.generation_tokens += static_cast<std::uint64_t>(r.timings.predicted_n);
    metrics.prefix_cache_queries += static_cast<std::uint64_t>(r.timings.prompt_n + r.timings.cache_n);
    metrics.prefix_cache_hits += static_cast<std::uint64_t>(r.timings.cache_n);
    metrics.e2e.observe(seconds_since(received));
    std::string reason = "length";
    if (!r.error.empty()) reason = "error";
    else if (cut_short(r)) reason = "abort";
    else if (!r.alternatives.empty() && r.alternatives[0].finish_reason != FinishReason::Length) reason = "stop";
    metrics.finished(reason);
  }

  void track(CancellationToken* t, bool add) {
    std::lock_guard lock(streams_mutex);
    if (add) live.insert(t);
    else live.erase(t);
  }

  void drain() {
    {
      std::lock_guard lock(drain_mutex);
      if (draining.exchange(true)) return;
    }
    spdlog::info("serve: draining (running: {})", admission.running());
    admission.close();
    const auto until = Clock::now() + std::chrono::milliseconds(o.drain_grace_ms);
    while (admission.running() > 0 && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    {
      std::lock_guard lock(streams_mutex);
      for (auto* t : live) t->cancel();
    }
    for (int i = 0; i < 250 && admission.running() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    http.stop();
    std::lock_guard lock(drain_mutex);
    drained = true;
    drained_cv.notify_all();
  }
};

HttpServer::HttpServer(ServeOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpServer::~HttpServer() {
  impl_->drain();
  {
    std::unique_lock lock(impl_->drain_mutex);
    impl_->drained_cv.wait(lock, [&] { return impl_->drained; });
  }
  if (impl_->listener.joinable()) impl_->listener.join();
  if (impl_->loader.joinable()) impl_->loader.join();
}

int HttpServer::start() {
  Impl& s = *impl_;
  if (s.o.models.empty()) throw std::runtime_error("no model to serve: give --model NAME=DIR");
  // Every stream holds a worker: the pool has room for all admitted
  // requests plus some for /health, /metrics and refusals, so those never
  // wait behind inference.
  // Idle keep-alive connections hold a worker too: they are closed after 2 s.
  const int workers = s.o.max_running + s.o.max_queued + 32;
  s.http.new_task_queue = [workers] { return new httplib::ThreadPool(static_cast<std::size_t>(workers)); };
  s.http.set_tcp_nodelay(true);
  s.http.set_keep_alive_max_count(100);
  s.http.set_keep_alive_timeout(2);
  s.http.set_payload_max_length(s.o.max_body_bytes);
  s.http.set_read_timeout(30, 0);
  s.http.set_write_timeout(30, 0);
  s.routes();
  s.port = s.o.port == 0 ? s.http.bind_to_any_port(s.o.host) : (s.http.bind_to_port(s.o.host, s.o.port) ? s.o.port : -1);
  if (s.port < 0) throw std::runtime_error("cannot listen on " + s.o.host + ":" + std::to_string(s.o.port));
  s.listener = std::thread([&s] { s.http.listen_after_bind(); });
  // (stop() does nothing before the server runs: a drain must come after)
  for (int i = 0; i < 500 && !s.http.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  s.loader = std::thread([&s] { s.load_models(); });
  spdlog::info("serve: listening on http://{}:{}", s.o.host, s.port);
  return s.port;
}

int HttpServer::wait() {
  Impl& s = *impl_;
  {
    std::unique_lock lock(s.drain_mutex);
    s.drained_cv.wait(lock, [&] { return s.drained; });
  }
  if (s.listener.joinable()) s.listener.join();
  if (s.loader.joinable()) s.loader.join();
  return s.failed ? 1 : 0;
}

void HttpServer::drain() { impl_->drain(); }

}  // namespace inkstream
