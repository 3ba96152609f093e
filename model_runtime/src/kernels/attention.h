#pragma once
// fp32 attention of decoding rows (one new token per row) over a shared
// prompt prefix and each row's own generated tail: the kernel behind
// layers::attention_decode on the CPU. Each (row, head) is computed by one
// thread in a fixed order, so results do not depend on the other rows or on
// the thread count. Instruction set chosen as in linear.h.
#include <cstdint>
#include <vector>

namespace inkstream::kernels {

// The keys/values one group of rows attends to. Layouts are the KV cache's:
// prefix k/v (1, H, ldp, D) with positions [0, P) valid; tail k/v
// (rows, H, ldt, D) with positions [0, L) valid.
struct AttentionGroup {
  const float* q;  // (rows, H, D) contiguous
  float* y;        // (rows, H, D) contiguous
  std::int64_t rows;
  const float *kp, *vp;
  std::int64_t ldp, P;
  const float *kt, *vt;
  std::int64_t ldt, L;
};

void attention_decode_f32(const std::vector<AttentionGroup>& groups, std::int64_t H, std::int64_t D, float scale);

// Plain loops in double: the reference for tests.
void attention_decode_f32_reference(const std::vector<AttentionGroup>& groups, std::int64_t H, std::int64_t D, float scale);

}  // namespace inkstream::kernels
