// The remote backend against a scripted OpenAI-compatible server on
// loopback that replays each engine's quirks (../shared serving.md): keep-
// alive comments, "\r\n", an error with and without [DONE] after it, TGI's
// flat errors, empty deltas, a slow first byte, a stream cut mid-way, a
// stalled stream, 429 with Retry-After, a refused port; and a TLS server
// with a certificate made for the test.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <thread>

#include "inkstream/remote_client/remote_backend.h"
#include "ports.h"

namespace inkstream {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string chunk(int index, const std::string& text, const char* finish = nullptr) {
  Json c = {{"index", index}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", finish ? Json(finish) : Json(nullptr)}};
  return Json{{"id", "cmpl-1"}, {"object", "text_completion"}, {"created", 1}, {"model", "m"}, {"choices", {c}}}.dump();
}

// The scripted server: POST /<quirk>/v1/completions plays that quirk.
class QuirkServer {
 public:
  QuirkServer() {
    server_.Post(R"(/(\w+)/v1/completions)", [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); });
    server_.Get(R"(/(\w+)/health)", [this](const httplib::Request& req, httplib::Response& res) {
      count(req.matches[1].str() + "/health");
      res.status = healthy_ ? 200 : 503;
    });
    server_.Get(R"(/(\w+)/v1/models)", [this](const httplib::Request& req, httplib::Response& res) {
      count(req.matches[1].str() + "/models");
      res.set_content(R"({"object":"list","data":[{"id":"probed-model","object":"model"}]})", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(1ms);
  }
  ~QuirkServer() {
    stopping_ = true;
    server_.stop();
    thread_.join();
  }
  std::string url(const std::string& quirk) const { return "http://127.0.0.1:" + std::to_string(port_) + "/" + quirk; }
  int hits(const std::string& quirk) {
    std::lock_guard lock(mutex_);
    return hits_[quirk];
  }
  Json last_body(const std::string& quirk) {
    std::lock_guard lock(mutex_);
    return bodies_[quirk];
  }
  std::vector<Json> bodies(const std::string& quirk) {
    std::lock_guard lock(mutex_);
    return all_bodies_[quirk];
  }
  std::string last_auth(const std::string& quirk) {
    std::lock_guard lock(mutex_);
    return auth_[quirk];
  }
  // When the "endless" stream noticed its client was gone.
  std::optional<Clock::time_point> gone_at() {
    std::lock_guard lock(mutex_);
    return gone_at_;
  }
  std::atomic<bool> healthy_{true};
  std::atomic<int> fail_first_{0};  // "flaky": this many 502s first

 private:
  void count(const std::string& key) {
    std::lock_guard lock(mutex_);
    ++hits_[key];
  }

  static void sse(httplib::Response& res, std::vector<std::string> frames, bool cut = false) {
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [frames = std::move(frames), cut](std::size_t, httplib::DataSink& sink) {
      for (const auto& f : frames) {
        if (f == "SLEEP") {
          std::this_thread::sleep_for(100ms);
          continue;
        }
        if (!sink.write(f.data(), f.size())) return false;
      }
      if (cut) return false;  // the connection drops: no terminating chunk
      sink.done();
      return true;
    });
  }

  void handle(const httplib::Request& req, httplib::Response& res) {
    const std::string q = req.matches[1].str();
    Json body = Json::parse(req.body, nullptr, false);
    {
      std::lock_guard lock(mutex_);
      ++hits_[q];
      bodies_[q] = body;
      all_bodies_[q].push_back(body);
      auth_[q] = req.get_header_value("Authorization");
    }
    const std::string seed = body.is_object() && body.contains("seed") ? body["seed"].dump() : "?";
    if (q == "ok" || q == "tgi") {  // a plain, well-formed stream (the seed shows which request made it)
      sse(res, {"data: " + chunk(0, "Hello") + "\n\n", "data: " + chunk(0, " world " + seed) + "\n\n",
                "data: " + chunk(0, "", "length") + "\n\n", "data: [DONE]\n\n"});
    } else if (q == "quirky") {  // llama.cpp/TGI pings, \r\n, no space, event lines, empty deltas, unknown fields
      sse(res, {": ping\r\n\r\n", "event: completion\r\ndata:" + chunk(0, "") + "\r\n\r\n", "data: " + chunk(0, "Hello").substr(0, 30),
                chunk(0, "Hello").substr(30) + "\r", "\n\r\n", ":keep-alive\r\n\r\n",
                "data: {\"choices\":[{\"index\":0,\"text\":\" there\",\"stop_reason\":null,\"prompt_token_ids\":[1]}],\"timings\":{}}\r\n\r\n",
                "data: " + chunk(0, "", "stop") + "\r\n\r\n",
                R"(data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":6}}})"
                "\r\n\r\n",
                "data: [DONE]\r\n\r\n"});
    } else if (q == "error_done") {  // vLLM: an error event, then [DONE]
      sse(res, {"data: " + chunk(0, "Hi") + "\n\n", R"(data: {"error":{"message":"CUDA error: out of memory","type":"InternalServerError","code":500}})" "\n\n",
                "data: [DONE]\n\n"});
    } else if (q == "error_eof") {  // llama.cpp: an error event, then the end without [DONE]
      sse(res, {"data: " + chunk(0, "Hi") + "\n\n", R"(data: {"error":{"code":500,"message":"llama_decode failed","type":"server_error"}})" "\n\n"});
    } else if (q == "tgi_flat") {
      res.status = 422;
      res.set_content(R"({"error":"Input validation error: `max_new_tokens` must be > 0","error_type":"validation"})", "application/json");
    } else if (q == "unauthorized") {
      res.status = 401;
      res.set_content(R"({"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}})", "application/json");
    } else if (q == "nomodel") {
      res.status = 404;
      res.set_content(R"({"error":{"message":"The model `gpt9` does not exist.","type":"NotFoundError","code":404}})", "application/json");
    } else if (q == "slow") {  // a slow first byte
      for (int i = 0; i < 30 && !stopping_; ++i) std::this_thread::sleep_for(50ms);
      sse(res, {"data: " + chunk(0, "late", "stop") + "\n\n", "data: [DONE]\n\n"});
    } else if (q == "cut") {  // two tokens, then the connection drops
      sse(res, {"data: " + chunk(0, "Once") + "\n\n", "data: " + chunk(0, " upon") + "\n\n", "SLEEP"}, /*cut=*/true);
    } else if (q == "stall") {  // a token, then silence
      sse(res, {"data: " + chunk(0, "Once") + "\n\n", "SLEEP", "SLEEP", "SLEEP", "SLEEP", "SLEEP", "SLEEP", "SLEEP", "SLEEP"});
    } else if (q == "busy") {  // 429 with Retry-After the first time
      if (hits(q) == 1) {
        res.status = 429;
        res.set_header("Retry-After", "1");
        res.set_content(R"({"error":{"message":"too many requests","type":"overloaded","code":"rate_limited"}})", "application/json");
      } else {
        sse(res, {"data: " + chunk(0, "finally", "stop") + "\n\n", "data: [DONE]\n\n"});
      }
    } else if (q == "busylong") {
      res.status = 429;
      res.set_header("Retry-After", "30");
      res.set_content(R"({"error":"Model is overloaded","error_type":"overloaded"})", "application/json");
    } else if (q == "flaky") {
      if (fail_first_-- > 0) {
        res.status = 502;
        res.set_content("<html>502 Bad Gateway</html>", "text/html");
      } else {
        sse(res, {"data: " + chunk(0, "back", "stop") + "\n\n", "data: [DONE]\n\n"});
      }
    } else if (q == "endless") {  // a token every 20 ms for up to 10 s; notes when the client left
      res.set_chunked_content_provider("text/event-stream", [this](std::size_t, httplib::DataSink& sink) {
        for (int i = 0; i < 500 && !stopping_; ++i) {
          const std::string f = "data: " + chunk(0, " w" + std::to_string(i)) + "\n\n";
          if (!sink.is_writable() || !sink.write(f.data(), f.size())) {
            std::lock_guard lock(mutex_);
            gone_at_ = Clock::now();
            return false;
          }
          std::this_thread::sleep_for(20ms);
        }
        sink.done();
        return true;
      });
    } else if (q == "n3") {  // n streamed interleaved by index
      sse(res, {"data: " + chunk(1, "B") + "\n\n", "data: " + chunk(0, "A") + "\n\n", "data: " + chunk(2, "C") + "\n\n",
                "data: " + chunk(2, "c", "stop") + "\n\n", "data: " + chunk(0, "a", "length") + "\n\n", "data: " + chunk(1, "b", "stop") + "\n\n",
                "data: [DONE]\n\n"});
    } else if (q == "badjson") {
      sse(res, {"data: {\"choices\": [\n\n"});
    } else {
      res.status = 500;
    }
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::map<std::string, int> hits_;
  std::map<std::string, Json> bodies_;
  std::map<std::string, std::vector<Json>> all_bodies_;
  std::map<std::string, std::string> auth_;
  std::optional<Clock::time_point> gone_at_;
};

