#pragma once
// `inkstream lsp`: a Language Server Protocol 3.18 server over a pair of file
// descriptors (stdin/stdout), offering streamed inline completions.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace inkstream {

class BackendFactory;

struct LspOptions {
  // Where models come from (the executable passes the local engine's
  // factory; a remote cluster's plugs in the same way).
  std::shared_ptr<BackendFactory> backends;
  std::string model;       // default model folder (initializationOptions.model overrides)
  std::string models_dir;  // where model names are looked up
  std::size_t max_frame_bytes = 64 << 20;  // larger frames are refused and skipped
  // Applies the `threads` setting (0 = physical cores) to the process's
  // thread pools. Thread pools are process-wide, so the executable owns
  // them: the server only calls this when the setting changes (and once at
  // initialize). Empty: the setting is accepted and has no effect.
  std::function<void(int threads)> set_threads;
  // Called after idle models were unloaded (new settings): the executable
  // hands freed memory back to the system. Empty: nothing.
  std::function<void()> release_memory;
};

// Serves until `exit` or end of input. Returns the process exit code: 0 when
// `shutdown` came before `exit`, 1 otherwise. Never writes anything but
// protocol frames to `out_fd`.
int run_language_server(int in_fd, int out_fd, const LspOptions& options);

}  // namespace inkstream
