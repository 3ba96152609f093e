#pragma once
// The attention of one (group, head) (attention.h), written once over a
// vector type `T` and a key/value element type `E` (float, std::uint16_t
// holding bf16 bits, or std::int8_t with one fp32 scale per key or value
// vector), compiled per instruction set beside linear_tiles.h. Internal
// linkage, as there.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "exp_constants.h"
#include "linear_isa.h"
#include "padded.h"

// The helpers below run per key and query: forced inline (as calls they
// took most of the attention's time, 13% of a server's under 8 streams).
#define INKSTREAM_INLINE inline __attribute__((always_inline))

namespace inkstream::kernels {
namespace {

// W elements of keys/values as fp32 lanes (bf16 -> fp32 is exact: the bits
// move to the upper half; int8 q -> q · s, one fp32 product, the value
// every reader of the cache multiplies by, libtorch's read-back included).
// `s` is the vector's scale (int8 only; the others ignore it).
template <class T>
INKSTREAM_INLINE typename T::V load_kv(const float* p, float) {
  return T::load(p);
}
template <class T>
INKSTREAM_INLINE typename T::V load_kv(const std::uint16_t* p, float) {
  return T::load_bf16(p);
}
template <class T>
INKSTREAM_INLINE typename T::V load_kv(const std::int8_t* p, float s) {
  return T::mul(T::load_i8(p), T::broadcast(s));
}
template <class T>
INKSTREAM_INLINE typename T::V load_kv_partial(const float* p, int n, float) {
  return T::load_partial(p, n);
}
template <class T>
INKSTREAM_INLINE typename T::V load_kv_partial(const std::uint16_t* p, int n, float) {
  return T::load_bf16(Padded<std::uint16_t, T::W>(p, n).v);
}
template <class T>
INKSTREAM_INLINE typename T::V load_kv_partial(const std::int8_t* p, int n, float s) {
  return T::mul(T::load_i8(Padded<std::int8_t, T::W>(p, n).v), T::broadcast(s));
}

// The scale of vector j of a stream whose scales are at `s` (int8 keys and
// values: one per position and head; none for the other types).
template <class E>
INKSTREAM_INLINE float kv_scale(const float* s, std::int64_t j) {
  if constexpr (std::is_same_v<E, std::int8_t>) return s[j];
  else return 0.0f;
}

// How many keys (or values) ahead the prefix loops prefetch, and the
// prefetch of keys [from, to) of a stream clamped to its `count` keys. A
// head's keys and values are each one contiguous stream, but the hardware
// prefetchers alone kept one row's bf16 reads at 13.8 GB/s (fp32's at 21,
// the machine's bandwidth) and eight rows', which compute between blocks,
// at 8 (a 2-core Emerald Rapids, 12 layers of 1,000 keys from memory).
constexpr std::int64_t kAttentionPrefetchKeys = 32;
template <class E>
INKSTREAM_INLINE void prefetch_keys(const E* kv, std::int64_t from, std::int64_t to, std::int64_t count, std::int64_t D) {
  const char* first = reinterpret_cast<const char*>(kv + std::min(from, count) * D);
  const char* last = reinterpret_cast<const char*>(kv + std::min(to, count) * D);
  for (const char* p = first; p < last; p += 64) __builtin_prefetch(p);
}

// dot(q, k) over D elements (ks: k's scale): each lane sums every W-th element in order,
// then a fixed reduction.
template <class T, class E>
INKSTREAM_INLINE float dot(const float* q, const E* k, float ks, std::int64_t D) {
  typename T::V acc = T::zero();
  std::int64_t d = 0;
  for (; d + T::W <= D; d += T::W) acc = T::fma(T::load(q + d), load_kv<T>(k + d, ks), acc);
  if (d < D) {
    const int n = static_cast<int>(D - d);
    acc = T::fma(T::load_partial(q + d, n), load_kv_partial<T>(k + d, n, ks), acc);
  }
  return T::reduce(acc);
}

// y += w * v over D elements (vs: v's scale).
template <class T, class E>
INKSTREAM_INLINE void axpy(float w, const E* v, float vs, float* y, std::int64_t D) {
  const typename T::V wv = T::broadcast(w);
  std::int64_t d = 0;
  for (; d + T::W <= D; d += T::W) T::store(y + d, T::fma(wv, load_kv<T>(v + d, vs), T::load(y + d)));
  if (d < D) {
    const int n = static_cast<int>(D - d);
    T::store_partial(y + d, T::fma(wv, load_kv_partial<T>(v + d, n, vs), T::load_partial(y + d, n)), n);
  }
}

// e^x for a softmax's x = s - max (x <= 0; NaN stays NaN), written once for
// every trait: Cephes' expf (x = n·ln2 + r, a degree-6 polynomial for e^r,
// times 2^n); below kExpLow (e^x under FLT_MIN) it is 0.
template <class T>
INKSTREAM_INLINE typename T::V exp_softmax(typename T::V x) {
  const typename T::V lo = T::broadcast(kExpLow);
  const typename T::V xc = T::max(x, lo);
  const typename T::V n = T::round(T::mul(xc, T::broadcast(kLog2e)));
  typename T::V r = T::fma(n, T::broadcast(-kLn2Hi), xc);
  r = T::fma(n, T::broadcast(-kLn2Lo), r);
  typename T::V p = T::broadcast(kExpP[0]);
  for (int i = 1; i < 6; ++i) p = T::fma(p, r, T::broadcast(kExpP[i]));
  const typename T::V y = T::mul(T::add(T::fma(p, T::mul(r, r), r), T::broadcast(1.0f)), T::pow2(n));
  return T::nan_from(T::zero_below(y, x, lo), x);
}

// The largest of s[0, n), as fmax (a NaN score is passed over; -inf if all
// are NaN): W lanes at a time, then the lanes and the last ones (the same
// value as one scalar loop: a maximum does not depend on the order).
template <class T>
INKSTREAM_INLINE float max_of(const float* s, std::int64_t n) {
  typename T::V acc = T::broadcast(-INFINITY);
  std::int64_t j = 0;
  for (; j + T::W <= n; j += T::W) acc = T::max(T::load(s + j), acc);  // a NaN score gives acc
  alignas(64) float lanes[T::W];
  T::store(lanes, acc);
  float top = -INFINITY;
  for (const float l : lanes) top = l > top ? l : top;
  for (; j < n; ++j) top = s[j] > top ? s[j] : top;
  return top;
}

// s[j] = e^(s[j] - top) for j in [0, n), returning their sum: W at a time
// through the trait's exp (a partial vector for the last ones, so every
// score goes through the same operations wherever it falls), summed lane by
// lane, then reduced. (std::exp, one score at a time, was a third of the
// attention's time over a 1,000-token document.)
template <class T>
INKSTREAM_INLINE float exp_and_sum(float* s, std::int64_t n, float top) {
  const typename T::V topv = T::broadcast(top);
  typename T::V acc = T::zero();
  std::int64_t j = 0;
  for (; j + T::W <= n; j += T::W) {
    const typename T::V e = exp_softmax<T>(T::sub(T::load(s + j), topv));
    T::store(s + j, e);
    acc = T::add(acc, e);
  }
  if (j < n) {
    const int m = static_cast<int>(n - j);
    T::store_partial(s + j, exp_softmax<T>(T::sub(T::load_partial(s + j, m), topv)), m);
    acc = T::add(acc, T::load_partial(s + j, m));  // the lanes past n add 0
  }
  return T::reduce(acc);
}

// scores[r * width + j] = scale · q_r·k_j for keys j in [0, P), D = NV · W,
// W keys at a time: the block's keys widened to fp32 once for all rows (a
// bf16 key was widened again for every row; the last, partial block is
// zero-padded), then per row one accumulator per key (W independent chains
// of fused multiply-adds, where one dot's chain waited on itself), reduced
// together by the trait's sums_of. A key's score is the same operations
// wherever it falls: in a full or partial block, beside any rows. Rows of
// a causal chunk skip the blocks they do not see; scores past seen(r) in
// a block they do are computed and never read.
template <class T, int NV, class E, class Seen>
INKSTREAM_INLINE void prefix_scores(const float* q, std::int64_t ldq, std::int64_t rows, const E* kp, const float* kps,
                                    std::int64_t P, Seen seen, float scale, float* scores, std::int64_t width) {
  constexpr int W = T::W, D = NV * W;
  alignas(64) float block[W * D];
  const typename T::V scalev = T::broadcast(scale);
  for (std::int64_t j0 = 0; j0 < P; j0 += W) {
    const int n = static_cast<int>(std::min<std::int64_t>(W, P - j0));
    prefetch_keys(kp, j0 + kAttentionPrefetchKeys, j0 + kAttentionPrefetchKeys + W, P, D);
    // One row of a full block reads its keys in place (widening is exact:
    // the same numbers as from the block).
    const bool in_place = n == W && (rows == 1 || std::is_same_v<E, float>);
    if (!in_place) {
      for (int k = 0; k < n; ++k)
        for (int i = 0; i < NV; ++i) T::store(block + k * D + i * W, load_kv<T>(kp + (j0 + k) * D + i * W, kv_scale<E>(kps, j0 + k)));
      std::fill(block + n * D, block + W * D, 0.0f);
    }
    for (std::int64_t r = 0; r < rows; ++r) {
      if (j0 >= seen(r)) continue;
      const float* qr = q + r * ldq;
      typename T::V acc[W];
      for (int k = 0; k < W; ++k) acc[k] = T::zero();
      for (int i = 0; i < NV; ++i) {
        const typename T::V qi = T::load(qr + i * W);
        for (int k = 0; k < W; ++k)
          acc[k] = T::fma(qi, in_place ? load_kv<T>(kp + (j0 + k) * D + i * W, kv_scale<E>(kps, j0 + k)) : T::load(block + k * D + i * W),
                          acc[k]);
      }
      const typename T::V s = T::mul(T::sums_of(acc), scalev);
      if (n == W) T::store(scores + r * width + j0, s);
      else T::store_partial(scores + r * width + j0, s, n);
    }
  }
}

// y += Σ_j w[j] · v_j over D = NV · W elements (v_j at v + j * D, its scale
// vs[j]), y held in NV registers: the fused multiply-adds of axpy, in the
// same order, so the same numbers, without loading and storing y for every
// key.
template <class T, int NV, class E>
INKSTREAM_INLINE void weighted_sum(const float* w, const E* v, const float* vs, std::int64_t count, float* y) {
  typename T::V acc[NV];
  for (int i = 0; i < NV; ++i) acc[i] = T::load(y + i * T::W);
  for (std::int64_t j = 0; j < count; ++j) {
    if (j % 4 == 0) prefetch_keys(v, j + kAttentionPrefetchKeys, j + kAttentionPrefetchKeys + 4, count, NV * T::W);
    const typename T::V wv = T::broadcast(w[j]);
    const E* vj = v + j * NV * T::W;
    const float sj = kv_scale<E>(vs, j);
    for (int i = 0; i < NV; ++i) acc[i] = T::fma(wv, load_kv<T>(vj + i * T::W, sj), acc[i]);
  }
  for (int i = 0; i < NV; ++i) T::store(y + i * T::W, acc[i]);
}

// Row r's y += Σ_j w_r[j] · v_j over its prefix keys j < seen(r) (w_r at
// scores + r * width), D = NV · W: rows side by side over blocks of keys,
// each block's values widened to fp32 once for all rows (they were widened
// again for every row: a third of the kernel's time over 1,000 bf16 keys),
// then weighted_sum per row. Each row's sums run over its keys in order
// through the same fused multiply-adds whatever the block bounds (its
// accumulators go through y between blocks, exactly), so the same numbers
// as one weighted_sum over all its keys.
template <class T, int NV, class E, class Seen>
INKSTREAM_INLINE void prefix_values(const float* scores, std::int64_t width, std::int64_t rows, Seen seen, const E* vp,
                                    const float* vps, std::int64_t P, float* y, std::int64_t ldq) {
  constexpr int W = T::W, D = NV * W, B = 32;
  if (rows == 1 || std::is_same_v<E, float>) {
    for (std::int64_t r = 0; r < rows; ++r) weighted_sum<T, NV>(scores + r * width, vp, vps, seen(r), y + r * ldq);
    return;
  }
  alignas(64) float block[B * D];
  for (std::int64_t j0 = 0; j0 < P; j0 += B) {
    const int n = static_cast<int>(std::min<std::int64_t>(B, P - j0));
    prefetch_keys(vp, j0 + kAttentionPrefetchKeys, j0 + kAttentionPrefetchKeys + B, P, D);
    for (int k = 0; k < n; ++k)
      for (int i = 0; i < NV; ++i) T::store(block + k * D + i * W, load_kv<T>(vp + (j0 + k) * D + i * W, kv_scale<E>(vps, j0 + k)));
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t count = std::clamp<std::int64_t>(seen(r) - j0, 0, n);
      if (count > 0) weighted_sum<T, NV>(scores + r * width + j0, block, nullptr, count, y + r * ldq);
    }
  }
}

// y += Σ_j w[j] · v_j over D elements: in registers where D is 4 or 8
// vectors (GPT-2's heads: 64 = 8 AVX2 or 4 AVX-512 vectors), else by axpy.
template <class T, class E>
INKSTREAM_INLINE void weighted_sum(const float* w, const E* v, const float* vs, std::int64_t count, float* y, std::int64_t D) {
  if (D == 8 * T::W) return weighted_sum<T, 8>(w, v, vs, count, y);
  if (D == 4 * T::W) return weighted_sum<T, 4>(w, v, vs, count, y);
  for (std::int64_t j = 0; j < count; ++j) axpy<T>(w[j], v + j * D, kv_scale<E>(vs, j), y, D);
}

// The queries of one (group, head). q_r is at q + r * ldq (D floats), y_r
// likewise; prefix key/value j at kp/vp + j * D; row r's tail key/value j at
// kt/vt + r * ldt_row + j * D. int8 keys/values have their scales likewise
// with D collapsed: prefix vector j's at kps/vps + j, row r's tail vector
// j's at kts/vts + r * ldt_row / D + j (null for the other types). Row r
// sees the first `seen(r)` prefix positions and `L` tail positions.
// `scores` has room for rows * (P + L) floats. Key j is read once for all
// rows (from memory), then from L1; the values row by row.
template <class T, class E>
void attend_rows(const float* q, float* y, std::int64_t ldq, std::int64_t rows, KvStreams<E> kv, std::int64_t P, bool causal,
                 std::int64_t ldt_row, std::int64_t L, std::int64_t D, float scale, float* scores) {
  const E *kp = kv.kp, *vp = kv.vp, *kt = kv.kt, *vt = kv.vt;
  const float *kps = kv.kps, *vps = kv.vps, *kts = kv.kts, *vts = kv.vts;
  const std::int64_t lds_row = ldt_row / D;  // of the tails' scales
  const std::int64_t width = P + L;
  auto seen = [&](std::int64_t r) { return causal ? P - rows + r + 1 : P; };
  auto tail = [&](std::int64_t r) { return causal ? 0 : L; };
  if (D == 8 * T::W) {
    prefix_scores<T, 8>(q, ldq, rows, kp, kps, P, seen, scale, scores, width);
  } else if (D == 4 * T::W) {
    prefix_scores<T, 4>(q, ldq, rows, kp, kps, P, seen, scale, scores, width);
  } else {
    for (std::int64_t j = 0; j < P; ++j)
      for (std::int64_t r = 0; r < rows; ++r)
        if (j < seen(r)) scores[r * width + j] = dot<T>(q + r * ldq, kp + j * D, kv_scale<E>(kps, j), D) * scale;
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    float* s = scores + r * width;
    const std::int64_t n = seen(r), t = tail(r);
    for (std::int64_t j = 0; j < t; ++j)
      s[n + j] = dot<T>(q + r * ldq, kt + r * ldt_row + j * D, kv_scale<E>(kts, r * lds_row + j), D) * scale;
    const float top = max_of<T>(s, n + t);
    const float inv = 1.0f / exp_and_sum<T>(s, n + t, top);
    for (std::int64_t j = 0; j < n + t; ++j) s[j] *= inv;
    std::fill(y + r * ldq, y + r * ldq + D, 0.0f);
  }
  // Each row's sum runs over its prefix (prefix_values), then its tail, in
  // order.
  if (D == 8 * T::W) prefix_values<T, 8>(scores, width, rows, seen, vp, vps, P, y, ldq);
  else if (D == 4 * T::W) prefix_values<T, 4>(scores, width, rows, seen, vp, vps, P, y, ldq);
  else
    for (std::int64_t r = 0; r < rows; ++r) weighted_sum<T>(scores + r * width, vp, vps, seen(r), y + r * ldq, D);
  for (std::int64_t r = 0; r < rows; ++r)
    if (tail(r) > 0)
      weighted_sum<T>(scores + r * width + seen(r), vt + r * ldt_row, vts ? vts + r * lds_row : nullptr, tail(r), y + r * ldq, D);
}

}  // namespace
}  // namespace inkstream::kernels