double ms_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

RemoteConfig config_of(std::vector<std::string> urls, const std::string& dialect = "openai") {
  RemoteConfig c;
  for (auto& u : urls) {
    RemoteEndpoint e;
    e.url = u;
    e.model = "m";
    std::string error;
    e.dialect = RemoteConfig::parse(Json{{"url", u}, {"dialect", dialect}}, error)->endpoints[0].dialect;
    c.endpoints.push_back(e);
  }
  c.connect_timeout_ms = 500;
  c.first_byte_timeout_ms = 600;
  c.token_timeout_ms = 300;
  c.total_timeout_ms = 10000;
  return c;
}

std::unique_ptr<CompletionBackend> backend_of(const RemoteConfig& c, std::map<std::string, std::string> env = {}) {
  RemoteBackendOptions o;
  o.default_tokenizer_dir = std::filesystem::path(INKSTREAM_FIXTURE_DIR) / "tiny";
  o.env = [env](const char* k) { return env.count(k) ? env.at(k) : std::string(); };
  return make_remote_backend("remote:test", c, std::move(o));
}

struct Streamed {
  GenerationResult result;
  std::vector<StreamEvent> events;  // (views copied into `texts`)
  std::vector<std::string> deltas;
  double ms = 0;
};

Streamed run(CompletionBackend& b, GenerationRequest req = {}, const CancellationToken* cancel = nullptr,
        std::function<void(const StreamEvent&)> also = nullptr) {
  Streamed r;
  const auto t0 = Clock::now();
  r.result = b.generate("Once upon a time", req, [&](const StreamEvent& e) {
    r.deltas.emplace_back(e.delta);
    r.events.push_back(e);
    if (also) also(e);
  }, cancel);
  r.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  return r;
}

