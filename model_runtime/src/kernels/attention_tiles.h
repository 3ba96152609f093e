#pragma once
// The attention of one (group, head) (attention.h), written once over a
// vector type `T` and a key/value element type `E` (float, or std::uint16_t
// holding bf16 bits), compiled per instruction set beside linear_tiles.h.
// Internal linkage, as there.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "padded.h"

// The helpers below run per key and query: forced inline (as calls they
// took most of the attention's time, 13% of a server's under 8 streams).
#define INKSTREAM_INLINE inline __attribute__((always_inline))

namespace inkstream::kernels {
namespace {

// W elements of keys/values as fp32 lanes (bf16 -> fp32 is exact: the bits
// move to the upper half).
template <class T>
INKSTREAM_INLINE typename T::V load_kv(const float* p) {
  return T::load(p);
}
template <class T>
INKSTREAM_INLINE typename T::V load_kv(const std::uint16_t* p) {
  return T::load_bf16(p);
}
template <class T>
INKSTREAM_INLINE typename T::V load_kv_partial(const float* p, int n) {
  return T::load_partial(p, n);
}
template <class T>
INKSTREAM_INLINE typename T::V load_kv_partial(const std::uint16_t* p, int n) {
  return T::load_bf16(Padded<std::uint16_t, T::W>(p, n).v);
}

// dot(q, k) over D elements: each lane sums every W-th element in order,
// then a fixed reduction.
template <class T, class E>
INKSTREAM_INLINE float dot(const float* q, const E* k, std::int64_t D) {
  typename T::V acc = T::zero();
  std::int64_t d = 0;
  for (; d + T::W <= D; d += T::W) acc = T::fma(T::load(q + d), load_kv<T>(k + d), acc);
  if (d < D) {
    const int n = static_cast<int>(D - d);
    acc = T::fma(T::load_partial(q + d, n), load_kv_partial<T>(k + d, n), acc);
  }
  return T::reduce(acc);
}

// y += w * v over D elements.
template <class T, class E>
INKSTREAM_INLINE void axpy(float w, const E* v, float* y, std::int64_t D) {
  const typename T::V wv = T::broadcast(w);
  std::int64_t d = 0;
  for (; d + T::W <= D; d += T::W) T::store(y + d, T::fma(wv, load_kv<T>(v + d), T::load(y + d)));
  if (d < D) {
    const int n = static_cast<int>(D - d);
    T::store_partial(y + d, T::fma(wv, load_kv_partial<T>(v + d, n), T::load_partial(y + d, n)), n);
  }
}

// The queries of one (group, head). q_r is at q + r * ldq (D floats), y_r
// likewise; prefix key/value j at kp/vp + j * D; row r's tail key/value j at
// kt/vt + r * ldt_row + j * D. Row r sees the first `seen(r)` prefix
// positions and `L` tail positions. `scores` has room for rows * (P + L)
// floats. Key j is read once for all rows (from memory), then from L1.
template <class T, class E>
void attend_rows(const float* q, float* y, std::int64_t ldq, std::int64_t rows, const E* kp, const E* vp, std::int64_t P,
                 bool causal, const E* kt, const E* vt, std::int64_t ldt_row, std::int64_t L, std::int64_t D, float scale,
                 float* scores) {
  const std::int64_t width = P + L;
  auto seen = [&](std::int64_t r) { return causal ? P - rows + r + 1 : P; };
  auto tail = [&](std::int64_t r) { return causal ? 0 : L; };
  for (std::int64_t j = 0; j < P; ++j)
    for (std::int64_t r = 0; r < rows; ++r)
      if (j < seen(r)) scores[r * width + j] = dot<T>(q + r * ldq, kp + j * D, D) * scale;
  for (std::int64_t r = 0; r < rows; ++r) {
    float* s = scores + r * width;
    const std::int64_t n = seen(r), t = tail(r);
    for (std::int64_t j = 0; j < t; ++j) s[n + j] = dot<T>(q + r * ldq, kt + r * ldt_row + j * D, D) * scale;
    float top = -INFINITY;
    for (std::int64_t j = 0; j < n + t; ++j) top = s[j] > top ? s[j] : top;  // as fmax (a NaN score is passed over), inline
    float sum = 0;
    for (std::int64_t j = 0; j < n + t; ++j) sum += s[j] = std::exp(s[j] - top);
    const float inv = 1.0f / sum;
    for (std::int64_t j = 0; j < n + t; ++j) s[j] *= inv;
    std::fill(y + r * ldq, y + r * ldq + D, 0.0f);
  }
  for (std::int64_t j = 0; j < P; ++j)
    for (std::int64_t r = 0; r < rows; ++r)
      if (j < seen(r)) axpy<T>(scores[r * width + j], vp + j * D, y + r * ldq, D);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t j = 0, n = seen(r); j < tail(r); ++j)
      axpy<T>(scores[r * width + n + j], vt + r * ldt_row + j * D, y + r * ldq, D);
}

}  // namespace
}  // namespace inkstream::kernels
