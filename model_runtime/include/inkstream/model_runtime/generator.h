#pragma once
// Text generation on a Gpt2Model, one call at a time: a thin blocking front
// of the model's Engine (engine.h). One prompt prefill shared by N
// alternatives decoded as one batch, each with its own seeded sampler,
// streamed token by token as UTF-8-safe text deltas. Calls from several
// threads are batched together by the engine.
#include <memory>

#include "inkstream/model_runtime/engine.h"
#include "inkstream/model_runtime/generation.h"
#include "inkstream/model_runtime/gpt2.h"

namespace inkstream {

class Generator {
 public:
  explicit Generator(std::shared_ptr<const Gpt2Model> model, GeneratorLimits limits = {});

  // Throws InvalidRequest naming the field (n, max_tokens, stop, sampling...).
  void validate(const GenerationRequest& request) const;

  // Validates, then generates. Failures during generation (out of memory,
  // CUDA errors) do not throw: they end the request with finish reason
  // Error and `error` set, free what it held, and the generator stays usable.
  // Prompts longer than the context minus max_tokens lose their oldest tokens.
  GenerationResult generate(const GenerationRequest& request, const StreamCallback& on_token = {},
                            const CancellationToken* cancel = nullptr) const;

  const Gpt2Model& model() const { return engine_->model(); }
  const GeneratorLimits& limits() const { return engine_->options().limits; }
  Engine& engine() const { return *engine_; }

 private:
  std::unique_ptr<Engine> engine_;
};

}  // namespace inkstream