TEST(RemoteBackend, StreamsAPlainServer) {
  QuirkServer s;
  auto b = backend_of(config_of({s.url("ok")}));
  GenerationRequest req;
  req.seed = 5;
  req.max_tokens = 7;
  const Streamed r = run(*b, req);
  ASSERT_EQ(r.result.error, "");
  ASSERT_EQ(r.result.alternatives.size(), 1u);
  EXPECT_EQ(r.result.alternatives[0].text, "Hello world 5");
  EXPECT_EQ(r.result.alternatives[0].finish_reason, FinishReason::Length);
  EXPECT_GE(r.deltas.size(), 2u);
  EXPECT_TRUE(r.events.back().done);
  const Json body = s.last_body("ok");
  EXPECT_EQ(body["prompt"], "Once upon a time");  // openai dialect: a string prompt
  EXPECT_EQ(body["max_tokens"], 7);
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(std::string(b->source()), "remote");
  // The connection is kept alive and reused.
  EXPECT_EQ(run(*b, req).result.error, "");
}

TEST(RemoteBackend, StopStringsApplyEvenWhereTheEndpointIgnoresThem) {
  QuirkServer s;  // (it ignores `stop`, as some engines ignore what they do not take)
  auto b = backend_of(config_of({s.url("ok")}, "tgi"));
  GenerationRequest req;
  req.seed = 5;
  req.stop = {"a", "b", "c", "d", "zz", " wor"};  // TGI takes 4: the rest only here
  const Streamed r = run(*b, req);
  ASSERT_EQ(r.result.error, "");
  EXPECT_EQ(r.result.alternatives[0].text, "Hello");
  EXPECT_EQ(r.result.alternatives[0].finish_reason, FinishReason::Stop);
  EXPECT_EQ(s.last_body("ok")["stop"].size(), 4u);
  std::string shown;
  for (const auto& d : r.deltas) shown += d;
  EXPECT_EQ(shown, "Hello") << "the stop string was never shown";
}

