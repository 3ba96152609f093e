// Dispatch and threading for linear.h: the instruction set is picked once;
// output columns are split over libtorch's intra-op threads (each column is
// computed by one thread, so the split never changes a result).
#include "linear.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "bf16.h"
#include "linear_isa.h"

namespace inkstream::kernels {
namespace {

LinearIsa choose() {
  // INKSTREAM_KERNELS caps the instruction set: avx512bf16 (the default
  // top), avx512 (AVX-512F, bf16 widened to fp32), avx2, scalar.
  const char* forced = std::getenv("INKSTREAM_KERNELS");
  auto allows = [&](const char* level) {
    if (!forced || std::strcmp(forced, "auto") == 0) return true;
    for (const char* name : {"avx512bf16", "avx512", "avx2", "scalar"}) {
      if (std::strcmp(forced, name) == 0) return true;  // this and everything below it
      if (std::strcmp(level, name) == 0) return false;  // above the cap
    }
    return true;  // an unknown value caps nothing
  };
  __builtin_cpu_init();
  if (allows("avx512") && __builtin_cpu_supports("avx512f")) {
    LinearIsa isa = linear_isa_avx512();
    if (allows("avx512bf16") && __builtin_cpu_supports("avx512bf16")) {
      isa.nt_bf16 = linear_nt_bf16_avx512bf16();
      isa.nn_bf16 = linear_nn_bf16_avx512bf16();
      isa.bf16_name = "avx512bf16";
    }
    return isa;
  }
  if (allows("avx2") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
    return linear_isa_avx2();
  return linear_isa_scalar();
}

// WT: the weight argument (a pointer, F16Matrix or Q8Matrix).
template <class E, class WT, class Fn>
void run(Fn fn, int block, const E* x, WT w, const E* b, E* y, std::int64_t M, std::int64_t K, std::int64_t N) {
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

// Column split of the fp16 and int8 Conv1D-form products: a multiple of
// every ISA's tile width for them (64 int8 columns = one cache line per k).
constexpr int kCompressedColumnBlock = 64;

void linear_nn_f16(const float* x, F16Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N) {
  run(chosen_isa().nn_f16, kCompressedColumnBlock, x, w, b, y, M, K, N);
}

void linear_nt_f16(const float* x, F16Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N) {
  run(chosen_isa().nt_f16, chosen_isa().nt_block, x, w, b, y, M, K, N);
}

void linear_nn_q8(const float* x, Q8Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N) {
  run(chosen_isa().nn_q8, kCompressedColumnBlock, x, w, b, y, M, K, N);
}

void linear_nt_q8(const float* x, Q8Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N) {
  run(chosen_isa().nt_q8, chosen_isa().nt_block, x, w, b, y, M, K, N);
}

namespace {

// One block of n values `stride` apart -> q, and its scale.
float quantize_block(const float* w, std::int64_t stride, std::int64_t n, std::int8_t* q, std::int64_t q_stride) {
  float amax = 0.0f;
  for (std::int64_t i = 0; i < n; ++i) amax = std::max(amax, std::abs(w[i * stride]));
  const float scale = amax / 127.0f;
  const float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
  for (std::int64_t i = 0; i < n; ++i)
    q[i * q_stride] = static_cast<std::int8_t>(std::clamp(std::nearbyint(w[i * stride] * inv), -127.0f, 127.0f));
  return scale;
}

}  // namespace

void quantize_q8_nn(const float* w, std::int8_t* q, float* scales, std::int64_t K, std::int64_t N) {
  // Column n's block b: rows [32b, 32b + 32) of column n.
  at::parallel_for(0, q8_blocks(K), 1, [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t b = b0; b < b1; ++b) {
      const std::int64_t k0 = b * kQ8Block, n_k = std::min(kQ8Block, K - k0);
      for (std::int64_t n = 0; n < N; ++n) scales[b * N + n] = quantize_block(w + k0 * N + n, N, n_k, q + k0 * N + n, N);
    }
  });
}

void quantize_q8_nt(const float* w, std::int8_t* q, float* scales, std::int64_t N, std::int64_t K) {
  const std::int64_t blocks = q8_blocks(K);
  at::parallel_for(0, N, 64, [&](std::int64_t n0, std::int64_t n1) {
    for (std::int64_t n = n0; n < n1; ++n)
      for (std::int64_t b = 0; b < blocks; ++b) {
        const std::int64_t k0 = b * kQ8Block;
        scales[n * blocks + b] = quantize_block(w + n * K + k0, 1, std::min(kQ8Block, K - k0), q + n * K + k0, 1);
      }
  });
}

void dequantize_q8_nn(Q8Matrix w, float* out, std::int64_t K, std::int64_t N) {
  for (std::int64_t k = 0; k < K; ++k)
    for (std::int64_t n = 0; n < N; ++n) out[k * N + n] = static_cast<float>(w.q[k * N + n]) * w.scales[k / kQ8Block * N + n];
}

void dequantize_q8_nt(Q8Matrix w, float* out, std::int64_t N, std::int64_t K) {
  const std::int64_t blocks = q8_blocks(K);
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t k = 0; k < K; ++k) out[n * K + k] = static_cast<float>(w.q[n * K + k]) * w.scales[n * blocks + k / kQ8Block];
}

bool kernels_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("INKSTREAM_KERNELS");
    return !v || std::strcmp(v, "off") != 0;
  }();
  return enabled;
}

