// Dispatch and threading for linear.h: the instruction set is picked once;
// output columns are split over libtorch's intra-op threads (each column is
// computed by one thread, so the split never changes a result).
#include "linear.h"

#include <ATen/Parallel.h>
#include <asm/prctl.h>
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "bf16.h"
#include "attention.h"
#include "linear_isa.h"

namespace inkstream::kernels {
namespace {

LinearIsa choose() {
  // INKSTREAM_KERNELS caps the instruction set: amx (the default top: int8
  // products of 16 rows and more in AMX tiles), avx512bf16, avx512
  // (AVX-512F, bf16 widened to fp32), avx2, scalar.
  const char* forced = std::getenv("INKSTREAM_KERNELS");
  auto allows = [&](const char* level) {
    if (!forced || std::strcmp(forced, "auto") == 0) return true;
    for (const char* name : {"amx", "avx512bf16", "avx512", "avx2", "scalar"}) {
      if (std::strcmp(forced, name) == 0) return true;  // this and everything below it
      if (std::strcmp(level, name) == 0) return false;  // above the cap
    }
    return true;  // an unknown value caps nothing
  };
  __builtin_cpu_init();
  if (allows("avx512") && __builtin_cpu_supports("avx512f")) {
    LinearIsa isa = linear_isa_avx512();
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw")) {
      isa.q8 = linear_q8_avx512vnni();
      isa.q8_name = "avx512vnni";
      if (allows("amx") && amx_int8_usable()) {
        isa.q8 = linear_q8_amx();
        isa.q8_name = "amx-int8";
      }
    }
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

// X: the activations (a pointer, or Q8Rows); WT: the weights (a pointer,
// F16Matrix or Q8Matrix).
template <class X, class WT, class E, class Fn>
void run(Fn fn, int block, const X& x, WT w, const E* b, E* y, std::int64_t M, std::int64_t K, std::int64_t N) {
  if (M <= 0 || N <= 0) return;
  const std::int64_t blocks = (N + block - 1) / block;
  // Enough work per task to amortise the fork (~64K multiply-adds).
  const std::int64_t grain = std::max<std::int64_t>(1, (1 << 16) / std::max<std::int64_t>(1, M * K * block));
  at::parallel_for(0, blocks, grain, [&](std::int64_t begin, std::int64_t end) {
    fn(x, w, b, y, M, K, N, begin * block, std::min(N, end * block));
  });
}

}  // namespace

namespace {
// XSAVE state components of AMX (the Linux kernel's XFEATURE_ numbers).
constexpr int kXfeatureTileConfig = 17, kXfeatureTileData = 18;
}  // namespace

bool request_amx_tile_state() { return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, kXfeatureTileData) == 0; }

bool amx_int8_usable() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return false;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & bit_AMX_TILE) || !(d & bit_AMX_INT8)) return false;
  unsigned xcr0_low, xcr0_high;
  __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
  constexpr unsigned kTileState = (1u << kXfeatureTileConfig) | (1u << kXfeatureTileData);
  if ((xcr0_low & kTileState) != kTileState) return false;  // the kernel does not save tiles
  unsigned long permitted = 0;
  if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &permitted) != 0) return false;
  return permitted & (1ul << kXfeatureTileData);
}

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

// Column split of the fp16 and int8 products: a multiple of every ISA's
// tile width for them, and the int8 panel width.
constexpr int kCompressedColumnBlock = 64;
static_assert(kCompressedColumnBlock % kQ8Panel == 0, "int8 columns are split at panels");

static_assert(kCompressedColumnBlock % kF16Panel == 0, "fp16 columns are split at panels");

void linear_nn_f16(const float* x, F16Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N) {
  if (w.panels && N % kF16Panel != 0) throw std::invalid_argument("fp16 panels need a multiple of " + std::to_string(kF16Panel) + " columns");
  run(chosen_isa().nn_f16, kCompressedColumnBlock, x, w, b, y, M, K, N);
}

void linear_nt_f16(const float* x, F16Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N) {
  if (w.panels) throw std::invalid_argument("fp16 panels are for x · w products (nn)");
  run(chosen_isa().nt_f16, chosen_isa().nt_block, x, w, b, y, M, K, N);
}

