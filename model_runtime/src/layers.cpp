#include "layers.h"
#include <torch/types.h>

#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/attention.h"
#include "kernels/linear.h"

namespace inkstream::layers {

bool uses_kernels(const torch::Tensor& x) {
  return x.device().is_cpu() && (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kBFloat16) &&
         c10::InferenceMode::is_enabled() && kernels::kernels_enabled();
}

namespace {

// Where the CPU has AVX-512 BF16, libtorch's oneDNN is faster than the
// kernels beyond decoding's row counts, so bf16 prompt chunks over
// kKernelBf16Rows rows (and attention over more than kKernelPrefillTokens
// queries) go there. Elsewhere libtorch only emulates bf16 (a 10-second
// 256-token prefill on AVX2), so everything stays in the kernels. Fixed
// per machine, so a request's numbers still depend only on its own chunks.
constexpr std::int64_t kKernelBf16Rows = 64;
bool bf16_long_to_libtorch() {
  static const bool native = std::strcmp(kernels::linear_bf16_isa(), "avx512bf16") == 0;  // the CPU does not change
  return native;
}

// The element type of a cache (fp32, bf16 or int8; see Gpt2Model::kv_dtype).
kernels::KvType kv_type(const KvCache& cache) {
  if (cache.quantized()) return kernels::KvType::Q8;
  return cache.k.front().scalar_type() == torch::kBFloat16 ? kernels::KvType::BF16 : kernels::KvType::F32;
}

// Layer l's int8 scales of batch row b of a cache (null unless quantized).
const float* scales_of(const KvCache& cache, bool values, std::int64_t l, std::int64_t b) {
  if (!cache.quantized()) return nullptr;
  const torch::Tensor& s = (values ? cache.v_scales : cache.k_scales)[l];
  return s.data_ptr<float>() + b * s.stride(0);
}

// Prefill chunks up to this many tokens attend through the kernel (a
// writer's last words over the cached document: the keys are read once for
// all queries); longer ones through libtorch's batched matrix products.
constexpr std::int64_t kKernelPrefillTokens = 32;

// 1/sqrt(D), and also 1/(layer + 1) where the config asks for it.
double attention_scale(const ModelConfig& config, std::int64_t layer) {
  double scale = 1.0 / std::sqrt(static_cast<double>(config.head_dim()));
  if (config.scale_attn_by_inverse_layer_idx) scale /= static_cast<double>(layer + 1);
  return scale;
}

}  // namespace

torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, double eps) {
  // x is (B, T, C)
  return torch::layer_norm(x, {x.size(-1)}, w, b, eps);
}

bool is_packed(const torch::Tensor& w) { return w.scalar_type() == torch::kInt32 && w.dim() == 2; }

torch::Tensor pack_bf16_pairs(const torch::Tensor& w, bool reuse_memory) {
  // w is (IN, OUT) bf16 -> (ceil(IN/2), OUT) int32
  TORCH_CHECK(w.dim() == 2 && w.scalar_type() == torch::kBFloat16 && w.device().is_cpu(), "pack_bf16_pairs takes a CPU bf16 matrix");
  const std::int64_t IN = w.size(0), OUT = w.size(1);
  // Packed in place when asked and w owns its memory whole (a copied
  // checkpoint): the packed matrix has the same bytes, and a new one per
  // matrix left the old ones' memory in the heap (peak RSS +110 MB for
  // GPT-2 small).
  const bool in_place = reuse_memory && IN % 2 == 0 && w.is_contiguous() && w.storage_offset() == 0 && w.storage().allocator() != nullptr &&
                        w.storage().nbytes() == w.nbytes();
  const torch::Tensor source = in_place ? w.clone() : w.contiguous();
  torch::Tensor packed = in_place ? w.view({-1}).view(torch::kInt32).view({IN / 2, OUT})
                                  : torch::empty({(IN + 1) / 2, OUT}, torch::TensorOptions().dtype(torch::kInt32));
  kernels::pack_bf16_pairs(reinterpret_cast<const std::uint16_t*>(source.data_ptr()),
                           reinterpret_cast<std::uint32_t*>(packed.data_ptr()), IN, OUT);
  return packed;
}

