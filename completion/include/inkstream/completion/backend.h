#pragma once
// Where completions come from: the local libtorch runtime, or (later) a
// remote cluster. The engine only sees this interface.
#include <memory>
#include <string>
#include <string_view>

#include "inkstream/model_runtime/generator.h"

namespace inkstream {

class CompletionBackend {
 public:
  virtual ~CompletionBackend() = default;
  // Model name for logs, status and the cache key.
  virtual std::string model_name() const = 0;
  // Context window of the model, in tokens.
  virtual int context_tokens() const = 0;
  // Tokens `text` would take as a prompt.
  virtual int count_tokens(std::string_view text) const = 0;
  // Generates continuations of `prompt` with `params` (its `prompt` field is
  // ignored). Invalid values throw InvalidRequest; failures come back in the
  // result's `error`.
  virtual GenerationResult generate(const std::string& prompt, const GenerationRequest& params, const StreamCallback& on_token,
                                    const CancellationToken* cancel) = 0;
};

// The in-process runtime.
class LocalBackend final : public CompletionBackend {
 public:
  explicit LocalBackend(std::shared_ptr<const Gpt2Model> model) : generator_(std::move(model)) {}
  std::string model_name() const override { return generator_.model().name(); }
  int context_tokens() const override { return static_cast<int>(generator_.model().config().n_positions); }
  int count_tokens(std::string_view text) const override {
    return static_cast<int>(generator_.model().tokenizer().encode(text).size());
  }
  GenerationResult generate(const std::string& prompt, const GenerationRequest& params, const StreamCallback& on_token,
                            const CancellationToken* cancel) override {
    GenerationRequest r = params;
    r.prompt = generator_.model().tokenizer().encode(prompt);
    return generator_.generate(r, on_token, cancel);
  }

 private:
  Generator generator_;
};

}  // namespace inkstream
