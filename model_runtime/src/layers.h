#pragma once
// GPT-2 building blocks (the "layers" level under the model). Every function
// is pure: inputs in, new tensor out; shapes are in the comments.
#include <ATen/core/Tensor.h>

#include "inkstream/model_runtime/config.h"
#include "inkstream/model_runtime/gpt2.h"

namespace inkstream::layers {

// x is (B, T, C); w, b are (C). Biased variance, eps from the config.
at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, double eps);

// True when products and attention on `x` may go through the
// batch-invariant kernels (kernels/linear.h, kernels/attention.h): CPU, fp32
// or bf16, under c10::InferenceMode (serving), kernels not turned off. bf16
// matrices packed at load always use them (conv1d); where libtorch has
// native bf16, bf16 chunks over 64 rows go there. CPU models with fp16 or
// int8 weights run fp32 activations here too. Training (also its
// recomputation under no_grad) and the CUDA paths use libtorch.
bool uses_kernels(const at::Tensor& x);

// bf16 w (IN, OUT) packed in k pairs for the bf16 kernels: int32
// (ceil(IN/2), OUT), see kernels/linear.h. unpack gives back (IN, OUT).
// With `reuse_memory` the packed matrix may take over w's memory (w's
// values are then gone: for a load that replaces w).
at::Tensor pack_bf16_pairs(const at::Tensor& w, bool reuse_memory = false);
at::Tensor unpack_bf16_pairs(const at::Tensor& packed);
bool is_packed(const at::Tensor& w);

// w (IN, OUT), of any floating type, as fp16 in the kernels' panels
// (kernels/linear.h: a decoding step streams each panel of kF16Panel = 32
// columns): (OUT/32, IN, 32), when OUT is a multiple of 32; otherwise a
// copy of w as fp16 (IN, OUT). Either way in memory of its own, never a
// view of a mapped checkpoint. Converted a few rows at a time straight
// into the panels (a whole row-major fp16 copy first left ~55 MB of holes
// in the heap after a GPT-2 small load). unpack gives back (IN, OUT).
at::Tensor pack_f16_panels(const at::Tensor& w);
at::Tensor unpack_f16_panels(const at::Tensor& panels);
bool is_f16_panels(const at::Tensor& w);

// The rows of a mixed step (Gpt2Model::forward_step) come in independent
// segments: the decoding rows, then each prompt chunk (row counts, in
// order; empty: all rows are one segment). The products below give every
// segment the numbers it would get alone: one product over all rows where
// the path does not depend on the row count (every path but bf16 on a CPU
// with native bf16, where chunks over 64 rows go to oneDNN), else one per
// segment.
using RowSegments = std::vector<std::int64_t>;
// A mixed step's segments: all decoding rows (one segment: they are a
// decoding step alone), then each chunk.
RowSegments step_segments(const std::vector<DecodeGroup>& decode, const std::vector<PromptChunk>& chunks);

// Hugging Face Conv1D: x is (B, T, IN), w is (IN, OUT) (or packed, for bf16
// x without autograd), b is (OUT) -> (B, T, OUT) = x·w + b. For fp32 x, w
// may also be fp16 (either layout), or int8 (quantize_q8) with its `scales`: the kernels
// read them as they are; without the kernels (training mode,
// INKSTREAM_KERNELS=off) they are widened whole first.
at::Tensor conv1d(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& scales = {},
                  const RowSegments& segments = {});

// x·wᵀ without bias: x is (..., C), w is (V, C) -> (..., V). The tied
// lm_head. fp16 w as above; int8 w is kept in Conv1D form, wᵀ (C, V)
// quantized (quantize_q8 with `transposed`), with its `scales`.
at::Tensor linear_nt(const at::Tensor& x, const at::Tensor& w, const at::Tensor& scales = {}, const RowSegments& segments = {});

// int8 weights for the kernels (kernels/linear.h's Q8Matrix): fp32 w
// (IN, OUT) -> quads uint8 (ceil(OUT/16), ceil(IN/4), 16, 4) (panels), scales fp32
// (ceil(IN/32), OUT) in the kernels' panel order (q8_scale_index). With `transposed`, w is (OUT, IN) and wᵀ is stored
// (the tied embedding (V, C) as the lm_head's (C, V)).
struct Quantized {
  at::Tensor quads, scales;
};
Quantized quantize_q8(const at::Tensor& w, bool transposed = false);
bool is_q8(const at::Tensor& w);
// Back to fp32 (the values the kernels multiply by): (IN, OUT). The quads
// do not record IN (they hold whole groups of 4), so the caller gives it.
at::Tensor dequantize_q8(const at::Tensor& quads, const at::Tensor& scales, std::int64_t in);

// Rows `ids` (N) of the (V, C) embedding w -> (N, C) in the dtype
// `compute`; an int8 w is the lm_head's (C, V) form, with scales.
at::Tensor embedding(const at::Tensor& w, const at::Tensor& scales, const at::Tensor& ids, std::int64_t C, c10::ScalarType compute);

// Elementwise; gelu_new is the tanh approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
at::Tensor activation(const at::Tensor& x, Activation kind);

// Causal self-attention of one block. x is (B, T, C) (already ln_1'd);
// returns (B, T, C) before the residual add. With a cache, keys/values of the
// T new positions are written at [cache->length(), +T) of layer `layer`, and
// queries attend to everything up to their own position.
at::Tensor attention(const at::Tensor& x, const Gpt2Layer& w, const ModelConfig& config, std::int64_t layer,
                        KvCache* cache);

// Self-attention of a mixed step (Gpt2Model::forward_step): x is (R, 1, C)
// (already ln_1'd) -> (R, 1, C), the rows of the `decode` groups first, then
// those of each chunk. A decoding row's new key/value is written at position
// tail->length() of its tail row and it attends to its group's prefix and
// its own tail; a chunk's keys/values are written at [cache->length(), +rows)
// and its queries attend causally, as in attention(). (Lengths are advanced
// by the caller after the last layer.)
at::Tensor attention_step(const at::Tensor& x, const Gpt2Layer& w, const ModelConfig& config, std::int64_t layer,
                          const std::vector<DecodeGroup>& decode, const std::vector<PromptChunk>& chunks);

// The MLP of one block: x is (B, T, C) -> (B, T, C).
at::Tensor mlp(const at::Tensor& x, const Gpt2Layer& w, Activation kind, const RowSegments& segments = {});

}  // namespace inkstream::layers
