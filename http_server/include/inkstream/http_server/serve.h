#pragma once
// `inkstream serve`: the OpenAI-compatible Completions API over HTTP, on the
// shared engine (continuous batching, prefix reuse) of each loaded model.
// Routes: POST /v1/completions (streamed as server-sent events or not),
// GET /v1/models, GET /health (503 while loading or draining), GET /livez
// (never waits behind inference), GET /metrics (Prometheus text).
#include <memory>
#include <string>
#include <vector>

namespace inkstream {

struct ServedModel {
  std::string name;  // the request's "model"
  std::string dir;   // Hugging Face GPT-2 folder
};

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0 = any free port (HttpServer::start returns it)
  std::vector<ServedModel> models;
  std::string device = "auto", dtype = "auto";
  int kv_cache_mb = 1024;
  int prefill_chunk = 256;
  int max_running = 32;           // streams generating at once, all models
  int max_queued = 64;            // admitted requests waiting for a running slot
  int max_queue_wait_ms = 10000;  // a queued request waits at most this long, then 429
  std::vector<std::string> api_keys;  // empty: no authentication
  std::size_t max_body_bytes = 1 << 20;
  int drain_grace_ms = 30000;     // after drain(): running streams get this long to finish
};

class HttpServer {
 public:
  explicit HttpServer(ServeOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds (throws std::runtime_error naming the address if it cannot), then
  // loads the models in the background; returns the bound port.
  int start();
  // Serves until drain() has finished. Returns the process exit code.
  int wait();
  // Stops admitting (/health 503, new completions 503), lets running streams
  // finish within the grace period, cancels the rest, stops. Any thread.
  void drain();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace inkstream