torch::Tensor unpack_bf16_pairs(const torch::Tensor& packed) {
  // (P, OUT) int32 -> (2P, OUT) bf16: rows 2p and 2p+1 are the low and high halves.
  // (An odd IN's zero row at the end is not told apart: GPT-2's are even.)
  const torch::Tensor src = packed.contiguous();
  torch::Tensor w = torch::empty({2 * packed.size(0), packed.size(1)}, torch::TensorOptions().dtype(torch::kBFloat16));
  kernels::unpack_bf16_pairs(reinterpret_cast<const std::uint32_t*>(src.data_ptr()), reinterpret_cast<std::uint16_t*>(w.data_ptr()),
                             w.size(0), w.size(1));
  return w;
}

bool is_f16_panels(const torch::Tensor& w) { return w.scalar_type() == torch::kHalf && w.dim() == 3; }

torch::Tensor pack_f16_panels(const torch::Tensor& w) {
  // w is (IN, OUT)
  TORCH_CHECK(w.dim() == 2 && w.is_floating_point() && w.device().is_cpu(), "pack_f16_panels takes a CPU floating-point matrix");
  const auto IN = w.size(0), OUT = w.size(1);
  if (OUT % kernels::kF16Panel != 0) return w.to(torch::kHalf, /*non_blocking=*/false, /*copy=*/true);  // own memory, never a view of a mapped file
  constexpr std::int64_t P = kernels::kF16Panel, kRows = 64;  // rows converted at a time: a small transient
  torch::Tensor panels = torch::empty({OUT / P, IN, P}, w.options().dtype(torch::kHalf));
  auto* dst = reinterpret_cast<std::uint16_t*>(panels.data_ptr());
  for (std::int64_t k0 = 0; k0 < IN; k0 += kRows) {
    const std::int64_t rows = std::min(kRows, IN - k0);
    const torch::Tensor block = w.narrow(0, k0, rows).to(torch::kHalf).contiguous();  // (rows, OUT)
    const auto* src = reinterpret_cast<const std::uint16_t*>(block.data_ptr());
    for (std::int64_t k = 0; k < rows; ++k)
      for (std::int64_t n = 0; n < OUT; n += P)
        std::memcpy(dst + kernels::f16_panel_index(k0 + k, n, IN), src + k * OUT + n, P * sizeof(std::uint16_t));
  }
  return panels;
}

torch::Tensor unpack_f16_panels(const torch::Tensor& panels) {
  // panels is (OUT/32, IN, 32) -> (IN, OUT)
  return panels.permute({1, 0, 2}).reshape({panels.size(1), panels.size(0) * panels.size(2)});
}

bool is_q8(const torch::Tensor& w) { return w.scalar_type() == torch::kUInt8 && w.dim() == 4; }

Quantized quantize_q8(const torch::Tensor& w, bool transposed) {
  // w is (IN, OUT), or (OUT, IN) when transposed
  TORCH_CHECK(w.dim() == 2 && w.device().is_cpu(), "quantize_q8 takes a CPU matrix");
  const auto IN = transposed ? w.size(1) : w.size(0), OUT = transposed ? w.size(0) : w.size(1);
  Quantized out{torch::empty({kernels::q8_panels(OUT), kernels::q8_quads(IN), kernels::kQ8Panel, 4}, torch::kUInt8),
                torch::empty({kernels::q8_blocks(IN), OUT}, torch::kFloat32)};
  const std::int64_t k_stride = transposed ? 1 : OUT, n_stride = transposed ? IN : 1;
  auto* quads = reinterpret_cast<std::uint32_t*>(out.quads.data_ptr());
  if (w.scalar_type() == torch::kBFloat16 && w.is_contiguous()) {
    // (read as they are: no fp32 copy)
    kernels::quantize_q8_bf16(reinterpret_cast<const std::uint16_t*>(w.data_ptr()), k_stride, n_stride, quads, out.scales.data_ptr<float>(),
                              IN, OUT);
    return out;
  }
  const torch::Tensor src = w.to(torch::kFloat32).contiguous();
  kernels::quantize_q8(src.data_ptr<float>(), k_stride, n_stride, quads, out.scales.data_ptr<float>(), IN, OUT);
  return out;
}

