// Dispatch and threading for linear.h: the instruction set is picked once;
// output columns are split over libtorch's intra-op threads (each column is
// computed by one thread, so the split never changes a result).
#include "linear.h"

#include <ATen/Parallel.h>

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

const LinearIsa& isa() {
  static const LinearIsa chosen = choose();  // immutable after the first call
  return chosen;
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

void linear_nn_f32(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N) {
  run(isa().nn, isa().nn_block, x, w, b, y, M, K, N);
}

void linear_nt_f32(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N) {
  run(isa().nt, isa().nt_block, x, w, b, y, M, K, N);
}

const char* linear_f32_isa() { return isa().name; }

void linear_nn_f32_reference(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K,
                             std::int64_t N) {
  for (std::int64_t m = 0; m < M; ++m)
    for (std::int64_t n = 0; n < N; ++n) {
      double s = b ? b[n] : 0.0;
      for (std::int64_t k = 0; k < K; ++k) s += static_cast<double>(x[m * K + k]) * w[k * N + n];
      y[m * N + n] = static_cast<float>(s);
    }
}

void linear_nt_f32_reference(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K,
                             std::int64_t N) {
  for (std::int64_t m = 0; m < M; ++m)
    for (std::int64_t n = 0; n < N; ++n) {
      double s = b ? b[n] : 0.0;
      for (std::int64_t k = 0; k < K; ++k) s += static_cast<double>(x[m * K + k]) * w[n * K + k];
      y[m * N + n] = static_cast<float>(s);
    }
}

}  // namespace inkstream::kernels