namespace {

// Rounds to nearest even for |v| < 2^22 (adding 1.5 · 2^23 leaves no
// fraction bits): plain arithmetic the compiler vectorizes, where nearbyint
// was a library call per element (this file has no -ffast-math to fold it).
inline float round_nearest(float v) {
  constexpr float kMagic = 12582912.0f;
  return (v + kMagic) - kMagic;
}

// One block of n values `stride` apart -> q[i * q_stride], returns the
// scale (max |v| / 127). The weights and the activations are both
// quantized here. An all-zero block, or one so small that 127 / max
// overflows (|v| < ~4e-37), gets scale 0 and zeros; a block holding a NaN
// gets a NaN scale (its products are NaN, as fp32's would be) and an
// infinite one an infinite scale (NaN products too), with zeros for q:
// never an undefined float-to-int conversion.
float quantize_block(const float* v, std::int64_t stride, std::int64_t n, std::int8_t* q, std::int64_t q_stride) {
  if (n == kQ8Block && stride == 1 && q_stride == 1) {
    // A whole contiguous block (every weight block of GPT-2, every
    // activation block) with a finite, usable maximum: the same numbers as
    // the loops below, in forms the compiler vectorizes (they were most of
    // an int8 load's quantizing). |v| compared as bits: for non-negative
    // floats the order of the bits is the order of the values, and a NaN's
    // bits exceed infinity's.
    std::uint32_t top = 0;
    for (int i = 0; i < kQ8Block; ++i) {
      const std::uint32_t a = std::bit_cast<std::uint32_t>(v[i]) & 0x7fffffffu;
      top = a > top ? a : top;
    }
    const float amax = std::bit_cast<float>(top);
    const float inv = 127.0f / amax;
    if (q8_block_usable(top, inv)) {
      for (int i = 0; i < kQ8Block; ++i) {
        float r = round_nearest(v[i] * inv);  // finite: |v| <= amax
        r = r < -127.0f ? -127.0f : r;
        r = r > 127.0f ? 127.0f : r;
        q[i] = static_cast<std::int8_t>(r);
      }
      return amax / 127.0f;
    }
  }
  float amax = 0.0f;
  bool nan = false;
  for (std::int64_t i = 0; i < n; ++i) {
    const float a = std::abs(v[i * stride]);
    nan |= a != a;
    amax = a > amax ? a : amax;
  }
  const float inv = 127.0f / amax;  // inf for an all-zero block; 0 for an infinite one (q 0, scale inf)
  const bool usable = !nan && amax > 0.0f && inv <= std::numeric_limits<float>::max();
  for (std::int64_t i = 0; i < n; ++i) {
    const float r = usable ? round_nearest(v[i * stride] * inv) : 0.0f;
    q[i * q_stride] = static_cast<std::int8_t>(r == r ? std::clamp(r, -127.0f, 127.0f) : 0.0f);
  }
  if (nan) return std::numeric_limits<float>::quiet_NaN();
  return usable ? amax / 127.0f : 0.0f;
}

// x (M, K) by blocks: the kernels' Q8Rows.
struct QuantizedRows {
  std::vector<std::int8_t> q;
  std::vector<float> scales;
  std::vector<std::int32_t> offsets;
  Q8Rows rows;
};
QuantizedRows quantize_rows(const float* x, std::int64_t M, std::int64_t K) {
  const std::int64_t blocks = q8_blocks(K), ld = blocks * kQ8Block;
  QuantizedRows out{std::vector<std::int8_t>(static_cast<std::size_t>(M * ld)), std::vector<float>(static_cast<std::size_t>(M * blocks)),
                    std::vector<std::int32_t>(static_cast<std::size_t>(M * blocks)), {}};
  // Rows in parallel once there are enough (a prompt chunk: 256 x 3072
  // values took 4% of a server's time on one thread; 16 decoding rows of
  // 768, alone on one thread, were 2% of a step while the other waited).
  const std::int64_t grain = std::max<std::int64_t>(1, (1 << 12) / std::max<std::int64_t>(1, K));
  at::parallel_for(0, M, grain, [&](std::int64_t m0, std::int64_t m1) {
    quantize_q8_rows_with(chosen_isa().quantize_q8, x + m0 * K, m1 - m0, K, out.q.data() + m0 * ld, out.scales.data() + m0 * blocks,
                          out.offsets.data() + m0 * blocks);
  });
  out.rows = {out.q.data(), out.scales.data(), out.offsets.data(), ld, blocks};
  return out;
}

// Element (k, n) of an int8 matrix as the kernels multiply by it.
float q8_value(Q8Matrix w, std::int64_t k, std::int64_t n, std::int64_t K, std::int64_t N) {
  const auto byte = static_cast<std::uint8_t>(w.quads[q8_quad_index(k / 4, n, K)] >> (8 * (k % 4)));
  return static_cast<float>(static_cast<int>(byte) - 128) * w.scales[q8_scale_index(k / kQ8Block, n, K, N)];
}

}  // namespace

