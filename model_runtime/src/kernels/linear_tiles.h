#pragma once
// The tile loops of linear.h, written once over a vector type `T` and
// compiled once per instruction set (linear_avx512.cpp, linear_avx2.cpp,
// linear_scalar.cpp, each with its own compiler flags). Everything here has
// internal linkage so that the per-ISA copies never meet at link time.
#include <algorithm>
#include <cstdint>
#include <vector>

namespace inkstream::kernels {
namespace {

// One MR x (NV*T::W) block of y = x · w + b. `w` points at the block's first
// column; consecutive k are `ldw` floats apart (N for the matrix itself, the
// block width for a packed strip). `cols` < the block width at the right edge.
template <class T, int MR, int NV, bool Full>
void nn_tile(const float* x, std::int64_t K, const float* w, std::int64_t ldw, const float* b, float* y, std::int64_t N, int cols) {
  using V = typename T::V;
  constexpr int W = T::W;
  V acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NV; ++j) acc[r][j] = T::zero();
  int lanes[NV];
  for (int j = 0; j < NV; ++j) lanes[j] = std::clamp(cols - j * W, 0, W);
  for (std::int64_t k = 0; k < K; ++k) {
    const float* wk = w + k * ldw;
    V wv[NV];
    for (int j = 0; j < NV; ++j) wv[j] = Full ? T::load(wk + j * W) : T::load_partial(wk + j * W, lanes[j]);
    for (int r = 0; r < MR; ++r) {
      const V xb = T::broadcast(x[r * K + k]);
      for (int j = 0; j < NV; ++j) acc[r][j] = T::fma(xb, wv[j], acc[r][j]);
    }
  }
  for (int j = 0; j < NV; ++j) {
    const V bias = b ? (Full ? T::load(b + j * W) : T::load_partial(b + j * W, lanes[j])) : T::zero();
    for (int r = 0; r < MR; ++r) {
      const V out = T::add(acc[r][j], bias);
      if (Full) T::store(y + r * N + j * W, out);
      else if (lanes[j] > 0) T::store_partial(y + r * N + j * W, out, lanes[j]);
    }
  }
}

template <class T, int MR, int NV>
void nn_rows(const float* x, std::int64_t K, const float* w, std::int64_t ldw, const float* b, float* y, std::int64_t N, int cols) {
  if (cols == NV * T::W) nn_tile<T, MR, NV, true>(x, K, w, ldw, b, y, N, cols);
  else nn_tile<T, MR, NV, false>(x, K, w, ldw, b, y, N, cols);
}

// Columns [n_begin, n_end) of y for all M rows, MR rows at a time. With more
// than one row block, each strip of w is first packed contiguously (read
// from memory once, then streamed from cache for every row block); the
// arithmetic is the same either way.
template <class T, int MR, int NV>
void nn_columns(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N,
                std::int64_t n_begin, std::int64_t n_end) {
  constexpr int BW = NV * T::W;
  std::vector<float> packed;
  if (M > MR) packed.resize(static_cast<std::size_t>(K) * BW);
  for (std::int64_t n0 = n_begin; n0 < n_end; n0 += BW) {
    const int cols = static_cast<int>(std::min<std::int64_t>(BW, n_end - n0));
    const float* strip = w + n0;
    std::int64_t ldw = N;
    if (M > MR) {
      for (std::int64_t k = 0; k < K; ++k) std::copy_n(w + k * N + n0, cols, packed.data() + k * BW);
      strip = packed.data();
      ldw = BW;
    }
    const float* bias = b ? b + n0 : nullptr;
    std::int64_t m = 0;
    for (; m + MR <= M; m += MR) nn_rows<T, MR, NV>(x + m * K, K, strip, ldw, bias, y + m * N + n0, N, cols);
    // The last rows: the same tile code with fewer rows (same per-element operations).
    const float* xr = x + m * K;
    float* yr = y + m * N + n0;
    switch (M - m) {
      case 0: break;
#define INKSTREAM_NN_TAIL(R) \
  case R: if constexpr (R < MR) nn_rows<T, R, NV>(xr, K, strip, ldw, bias, yr, N, cols); break;
      INKSTREAM_NN_TAIL(1) INKSTREAM_NN_TAIL(2) INKSTREAM_NN_TAIL(3) INKSTREAM_NN_TAIL(4)
      INKSTREAM_NN_TAIL(5) INKSTREAM_NN_TAIL(6) INKSTREAM_NN_TAIL(7)
#undef INKSTREAM_NN_TAIL
      default: break;
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
    std::int64_t m = 0;
    for (; m + MR <= M; m += MR) nt_tile<T, MR, NR>(x + m * K, K, w, b, y + m * N, N, n0, rows_w);
    const float* xr = x + m * K;
    float* yr = y + m * N;
    switch (M - m) {
      case 0: break;
#define INKSTREAM_NT_TAIL(R) \
  case R: if constexpr (R < MR) nt_tile<T, R, NR>(xr, K, w, b, yr, N, n0, rows_w); break;
      INKSTREAM_NT_TAIL(1) INKSTREAM_NT_TAIL(2) INKSTREAM_NT_TAIL(3) INKSTREAM_NT_TAIL(4)
      INKSTREAM_NT_TAIL(5) INKSTREAM_NT_TAIL(6) INKSTREAM_NT_TAIL(7)
#undef INKSTREAM_NT_TAIL
      default: break;
    }
  }
}

}  // namespace
}  // namespace inkstream::kernels
