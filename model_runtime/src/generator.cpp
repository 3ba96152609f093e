#include "inkstream/model_runtime/generator.h"

namespace inkstream {

Generator::Generator(std::shared_ptr<const Gpt2Model> model, GeneratorLimits limits) {
  EngineOptions options;
  options.limits = limits;
  engine_ = std::make_unique<Engine>(std::move(model), options);
}

void Generator::validate(const GenerationRequest& request) const { engine_->validate(request); }

GenerationResult Generator::generate(const GenerationRequest& request, const StreamCallback& on_token,
                                     const CancellationToken* cancel) const {
  return engine_->generate(request, on_token, cancel);
}

}  // namespace inkstream