void linear_q8(const float* x, Q8Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N) {
  linear_q8_with(chosen_isa().q8, x, w, b, y, M, K, N);
}

void quantize_q8_rows_with(QuantizeQ8Blocks fn, const float* x, std::int64_t M, std::int64_t K, std::int8_t* q, float* scales,
                           std::int32_t* offsets) {
  const std::int64_t blocks = q8_blocks(K), whole = K / kQ8Block;
  for (std::int64_t m = 0; m < M; ++m) {
    const float* row = x + m * K;
    std::int8_t* qm = q + m * blocks * kQ8Block;
    float* sm = scales + m * blocks;
    std::int32_t* om = offsets + m * blocks;
    for (std::int64_t b = 0; b < blocks; ++b) {
      // Whole blocks in vectors; the rest (a last partial block, or one
      // whose maximum is zero, tiny or not finite) block by block here.
      if (fn && b < whole) b += fn(row + b * kQ8Block, whole - b, qm + b * kQ8Block, sm + b, om + b);
      if (b == blocks) break;
      const std::int64_t k0 = b * kQ8Block, n = std::min(kQ8Block, K - k0);
      sm[b] = quantize_block(row + k0, 1, n, qm + k0, 1);
      std::int32_t sum = 0;
      for (std::int64_t i = 0; i < n; ++i) sum += qm[k0 + i];
      om[b] = 128 * sum;  // |sum| <= 32 * 127: no overflow
    }
  }
}

void quantize_kv(const float* x, std::int64_t count, std::int64_t D, std::int8_t* q, float* scales) {
  for (std::int64_t i = 0; i < count; ++i) scales[i] = quantize_block(x + i * D, 1, D, q + i * D, 1);
}

void linear_q8_with(LinearColumnsQ8 fn, const float* x, Q8Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K,
                    std::int64_t N) {
  if (M <= 0 || N <= 0) return;
  const QuantizedRows xq = quantize_rows(x, M, K);
  run(fn, kCompressedColumnBlock, xq.rows, w, b, y, M, K, N);
}

const char* linear_q8_isa() { return chosen_isa().q8_name; }

namespace {

// An element of w as fp32 (bf16 widens exactly).
inline float widen(float v) { return v; }
inline float widen(std::uint16_t bf16) { return bf16_to_float(bf16); }

template <class E>
void quantize_q8_from(const E* w, std::int64_t k_stride, std::int64_t n_stride, std::uint32_t* quads, float* scales, std::int64_t K,
                      std::int64_t N) {
  const std::int64_t blocks = q8_blocks(K);
  std::fill(quads, quads + q8_quads_size(K, N), 0x80808080u);  // the padding columns: zeros
  // Eight panels at a time, block by block, through a gathered (32 x 128)
  // tile: read along whichever of k and n is contiguous in w, each row of
  // the tile 128 contiguous values (column by column, a (K, N) matrix was
  // read a cache line per element, from a page per row: GPT-2 small's int8
  // load took 1.1-1.35 s on a 2-core Emerald Rapids, over the 1 s).
  // Each column's block is then quantized as before: the same bits.
  constexpr std::int64_t kGroup = 8 * kQ8Panel;
  at::parallel_for(0, (N + kGroup - 1) / kGroup, 1, [&](std::int64_t g0, std::int64_t g1) {
    std::vector<float> tile(kGroup * kQ8Block);  // column j's block at tile[j * kQ8Block]
    std::int8_t q[kQ8Block];
    for (std::int64_t g = g0; g < g1; ++g) {
      const std::int64_t n0 = g * kGroup, cols = std::min(kGroup, N - n0);
      for (std::int64_t b = 0; b < blocks; ++b) {
        const std::int64_t k0 = b * kQ8Block, count = std::min(kQ8Block, K - k0);
        if (n_stride == 1)
          for (std::int64_t i = 0; i < count; ++i) {
            const E* row = w + (k0 + i) * k_stride + n0;
            for (std::int64_t j = 0; j < cols; ++j) tile[j * kQ8Block + i] = widen(row[j]);
          }
        else
          for (std::int64_t j = 0; j < cols; ++j)
            for (std::int64_t i = 0; i < count; ++i) tile[j * kQ8Block + i] = widen(w[(k0 + i) * k_stride + (n0 + j) * n_stride]);
        for (std::int64_t j = 0; j < cols; ++j) {
          const std::int64_t n = n0 + j;
          std::fill(q, q + kQ8Block, 0);
          scales[q8_scale_index(b, n, K, N)] = quantize_block(tile.data() + j * kQ8Block, 1, count, q, 1);
          std::uint32_t* out = quads + q8_quad_index(k0 / 4, n, K);  // quads p of a column lie kQ8Panel apart
          for (std::int64_t p = 0; p < kQ8Block / 4 && k0 + 4 * p < K; ++p) {
            std::uint32_t quad = 0;
            for (int i = 0; i < 4; ++i) quad |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(q[4 * p + i] + 128)) << (8 * i);
            out[p * kQ8Panel] = quad;
          }
        }
      }
    }
  });
}

}  // namespace