namespace {

// The kernels' view of an int8 matrix of `in` inputs (the quads do not
// record it: they hold whole groups of 4).
kernels::Q8Matrix q8_matrix(const torch::Tensor& quads, const torch::Tensor& scales, std::int64_t in) {
  TORCH_CHECK(is_q8(quads) && quads.is_contiguous() && scales.scalar_type() == torch::kFloat32 && scales.is_contiguous(),
              "int8 weights need their quads and scales");
  TORCH_CHECK(kernels::q8_quads(in) == quads.size(1) && kernels::q8_blocks(in) == scales.size(0), "int8 matrix: ", in,
              " inputs do not fit its quads");
  return {reinterpret_cast<const std::uint32_t*>(quads.data_ptr()), scales.data_ptr<float>()};
}

}  // namespace

torch::Tensor dequantize_q8(const torch::Tensor& quads, const torch::Tensor& scales, std::int64_t in) {
  // -> (IN, OUT); OUT is the scales' width
  const auto OUT = scales.size(1);
  const kernels::Q8Matrix q8 = q8_matrix(quads, scales, in);
  torch::Tensor out = torch::empty({in, OUT}, torch::kFloat32);
  kernels::dequantize_q8(q8, out.data_ptr<float>(), in, OUT);
  return out;
}

torch::Tensor embedding(const torch::Tensor& w, const torch::Tensor& scales, const torch::Tensor& ids, std::int64_t C,
                        c10::ScalarType compute) {
  // w is (V, C) (int8: wᵀ, quantize_q8), ids (N) -> (N, C)
  if (!is_q8(w)) return w.index_select(0, ids).to(compute);
  const kernels::Q8Matrix q8 = q8_matrix(w, scales, C);
  const auto V = scales.size(1), N = ids.size(0);
  const torch::Tensor idc = ids.to(torch::kLong).contiguous();
  torch::Tensor out = torch::empty({N, C}, torch::kFloat32);
  for (std::int64_t i = 0; i < N; ++i) {
    const std::int64_t id = idc.data_ptr<std::int64_t>()[i];
    TORCH_CHECK(id >= 0 && id < V, "token id out of range");
    kernels::dequantize_q8_column(q8, id, out.data_ptr<float>() + i * C, C, V);
  }
  return out.to(compute);
}

namespace {

// fp16 or int8 weights for fp32 activations (the CPU formats).
bool is_compressed(const torch::Tensor& w) { return w.scalar_type() == torch::kHalf || is_q8(w); }

// Runs `product` on each segment of x's rows (dim 0) alone and joins the
// results: x is (R, ...), segments sum to R.
template <class Product>
torch::Tensor by_segment(const torch::Tensor& x, const RowSegments& segments, Product product) {
  std::vector<torch::Tensor> parts;
  std::int64_t first = 0;
  for (const std::int64_t n : segments) {
    parts.push_back(product(x.narrow(0, first, n)));
    first += n;
  }
  TORCH_CHECK(first == x.size(0), "row segments do not cover the rows");
  return torch::cat(parts, 0);
}

// Whether a product over these segments must run one segment at a time: bf16
// where libtorch is native decides its path by the row count (the others
// are batch-invariant kernels at any count; CUDA promises no invariance).
bool split_by_segment(const torch::Tensor& x, const RowSegments& segments) {
  if (segments.size() < 2 || !x.device().is_cpu() || x.scalar_type() != torch::kBFloat16 || !bf16_long_to_libtorch()) return false;
  return x.numel() / x.size(-1) > kKernelBf16Rows;
}

torch::Tensor conv1d_rows(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, const torch::Tensor& scales);
torch::Tensor linear_nt_rows(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& scales);

}  // namespace