TEST(RemoteBackend, ToleratesEveryStreamQuirk) {
  QuirkServer s;
  auto b = backend_of(config_of({s.url("quirky")}));
  const Streamed r = run(*b);
  ASSERT_EQ(r.result.error, "");
  EXPECT_EQ(r.result.alternatives[0].text, "Hello there");
  EXPECT_EQ(r.result.alternatives[0].finish_reason, FinishReason::Stop);
  EXPECT_EQ(r.result.timings.cache_n, 6);
  EXPECT_EQ(r.result.timings.prompt_n, 3);
  EXPECT_EQ(r.result.timings.predicted_n, 2);
}

TEST(RemoteBackend, AnErrorEventEndsTheRequestWithOrWithoutDone) {
  QuirkServer s;
  for (const char* q : {"error_done", "error_eof"}) {
    auto b = backend_of(config_of({s.url(q), s.url("ok")}));
    const Streamed r = run(*b);
    EXPECT_EQ(r.result.error_kind, "server_error") << q;
    EXPECT_NE(r.result.error.find("stream interrupted"), std::string::npos) << r.result.error;
    EXPECT_NE(r.result.error.find(q[6] == 'd' ? "CUDA error" : "llama_decode"), std::string::npos) << r.result.error;
    EXPECT_EQ(r.result.alternatives[0].text, "Hi");
  }
  EXPECT_EQ(s.hits("ok"), 0) << "text was shown: never retried elsewhere";
}

TEST(RemoteBackend, RequestErrorsAreNotRetried) {
  QuirkServer s;
  struct Case {
    const char* quirk;
    const char* kind;
    const char* says;
  };
  for (const Case& c : {Case{"tgi_flat", "rejected", "Input validation error"}, Case{"unauthorized", "unauthorized", "Incorrect API key"},
                        Case{"nomodel", "model_not_found", "gpt9"}}) {
    RemoteConfig cfg = config_of({s.url(c.quirk), s.url("ok")});
    cfg.retries = 2;
    auto b = backend_of(cfg);
    const Streamed r = run(*b);
    EXPECT_EQ(r.result.error_kind, c.kind);
    EXPECT_NE(r.result.error.find(c.says), std::string::npos) << r.result.error;
    EXPECT_NE(r.result.error.find(s.url(c.quirk)), std::string::npos) << "names the endpoint: " << r.result.error;
    EXPECT_EQ(s.hits(c.quirk), 1) << c.quirk;
  }
  EXPECT_EQ(s.hits("ok"), 0);
}

TEST(RemoteBackend, ARefusedPortOrASlowFirstByteFailsOverToTheNext) {
  QuirkServer s;
  const std::string refused = "http://127.0.0.1:" + std::to_string(test::closed_port());
  auto b = backend_of(config_of({refused, s.url("slow"), s.url("ok")}));
  const Streamed r = run(*b);
  ASSERT_EQ(r.result.error, "");
  EXPECT_EQ(r.result.alternatives[0].text.substr(0, 11), "Hello world");
  EXPECT_EQ(s.hits("slow"), 1);
  EXPECT_LT(r.ms, 2000) << "the slow one was given up after its first-byte timeout (600 ms)";

  auto only_refused = backend_of(config_of({refused}));
  const Streamed f = run(*only_refused);
  EXPECT_EQ(f.result.error_kind, "unreachable");
  EXPECT_NE(f.result.error.find("cannot connect"), std::string::npos) << f.result.error;
}

