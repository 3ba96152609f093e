#pragma once
// Where completions come from: the local libtorch runtime (local_backend.h),
// or (later) a remote cluster. The completion engine only sees this
// interface, which is torch-free: a remote client does not link libtorch.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "inkstream/model_runtime/generation.h"

namespace inkstream {

class CompletionBackend {
 public:
  virtual ~CompletionBackend() = default;
  // Model name for logs, status and the cache key.
  virtual std::string model_name() const = 0;
  // Context window of the model, in tokens.
  virtual int context_tokens() const = 0;
  // Byte offsets where the tokens of `text` start (their count is what
  // `text` takes as a prompt).
  virtual std::vector<std::size_t> token_starts(std::string_view text) const = 0;
  // Generates continuations of `prompt` with `params` (its `prompt` field is
  // ignored). Invalid values throw InvalidRequest; failures come back in the
  // result's `error`.
  virtual GenerationResult generate(const std::string& prompt, const GenerationRequest& params, const StreamCallback& on_token,
                                    const CancellationToken* cancel) = 0;
  // The engine's figures (running, cache hit rate, KV memory...).
  virtual EngineStats stats() const = 0;
  // Where its answers come from, as status reports it ("model": in process;
  // "remote": a cluster).
  virtual const char* source() const { return "model"; }
};

}  // namespace inkstream
