// linear.h on AVX-512F (compiled with -mavx512f -mfma; only called when the
// CPU has them).
// GCC 12 warns about the deliberately undefined upper half inside
// _mm512_extractf64x4_pd (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "avx512_vector.h"
#include "linear_isa.h"
#include "attention_tiles.h"
#include "linear_bf16_tiles.h"
#include "linear_tiles.h"
#include "quantize_rows_tiles.h"

namespace inkstream::kernels {
namespace {

// quantize_rows_tiles.h's trait: a block of 32 as two vectors.
struct Avx512Quantize {
  static std::uint32_t max_abs_bits(const float* v) {
    const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
    const __m512i lo = _mm512_and_si512(_mm512_loadu_si512(v), magnitude);
    const __m512i hi = _mm512_and_si512(_mm512_loadu_si512(v + 16), magnitude);
    return _mm512_reduce_max_epu32(_mm512_max_epu32(lo, hi));
  }
  static std::int32_t quantize(const float* v, float inv, std::int8_t* q) {
    const __m512 scale = _mm512_set1_ps(inv);
    const __m512i top = _mm512_set1_epi32(127), bottom = _mm512_set1_epi32(-127);
    auto half = [&](const float* h) {  // rounds to nearest even: the default MXCSR
      const __m512i r = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(h), scale));
      return _mm512_max_epi32(_mm512_min_epi32(r, top), bottom);
    };
    const __m512i lo = half(v), hi = half(v + 16);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(lo));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtepi32_epi8(hi));
    return _mm512_reduce_add_epi32(_mm512_add_epi32(lo, hi));
  }
};

}  // namespace

LinearIsa linear_isa_avx512() {
  return {"avx512",
          nn_columns<Avx512, 8, 2, const float*>,
          nt_columns<Avx512, 4, 4, const float*>,
          32,
          4,
          nn_columns<Avx512, 4, 4, F16Matrix>,
          nt_columns<Avx512, 2, 8, F16Matrix>,
          linear_q8_avx2(),  // AVX-512F alone has no byte products the AVX2 ones lack
          "avx2",
          quantize_q8_blocks<Avx512Quantize>,
          nt_bf16_columns<WidenedBf16<Avx512>, 4, 4>,
          nn_bf16_columns<WidenedPairs<Avx512>, 8, 2>,
          "avx512",
          attend_rows<Avx512, float>,
          attend_rows<Avx512, std::uint16_t>,
          attend_rows<Avx512, std::int8_t>};
}

}  // namespace inkstream::kernels
