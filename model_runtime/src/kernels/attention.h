#pragma once
// Attention of a few queries per sequence over the KV cache, the kernel
// behind layers::attention_step (decoding rows: one new token each, over a
// shared prompt prefix and each row's own generated tail; and short prompt
// chunks beside them) and behind short prefill chunks in layers::attention
// (a writer's last few words over the cached document). Keys/values are
// fp32, bf16 or int8 (see Gpt2Model::kv_dtype): an int8 key or value vector
// of D elements is q · s with one fp32 scale s per (position, head),
// quantize_kv's rule; queries, outputs and all arithmetic are fp32.
//
// Each (group, head) is one work item: its queries read every key of the
// prefix once from memory together (a prefix read per row made a
// 1,000-token step memory-bound), then the values (bf16 ones widened once
// per block of keys for all rows), while each query's numbers come from
// the same operations in the same order whatever the other queries, the
// other groups or the thread count: results are batch-invariant.
// Instruction set chosen as in linear.h.
#include <cstdint>
#include <vector>

namespace inkstream::kernels {

enum class KvType { F32, BF16, Q8 };

// One group of queries and the keys/values it attends to. Layouts are the KV
// cache's: prefix k/v (1, H, ldp, D) with positions [0, P) valid; tail k/v
// (rows, H, ldt, D) with positions [0, L) valid (L may be 0). With `causal`
// (a prefill chunk: the rows are the last `rows` positions of the prefix)
// row r sees prefix positions [0, P - rows + r + 1) and no tail; otherwise
// every row sees the whole prefix and its own tail. Q8's scales lie as
// the keys/values with D collapsed: prefix (1, H, ldp), tail (rows, H, ldt).
struct AttentionGroup {
  const float* q;  // (rows, H, D) contiguous
  float* y;        // (rows, H, D) contiguous
  std::int64_t rows;
  const void *kp, *vp;  // float, bf16 bits (std::uint16_t) or std::int8_t, per KvType
  std::int64_t ldp, P;
  const void *kt, *vt;
  std::int64_t ldt, L;
  bool causal = false;
  const float *kp_scales = nullptr, *vp_scales = nullptr, *kt_scales = nullptr, *vt_scales = nullptr;  // Q8 only
};

// y = softmax(scale · q·kᵀ) · v for every row and head. x is (rows, H, D).
void attention_decode(const std::vector<AttentionGroup>& groups, std::int64_t H, std::int64_t D, float scale, KvType kv);

// `count` vectors of D values (x (count, D) contiguous) -> q (count, D) and
// one scale each: the int8 weights' rule (linear.h's quantize_q8: scale =
// max |v| / 127, rounded to nearest; zero, NaN and infinite vectors as
// there), a vector's bits independent of the others.
void quantize_kv(const float* x, std::int64_t count, std::int64_t D, std::int8_t* q, float* scales);

// Plain loops in double: the reference for tests.
void attention_decode_reference(const std::vector<AttentionGroup>& groups, std::int64_t H, std::int64_t D, float scale,
                                KvType kv);

}  // namespace inkstream::kernels
