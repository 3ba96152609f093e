// The int8 product of linear.h with AVX-512 VNNI (vpdpbusd: 64 byte
// products summed in fours into 16 int32 lanes, one instruction). It
// multiplies unsigned by signed bytes: the weight bytes carry their +128
// offset, so each block's sum is corrected by 128 · (the block's sum of
// activations). Compiled with -mavx512vnni -mavx512bw; only called when the
// CPU has them.
// GCC 12 warns about the deliberately undefined vector inside
// _mm512_cvtepi32_ps (a known false positive, as in linear_avx512.cpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstring>

#include "avx512_vector.h"
#include "linear_isa.h"
#include "linear_q8_tiles.h"

namespace inkstream::kernels {
namespace {

struct Avx512Vnni {
  using F = Avx512;
  using IV = __m512i;
  using WQ = __m512i;
  using XQ = __m512i;
  static IV izero() { return _mm512_setzero_si512(); }
  static WQ load_quads(const std::uint32_t* p) { return _mm512_loadu_si512(p); }
  static WQ load_quads_partial(const std::uint32_t* p, int n) { return _mm512_maskz_loadu_epi32(static_cast<__mmask16>((1u << n) - 1), p); }
  static XQ broadcast_x(const std::int8_t* x4) {
    int v;
    std::memcpy(&v, x4, sizeof v);
    return _mm512_set1_epi32(v);
  }
  static IV dot(IV acc, WQ w, XQ x) { return _mm512_dpbusd_epi32(acc, w, x); }
  static IV finish(IV acc, std::int32_t sum) { return _mm512_sub_epi32(acc, _mm512_set1_epi32(128 * sum)); }
  static __m512 to_float(IV v) { return _mm512_cvtepi32_ps(v); }
};

// Up to 4 rows (a decoding step of one request or two) one vector of 16
// columns per tile, one panel, so one sequential stream of quads; more rows
// two vectors (fewer broadcasts per product, where compute starts to
// count: two were faster at 8 rows). On a 2-core AVX-512 Zen 4, int8
// decoding (generation_bench, binaries alternated) went 132-150 -> 138-169
// tok/s at N=1 and 374-415 -> 401-497 at N=4 (bench/RESULTS.md, twelfth
// session). Both tiles compute every output the same way (exact block
// sums, one fma per block in order), so the switch changes no result.
void q8_columns_by_rows(const Q8Rows& x, Q8Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N,
                        std::int64_t n_begin, std::int64_t n_end) {
  if (M <= 4) return q8_columns<Avx512Vnni, 4, 1>(x, w, b, y, M, K, N, n_begin, n_end);
  q8_columns<Avx512Vnni, 4, 2>(x, w, b, y, M, K, N, n_begin, n_end);
}

}  // namespace

LinearColumnsQ8 linear_q8_avx512vnni() { return q8_columns_by_rows; }

}  // namespace inkstream::kernels
