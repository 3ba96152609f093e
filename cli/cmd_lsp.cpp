// `inkstream lsp`: the language server on stdin/stdout.
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "backends.h"
#include "commands.h"
#include "default_model.h"
#include "inkstream/lsp_server/server.h"
#include "inkstream/model_runtime/device.h"

namespace inkstream::cli {
namespace {

struct LspCliOptions {
  LspOptions server;
  std::string log_file;
  std::string log_level = "info";
  bool stdio = true;  // accepted for editors that always pass --stdio
  int threads = 0;    // until the `threads` setting says otherwise
};

int run(LspCliOptions o) {
  if (o.server.model.empty()) o.server.model = default_model_dir().string();  // the bundled model, if any
  // stdout carries protocol only: logs go to stderr or a file.
  std::shared_ptr<spdlog::logger> logger =
      o.log_file.empty() ? spdlog::stderr_color_mt("inkstream-lsp") : spdlog::basic_logger_mt("inkstream-lsp", o.log_file);
  logger->set_level(spdlog::level::from_str(o.log_level));
  // (flushed at the chosen level: a debug log is read as it is written)
  logger->flush_on(std::min(logger->level(), spdlog::level::info));
  spdlog::set_default_logger(logger);
  spdlog::info("inkstream {} language server starting (model: {})", INKSTREAM_VERSION,
               o.server.model.empty() ? "from initializationOptions" : o.server.model);
  // Process-wide settings, once, here in the executable: the allocator
  // policy, and the thread pools (again when the `threads` setting changes).
  keep_freed_memory_for_inference();
  allow_matrix_tiles();
  configure_threads(o.threads);
  o.server.set_threads = [](int threads) { configure_threads(threads); };
  o.server.release_memory = [] { release_freed_memory(); };
  o.server.backends = make_backends(default_model_dir());
  const int code = run_language_server(STDIN_FILENO, STDOUT_FILENO, o.server);
  spdlog::info("inkstream language server exiting with code {}", code);
  return code;
}

}  // namespace

void add_lsp_command(CLI::App& root, int& exit_code) {
  auto o = std::make_shared<LspCliOptions>();
  CLI::App* cmd = root.add_subcommand("lsp", "Run the language server on stdin/stdout (for editors)");
  cmd->add_option("--model", o->server.model, "Default model folder (initializationOptions.model overrides; default: the bundled model or $INKSTREAM_MODEL)");
  cmd->add_option("--models-dir", o->server.models_dir, "Folder where model names are looked up");
  add_number(cmd, "--threads", o->threads, 0, 1024, "CPU threads (0 = physical cores; the `threads` setting overrides)");
  cmd->add_option("--log-file", o->log_file, "Write logs here instead of stderr");
  cmd->add_option("--log-level", o->log_level, "trace, debug, info, warn, error, off")->capture_default_str();
  add_number(cmd, "--max-frame-bytes", o->server.max_frame_bytes, 1024, 1099511627776.0, "Refuse larger messages");
  cmd->add_flag("--stdio", o->stdio, "Use stdin/stdout (the default and only transport)");
  cmd->footer("The protocol, settings and the streaming extension are described in docs/protocol.md.");
  cmd->callback([o, &exit_code] { exit_code = run(*o); });
}

}  // namespace inkstream::cli
