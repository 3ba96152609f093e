#pragma once
// The per-instruction-set entry points behind linear.h: each computes output
// columns [n_begin, n_end) for all rows (the caller splits columns over
// threads). Defined in linear_<isa>.cpp.
#include <cstdint>

namespace inkstream::kernels {

using LinearColumns = void (*)(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K,
                               std::int64_t N, std::int64_t n_begin, std::int64_t n_end);

// One query of decoding attention (attention_tiles.h).
using AttendRow = void (*)(const float* q, std::int64_t D, const float* kp, const float* vp, std::int64_t ldp, std::int64_t P,
                           const float* kt, const float* vt, std::int64_t ldt, std::int64_t L, float scale, float* scores,
                           float* y);

struct LinearIsa {
  const char* name;
  LinearColumns nn, nt;
  int nn_block, nt_block;  // column granularity of a split
  AttendRow attend;
};

LinearIsa linear_isa_avx512();
LinearIsa linear_isa_avx2();
LinearIsa linear_isa_scalar();

}  // namespace inkstream::kernels
