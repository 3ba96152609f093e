#pragma once
// The bf16 products of linear.h (all bf16, fp32 sums), written once over a
// trait and compiled per instruction set beside linear_tiles.h. x · wᵀ
// (nt_bf16_*): the trait `B` says how many k one step takes (B::KS), how to
// load them (B::load: bf16 pairs for AVX-512 BF16's dot-product
// instruction, or bf16 widened to fp32 lanes elsewhere) and how to
// multiply-add them into fp32 lanes (B::madd). x · w with k-pair-packed w
// (nn_bf16_*): see there. Internal linkage, as there.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "bf16.h"
#include "linear.h"
#include "padded.h"
#include "prefetch_rows.h"
#include "row_blocks.h"

namespace inkstream::kernels {
namespace {

// KS bf16 values from p, of which the first n are real (the rest zero).
template <class B>
typename B::L load_bf16_partial(const std::uint16_t* p, int n) {
  return B::load(Padded<std::uint16_t, B::KS>(p, n).v);
}

// MR rows of x against NR rows of w (N, K): y[r, j] = dot(x_r, w_j) + b[j].
// Every lane sums its share of k in order, then a fixed reduction, + b, and
// one rounding to bf16: the same operations whatever M or the tile.
template <class B, int MR, int NR>
void nt_bf16_tile(const std::uint16_t* x, std::int64_t K, const std::uint16_t* w, const std::uint16_t* b, std::uint16_t* y,
                  std::int64_t N, std::int64_t n0, int rows_w) {
  typename B::Acc acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) acc[r][j] = B::zero();
  const std::int64_t full_k = K / B::KS * B::KS;
  auto step = [&](std::int64_t k, int n) {
    // The rows of the tile after next, a 64-byte line at a time (the tied
    // lm_head's 1.5 KB rows, as the fp16 nt tile does in linear_tiles.h).
    if (k % (64 / sizeof(std::uint16_t)) == 0)
      for (int j = 0; j < NR; ++j) __builtin_prefetch(w + std::min<std::int64_t>(n0 + 2 * NR + j, N - 1) * K + k);
    typename B::L xv[MR], wv[NR];
    for (int r = 0; r < MR; ++r) xv[r] = n == B::KS ? B::load(x + r * K + k) : load_bf16_partial<B>(x + r * K + k, n);
    for (int j = 0; j < NR; ++j) {
      const std::uint16_t* wj = w + (n0 + std::min(j, rows_w - 1)) * K + k;  // rows past the edge repeat the last one
      wv[j] = n == B::KS ? B::load(wj) : load_bf16_partial<B>(wj, n);
    }
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < NR; ++j) acc[r][j] = B::madd(acc[r][j], xv[r], wv[j]);
  };
  for (std::int64_t k = 0; k < full_k; k += B::KS) step(k, B::KS);
  if (full_k < K) step(full_k, static_cast<int>(K - full_k));
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < rows_w; ++j)
      y[r * N + n0 + j] = float_to_bf16(B::reduce(acc[r][j]) + (b ? bf16_to_float(b[n0 + j]) : 0.0f));
}

// Columns [n_begin, n_end) of y for all M rows.
template <class B, int MR, int NR>
void nt_bf16_columns(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* b, std::uint16_t* y, std::int64_t M,
                     std::int64_t K, std::int64_t N, std::int64_t n_begin, std::int64_t n_end) {
  for (std::int64_t n0 = n_begin; n0 < n_end; n0 += NR) {
    const int rows_w = static_cast<int>(std::min<std::int64_t>(NR, n_end - n0));
    for_row_blocks<MR>(M, [&](std::int64_t m, auto rows) {
      nt_bf16_tile<B, decltype(rows)::value, NR>(x + m * K, K, w, b, y + m * N, N, n0, rows_w);
    });
  }
}

// The widening trait over an fp32 vector trait T (AVX-512F, AVX2, scalar):
// bf16 -> fp32 lanes (exact), then fused multiply-adds.
template <class T>
struct WidenedBf16 {
  using Acc = typename T::V;
  using L = typename T::V;
  static constexpr int KS = T::W;
  static Acc zero() { return T::zero(); }
  static L load(const std::uint16_t* p) { return T::load_bf16(p); }
  static Acc madd(Acc acc, L a, L b) { return T::fma(a, b, acc); }
  static float reduce(Acc v) { return T::reduce(v); }
};