void quantize_q8(const float* w, std::int64_t k_stride, std::int64_t n_stride, std::uint32_t* quads, float* scales, std::int64_t K,
                 std::int64_t N) {
  quantize_q8_from(w, k_stride, n_stride, quads, scales, K, N);
}

void quantize_q8_bf16(const std::uint16_t* w, std::int64_t k_stride, std::int64_t n_stride, std::uint32_t* quads, float* scales,
                      std::int64_t K, std::int64_t N) {
  quantize_q8_from(w, k_stride, n_stride, quads, scales, K, N);
}

// Column by column, straight from w: the reference for quantize_q8.
void quantize_q8_reference(const float* w, std::int64_t k_stride, std::int64_t n_stride, std::uint32_t* quads, float* scales,
                           std::int64_t K, std::int64_t N) {
  const std::int64_t blocks = q8_blocks(K);
  std::fill(quads, quads + q8_quads_size(K, N), 0x80808080u);  // the padding columns: zeros
  at::parallel_for(0, N, 256, [&](std::int64_t n0, std::int64_t n1) {
    std::int8_t q[kQ8Block];
    for (std::int64_t n = n0; n < n1; ++n)
      for (std::int64_t b = 0; b < blocks; ++b) {
        const std::int64_t k0 = b * kQ8Block, count = std::min(kQ8Block, K - k0);
        std::fill(q, q + kQ8Block, 0);
        scales[q8_scale_index(b, n, K, N)] = quantize_block(w + k0 * k_stride + n * n_stride, k_stride, count, q, 1);
        for (std::int64_t p = 0; p < kQ8Block / 4 && k0 + 4 * p < K; ++p) {
          std::uint32_t quad = 0;
          for (int i = 0; i < 4; ++i) quad |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(q[4 * p + i] + 128)) << (8 * i);
          quads[q8_quad_index(k0 / 4 + p, n, K)] = quad;
        }
      }
  });
}

void dequantize_q8_column(Q8Matrix w, std::int64_t n, float* out, std::int64_t K, std::int64_t N) {
  for (std::int64_t k = 0; k < K; ++k) out[k] = q8_value(w, k, n, K, N);
}

void dequantize_q8(Q8Matrix w, float* out, std::int64_t K, std::int64_t N) {
  for (std::int64_t k = 0; k < K; ++k)
    for (std::int64_t n = 0; n < N; ++n) out[k * N + n] = q8_value(w, k, n, K, N);
}

void linear_q8_reference(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N) {
  const QuantizedRows xq = quantize_rows(x, M, K);
  for (std::int64_t m = 0; m < M; ++m)
    for (std::int64_t n = 0; n < N; ++n) {
      double s = b ? b[n] : 0.0;
      for (std::int64_t k = 0; k < K; ++k)
        s += static_cast<double>(xq.q[m * xq.rows.ld + k]) * xq.scales[m * xq.rows.ld_blocks + k / kQ8Block] * w[k * N + n];
      y[m * N + n] = static_cast<float>(s);
    }
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
      packed[bf16_pair_index(p, n, K, N)] = lo | hi << 16;
    }
}

void unpack_bf16_pairs(const std::uint32_t* packed, std::uint16_t* w, std::int64_t K, std::int64_t N) {
  // Once per long bf16 prompt chunk on libtorch's path: split over panels.
  const std::int64_t pairs = K / 2, panels = (N + kBf16Panel - 1) / kBf16Panel;
  at::parallel_for(0, panels, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t panel = begin; panel < end; ++panel) {
      const std::int64_t first = panel * kBf16Panel, width = panel_width(first, N, kBf16Panel);
      const std::uint32_t* src = packed + bf16_pair_index(0, first, K, N);
      for (std::int64_t p = 0; p < pairs; ++p)
        for (std::int64_t n = 0; n < width; ++n) {
          const std::uint32_t v = src[p * width + n];
          w[2 * p * N + first + n] = static_cast<std::uint16_t>(v);
          w[(2 * p + 1) * N + first + n] = static_cast<std::uint16_t>(v >> 16);
        }
    }
  });
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