RowSegments step_segments(const std::vector<DecodeGroup>& decode, const std::vector<PromptChunk>& chunks) {
  RowSegments segments;
  std::int64_t decode_rows = 0;
  for (const DecodeGroup& g : decode) decode_rows += g.rows;
  if (decode_rows > 0) segments.push_back(decode_rows);
  for (const PromptChunk& c : chunks) segments.push_back(c.rows);
  return segments;
}

torch::Tensor conv1d(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, const torch::Tensor& scales,
                     const RowSegments& segments) {
  if (split_by_segment(x, segments))
    return by_segment(x, segments, [&](const torch::Tensor& part) { return conv1d_rows(part, w, b, scales); });
  return conv1d_rows(x, w, b, scales);
}

torch::Tensor linear_nt(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& scales, const RowSegments& segments) {
  if (split_by_segment(x, segments))
    return by_segment(x, segments, [&](const torch::Tensor& part) { return linear_nt_rows(part, w, scales); });
  return linear_nt_rows(x, w, scales);
}

namespace {

torch::Tensor conv1d_rows(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, const torch::Tensor& scales) {
  // x is (B, T, IN), w is (IN, OUT): flatten to (B*T, IN) for one product.
  const auto B = x.size(0), T = x.size(1), IN = x.size(2);
  if (is_compressed(w) && x.scalar_type() == torch::kFloat32) {
    const auto OUT = is_q8(w) ? scales.size(1) : is_f16_panels(w) ? w.size(0) * w.size(2) : w.size(1);
    if (!uses_kernels(x)) {
      const torch::Tensor wf = is_q8(w)           ? dequantize_q8(w, scales, IN)
                               : is_f16_panels(w) ? unpack_f16_panels(w).to(torch::kFloat32)
                                                  : w.to(torch::kFloat32);
      return torch::addmm(b, x.reshape({B * T, IN}), wf).view({B, T, OUT});
    }
    const torch::Tensor x2 = x.reshape({B * T, IN}).contiguous(), bc = b.contiguous();
    torch::Tensor y = torch::empty({B, T, OUT}, x.options());
    if (w.scalar_type() == torch::kHalf)
      kernels::linear_nn_f16(x2.data_ptr<float>(), {reinterpret_cast<const std::uint16_t*>(w.data_ptr()), is_f16_panels(w)},
                             bc.data_ptr<float>(), y.data_ptr<float>(), B * T, IN, OUT);
    else
      kernels::linear_q8(x2.data_ptr<float>(), q8_matrix(w, scales, IN), bc.data_ptr<float>(), y.data_ptr<float>(), B * T, IN, OUT);
    return y;
  }
  if (is_packed(w)) {
    TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kBFloat16 && !x.requires_grad(),
                "packed bf16 weights serve CPU inference only");
    if (B * T > kKernelBf16Rows && bf16_long_to_libtorch()) {
      // A long prompt chunk: libtorch's oneDNN is twice as fast at these row
      // counts, the unpacking copy included (a fixed threshold, so a
      // request's numbers still depend only on its own chunks).
      const torch::Tensor y = torch::addmm(b, x.reshape({B * T, IN}), unpack_bf16_pairs(w));  // (B*T, OUT)
      return y.view({B, T, w.size(1)});
    }
    const auto OUT = w.size(1);
    const torch::Tensor x2 = x.reshape({B * T, IN}).contiguous(), bc = b.contiguous();
    torch::Tensor y = torch::empty({B, T, OUT}, x.options());
    kernels::linear_nn_bf16(reinterpret_cast<const std::uint16_t*>(x2.data_ptr()), reinterpret_cast<const std::uint32_t*>(w.data_ptr()),
                            reinterpret_cast<const std::uint16_t*>(bc.data_ptr()), reinterpret_cast<std::uint16_t*>(y.data_ptr()), B * T,
                            IN, OUT);
    return y;
  }
  const auto OUT = w.size(1);
  if (uses_kernels(x) && x.scalar_type() == torch::kFloat32 && w.scalar_type() == torch::kFloat32) {
    const torch::Tensor x2 = x.reshape({B * T, IN}).contiguous();
    const torch::Tensor wc = w.contiguous(), bc = b.contiguous();
    torch::Tensor y = torch::empty({B, T, OUT}, x.options());
    kernels::linear_nn_f32(x2.data_ptr<float>(), wc.data_ptr<float>(), bc.data_ptr<float>(), y.data_ptr<float>(), B * T, IN, OUT);
    return y;
  }
  torch::Tensor y = torch::addmm(b, x.reshape({B * T, IN}), w);  // (B*T, OUT)
  return y.view({B, T, OUT});
}

