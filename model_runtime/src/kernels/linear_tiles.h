#pragma once
// The tile loops of linear.h, written once over a vector type `T` and a
// weight source `S`, compiled once per instruction set (linear_avx512.cpp,
// linear_avx2.cpp, linear_scalar.cpp, each with its own compiler flags).
// Everything here has internal linkage so that the per-ISA copies never meet
// at link time.
#include <algorithm>
#include <cstdint>
#include <vector>

#include <c10/util/Half.h>

#include "linear.h"
#include "padded.h"
#include "prefetch_rows.h"
#include "row_blocks.h"

namespace inkstream::kernels {
namespace {

// Weight sources: element (r, c) of a row-major matrix with `ld` columns,
// loaded as W fp32 lanes from (r, c) on (load_partial: the first n, the rest
// zero): fp32, or fp16 widened exactly. row_to_f32 writes n elements of row
// r from column c as the tiles see them (packing). `ahead`: how many k rows
// ahead a decoding tile prefetches (0: none, for packed strips in cache;
// kPrefetchRows otherwise, see prefetch_rows.h).
struct F32Weights {
  using Element = float;
  const float* w;
  std::int64_t ld;
  std::int64_t ahead = 0;
  template <class T>
  typename T::V load(std::int64_t r, std::int64_t c) const { return T::load(w + r * ld + c); }
  template <class T>
  typename T::V load_partial(std::int64_t r, std::int64_t c, int n) const { return T::load_partial(w + r * ld + c, n); }
  void row_to_f32(std::int64_t r, std::int64_t c, std::int64_t n, float* out) const { std::copy_n(w + r * ld + c, n, out); }
  void prefetch(std::int64_t r, std::int64_t c) const { __builtin_prefetch(w + r * ld + c); }
  bool panels() const { return false; }
};

// fp16, row-major (row_stride = ld, panel_stride = kF16Panel: the address
// is then r * ld + c) or in panels (row_stride = kF16Panel, panel_stride =
// rows * kF16Panel); a vector load never crosses a panel (W divides it).
struct F16Weights {
  using Element = std::uint16_t;
  const std::uint16_t* w;
  std::int64_t row_stride, panel_stride;
  std::int64_t ahead = kPrefetchRows;
  const std::uint16_t* at(std::int64_t r, std::int64_t c) const {
    return w + c / kF16Panel * panel_stride + r * row_stride + c % kF16Panel;
  }
  template <class T>
  typename T::V load(std::int64_t r, std::int64_t c) const { return T::load_f16(at(r, c)); }
  template <class T>
  typename T::V load_partial(std::int64_t r, std::int64_t c, int n) const {
    return T::load_f16(Padded<std::uint16_t, T::W>(at(r, c), n).v);
  }
  void row_to_f32(std::int64_t r, std::int64_t c, std::int64_t n, float* out) const {
    for (std::int64_t i = 0; i < n;) {  // contiguous runs (a panel's row; any length row-major)
      const std::uint16_t* p = at(r, c + i);
      const std::int64_t run = std::min(n - i, kF16Panel - (c + i) % kF16Panel);
      for (std::int64_t j = 0; j < run; ++j) out[i + j] = c10::detail::fp16_ieee_to_fp32_value(p[j]);
      i += run;
    }
  }
  void prefetch(std::int64_t r, std::int64_t c) const { __builtin_prefetch(at(r, c)); }
  // Which order reads the matrix sequentially when packing strips.
  bool panels() const { return row_stride == kF16Panel; }
};

// The source over a whole (rows, ld) matrix of each weight type.
inline F32Weights weight_source(const float* w, std::int64_t ld, std::int64_t /*rows*/) { return {w, ld, kPrefetchRows}; }
inline F16Weights weight_source(F16Matrix w, std::int64_t ld, std::int64_t rows) {
  return w.panels ? F16Weights{w.bits, kF16Panel, rows * kF16Panel} : F16Weights{w.bits, ld, kF16Panel};
}

// One MR x (NV*T::W) block of y = x · w + b over the k in [0, K) of this
// call: weights (k, c0 + ...) of source `w` (see above); `x` rows are `ldx`
// apart. `cols` < the block width at the right edge. When k is split into
// several calls, the first starts from zero, the others continue from the
// partial sums stored in y, and the last adds b: the same operations per
// element as one call over all k.
template <class T, int MR, int NV, bool Full, class S>
void nn_tile(const float* x, std::int64_t ldx, std::int64_t K, const S& w, std::int64_t c0, const float* b, float* y,
             std::int64_t N, int cols, bool first, bool last) {
  using V = typename T::V;
  constexpr int W = T::W;
  int lanes[NV];
  for (int j = 0; j < NV; ++j) lanes[j] = std::clamp(cols - j * W, 0, W);
  V acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NV; ++j)
      acc[r][j] = first ? T::zero() : (Full ? T::load(y + r * N + j * W) : T::load_partial(y + r * N + j * W, lanes[j]));
  for (std::int64_t k = 0; k < K; ++k) {
    if (w.ahead > 0 && k + w.ahead < K)
      for (int j = 0; j < NV; ++j)  // each 64-byte line of the tile's row (AVX-512 rows span two)
        if (lanes[j] > 0 && j * W * sizeof(typename S::Element) % 64 == 0) w.prefetch(k + w.ahead, c0 + j * W);
    V wv[NV];
    for (int j = 0; j < NV; ++j) wv[j] = Full ? w.template load<T>(k, c0 + j * W) : w.template load_partial<T>(k, c0 + j * W, lanes[j]);
    for (int r = 0; r < MR; ++r) {
      const V xb = T::broadcast(x[r * ldx + k]);
      for (int j = 0; j < NV; ++j) acc[r][j] = T::fma(xb, wv[j], acc[r][j]);
    }
  }
  for (int j = 0; j < NV; ++j) {
    const V bias = last && b ? (Full ? T::load(b + j * W) : T::load_partial(b + j * W, lanes[j])) : T::zero();
    for (int r = 0; r < MR; ++r) {
      const V out = last ? T::add(acc[r][j], bias) : acc[r][j];
      if (Full) T::store(y + r * N + j * W, out);
      else if (lanes[j] > 0) T::store_partial(y + r * N + j * W, out, lanes[j]);
    }
  }
}

template <class T, int MR, int NV, class S>
void nn_rows(const float* x, std::int64_t ldx, std::int64_t K, const S& w, std::int64_t c0, const float* b, float* y,
             std::int64_t N, int cols, bool first, bool last) {
  if (cols == NV * T::W) nn_tile<T, MR, NV, true>(x, ldx, K, w, c0, b, y, N, cols, first, last);
  else nn_tile<T, MR, NV, false>(x, ldx, K, w, c0, b, y, N, cols, first, last);
}

// All M rows of one column block (row_blocks.h).
template <class T, int MR, int NV, class S>
void nn_block(const float* x, std::int64_t ldx, std::int64_t M, std::int64_t K, const S& w, std::int64_t c0, const float* b,
              float* y, std::int64_t N, int cols, bool first, bool last) {
  for_row_blocks<MR>(M, [&](std::int64_t m, auto rows) {
    nn_rows<T, decltype(rows)::value, NV>(x + m * ldx, ldx, K, w, c0, b, y + m * N, N, cols, first, last);
  });
}

// Columns [n_begin, n_end) of y = x · w + b for all M rows; w is (K, N) of
// fp32 or fp16 (weight_source).
// - Up to 64 rows (decoding steps, however many sequences share them): each
//   block of columns is read from memory once, by the first MR rows; the
//   next row blocks find it in L2 (K x BW weights: 96 KB in fp32 for GPT-2
//   small's 768 rows). Packing cost more than it saved here: 0.30 against
//   0.19 ms for c_attn at 24 rows.
// - More rows (prefill chunks): k is cut into blocks of KC rows; each block
//   of w's rows is first copied (widened to fp32) row by row, sequential
//   reads at full memory speed, into column strips, then every row block of
//   x runs over the strips from cache.
// Both give every element the same operations (see nn_tile; widening is
// exact), so the switch keeps results batch-invariant.
template <class T, int MR, int NV, class WT>
void nn_columns(const float* x, WT wm, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N,
                std::int64_t n_begin, std::int64_t n_end) {
  constexpr int BW = NV * T::W;
  const auto w = weight_source(wm, N, K);
  if (M <= 64) {
    for (std::int64_t n0 = n_begin; n0 < n_end; n0 += BW)
      nn_block<T, MR, NV>(x, K, M, K, w, n0, b ? b + n0 : nullptr, y + n0, N,
                          static_cast<int>(std::min<std::int64_t>(BW, n_end - n0)), true, true);
    return;
  }
  constexpr std::int64_t KC = 128;
  const std::int64_t ncols = n_end - n_begin, strips = (ncols + BW - 1) / BW;
  std::vector<float> packed(static_cast<std::size_t>(KC * strips * BW));
  for (std::int64_t k0 = 0; k0 < K; k0 += KC) {
    const std::int64_t kc = std::min(KC, K - k0);
    // Sequential reads: row by row (row-major), or panel by panel.
    auto pack = [&](std::int64_t kk, std::int64_t s) {
      w.row_to_f32(k0 + kk, n_begin + s * BW, std::min<std::int64_t>(BW, ncols - s * BW), packed.data() + (s * KC + kk) * BW);
    };
    if (w.panels())
      for (std::int64_t s = 0; s < strips; ++s)
        for (std::int64_t kk = 0; kk < kc; ++kk) pack(kk, s);
    else
      for (std::int64_t kk = 0; kk < kc; ++kk)
        for (std::int64_t s = 0; s < strips; ++s) pack(kk, s);
    for (std::int64_t s = 0; s < strips; ++s) {
      const std::int64_t n0 = n_begin + s * BW;
      nn_block<T, MR, NV>(x + k0, K, M, kc, F32Weights{packed.data() + s * KC * BW, BW}, 0, b ? b + n0 : nullptr, y + n0, N,
                          static_cast<int>(std::min<std::int64_t>(BW, n_end - n0)), k0 == 0, k0 + kc == K);
    }
  }
}

// MR rows of x against NR rows of w (N, K): y[r, j] = dot(x_r, w_j) + b[j].
// Each lane sums every W-th k in order; the lanes are then reduced in a
// fixed order.
template <class T, int MR, int NR, class S>
void nt_tile(const float* x, std::int64_t K, const S& w, const float* b, float* y, std::int64_t N, std::int64_t n0, int rows_w) {
  using V = typename T::V;
  constexpr int W = T::W;
  V acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) acc[r][j] = T::zero();
  const std::int64_t full_k = K / W * W;
  auto step = [&](std::int64_t k, int lanes) {
    // fp16 rows are 1.5 KB for GPT-2 small: too short a stream for the
    // hardware prefetchers to learn, four at a time (the fp16 lm_head read
    // 17.7 GB/s where fp32's 3 KB rows read 32), so the tile fetches the
    // rows of the tile after next, a 64-byte line at a time (4.4 -> 3.6 ms
    // for the fp16 lm_head at one row on an AVX2 Zen 2).
    if constexpr (sizeof(typename S::Element) == 2)
      if (k % (64 / sizeof(typename S::Element)) == 0)
        for (int j = 0; j < NR; ++j) w.prefetch(std::min<std::int64_t>(n0 + 2 * NR + j, N - 1), k);
    V xv[MR], wv[NR];
    for (int r = 0; r < MR; ++r) xv[r] = lanes == W ? T::load(x + r * K + k) : T::load_partial(x + r * K + k, lanes);
    for (int j = 0; j < NR; ++j) {
      const std::int64_t row = n0 + std::min(j, rows_w - 1);  // rows past the edge repeat the last one (not stored)
      wv[j] = lanes == W ? w.template load<T>(row, k) : w.template load_partial<T>(row, k, lanes);
    }
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < NR; ++j) acc[r][j] = T::fma(xv[r], wv[j], acc[r][j]);
  };
  for (std::int64_t k = 0; k < full_k; k += W) step(k, W);
  if (full_k < K) step(full_k, static_cast<int>(K - full_k));
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < rows_w; ++j) y[r * N + n0 + j] = T::reduce(acc[r][j]) + (b ? b[n0 + j] : 0.0f);
}

// Columns [n_begin, n_end) of y = x · wᵀ + b; w is (N, K) of any weight
// fp32 or fp16 (weight_source).
template <class T, int MR, int NR, class WT>
void nt_columns(const float* x, WT wm, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N,
                std::int64_t n_begin, std::int64_t n_end) {
  const auto w = weight_source(wm, K, N);
  for (std::int64_t n0 = n_begin; n0 < n_end; n0 += NR) {
    const int rows_w = static_cast<int>(std::min<std::int64_t>(NR, n_end - n0));
    for_row_blocks<MR>(M, [&](std::int64_t m, auto rows) {
      nt_tile<T, decltype(rows)::value, NR>(x + m * K, K, w, b, y + m * N, N, n0, rows_w);
    });
  }
}

}  // namespace
}  // namespace inkstream::kernels
