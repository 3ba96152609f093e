#pragma once
// fp32 matrix products for the linear layers of inference, the lowest layer
// of the runtime (kernels -> layers -> model -> engine).
//
// Batch invariance: every output y[m, n] is computed by the same sequence of
// floating-point operations whatever M, the other rows, the thread count or
// the tile the row lands in (a zero accumulator, fused multiply-adds in a
// fixed order over k, then + b[n]). So a sequence's numbers do not depend on
// what else shares its decoding step: continuous batching stays
// deterministic. (OpenBLAS's sgemm changes its blocking with M, so its rows
// differ in the last bits between batch sizes.)
//
// The instruction set is chosen once at run time (CPUID): AVX-512F, AVX2 +
// FMA, or portable scalar code. Each path has a plain reference beside it
// (the *_reference functions, double accumulation) that tests compare with.
#include <cstdint>

namespace inkstream::kernels {

// y = x · w + b. x is (M, K), w is (K, N) (Conv1D layout: in, out), b is (N)
// or null, y is (M, N); all row-major and contiguous.
void linear_nn_f32(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N);

// y = x · wᵀ + b. x is (M, K), w is (N, K) (nn.Linear layout: out, in, e.g.
// the tied embedding used as lm_head), b is (N) or null, y is (M, N).
void linear_nt_f32(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N);

// Plain loops accumulating in double: the references for tests.
void linear_nn_f32_reference(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K,
                             std::int64_t N);
void linear_nt_f32_reference(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K,
                             std::int64_t N);

// The code path in use: "avx512", "avx2" or "scalar". INKSTREAM_KERNELS=scalar
// (or avx2) in the environment forces a lower one, for tests and benchmarks.
const char* linear_f32_isa();

}  // namespace inkstream::kernels
