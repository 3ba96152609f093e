// Dispatch and threading for linear.h: the instruction set is picked once;
// output columns are split over libtorch's intra-op threads (each column is
// computed by one thread, so the split never changes a result).
#include "linear.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "linear_isa.h"

namespace inkstream::kernels {
namespace {

LinearIsa choose() {
  const char* forced = std::getenv("INKSTREAM_KERNELS");
  const bool allow_avx512 = !forced || std::strcmp(forced, "avx512") == 0 || std::strcmp(forced, "auto") == 0;
  const bool allow_avx2 = allow_avx512 || std::strcmp(forced, "avx2") == 0;
  __builtin_cpu_init();
  if (allow_avx512 && __builtin_cpu_supports("avx512f")) return linear_isa_avx512();
  if (allow_avx2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return linear_isa_avx2();
  return linear_isa_scalar();
}

void run(LinearColumns fn, int block, const float* x, const float* w, const float* b, float* y, std::int64_t M,
         std::int64_t K, std::int64_t N) {
  if (M <= 0 || N <= 0) return;
  const std::int64_t blocks = (N + block - 1) / block;
  // Enough work per task to amortise the fork (~64K multiply-adds).
  const std::int64_t grain = std::max<std::int64_t>(1, (1 << 16) / std::max<std::int64_t>(1, M * K * block));
  at::parallel_for(0, blocks, grain, [&](std::int64_t begin, std::int64_t end) {
    fn(x, w, b, y, M, K, N, begin * block, std::min(N, end * block));
  });
}

}  // namespace

const LinearIsa& chosen_isa() {
  static const LinearIsa chosen = choose();  // immutable after the first call
  return chosen;
}

void linear_nn_f32(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N) {
  run(chosen_isa().nn, chosen_isa().nn_block, x, w, b, y, M, K, N);
}

void linear_nt_f32(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N) {
  run(chosen_isa().nt, chosen_isa().nt_block, x, w, b, y, M, K, N);
}

const char* linear_f32_isa() { return chosen_isa().name; }

namespace {

// y = x · w + b in double, w[k][n] at w + k * k_stride + n * n_stride.
void linear_reference(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N,
                      std::int64_t k_stride, std::int64_t n_stride) {
  for (std::int64_t m = 0; m < M; ++m)
    for (std::int64_t n = 0; n < N; ++n) {
      double s = b ? b[n] : 0.0;
      for (std::int64_t k = 0; k < K; ++k) s += static_cast<double>(x[m * K + k]) * w[k * k_stride + n * n_stride];
      y[m * N + n] = static_cast<float>(s);
    }
}

}  // namespace

void linear_nn_f32_reference(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K,
                             std::int64_t N) {
  linear_reference(x, w, b, y, M, K, N, N, 1);  // w is (K, N)
}

void linear_nt_f32_reference(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K,
                             std::int64_t N) {
  linear_reference(x, w, b, y, M, K, N, 1, K);  // w is (N, K)
}

}  // namespace inkstream::kernels
