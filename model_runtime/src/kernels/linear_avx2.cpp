// linear.h on AVX2 + FMA + F16C (compiled with -mavx2 -mfma -mf16c; only
// called when the CPU has them).
#include <immintrin.h>

#include <cstring>

#include "linear_isa.h"
#include "attention_tiles.h"
#include "linear_bf16_tiles.h"
#include "linear_q8_tiles.h"
#include "linear_tiles.h"
#include "quantize_rows_tiles.h"

namespace inkstream::kernels {
namespace {

struct Avx2 {
  using V = __m256;
  static constexpr int W = 8;
  static __m256i mask(int n) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
  }
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V load_partial(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static void store_partial(float* p, V v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static V load_bf16(const std::uint16_t* p) {
    const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
  }
  static void load_bf16_pairs(const std::uint32_t* p, V& even, V& odd) {
    const __m256i u = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    even = _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
    odd = _mm256_castsi256_ps(_mm256_and_si256(u, _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
  }
  // Round to nearest even, NaN kept quiet.
  static void store_bf16(std::uint16_t* p, V v) {
    const __m256i bits = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    r = _mm256_blendv_epi8(r, _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40)), nan);
    // 8 x 32-bit -> 8 x 16-bit (values < 65536, so unsigned saturation keeps them).
    const __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), packed);
  }
  static V load_f16(const std::uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static V load_i8(const std::int8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V broadcast(float f) { return _mm256_set1_ps(f); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  // The pieces of attention_tiles.h's exp_softmax.
  static V max(V a, V b) { return _mm256_max_ps(a, b); }  // a NaN a gives b
  static V round(V v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V pow2(V n) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23)); }
  static V zero_below(V y, V x, V lo) { return _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ)); }
  static V nan_from(V y, V x) { return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q)); }
  // Lane j: the sum of a[j]'s lanes, by the same tree for every j
  // ((0+1)+(2+3)) + ((4+5)+(6+7)).
  static V sums_of(const V* a) {
    const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
  }
  static float reduce(V v) {
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
    return _mm_cvtss_f32(q);
  }
};

// The int8 trait (linear_q8_tiles.h): the weight bytes' offset undone (xor
// 0x80 gives the signed values), then llama.cpp's sign trick: |x| (unsigned)
// times w with x's sign, pairs summed in int16 (at most 2 · 127 · 127, no
// saturation), then quads in int32.
struct Avx2Q8 {
  using F = Avx2;
  using IV = __m256i;
  using WQ = __m256i;
  struct XQ {
    __m256i x, abs;
  };
  static IV izero() { return _mm256_setzero_si256(); }
  static WQ signed_bytes(__m256i u) { return _mm256_xor_si256(u, _mm256_set1_epi8(static_cast<char>(0x80))); }
  static WQ load_quads(const std::uint32_t* p) { return signed_bytes(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static WQ load_quads_partial(const std::uint32_t* p, int n) {
    return signed_bytes(_mm256_maskload_epi32(reinterpret_cast<const int*>(p), Avx2::mask(n)));  // lanes past n: never stored
  }
  static XQ broadcast_x(const std::int8_t* x4) {
    int v;
    std::memcpy(&v, x4, sizeof v);
    const __m256i x = _mm256_set1_epi32(v);
    return {x, _mm256_abs_epi8(x)};
  }
  static IV dot(IV acc, WQ w, const XQ& x) {
    const __m256i pairs = _mm256_maddubs_epi16(x.abs, _mm256_sign_epi8(w, x.x));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
  }
  static IV finish(IV acc, std::int32_t) { return acc; }
  static __m256 to_float(IV v) { return _mm256_cvtepi32_ps(v); }
};

// quantize_rows_tiles.h's trait: a block of 32 as four vectors.
struct Avx2Quantize {
  static std::uint32_t max_abs_bits(const float* v) {
    const __m256i magnitude = _mm256_set1_epi32(0x7fffffff);
    auto load = [&](int i) { return _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + 8 * i)), magnitude); };
    __m256i m = _mm256_max_epu32(_mm256_max_epu32(load(0), load(1)), _mm256_max_epu32(load(2), load(3)));
    __m128i h = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
    h = _mm_max_epu32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
    h = _mm_max_epu32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
    return static_cast<std::uint32_t>(_mm_cvtsi128_si32(h));
  }
  static std::int32_t quantize(const float* v, float inv, std::int8_t* q) {
    const __m256 scale = _mm256_set1_ps(inv);
    const __m256i top = _mm256_set1_epi32(127), bottom = _mm256_set1_epi32(-127);
    __m256i r[4];
    for (int i = 0; i < 4; ++i) {  // rounds to nearest even: the default MXCSR
      r[i] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(v + 8 * i), scale));
      r[i] = _mm256_max_epi32(_mm256_min_epi32(r[i], top), bottom);
    }
    // The packs work within 128-bit lanes: 4-byte groups come out as
    // r0 r1 r2 r3 of the low lanes, then of the high ones; put them back.
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(r[0], r[1]), _mm256_packs_epi32(r[2], r[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    const __m256i s = _mm256_add_epi32(_mm256_add_epi32(r[0], r[1]), _mm256_add_epi32(r[2], r[3]));
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(h);
  }
};

}  // namespace

LinearColumnsQ8 linear_q8_avx2() { return q8_columns<Avx2Q8, 2, 2>; }

LinearIsa linear_isa_avx2() {
  return {"avx2",
          nn_columns<Avx2, 6, 2, const float*>,
          nt_columns<Avx2, 2, 4, const float*>,
          16,
          4,
          nn_columns<Avx2, 3, 4, F16Matrix>,
          nt_columns<Avx2, 2, 4, F16Matrix>,
          q8_columns<Avx2Q8, 2, 2>,
          "avx2",
          quantize_q8_blocks<Avx2Quantize>,
          nt_bf16_columns<WidenedBf16<Avx2>, 2, 4>,
          nn_bf16_columns<WidenedPairs<Avx2>, 6, 2>,
          "avx2",
          attend_rows<Avx2, float>,
          attend_rows<Avx2, std::uint16_t>,
          attend_rows<Avx2, std::int8_t>};
}

}  // namespace inkstream::kernels
