#pragma once
// Each subcommand registers itself on the root CLI11 app; its callback stores
// the process exit code. Logic lives in the libraries, not here.
#include <CLI/CLI.hpp>

namespace inkstream::cli {

// Exit codes shared by all subcommands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadCheckpoint = 2;

void add_tokenize_command(CLI::App& root, int& exit_code);
void add_inspect_command(CLI::App& root, int& exit_code);
void add_complete_command(CLI::App& root, int& exit_code);
void add_lsp_command(CLI::App& root, int& exit_code);
void add_data_command(CLI::App& root, int& exit_code);
void add_train_command(CLI::App& root, int& exit_code);
void add_eval_command(CLI::App& root, int& exit_code);
void add_serve_command(CLI::App& root, int& exit_code);

}  // namespace inkstream::cli