torch::Tensor linear_nt_rows(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& scales) {
  // x is (B, C) or (B, T, C), w is (V, C) -> (B, V) or (B, T, V)
  if (is_q8(w) && !uses_kernels(x)) return torch::matmul(x, dequantize_q8(w, scales, x.size(-1)));  // (C, V)
  if (is_compressed(w) && !uses_kernels(x)) return torch::matmul(x, w.to(torch::kFloat32).t());
  const bool compressed = uses_kernels(x) && x.scalar_type() == torch::kFloat32 && is_compressed(w);
  const bool fp32 = uses_kernels(x) && x.scalar_type() == torch::kFloat32 && w.scalar_type() == torch::kFloat32;
  const bool bf16 = uses_kernels(x) && x.scalar_type() == torch::kBFloat16 && w.scalar_type() == torch::kBFloat16 &&
                    w.is_contiguous() && (x.numel() / x.size(-1) <= kKernelBf16Rows || !bf16_long_to_libtorch());
  if (fp32 || bf16 || compressed) {
    const auto C = x.size(-1), V = is_q8(w) ? scales.size(1) : w.size(0), rows = x.numel() / C;
    const torch::Tensor xc = x.contiguous();
    std::vector<std::int64_t> shape(x.sizes().begin(), x.sizes().end());
    shape.back() = V;
    torch::Tensor y = torch::empty(shape, x.options());
    if (compressed && w.scalar_type() == torch::kHalf) {
      kernels::linear_nt_f16(xc.data_ptr<float>(), {reinterpret_cast<const std::uint16_t*>(w.data_ptr())}, nullptr, y.data_ptr<float>(),
                             rows, C, V);
    } else if (compressed) {
      kernels::linear_q8(xc.data_ptr<float>(), q8_matrix(w, scales, C), nullptr, y.data_ptr<float>(), rows, C, V);  // w is (C, V)
    } else if (bf16) {
      kernels::linear_nt_bf16(reinterpret_cast<const std::uint16_t*>(xc.data_ptr()), reinterpret_cast<const std::uint16_t*>(w.data_ptr()),
                              nullptr, reinterpret_cast<std::uint16_t*>(y.data_ptr()), rows, C, V);
    } else {
      const torch::Tensor wc = w.contiguous();
      kernels::linear_nt_f32(xc.data_ptr<float>(), wc.data_ptr<float>(), nullptr, y.data_ptr<float>(), rows, C, V);
    }
    return y;
  }
  return torch::matmul(x, w.t());
}

}  // namespace

torch::Tensor activation(const torch::Tensor& x, Activation kind) {
  return kind == Activation::GeluNew ? torch::gelu(x, "tanh") : torch::gelu(x);
}

