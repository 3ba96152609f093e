#pragma once
// The tile loops of linear.h, written once over a vector type `T` and
// compiled once per instruction set (linear_avx512.cpp, linear_avx2.cpp,
// linear_scalar.cpp, each with its own compiler flags). Everything here has
// internal linkage so that the per-ISA copies never meet at link time.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "row_blocks.h"

namespace inkstream::kernels {
namespace {

// One MR x (NV*T::W) block of y = x · w + b over the k in [0, K) of this
// call. `w` points at the block's first column; consecutive k are `ldw`
// floats apart (N for the matrix itself, the block width for a packed
// strip); `x` rows are `ldx` apart. `cols` < the block width at the right
// edge. When k is split into several calls, the first starts from zero, the
// others continue from the partial sums stored in y, and the last adds b:
// the same operations per element as one call over all k.
template <class T, int MR, int NV, bool Full>
void nn_tile(const float* x, std::int64_t ldx, std::int64_t K, const float* w, std::int64_t ldw, const float* b, float* y,
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
    const float* wk = w + k * ldw;
    V wv[NV];
    for (int j = 0; j < NV; ++j) wv[j] = Full ? T::load(wk + j * W) : T::load_partial(wk + j * W, lanes[j]);
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

template <class T, int MR, int NV>
void nn_rows(const float* x, std::int64_t ldx, std::int64_t K, const float* w, std::int64_t ldw, const float* b, float* y,
             std::int64_t N, int cols, bool first, bool last) {
  if (cols == NV * T::W) nn_tile<T, MR, NV, true>(x, ldx, K, w, ldw, b, y, N, cols, first, last);
  else nn_tile<T, MR, NV, false>(x, ldx, K, w, ldw, b, y, N, cols, first, last);
}

// All M rows of one column block (row_blocks.h).
template <class T, int MR, int NV>
void nn_block(const float* x, std::int64_t ldx, std::int64_t M, std::int64_t K, const float* w, std::int64_t ldw, const float* b,
              float* y, std::int64_t N, int cols, bool first, bool last) {
  for_row_blocks<MR>(M, [&](std::int64_t m, auto rows) {
    nn_rows<T, decltype(rows)::value, NV>(x + m * ldx, ldx, K, w, ldw, b, y + m * N, N, cols, first, last);
  });
}

// Columns [n_begin, n_end) of y for all M rows.
// - Up to 64 rows (decoding steps, however many sequences share them): each
//   block of columns is read from memory once, by the first MR rows; the
//   next row blocks find it in L2 (K x BW floats: 96 KB for GPT-2 small's
//   768 rows). Packing cost more than it saved here: 0.30 against 0.19 ms
//   for c_attn at 24 rows.
// - More rows (prefill chunks): k is cut into blocks of KC rows; each block
//   of w's rows is first copied row by row (sequential reads at full memory
//   speed) into column strips, then every row block of x runs over the
//   strips from cache.
// Both give every element the same operations (see nn_tile), so the switch
// keeps results batch-invariant.
template <class T, int MR, int NV>
void nn_columns(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N,
                std::int64_t n_begin, std::int64_t n_end) {
  constexpr int BW = NV * T::W;
  if (M <= 64) {
    for (std::int64_t n0 = n_begin; n0 < n_end; n0 += BW)
      nn_block<T, MR, NV>(x, K, M, K, w + n0, N, b ? b + n0 : nullptr, y + n0, N,
                          static_cast<int>(std::min<std::int64_t>(BW, n_end - n0)), true, true);
    return;
  }
  constexpr std::int64_t KC = 128;
  const std::int64_t ncols = n_end - n_begin, strips = (ncols + BW - 1) / BW;
  std::vector<float> packed(static_cast<std::size_t>(KC * strips * BW));
  for (std::int64_t k0 = 0; k0 < K; k0 += KC) {
    const std::int64_t kc = std::min(KC, K - k0);
    for (std::int64_t kk = 0; kk < kc; ++kk) {
      const float* row = w + (k0 + kk) * N + n_begin;
      for (std::int64_t s = 0; s < strips; ++s)
        std::copy_n(row + s * BW, std::min<std::int64_t>(BW, ncols - s * BW), packed.data() + (s * KC + kk) * BW);
    }
    for (std::int64_t s = 0; s < strips; ++s) {
      const std::int64_t n0 = n_begin + s * BW;
      nn_block<T, MR, NV>(x + k0, K, M, kc, packed.data() + s * KC * BW, BW, b ? b + n0 : nullptr, y + n0, N,
                          static_cast<int>(std::min<std::int64_t>(BW, n_end - n0)), k0 == 0, k0 + kc == K);
    }
  }
}

// MR rows of x against NR rows of w (N, K): y[r, j] = dot(x_r, w_j) + b[j].
// Each lane sums every W-th k in order; the lanes are then reduced in a
// fixed order.
template <class T, int MR, int NR>
void nt_tile(const float* x, std::int64_t K, const float* w, const float* b, float* y, std::int64_t N, std::int64_t n0, int rows_w) {
  using V = typename T::V;
  constexpr int W = T::W;
  V acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) acc[r][j] = T::zero();
  const std::int64_t full_k = K / W * W;
  auto step = [&](std::int64_t k, int lanes) {
    V xv[MR], wv[NR];
    for (int r = 0; r < MR; ++r) xv[r] = lanes == W ? T::load(x + r * K + k) : T::load_partial(x + r * K + k, lanes);
    for (int j = 0; j < NR; ++j) {
      const float* wj = w + (n0 + std::min(j, rows_w - 1)) * K + k;  // rows past the edge repeat the last one (not stored)
      wv[j] = lanes == W ? T::load(wj) : T::load_partial(wj, lanes);
    }
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < NR; ++j) acc[r][j] = T::fma(xv[r], wv[j], acc[r][j]);
  };
  for (std::int64_t k = 0; k < full_k; k += W) step(k, W);
  if (full_k < K) step(full_k, static_cast<int>(K - full_k));
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < rows_w; ++j) y[r * N + n0 + j] = T::reduce(acc[r][j]) + (b ? b[n0 + j] : 0.0f);
}

template <class T, int MR, int NR>
void nt_columns(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N,
                std::int64_t n_begin, std::int64_t n_end) {
  for (std::int64_t n0 = n_begin; n0 < n_end; n0 += NR) {
    const int rows_w = static_cast<int>(std::min<std::int64_t>(NR, n_end - n0));
    for_row_blocks<MR>(M, [&](std::int64_t m, auto rows) {
      nt_tile<T, decltype(rows)::value, NR>(x + m * K, K, w, b, y + m * N, N, n0, rows_w);
    });
  }
}

}  // namespace
}  // namespace inkstream::kernels
