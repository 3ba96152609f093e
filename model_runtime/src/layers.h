#pragma once
// GPT-2 building blocks (the "layers" level under the model). Every function
// is pure: inputs in, new tensor out; shapes are in the comments.
#include <torch/torch.h>

#include "inkstream/model_runtime/config.h"
#include "inkstream/model_runtime/gpt2.h"

namespace inkstream::layers {

// x is (B, T, C); w, b are (C). Biased variance, eps from the config.
torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, double eps);

// Hugging Face Conv1D: x is (B, T, IN), w is (IN, OUT), b is (OUT) -> (B, T, OUT) = x·w + b.
torch::Tensor conv1d(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b);

// Elementwise; gelu_new is the tanh approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
torch::Tensor activation(const torch::Tensor& x, Activation kind);

// Causal self-attention of one block. x is (B, T, C) (already ln_1'd);
// returns (B, T, C) before the residual add. With a cache, keys/values of the
// T new positions are written at [cache->length(), +T) of layer `layer`, and
// queries attend to everything up to their own position.
torch::Tensor attention(const torch::Tensor& x, const Gpt2Layer& w, const ModelConfig& config, std::int64_t layer,
                        KvCache* cache);

// The MLP of one block: x is (B, T, C) -> (B, T, C).
torch::Tensor mlp(const torch::Tensor& x, const Gpt2Layer& w, Activation kind);

}  // namespace inkstream::layers
