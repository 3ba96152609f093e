#pragma once
// Gradient checkpointing for one GPT-2 block (as torch.utils.checkpoint):
// the forward pass runs without building a graph and keeps only the block's
// input; backward runs the block again with autograd and back-propagates
// through that fresh graph.
#include <ATen/core/Tensor.h>

#include "inkstream/model_runtime/gpt2.h"

namespace inkstream {

// x is (B, T, C) -> (B, T, C); same values as model.block(x, layer), and the
// same gradients for x and the block's parameters. `model` must outlive the
// backward pass.
at::Tensor recomputed_block(const Gpt2Model& model, const at::Tensor& x, std::int64_t layer);

}  // namespace inkstream
