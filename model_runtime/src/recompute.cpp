#include "recompute.h"

#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/types.h>

#include <cstdint>

namespace inkstream {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Restores the CPU autocast state the forward pass ran under: the recomputed
// block must compute in the same precision, or its gradients would not be
// those of the values the forward pass produced.
class CpuAutocastState {
 public:
  CpuAutocastState(bool enabled, at::ScalarType dtype)
      : enabled_(at::autocast::is_cpu_enabled()), dtype_(at::autocast::get_autocast_cpu_dtype()) {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
  ~CpuAutocastState() {
    at::autocast::set_cpu_enabled(enabled_);
    at::autocast::set_autocast_cpu_dtype(dtype_);
  }
  CpuAutocastState(const CpuAutocastState&) = delete;
  CpuAutocastState& operator=(const CpuAutocastState&) = delete;

 private:
  bool enabled_;
  at::ScalarType dtype_;
};

struct RecomputedBlock : torch::autograd::Function<RecomputedBlock> {
  // The parameters are inputs so that autograd routes their gradients
  // through backward(); the model travels as an address because saved_data
  // holds only IValues (the trainer owns the model for the whole step).
  static variable_list forward(AutogradContext* ctx, torch::Tensor x, at::TensorList params, std::int64_t model_address,
                               std::int64_t layer) {
    (void)params;
    const auto* model = reinterpret_cast<const Gpt2Model*>(static_cast<std::intptr_t>(model_address));
    ctx->save_for_backward({x});
    ctx->saved_data["model"] = model_address;
    ctx->saved_data["layer"] = layer;
    ctx->saved_data["autocast"] = at::autocast::is_cpu_enabled();
    ctx->saved_data["autocast_dtype"] = static_cast<std::int64_t>(at::autocast::get_autocast_cpu_dtype());
    return {model->block(x, layer)};  // grad mode is off here: no graph is kept
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto* model = reinterpret_cast<const Gpt2Model*>(static_cast<std::intptr_t>(ctx->saved_data["model"].toInt()));
    const std::int64_t layer = ctx->saved_data["layer"].toInt();
    const torch::Tensor x = ctx->get_saved_variables()[0].detach().requires_grad_(true);  // (B, T, C)
    std::vector<torch::Tensor> params = model->layer_parameters(layer);

    torch::Tensor y;
    {
      torch::AutoGradMode grad_on(true);
      CpuAutocastState autocast(ctx->saved_data["autocast"].toBool(),
                                static_cast<at::ScalarType>(ctx->saved_data["autocast_dtype"].toInt()));
      y = model->block(x, layer);  // (B, T, C)
    }
    variable_list inputs = {x};
    inputs.insert(inputs.end(), params.begin(), params.end());
    variable_list grads = torch::autograd::grad({y}, inputs, {grad_outputs[0]}, /*retain_graph=*/false,
                                                /*create_graph=*/false, /*allow_unused=*/true);
    grads.emplace_back();  // model_address
    grads.emplace_back();  // layer
    return grads;
  }
};

}  // namespace

torch::Tensor recomputed_block(const Gpt2Model& model, const torch::Tensor& x, std::int64_t layer) {
  const std::vector<torch::Tensor> params = model.layer_parameters(layer);
  return RecomputedBlock::apply(x, at::TensorList(params),
                                static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(&model)), layer)[0];
}

}  // namespace inkstream