void linear_nt_bf16(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* b, std::uint16_t* y, std::int64_t M,
                    std::int64_t K, std::int64_t N) {
  run(chosen_isa().nt_bf16, chosen_isa().nt_block, x, w, b, y, M, K, N);
}

void linear_nn_bf16(const std::uint16_t* x, const std::uint32_t* w, const std::uint16_t* b, std::uint16_t* y, std::int64_t M,
                    std::int64_t K, std::int64_t N) {
  run(chosen_isa().nn_bf16, chosen_isa().nn_block, x, w, b, y, M, K, N);
}

void pack_bf16_pairs(const std::uint16_t* w, std::uint32_t* packed, std::int64_t K, std::int64_t N) {
  for (std::int64_t p = 0; p < (K + 1) / 2; ++p)
    for (std::int64_t n = 0; n < N; ++n) {
      const std::uint32_t lo = w[2 * p * N + n], hi = 2 * p + 1 < K ? w[(2 * p + 1) * N + n] : 0u;
      packed[p * N + n] = lo | hi << 16;
    }
}

const char* linear_bf16_isa() { return chosen_isa().bf16_name; }

namespace {

float as_float(float f) { return f; }
float as_float(std::uint16_t bits) { return bf16_to_float(bits); }
void store(float* y, double v) { *y = static_cast<float>(v); }
void store(std::uint16_t* y, double v) { *y = float_to_bf16(static_cast<float>(v)); }

// y = x · w + b in double, w[k][n] at w + k * k_stride + n * n_stride; E is
// float or bf16 bits (y then rounded once).
template <class E>
void linear_reference(const E* x, const E* w, const E* b, E* y, std::int64_t M, std::int64_t K, std::int64_t N,
                      std::int64_t k_stride, std::int64_t n_stride) {
  for (std::int64_t m = 0; m < M; ++m)
    for (std::int64_t n = 0; n < N; ++n) {
      double s = b ? as_float(b[n]) : 0.0;
      for (std::int64_t k = 0; k < K; ++k) s += static_cast<double>(as_float(x[m * K + k])) * as_float(w[k * k_stride + n * n_stride]);
      store(y + m * N + n, s);
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

void linear_nn_bf16_reference(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* b, std::uint16_t* y,
                              std::int64_t M, std::int64_t K, std::int64_t N) {
  linear_reference(x, w, b, y, M, K, N, N, 1);  // w is (K, N)
}

void linear_nt_bf16_reference(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* b, std::uint16_t* y,
                              std::int64_t M, std::int64_t K, std::int64_t N) {
  linear_reference(x, w, b, y, M, K, N, 1, K);  // w is (N, K)
}

}  // namespace inkstream::kernels
