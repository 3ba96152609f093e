// `inkstream serve`: the OpenAI-compatible Completions API over HTTP for
// many writers (http_server/serve.h). Process-wide state is set here, once:
// the allocator policy, the thread pools, and SIGTERM/SIGINT, which drain.
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <unistd.h>

#include "commands.h"
#include "default_model.h"
#include "inkstream/http_server/serve.h"
#include "inkstream/model_runtime/device.h"
#include "inkstream/model_runtime/errors.h"

namespace inkstream::cli {
namespace {

struct ServeCliOptions {
  ServeOptions server;
  std::vector<std::string> models;  // NAME=DIR or DIR
  std::vector<std::string> api_keys;
  std::string api_key_file;
  std::string log_file;
  std::string log_level = "info";
  int threads = 0;
};

// Keys from --api-key, --api-key-file (one per line) and $INKSTREAM_API_KEY
// (comma-separated). Never logged.
std::vector<std::string> collect_keys(const ServeCliOptions& o) {
  std::vector<std::string> keys = o.api_keys;
  if (!o.api_key_file.empty()) {
    std::ifstream in(o.api_key_file);
    if (!in) throw InvalidRequest("--api-key-file: cannot read " + o.api_key_file);
    for (std::string line; std::getline(in, line);) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty() && line[0] != '#') keys.push_back(line);
    }
  }
  const char* env = std::getenv("INKSTREAM_API_KEY");
  if (env && *env) {
    std::stringstream ss(env);
    for (std::string k; std::getline(ss, k, ',');) {
      k.erase(0, k.find_first_not_of(" \t"));
      k.erase(k.find_last_not_of(" \t") + 1);
      if (!k.empty()) keys.push_back(k);
    }
  }
  // Asked for keys but got none: refuse rather than run open.
  if (keys.empty() && (!o.api_key_file.empty() || (env && *env)))
    throw InvalidRequest("no API key found in --api-key-file / $INKSTREAM_API_KEY (the server would run without authentication)");
  return keys;
}

// The one piece of process state a signal handler may touch (libraries'
// threads exist before main, so blocking and sigwait cannot catch every
// delivery: a handler can).
std::atomic<int> g_stop_signal{0};  // lock-free: safe in a handler
static_assert(std::atomic<int>::is_always_lock_free);
extern "C" void on_stop_signal(int sig) {
  if (g_stop_signal.exchange(sig) != 0) _exit(128 + sig);  // a second signal: leave now
}

int run(ServeCliOptions o) {
  std::shared_ptr<spdlog::logger> logger =
      o.log_file.empty() ? spdlog::stderr_color_mt("inkstream-serve") : spdlog::basic_logger_mt("inkstream-serve", o.log_file);
  logger->set_level(spdlog::level::from_str(o.log_level));
  // (flushed at the chosen level: a debug log is read as it is written)
  logger->flush_on(std::min(logger->level(), spdlog::level::info));
  spdlog::set_default_logger(logger);
  if (o.models.empty()) {
    const auto dir = default_model_dir();
    if (dir.empty()) throw InvalidRequest("no model: pass --model NAME=DIR (the bundled default model was not found)");
    o.models.push_back("default=" + dir.string());
  }
  for (const auto& m : o.models) {
    const auto eq = m.find('=');
    ServedModel sm;
    sm.dir = eq == std::string::npos ? m : m.substr(eq + 1);
    sm.name = eq == std::string::npos ? std::filesystem::path(sm.dir).lexically_normal().filename().string() : m.substr(0, eq);
    if (sm.name.empty() || sm.dir.empty()) throw InvalidRequest("--model " + m + ": expected NAME=DIR or DIR");
    for (const auto& other : o.server.models)
      if (other.name == sm.name) throw InvalidRequest("--model: the name " + sm.name + " is given twice");
    o.server.models.push_back(sm);
  }
  o.server.api_keys = collect_keys(o);
  if (o.server.max_running < 1 || o.server.max_queued < 0 || o.server.max_queue_wait_ms < 0)
    throw InvalidRequest("--max-running must be >= 1, --max-queued and --max-queue-wait-ms >= 0");

  keep_freed_memory_for_inference();
  allow_matrix_tiles();
  configure_threads(o.threads);

  // SIGTERM / SIGINT drain (a watcher notices the handler's flag).
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  HttpServer server(o.server);
  const int port = server.start();
  std::fprintf(stderr, "inkstream serve: listening on http://%s:%d (%zu model%s%s)\n", o.server.host.c_str(), port,
               o.server.models.size(), o.server.models.size() == 1 ? "" : "s", o.server.api_keys.empty() ? "" : ", API keys required");
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done && !g_stop_signal) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (g_stop_signal) {
      spdlog::info("serve: signal {}: draining", g_stop_signal.load());
      server.drain();
    }
  });
  const int code = server.wait();
  done = true;
  watcher.join();
  return code;
}

}  // namespace

void add_serve_command(CLI::App& root, int& exit_code) {
  auto o = std::make_shared<ServeCliOptions>();
  CLI::App* cmd = root.add_subcommand("serve", "Serve the OpenAI-compatible Completions API over HTTP (for many writers)");
  cmd->add_option("--model", o->models, "NAME=DIR (repeatable; DIR alone is named after its folder; default: the bundled model as \"default\")");
  cmd->add_option("--host", o->server.host, "Address to listen on")->capture_default_str();
  add_number(cmd, "--port", o->server.port, 0, 65535, "Port (0 = any free one, printed)");
  cmd->add_option("--device", o->server.device, "auto, cpu, cuda, cuda:N")->capture_default_str();
  cmd->add_option("--dtype", o->server.dtype, "auto, fp32, bf16, fp16, int8")->capture_default_str();
  add_number(cmd, "--threads", o->threads, 0, 1024, "CPU threads (0 = physical cores)");
  add_number(cmd, "--kv-cache-mb", o->server.kv_cache_mb, 1, 1048576, "Per model: memory for cached prompts and running requests");
  add_number(cmd, "--prefill-chunk", o->server.prefill_chunk, 1, 8192, "Prompt tokens read per engine step");
  add_number(cmd, "--max-running", o->server.max_running, 1, 4096, "Requests generating at once");
  add_number(cmd, "--max-queued", o->server.max_queued, 0, 1000000, "Requests waiting for a slot; more get 429");
  add_number(cmd, "--max-queue-wait-ms", o->server.max_queue_wait_ms, 0, 3600000, "Longest wait for a slot, then 429");
  cmd->add_option("--api-key", o->api_keys, "Accepted Bearer key (repeatable; also --api-key-file, $INKSTREAM_API_KEY)");
  cmd->add_option("--api-key-file", o->api_key_file, "File with one accepted key per line");
  add_number(cmd, "--drain-grace-ms", o->server.drain_grace_ms, 0, 3600000, "On SIGTERM, how long running streams may finish");
  cmd->add_option("--log-file", o->log_file, "Write logs here instead of stderr");
  cmd->add_option("--log-level", o->log_level, "trace, debug, info, warn, error, off")->capture_default_str();
  cmd->footer("The API and its options are described in docs/serve.md.");
  cmd->callback([o, &exit_code] { exit_code = run(*o); });
}

}  // namespace inkstream::cli