namespace {

// Whether a prompt chunk of T tokens attends through the kernel (a fixed
// rule per machine: a chunk's numbers depend only on itself).
bool chunk_attends_in_kernel(std::int64_t T, c10::ScalarType dtype) {
  return T <= kKernelPrefillTokens || (dtype == torch::kBFloat16 && !bf16_long_to_libtorch());
}

// The kernel's work item for queries at positions past + [0, T) of the one
// sequence of batch row b of `cache` (written already): q, y are (T, H, D).
kernels::AttentionGroup causal_group(const float* q, float* y, std::int64_t T, const KvCache& cache, std::int64_t layer,
                                     std::int64_t b, std::int64_t past) {
  TORCH_CHECK(cache.k[layer].is_contiguous() && cache.v[layer].is_contiguous(), "KV caches must be contiguous");
  const torch::Tensor kb = cache.k[layer].select(0, b), vb = cache.v[layer].select(0, b);  // (H, capacity, D)
  return {q, y, T, kb.data_ptr(), vb.data_ptr(), kb.size(1), past + T, nullptr, nullptr, 0, 0, /*causal=*/true,
          scales_of(cache, false, layer, b), scales_of(cache, true, layer, b)};
}

// Causal attention through libtorch of the T queries q at positions
// past + [0, T): k, v (B, H, T, D) are the new tokens' keys/values; with a
// cache (written already) everything up to past + T is read from it.
// q is (B, H, T, D) -> (B, T, C) in q's dtype.
torch::Tensor causal_attention_libtorch(const torch::Tensor& q, torch::Tensor k, torch::Tensor v, const KvCache* cache,
                                        std::int64_t layer, std::int64_t past, double scale) {
  const auto B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  // On an empty cache of the activations' dtype the fresh k, v are all
  // there is (and faster to read); a cache of another dtype (bf16 or int8
  // for fp32 activations) is read back, so every path sees the same
  // rounded values.
  if (cache && (past > 0 || cache->k[layer].scalar_type() != k.scalar_type())) {
    k = cache->read(layer, false, B, past + T, q.scalar_type());  // (B, H, L, D), L = past + T
    v = cache->read(layer, true, B, past + T, q.scalar_type());   // (B, H, L, D)
  }
  const std::int64_t L = past + T;
  // Scores in the model's dtype (as Hugging Face computes them); the softmax
  // accumulates in fp32 inside the kernel. (Converting the whole score tensor
  // to fp32 first cost 2.4x in a 256-token prefill here.)
  torch::Tensor att = torch::matmul(q, k.transpose(-2, -1)) * scale;  // (B, H, T, L)
  if (T > 1) {
    // Query i (absolute position past + i) sees keys j <= past + i.
    auto opts = torch::TensorOptions().device(q.device());
    torch::Tensor qpos = torch::arange(past, L, opts.dtype(torch::kLong)).unsqueeze(1);  // (T, 1)
    torch::Tensor kpos = torch::arange(0, L, opts.dtype(torch::kLong)).unsqueeze(0);     // (1, L)
    att = att.masked_fill(kpos > qpos, -std::numeric_limits<float>::infinity());
  }
  att = torch::softmax(att, -1, torch::kFloat32).to(q.scalar_type());  // (B, H, T, L)
  return torch::matmul(att, v).transpose(1, 2).reshape({B, T, H * D});  // (B, T, C)
}

// Decoding rows of one group through libtorch: q, k, v are (n, H, 1, D), the
// new keys/values already in the tail. -> (n, H, 1, D)
torch::Tensor decode_attention_libtorch(const torch::Tensor& q, const DecodeGroup& g, std::int64_t layer, double scale) {
  const std::int64_t P = g.prefix_len, t = g.tail->length();
  const auto dtype = q.scalar_type();
  const torch::Tensor kt = g.tail->read(layer, false, g.rows, t + 1, dtype);  // (n, H, t+1, D)
  const torch::Tensor vt = g.tail->read(layer, true, g.rows, t + 1, dtype);   // (n, H, t+1, D)
  // The shared prefix: the group's rows act as n queries of one sequence
  // (no copy of the prefix per row).
  const torch::Tensor kp = g.prefix->read(layer, false, 1, P, dtype);  // (1, H, P, D)
  const torch::Tensor vp = g.prefix->read(layer, true, 1, P, dtype);   // (1, H, P, D)
  const torch::Tensor q_rows = q.permute({2, 1, 0, 3});                                      // (1, H, n, D)
  const torch::Tensor sp = torch::matmul(q_rows, kp.transpose(-2, -1)).permute({2, 1, 0, 3});  // (n, H, 1, P)
  const torch::Tensor st = torch::matmul(q, kt.transpose(-2, -1));                             // (n, H, 1, t+1)
  torch::Tensor att = torch::cat({sp, st}, -1) * scale;                                        // (n, H, 1, P+t+1)
  att = torch::softmax(att, -1, torch::kFloat32).to(dtype);
  const torch::Tensor ap = att.narrow(-1, 0, P).permute({2, 1, 0, 3});   // (1, H, n, P)
  const torch::Tensor yp = torch::matmul(ap, vp).permute({2, 1, 0, 3});  // (n, H, 1, D)
  const torch::Tensor yt = torch::matmul(att.narrow(-1, P, t + 1), vt);  // (n, H, 1, D)
  return yp + yt;
}

}  // namespace

