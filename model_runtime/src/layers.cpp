#include "layers.h"
#include <torch/types.h>

#include <cmath>

namespace inkstream::layers {

torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, double eps) {
  // x is (B, T, C)
  return torch::layer_norm(x, {x.size(-1)}, w, b, eps);
}

torch::Tensor conv1d(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  // x is (B, T, IN), w is (IN, OUT): flatten to (B*T, IN) for one addmm.
  const auto B = x.size(0), T = x.size(1);
  torch::Tensor y = torch::addmm(b, x.reshape({B * T, x.size(2)}), w);  // (B*T, OUT)
  return y.view({B, T, w.size(1)});
}

torch::Tensor activation(const torch::Tensor& x, Activation kind) {
  return kind == Activation::GeluNew ? torch::gelu(x, "tanh") : torch::gelu(x);
}

torch::Tensor attention(const torch::Tensor& x, const Gpt2Layer& w, const ModelConfig& config, std::int64_t layer,
                        KvCache* cache) {
  const auto B = x.size(0), T = x.size(1), C = x.size(2);
  const auto H = config.n_head, D = config.head_dim();
  torch::Tensor qkv = conv1d(x, w.c_attn_w, w.c_attn_b);  // (B, T, 3C)
  auto parts = qkv.split(C, /*dim=*/2);                    // 3 x (B, T, C)
  torch::Tensor q = parts[0].view({B, T, H, D}).transpose(1, 2);  // (B, H, T, D)
  torch::Tensor k = parts[1].view({B, T, H, D}).transpose(1, 2);  // (B, H, T, D)
  torch::Tensor v = parts[2].view({B, T, H, D}).transpose(1, 2);  // (B, H, T, D)

  std::int64_t past = 0;
  if (cache) {
    past = cache->length();
    cache->k[layer].narrow(2, past, T).copy_(k);
    cache->v[layer].narrow(2, past, T).copy_(v);
    if (past > 0) {  // on an empty cache the fresh k, v are all there is (and faster to read)
      k = cache->k[layer].narrow(2, 0, past + T);  // (B, H, L, D), L = past + T
      v = cache->v[layer].narrow(2, 0, past + T);  // (B, H, L, D)
    }
  }
  const std::int64_t L = past + T;
  double scale = 1.0 / std::sqrt(static_cast<double>(D));
  if (config.scale_attn_by_inverse_layer_idx) scale /= static_cast<double>(layer + 1);

  // Scores in the model's dtype (as Hugging Face computes them); the softmax
  // accumulates in fp32 inside the kernel. (Converting the whole score tensor
  // to fp32 first cost 2.4x in a 256-token prefill here.)
  torch::Tensor att = torch::matmul(q, k.transpose(-2, -1)) * scale;  // (B, H, T, L)
  if (T > 1) {
    // Query i (absolute position past + i) sees keys j <= past + i.
    auto opts = torch::TensorOptions().device(x.device());
    torch::Tensor qpos = torch::arange(past, L, opts.dtype(torch::kLong)).unsqueeze(1);  // (T, 1)
    torch::Tensor kpos = torch::arange(0, L, opts.dtype(torch::kLong)).unsqueeze(0);     // (1, L)
    att = att.masked_fill(kpos > qpos, -std::numeric_limits<float>::infinity());
  }
  att = torch::softmax(att, -1, torch::kFloat32).to(x.scalar_type());  // (B, H, T, L)
  torch::Tensor y = torch::matmul(att, v);                              // (B, H, T, D)
  y = y.transpose(1, 2).reshape({B, T, C});                             // (B, T, C)
  return conv1d(y, w.c_proj_w, w.c_proj_b);                             // (B, T, C)
}

torch::Tensor mlp(const torch::Tensor& x, const Gpt2Layer& w, Activation kind) {
  // x is (B, T, C) -> (B, T, 4C) -> (B, T, C)
  return conv1d(activation(conv1d(x, w.c_fc_w, w.c_fc_b), kind), w.mlp_proj_w, w.mlp_proj_b);
}

}  // namespace inkstream::layers
