#pragma once
// Each subcommand registers itself on the root CLI11 app; its callback stores
// the process exit code. Logic lives in the libraries, not here.
#include <CLI/CLI.hpp>

namespace inkstream::cli {

// Exit codes shared by all subcommands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadCheckpoint = 2;
inline constexpr int kExitBadUsage = 2;  // a flag CLI11 refused (unknown, malformed, out of range)

// A numeric flag with its range. The text is checked against [lo, hi] as a
// number before it is converted, so "-1" never becomes 2^64-1, 4294967297
// never 1, and 99999 is no port. Every numeric flag goes through here.
template <class T>
CLI::Option* add_number(CLI::App* cmd, const std::string& name, T& field, double lo, double hi, const std::string& help) {
  return cmd->add_option(name, field, help)->check(CLI::Range(lo, hi))->capture_default_str();
}

void add_tokenize_command(CLI::App& root, int& exit_code);
void add_inspect_command(CLI::App& root, int& exit_code);
void add_complete_command(CLI::App& root, int& exit_code);
void add_lsp_command(CLI::App& root, int& exit_code);
void add_data_command(CLI::App& root, int& exit_code);
void add_train_command(CLI::App& root, int& exit_code);
void add_eval_command(CLI::App& root, int& exit_code);
void add_serve_command(CLI::App& root, int& exit_code);

}  // namespace inkstream::cli
