#pragma once
// The in-process backend: a model's engine on libtorch. Header-only, so that
// the completion library itself stays torch-free; whoever builds a
// LocalBackend links model_runtime.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "inkstream/completion/backend.h"
#include "inkstream/completion/service.h"
#include "inkstream/model_runtime/engine.h"

namespace inkstream {

// The in-process runtime: the model's engine, shared by every document.
class LocalBackend final : public CompletionBackend {
 public:
  explicit LocalBackend(std::shared_ptr<const Gpt2Model> model, EngineOptions options = {})
      : engine_(std::move(model), options) {}
  std::string model_name() const override { return engine_.model().name(); }
  int context_tokens() const override { return static_cast<int>(engine_.model().config().n_positions); }
  std::vector<std::size_t> token_starts(std::string_view text) const override {
    return token_start_offsets(engine_.model().tokenizer(), text);
  }
  GenerationResult generate(const std::string& prompt, const GenerationRequest& params, const StreamCallback& on_token,
                            const CancellationToken* cancel) override {
    GenerationRequest r = params;
    r.prompt = engine_.model().tokenizer().encode(prompt);
    return engine_.generate(r, on_token, cancel);
  }
  EngineStats stats() const override { return engine_.stats(); }

 private:
  Engine engine_;
};

// Loads models for the service as local engines (weights copied into memory:
// faster decoding for a long-running server).
class LocalBackendFactory final : public BackendFactory {
 public:
  std::unique_ptr<CompletionBackend> load(const ModelSpec& spec) override {
    auto model = Gpt2Model::load(spec.dir, {spec.device, spec.dtype, /*copy_weights=*/true});
    EngineOptions options;
    options.kv_cache_bytes = static_cast<std::size_t>(spec.kv_cache_mb) << 20;
    options.prefill_chunk = spec.prefill_chunk;
    options.prefix_cache = spec.prefix_cache;
    return std::make_unique<LocalBackend>(std::move(model), options);
  }
};

}  // namespace inkstream