// y = x · w + b for bf16 with w packed in k pairs (pack_bf16_pairs in
// linear.h: element (p, n) holds w[2p][n] in its low half and w[2p+1][n] in
// its high half): one MR x (NV*B::W) block over all k. The pair trait `B`
// (WidenedPairs here, Avx512Bf16Pairs in linear_avx512bf16.cpp) loads W
// columns' pairs, broadcasts a pair of x and multiply-adds one into the
// other. Every output is: zero, then for each pair in order the pair's
// products added into its lane, + b, one rounding: the same whatever M or
// the tile.
// w is the tile's first column in its panel, pair rows ldw apart (the
// panel's width, linear.h's bf16_pair_index).
template <class B, int MR, int NV>
void nn_bf16_tile(const std::uint16_t* x, std::int64_t K, const std::uint32_t* w, std::int64_t ldw, const std::uint16_t* b,
                  std::uint16_t* y, std::int64_t N, int cols) {
  constexpr int W = B::W;
  typename B::Acc acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NV; ++j) acc[r][j] = B::zero();
  const std::int64_t pairs = (K + 1) / 2;
  int lanes[NV];
  for (int j = 0; j < NV; ++j) lanes[j] = std::clamp(cols - j * W, 0, W);
  const bool full = cols == NV * W;
  for (std::int64_t p = 0; p < pairs; ++p) {
    // Each 64-byte line of the pair row kPrefetchRows ahead is fetched now
    // (prefetch_rows.h).
    if (p + kPrefetchRows < pairs)
      for (int j = 0; j < NV; ++j)
        if (lanes[j] > 0 && j * W * sizeof(std::uint32_t) % 64 == 0) __builtin_prefetch(w + (p + kPrefetchRows) * ldw + j * W);
    typename B::Pairs wv[NV];
    for (int j = 0; j < NV; ++j) wv[j] = full ? B::load_pairs(w + p * ldw + j * W) : B::load_pairs_partial(w + p * ldw + j * W, lanes[j]);
    for (int r = 0; r < MR; ++r) {
      // x[2p], x[2p+1] of row r (an odd K's last pair gets a zero partner).
      const typename B::XPair xb = B::broadcast_pair(x + r * K + 2 * p, 2 * p + 1 < K);
      for (int j = 0; j < NV; ++j) acc[r][j] = B::madd_pairs(acc[r][j], xb, wv[j]);
    }
  }
  for (int j = 0; j < NV; ++j) {
    if (lanes[j] == 0) continue;
    const typename B::Acc bias = b ? B::load_bias(b + j * W, lanes[j]) : B::zero();
    for (int r = 0; r < MR; ++r) B::store_bf16(y + r * N + j * W, B::add(acc[r][j], bias), lanes[j]);
  }
}

// Columns [n_begin, n_end) of y for all M rows (n_begin a multiple of the
// block width): each block of columns is read from memory once, by the
// first MR rows; the next row blocks find it in L2 (K/2 x NV*W pairs: 48
// KB for 768 rows of 32 columns). A block lies in one panel.
template <class B, int MR, int NV>
void nn_bf16_columns(const std::uint16_t* x, const std::uint32_t* w, const std::uint16_t* b, std::uint16_t* y, std::int64_t M,
                     std::int64_t K, std::int64_t N, std::int64_t n_begin, std::int64_t n_end) {
  constexpr int BW = NV * B::W;
  static_assert(kBf16Panel % BW == 0, "a block lies in one panel");
  for (std::int64_t n0 = n_begin; n0 < n_end; n0 += BW) {
    const int cols = static_cast<int>(std::min<std::int64_t>(BW, n_end - n0));
    const std::uint16_t* bb = b ? b + n0 : nullptr;
    const std::int64_t ldw = panel_width(n0, N, kBf16Panel);
    const std::uint32_t* wb = w + bf16_pair_index(0, n0, K, N);
    for_row_blocks<MR>(M, [&](std::int64_t m, auto rows) {
      nn_bf16_tile<B, decltype(rows)::value, NV>(x + m * K, K, wb, ldw, bb, y + m * N + n0, N, cols);
    });
  }
}

// Pairs widened to fp32 over an fp32 vector trait T (AVX-512F, AVX2,
// scalar): a pair vector becomes its even-k and odd-k lanes (exact), then
// two fused multiply-adds, even first.
template <class T>
struct WidenedPairs {
  using Acc = typename T::V;
  struct Pairs {
    typename T::V even, odd;
  };
  struct XPair {
    typename T::V lo, hi;
  };
  static constexpr int W = T::W;
  static Acc zero() { return T::zero(); }
  static Acc add(Acc a, Acc b) { return T::add(a, b); }
  static Pairs load_pairs(const std::uint32_t* p) {
    Pairs out;
    T::load_bf16_pairs(p, out.even, out.odd);
    return out;
  }
  static Pairs load_pairs_partial(const std::uint32_t* p, int n) { return load_pairs(Padded<std::uint32_t, T::W>(p, n).v); }
  static XPair broadcast_pair(const std::uint16_t* p, bool both) {
    return {T::broadcast(bf16_to_float(p[0])), T::broadcast(both ? bf16_to_float(p[1]) : 0.0f)};
  }
  static Acc madd_pairs(Acc acc, const XPair& x, const Pairs& w) { return T::fma(x.hi, w.odd, T::fma(x.lo, w.even, acc)); }
  static Acc load_bias(const std::uint16_t* b, int n) { return load_bf16_partial<WidenedBf16<T>>(b, n); }
  static void store_bf16(std::uint16_t* y, Acc v, int n) {
    if (n == T::W) return T::store_bf16(y, v);
    std::uint16_t buf[T::W];
    T::store_bf16(buf, v);
    std::memcpy(y, buf, static_cast<std::size_t>(std::min(n, T::W)) * sizeof(std::uint16_t));
  }
};

}  // namespace
}  // namespace inkstream::kernels
