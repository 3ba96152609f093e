#include <csignal>
// inkstream: one executable, thin subcommands over the libraries.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "commands.h"
#include "inkstream/model_runtime/errors.h"

int main(int argc, char** argv) {
  // A reader that goes away (an editor closing the server's pipes, `| head`)
  // ends in an orderly error, not a SIGPIPE kill.
  std::signal(SIGPIPE, SIG_IGN);
  // stdout belongs to command output (and to the protocol in `lsp` mode):
  // every log line goes to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("inkstream"));
  spdlog::set_level(spdlog::level::warn);

  CLI::App app{"inkstream: an AI writing partner for your editor (GPT-2 family models, local or remote)"};
  app.set_version_flag("--version", std::string("inkstream ") + INKSTREAM_VERSION);
  app.require_subcommand(1);
  app.footer("Run `inkstream SUBCOMMAND --help` for the options of each subcommand.");
  int exit_code = inkstream::cli::kExitOk;
  inkstream::cli::add_tokenize_command(app, exit_code);
  inkstream::cli::add_inspect_command(app, exit_code);
  inkstream::cli::add_complete_command(app, exit_code);
  inkstream::cli::add_lsp_command(app, exit_code);
  inkstream::cli::add_data_command(app, exit_code);
  inkstream::cli::add_train_command(app, exit_code);
  inkstream::cli::add_eval_command(app, exit_code);
  inkstream::cli::add_serve_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; anything refused is a usage error: 2.
    const int code = app.exit(e);
    return code == 0 ? 0 : inkstream::cli::kExitBadUsage;
  } catch (const inkstream::CheckpointError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return inkstream::cli::kExitBadCheckpoint;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return inkstream::cli::kExitFailure;
  }
  return exit_code;
}
