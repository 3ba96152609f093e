#pragma once
// GPT-2 building blocks (the "layers" level under the model). Every function
// is pure: inputs in, new tensor out; shapes are in the comments.
#include <ATen/core/Tensor.h>

#include "inkstream/model_runtime/config.h"
#include "inkstream/model_runtime/gpt2.h"

namespace inkstream::layers {

// x is (B, T, C); w, b are (C). Biased variance, eps from the config.
at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, double eps);

// Hugging Face Conv1D: x is (B, T, IN), w is (IN, OUT), b is (OUT) -> (B, T, OUT) = x·w + b.
at::Tensor conv1d(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);

// Elementwise; gelu_new is the tanh approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
at::Tensor activation(const at::Tensor& x, Activation kind);

// Causal self-attention of one block. x is (B, T, C) (already ln_1'd);
// returns (B, T, C) before the residual add. With a cache, keys/values of the
// T new positions are written at [cache->length(), +T) of layer `layer`, and
// queries attend to everything up to their own position.
at::Tensor attention(const at::Tensor& x, const Gpt2Layer& w, const ModelConfig& config, std::int64_t layer,
                        KvCache* cache);

// The MLP of one block: x is (B, T, C) -> (B, T, C).
at::Tensor mlp(const at::Tensor& x, const Gpt2Layer& w, Activation kind);

}  // namespace inkstream::layers