TEST(RemoteBackend, AStreamCutMidwayOrStalledIsInterruptedNotRetried) {
  QuirkServer s;
  for (const char* q : {"cut", "stall"}) {
    auto b = backend_of(config_of({s.url(q), s.url("ok")}));
    const Streamed r = run(*b);
    EXPECT_EQ(r.result.error_kind, "interrupted") << q;
    EXPECT_NE(r.result.error.find("stream interrupted"), std::string::npos) << r.result.error;
    EXPECT_EQ(r.result.alternatives[0].text.substr(0, 4), "Once") << "what came is kept";
    EXPECT_LT(r.ms, 3000);
  }
  EXPECT_EQ(s.hits("ok"), 0);
}

TEST(RemoteBackend, Retries429AfterRetryAfterAndGivesUpOnALongOne) {
  QuirkServer s;
  auto b = backend_of(config_of({s.url("busy")}));
  const Streamed r = run(*b);
  ASSERT_EQ(r.result.error, "");
  EXPECT_EQ(r.result.alternatives[0].text, "finally");
  EXPECT_EQ(s.hits("busy"), 2);
  EXPECT_GE(r.ms, 1000) << "Retry-After: 1 was honoured";

  auto busy = backend_of(config_of({s.url("busylong")}));
  const Streamed f = run(*busy);
  EXPECT_EQ(f.result.error_kind, "overloaded");
  EXPECT_NE(f.result.error.find("retry after 30 s"), std::string::npos) << f.result.error;
  EXPECT_NE(f.result.error.find("Model is overloaded"), std::string::npos) << "TGI's flat error: " << f.result.error;
  EXPECT_EQ(s.hits("busylong"), 1);
  EXPECT_LT(f.ms, 1000);
}

TEST(RemoteBackend, CircuitBreakerSkipsAFailingEndpointThenProbesIt) {
  QuirkServer s;
  RemoteConfig cfg = config_of({s.url("flaky")});
  cfg.retries = 0;
  cfg.breaker_failures = 3;
  cfg.breaker_open_ms = 400;
  auto b = backend_of(cfg);
  s.fail_first_ = 100;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(run(*b).result.error_kind, "unreachable");
  EXPECT_EQ(s.hits("flaky"), 3);
  const Streamed open = run(*b);
  EXPECT_NE(open.result.error.find("circuit is open"), std::string::npos) << open.result.error;
  EXPECT_EQ(s.hits("flaky"), 3) << "an open circuit sends nothing";
  s.fail_first_ = 0;
  s.healthy_ = false;
  std::this_thread::sleep_for(450ms);
  EXPECT_NE(run(*b).result.error, "") << "the probe failed: still open";
  EXPECT_EQ(s.hits("flaky/health"), 1);
  EXPECT_EQ(s.hits("flaky"), 3);
  s.healthy_ = true;
  std::this_thread::sleep_for(450ms);
  const Streamed back = run(*b);
  EXPECT_EQ(back.result.error, "");
  EXPECT_EQ(back.result.alternatives[0].text, "back");
  EXPECT_EQ(s.hits("flaky/health"), 2);
}