torch::Tensor attention(const torch::Tensor& x, const Gpt2Layer& w, const ModelConfig& config, std::int64_t layer,
                        KvCache* cache) {
  const auto B = x.size(0), T = x.size(1), C = x.size(2);
  const auto H = config.n_head, D = config.head_dim();
  torch::Tensor qkv = conv1d(x, w.c_attn_w, w.c_attn_b, w.c_attn_s);  // (B, T, 3C)
  auto parts = qkv.split(C, /*dim=*/2);                                 // 3 x (B, T, C)
  const torch::Tensor q = parts[0].view({B, T, H, D}).transpose(1, 2);  // (B, H, T, D)
  const torch::Tensor k = parts[1].view({B, T, H, D}).transpose(1, 2);  // (B, H, T, D)
  const torch::Tensor v = parts[2].view({B, T, H, D}).transpose(1, 2);  // (B, H, T, D)
  const std::int64_t past = cache ? cache->length() : 0;
  if (cache) cache->write(layer, past, k, v);
  const double scale = attention_scale(config, layer);
  if (cache && chunk_attends_in_kernel(T, x.scalar_type()) && uses_kernels(x)) {
    // Row t of batch b is the query at position past + t of its sequence.
    const torch::Tensor qc = parts[0].to(torch::kFloat32).contiguous();  // (B, T, C) = (B, T, H, D)
    torch::Tensor y = torch::empty({B, T, C}, x.options().dtype(torch::kFloat32));
    std::vector<kernels::AttentionGroup> work;
    for (std::int64_t b = 0; b < B; ++b)
      work.push_back(causal_group(qc.data_ptr<float>() + b * T * C, y.data_ptr<float>() + b * T * C, T, *cache, layer, b, past));
    kernels::attention_decode(work, H, D, static_cast<float>(scale), kv_type(*cache));
    return conv1d(y.to(x.scalar_type()), w.c_proj_w, w.c_proj_b, w.c_proj_s);  // (B, T, C)
  }
  const torch::Tensor y = causal_attention_libtorch(q, k, v, cache, layer, past, scale);  // (B, T, C)
  return conv1d(y, w.c_proj_w, w.c_proj_b, w.c_proj_s);                                 // (B, T, C)
}

