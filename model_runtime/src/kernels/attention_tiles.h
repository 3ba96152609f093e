#pragma once
// The decoding attention of one (row, head), written once over a vector type
// `T` and compiled per instruction set beside linear_tiles.h. Internal
// linkage, as there.
#include <cmath>
#include <cstdint>

namespace inkstream::kernels {
namespace {

// dot(a, b) over D floats: each lane sums every W-th element in order, then
// a fixed reduction.
template <class T>
float dot(const float* a, const float* b, std::int64_t D) {
  typename T::V acc = T::zero();
  std::int64_t d = 0;
  for (; d + T::W <= D; d += T::W) acc = T::fma(T::load(a + d), T::load(b + d), acc);
  if (d < D) acc = T::fma(T::load_partial(a + d, static_cast<int>(D - d)), T::load_partial(b + d, static_cast<int>(D - d)), acc);
  return T::reduce(acc);
}

// y += w * v over D floats.
template <class T>
void axpy(float w, const float* v, float* y, std::int64_t D) {
  const typename T::V wv = T::broadcast(w);
  std::int64_t d = 0;
  for (; d + T::W <= D; d += T::W) T::store(y + d, T::fma(wv, T::load(v + d), T::load(y + d)));
  if (d < D) {
    const int n = static_cast<int>(D - d);
    T::store_partial(y + d, T::fma(wv, T::load_partial(v + d, n), T::load_partial(y + d, n)), n);
  }
}

// One query q (D) against keys/values in two runs: `P` rows of `kp`/`vp`
// and `L` rows of `kt`/`vt` (each row D floats, consecutive rows `ld*`
// floats apart). y (D) = softmax(scale · q·kᵀ) · v. `scores` has room for
// P + L floats.
template <class T>
void attend(const float* q, std::int64_t D, const float* kp, const float* vp, std::int64_t ldp, std::int64_t P, const float* kt,
            const float* vt, std::int64_t ldt, std::int64_t L, float scale, float* scores, float* y) {
  float top = -INFINITY;
  for (std::int64_t j = 0; j < P; ++j) top = std::fmax(top, scores[j] = dot<T>(q, kp + j * ldp, D) * scale);
  for (std::int64_t j = 0; j < L; ++j) top = std::fmax(top, scores[P + j] = dot<T>(q, kt + j * ldt, D) * scale);
  float sum = 0;
  for (std::int64_t j = 0; j < P + L; ++j) sum += scores[j] = std::exp(scores[j] - top);
  for (std::int64_t d = 0; d < D; ++d) y[d] = 0;
  const float inv = 1.0f / sum;
  for (std::int64_t j = 0; j < P; ++j) axpy<T>(scores[j] * inv, vp + j * ldp, y, D);
  for (std::int64_t j = 0; j < L; ++j) axpy<T>(scores[P + j] * inv, vt + j * ldt, y, D);
}

}  // namespace
}  // namespace inkstream::kernels