TEST(RemoteBackend, CancellingClosesTheStreamAtOnce) {
  QuirkServer s;
  auto b = backend_of(config_of({s.url("endless")}));
  CancellationToken cancel;
  Clock::time_point cancelled_at;
  const Streamed r = run(*b, {}, &cancel, [&](const StreamEvent& e) {
    if (e.text.size() > 10 && !cancel.cancelled()) {
      cancelled_at = Clock::now();
      cancel.cancel();
    }
  });
  const auto returned = Clock::now();
  EXPECT_EQ(r.result.error, "");
  EXPECT_EQ(r.result.alternatives[0].finish_reason, FinishReason::Cancelled);
  EXPECT_LT(ms_between(cancelled_at, returned), 100);
  for (int i = 0; i < 100 && !s.gone_at(); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(s.gone_at()) << "the server saw the client leave";
  EXPECT_LT(ms_between(cancelled_at, *s.gone_at()), 500);
}

TEST(RemoteBackend, AStopBoundaryEndsTheHttpStream) {
  QuirkServer s;
  auto b = backend_of(config_of({s.url("endless")}));
  GenerationRequest req;
  req.max_tokens = 400;
  req.stop_when = [](int, std::string_view text) { return text.find("w3") != std::string_view::npos; };
  const Streamed r = run(*b, req);
  EXPECT_EQ(r.result.error, "");
  EXPECT_EQ(r.result.alternatives[0].text, " w0 w1 w2 w3");
  EXPECT_EQ(r.result.alternatives[0].finish_reason, FinishReason::Stop);
  EXPECT_LT(r.ms, 1500);
  for (int i = 0; i < 100 && !s.gone_at(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(s.gone_at()) << "the server's generation was stopped";
}

TEST(RemoteBackend, NAlternativesStreamInterleavedOrFanOut) {
  QuirkServer s;
  GenerationRequest req;
  req.n = 3;
  req.seed = 10;
  auto b = backend_of(config_of({s.url("n3")}, "vllm"));
  const Streamed r = run(*b, req);
  ASSERT_EQ(r.result.error, "");
  ASSERT_EQ(r.result.alternatives.size(), 3u);
  EXPECT_EQ(r.result.alternatives[0].text, "Aa");
  EXPECT_EQ(r.result.alternatives[1].text, "Bb");
  EXPECT_EQ(r.result.alternatives[2].text, "Cc");
  EXPECT_EQ(r.result.alternatives[0].finish_reason, FinishReason::Length);
  EXPECT_EQ(s.last_body("n3")["n"], 3);
  EXPECT_TRUE(s.last_body("n3")["prompt"].is_array()) << "vllm takes the fitted token ids";

  // TGI ignores n: one request per alternative, each with its own seed.
  auto tgi = backend_of(config_of({s.url("tgi")}, "tgi"));
  const Streamed t = run(*tgi, req);
  ASSERT_EQ(t.result.error, "");
  EXPECT_EQ(s.hits("tgi"), 3);
  std::set<std::string> texts;
  for (const auto& a : t.result.alternatives) texts.insert(a.text);
  EXPECT_EQ(texts, (std::set<std::string>{"Hello world 10", "Hello world 11", "Hello world 12"}));
  for (const Json& body : s.bodies("tgi")) {
    EXPECT_EQ(body["n"], 1);
    EXPECT_TRUE(body["prompt"].is_string());
    EXPECT_FALSE(body.contains("stream_options"));
  }
}

TEST(RemoteBackend, ApiKeyFromTheEnvironmentAndTheModelFromV1Models) {
  QuirkServer s;
  RemoteConfig cfg = config_of({s.url("ok")});
  cfg.endpoints[0].model = "";
  cfg.endpoints[0].api_key_env = "TEAM_KEY";
  cfg.endpoints[0].headers = {{"X-Team", "fiction"}};
  EXPECT_THROW(backend_of(cfg), std::invalid_argument) << "an unset key variable is an error at once";
  auto b = backend_of(cfg, {{"TEAM_KEY", "sk-secret"}});
  const Streamed r = run(*b);
  ASSERT_EQ(r.result.error, "");
  EXPECT_EQ(s.last_auth("ok"), "Bearer sk-secret");
  EXPECT_EQ(s.last_body("ok")["model"], "probed-model");
  EXPECT_EQ(s.hits("ok/models"), 1);
  run(*b);
  EXPECT_EQ(s.hits("ok/models"), 1) << "learnt once";

  RemoteConfig bad = config_of({s.url("unauthorized")});
  bad.endpoints[0].api_key_env = "TEAM_KEY";
  auto u = backend_of(bad, {{"TEAM_KEY", "sk-secret"}});
  const Streamed f = run(*u);
  EXPECT_EQ(f.result.error_kind, "unauthorized");
  EXPECT_EQ(f.result.error.find("sk-secret"), std::string::npos) << "the key is never in a message";
}

TEST(RemoteBackend, AMalformedStreamIsAClearError) {
  QuirkServer s;
  auto b = backend_of(config_of({s.url("badjson")}));
  const Streamed r = run(*b);
  EXPECT_EQ(r.result.error_kind, "bad_response");
  EXPECT_NE(r.result.error.find("not an OpenAI completion stream"), std::string::npos) << r.result.error;
}

TEST(RemoteBackend, FallsBackToALocalModelWhenEveryEndpointFails) {
  // A stand-in local backend (the real one needs libtorch, which this
  // library does not link; cli's factory plugs in the local engine).
  struct Local final : CompletionBackend {
    std::string model_name() const override { return "local-model"; }
    int context_tokens() const override { return 1024; }
    std::vector<std::size_t> token_starts(std::string_view) const override { return {0}; }
    GenerationResult generate(const std::string&, const GenerationRequest&, const StreamCallback& cb, const CancellationToken*) override {
      cb({0, "local text", "local text", true, FinishReason::Stop});
      GenerationResult r;
      r.alternatives.push_back({0, "local text", {}, FinishReason::Stop});
      return r;
    }
    EngineStats stats() const override { return {}; }
  };
  int loads = 0;
  RemoteBackendOptions o;
  o.default_tokenizer_dir = std::filesystem::path(INKSTREAM_FIXTURE_DIR) / "tiny";
  o.load_fallback = [&] {
    ++loads;
    return std::make_unique<Local>();
  };
  auto b = make_remote_backend("remote:test", config_of({"http://127.0.0.1:" + std::to_string(test::closed_port())}), std::move(o));
  for (int i = 0; i < 2; ++i) {
    const Streamed r = run(*b);
    EXPECT_EQ(r.result.error, "");
    EXPECT_EQ(r.result.alternatives[0].text, "local text");
    EXPECT_EQ(r.result.error_kind, "fallback:unreachable");
    EXPECT_NE(r.result.warning.find("local model"), std::string::npos) << r.result.warning;
  }
  EXPECT_EQ(loads, 1);
}

// TLS with verification: a certificate made for 127.0.0.1 by the openssl
// command line; trusted through ca_file, refused without it.
TEST(RemoteBackend, TlsIsVerified) {
  const auto dir = std::filesystem::temp_directory_path() / ("inkstream-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -keyout " + key + " -out " + cert +
                          " -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "no openssl command";
  httplib::SSLServer server(cert.c_str(), key.c_str());
  server.Post("/v1/completions", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("data: " + chunk(0, "secure", "stop") + "\n\ndata: [DONE]\n\n", "text/event-stream");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::sleep_for(1ms);
  const std::string url = "https://127.0.0.1:" + std::to_string(port);

  RemoteConfig trusted = config_of({url});
  trusted.endpoints[0].ca_file = cert;
  const Streamed ok = run(*backend_of(trusted));
  EXPECT_EQ(ok.result.error, "");
  EXPECT_EQ(ok.result.alternatives[0].text, "secure");

  const Streamed refused = run(*backend_of(config_of({url})));
  EXPECT_EQ(refused.result.error_kind, "tls");
  EXPECT_NE(refused.result.error.find("certificate"), std::string::npos) << refused.result.error;

  RemoteConfig insecure = config_of({url});
  insecure.endpoints[0].insecure = true;
  EXPECT_EQ(run(*backend_of(insecure)).result.error, "");
  server.stop();
  t.join();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace inkstream