torch::Tensor attention_step(const torch::Tensor& x, const Gpt2Layer& w, const ModelConfig& config, std::int64_t layer,
                             const std::vector<DecodeGroup>& decode, const std::vector<PromptChunk>& chunks) {
  // x is (R, 1, C): the decoding rows, then each chunk's rows
  const auto R = x.size(0), C = x.size(2);
  const auto H = config.n_head, D = config.head_dim();
  const RowSegments segments = step_segments(decode, chunks);
  torch::Tensor qkv = conv1d(x, w.c_attn_w, w.c_attn_b, w.c_attn_s, segments);  // (R, 1, 3C)
  auto parts = qkv.split(C, /*dim=*/2);                                          // 3 x (R, 1, C)
  const torch::Tensor q = parts[0].view({R, H, 1, D});  // (R, H, 1, D): a decoding row's T = 1, so no transpose needed
  const torch::Tensor k = parts[1].view({R, H, 1, D});
  const torch::Tensor v = parts[2].view({R, H, 1, D});
  // A chunk's rows as one sequence of T positions: (1, H, T, D).
  auto as_sequence = [&](const torch::Tensor& t, std::int64_t first, std::int64_t T) {
    return t.narrow(0, first, T).view({1, T, H, D}).transpose(1, 2);
  };
  const double scale = attention_scale(config, layer);

  // The new keys/values go into the caches first.
  std::int64_t first = 0;
  for (const DecodeGroup& g : decode) {
    g.tail->write(layer, g.tail->length(), k.narrow(0, first, g.rows), v.narrow(0, first, g.rows));
    first += g.rows;
  }
  for (const PromptChunk& c : chunks) {
    c.cache->write(layer, c.cache->length(), as_sequence(parts[1], first, c.rows), as_sequence(parts[2], first, c.rows));
    first += c.rows;
  }

  torch::Tensor y;  // (R, 1, C)
  if (uses_kernels(x)) {
    // The fused kernel: one pass per (group or chunk, head) for all of them;
    // long chunks through libtorch's products, into their rows of y.
    const torch::Tensor qc = q.reshape({R, C}).to(torch::kFloat32).contiguous();  // (R, H*D)
    y = torch::empty({R, 1, C}, x.options().dtype(torch::kFloat32));
    std::vector<kernels::AttentionGroup> work;
    first = 0;
    for (const DecodeGroup& g : decode) {
      const torch::Tensor& kp = g.prefix->k[layer];
      const torch::Tensor& kt = g.tail->k[layer];
      TORCH_CHECK(kp.is_contiguous() && kt.is_contiguous() && g.prefix->v[layer].is_contiguous() && g.tail->v[layer].is_contiguous(),
                  "KV caches must be contiguous");
      work.push_back({qc.data_ptr<float>() + first * C, y.data_ptr<float>() + first * C, g.rows, kp.data_ptr(),
                      g.prefix->v[layer].data_ptr(), kp.size(2), g.prefix_len, kt.data_ptr(), g.tail->v[layer].data_ptr(),
                      kt.size(2), g.tail->length() + 1, /*causal=*/false, scales_of(*g.prefix, false, layer, 0),
                      scales_of(*g.prefix, true, layer, 0), scales_of(*g.tail, false, layer, 0), scales_of(*g.tail, true, layer, 0)});
      first += g.rows;
    }
    for (const PromptChunk& c : chunks) {
      const std::int64_t past = c.cache->length();
      if (chunk_attends_in_kernel(c.rows, x.scalar_type()))
        work.push_back(causal_group(qc.data_ptr<float>() + first * C, y.data_ptr<float>() + first * C, c.rows, *c.cache, layer, 0, past));
      else
        y.narrow(0, first, c.rows).view({1, c.rows, C}).copy_(causal_attention_libtorch(
            as_sequence(parts[0], first, c.rows), as_sequence(parts[1], first, c.rows), as_sequence(parts[2], first, c.rows),
            c.cache, layer, past, scale));
      first += c.rows;
    }
    const KvCache& any = decode.empty() ? *chunks.front().cache : *decode.front().prefix;
    if (!work.empty()) kernels::attention_decode(work, H, D, static_cast<float>(scale), kv_type(any));
    y = y.to(x.scalar_type());
  } else {
    std::vector<torch::Tensor> outputs;
    first = 0;
    for (const DecodeGroup& g : decode) {
      outputs.push_back(decode_attention_libtorch(q.narrow(0, first, g.rows), g, layer, scale).reshape({g.rows, 1, C}));
      first += g.rows;
    }
    for (const PromptChunk& c : chunks) {
      outputs.push_back(causal_attention_libtorch(as_sequence(parts[0], first, c.rows), as_sequence(parts[1], first, c.rows),
                                                  as_sequence(parts[2], first, c.rows), c.cache, layer, c.cache->length(), scale)
                            .view({c.rows, 1, C}));
      first += c.rows;
    }
    y = torch::cat(outputs, 0);  // (R, 1, C)
  }
  return conv1d(y, w.c_proj_w, w.c_proj_b, w.c_proj_s, segments);  // (R, 1, C)
}

torch::Tensor mlp(const torch::Tensor& x, const Gpt2Layer& w, Activation kind, const RowSegments& segments) {
  // x is (B, T, C) -> (B, T, 4C) -> (B, T, C)
  return conv1d(activation(conv1d(x, w.c_fc_w, w.c_fc_b, w.c_fc_s, segments), kind), w.mlp_proj_w, w.mlp_proj_b, w.mlp_proj_s,
                segments);
}

}  // namespace inkstream::layers
