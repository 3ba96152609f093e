#pragma once
// The int8 product of linear.h (linear_q8), written once over an integer
// trait `I` and compiled per instruction set: AVX-512 VNNI
// (linear_avx512vnni.cpp), AVX2 (linear_avx2.cpp), scalar. Every output is
// computed the same way on all of them, so they agree bit for bit:
//   for each block b of 32 k: d = Σ_k xq[k] · q[k][n]          (exact, int32)
//                             acc = fma(float(d), sw[b][n] · sx[b], acc)
//   y = acc + bias
// with the row's activations quantized per block as the weights are
// (Q8Rows, quantize_rows in linear.cpp). Internal linkage, as the other tiles.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "linear_isa.h"
#include "prefetch_rows.h"
#include "row_blocks.h"

namespace inkstream::kernels {
namespace {

// One MR x (NV*I::W) block of y = x · w + b over all k, for columns c0 +
// [0, cols) of w (quads and scales of the whole matrix: each vector of W
// columns lies in one panel, and a block spans whole panels or lies in
// one, so each vector reads its own contiguous stream of quad rows and
// scales).
// The trait: I::IV (int32 lanes) and I::F, the instruction set's fp32
// vector trait (linear_tiles.h's T: its W lanes, loads, stores and
// arithmetic); load_quads(p) / load_quads_partial(p, n): W columns' quads;
// broadcast_x(x4): one row's 4 quantized activations as every lane's
// operand; dot(acc, w, x): acc + the 4 products of each lane (with `w`'s
// bytes offset by 128: see finish); finish(acc, offset): the exact dot
// product given the block's offset, 128 · its activation sum (VNNI
// multiplies unsigned weight bytes, so it subtracts the offset; AVX2 and
// scalar undo the +128 before multiplying and ignore it); to_float(acc):
// the lanes as fp32.
// One block's exact sums d of a row added to acc: the one scaling step of
// every int8 path (here and the AMX tiles' in linear_avx512vnni.cpp), so
// that a row's result is the same bits whichever path takes it. swv: the
// columns' weight scales of the block; xb: the row's block index in x.
template <class I>
inline typename I::F::V add_scaled_block(typename I::F::V acc, typename I::IV d, typename I::F::V swv, const Q8Rows& x,
                                         std::int64_t xb) {
  using F = typename I::F;
  const typename F::V scale = F::mul(swv, F::broadcast(x.scales[xb]));
  return F::fma(I::to_float(I::finish(d, x.offsets[xb])), scale, acc);
}

template <class I, int MR, int NV>
void q8_tile(const Q8Rows& x, std::int64_t K, const std::uint32_t* quads, const float* scales, const float* b, float* y,
             std::int64_t N, std::int64_t c0, int cols) {
  using F = typename I::F;
  constexpr int W = F::W;
  int lanes[NV];
  for (int j = 0; j < NV; ++j) lanes[j] = std::clamp(cols - j * W, 0, W);
  const bool full = cols == NV * W;
  typename F::V acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NV; ++j) acc[r][j] = F::zero();
  const std::int64_t blocks = q8_blocks(K), n_quads = q8_quads(K);
  const std::uint32_t* wq[NV];  // vector j's quad row 0 (quad rows kQ8Panel apart)
  std::int64_t ws[NV];          // vector j's scales of block 0 (blocks a panel width apart)
  std::int64_t ws_step[NV];
  for (int j = 0; j < NV; ++j) {
    const std::int64_t n = std::min(c0 + j * W, N - 1);  // a vector past the edge loads nothing
    wq[j] = quads + q8_quad_index(0, n, K);
    ws[j] = q8_scale_index(0, n, K, N);
    ws_step[j] = blocks > 1 ? q8_scale_index(1, n, K, N) - ws[j] : 0;
  }
  for (std::int64_t blk = 0; blk < blocks; ++blk) {
    typename I::IV dots[MR][NV];
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < NV; ++j) dots[r][j] = I::izero();
    const std::int64_t p_end = std::min(n_quads, (blk + 1) * (kQ8Block / 4));
    for (std::int64_t p = blk * (kQ8Block / 4); p < p_end; ++p) {
      typename I::WQ wv[NV];
      for (int j = 0; j < NV; ++j) {
        const std::uint32_t* row = wq[j] + p * kQ8Panel;
        __builtin_prefetch(row + kQ8PrefetchQuads * kQ8Panel);
        wv[j] = full ? I::load_quads(row) : I::load_quads_partial(row, lanes[j]);
      }
      for (int r = 0; r < MR; ++r) {
        const typename I::XQ xb = I::broadcast_x(x.q + r * x.ld + 4 * p);
        for (int j = 0; j < NV; ++j) dots[r][j] = I::dot(dots[r][j], wv[j], xb);
      }
    }
    for (int j = 0; j < NV; ++j) {
      const float* sw = scales + ws[j] + blk * ws_step[j];
      const typename F::V swv = full ? F::load(sw) : F::load_partial(sw, lanes[j]);
      for (int r = 0; r < MR; ++r) acc[r][j] = add_scaled_block<I>(acc[r][j], dots[r][j], swv, x, r * x.ld_blocks + blk);
    }
  }
  for (int j = 0; j < NV; ++j) {
    if (lanes[j] == 0) continue;
    const typename F::V bias = b ? (full ? F::load(b + c0 + j * W) : F::load_partial(b + c0 + j * W, lanes[j])) : F::zero();
    for (int r = 0; r < MR; ++r) {
      const typename F::V out = F::add(acc[r][j], bias);
      if (lanes[j] == W) F::store(y + r * N + c0 + j * W, out);
      else F::store_partial(y + r * N + c0 + j * W, out, lanes[j]);
    }
  }
}

// Columns [n_begin, n_end) of y = x · w + b for all M rows (x quantized by
// the caller; n_begin a multiple of the block width and of kQ8Panel). Each
// block of columns is read from memory once, by the first MR rows; the
// next row blocks find it in L1/L2.
template <class I, int MR, int NV>
void q8_columns(const Q8Rows& x, Q8Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N,
                std::int64_t n_begin, std::int64_t n_end) {
  constexpr int BW = NV * I::F::W;
  static_assert(kQ8Panel % I::F::W == 0, "a vector must not cross a panel");
  static_assert(kQ8Panel % BW == 0 || BW % kQ8Panel == 0, "a block spans whole panels or lies in one");
  for (std::int64_t n0 = n_begin; n0 < n_end; n0 += BW) {
    const int cols = static_cast<int>(std::min<std::int64_t>(BW, n_end - n0));
    for_row_blocks<MR>(M, [&](std::int64_t m, auto rows) {
      q8_tile<I, decltype(rows)::value, NV>(x.from_row(m), K, w.quads, w.scales, b, y + m * N, N, n0, cols);
    });
  }
}

}  // namespace
}  // namespace inkstream::kernels
