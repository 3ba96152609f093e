// The bf16 products of linear.h with AVX-512 BF16's dot-product instruction
// (vdpbf16ps: 32 bf16 products summed pairwise into 16 fp32 lanes; on this
// project's AMD EPYC it runs at the multiply-add rate of fp32 FMAs, so its
// gain is the halved weight traffic). Compiled with -mavx512bf16; only
// called when the CPU has it.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "avx512_vector.h"
#include "linear_bf16_tiles.h"
#include "linear_isa.h"

namespace inkstream::kernels {
namespace {

struct Avx512Bf16 {
  using Acc = __m512;
  using L = __m512bh;
  static constexpr int KS = 32;
  static Acc zero() { return Avx512::zero(); }
  static L load(const std::uint16_t* p) { return reinterpret_cast<L>(_mm512_loadu_si512(p)); }
  static Acc madd(Acc acc, L a, L b) { return _mm512_dpbf16_ps(acc, a, b); }
  static float reduce(Acc v) { return Avx512::reduce(v); }  // the fp32 kernels' fixed tree
};

// The k-pair products (nn_bf16_tile): a broadcast pair of x against 16
// columns' pairs of w, one instruction for 32 multiply-adds.
struct Avx512Bf16Pairs {
  using Acc = __m512;
  using Pairs = __m512i;
  using XPair = __m512i;
  static constexpr int W = 16;
  static Acc zero() { return Avx512::zero(); }
  static Acc add(Acc a, Acc b) { return Avx512::add(a, b); }
  static Pairs load_pairs(const std::uint32_t* p) { return _mm512_loadu_si512(p); }
  static Pairs load_pairs_partial(const std::uint32_t* p, int n) {
    return _mm512_maskz_loadu_epi32(static_cast<__mmask16>((1u << n) - 1), p);
  }
  // x[0], x[1] as one 32-bit broadcast (x[1] taken as 0 without `both`).
  static XPair broadcast_pair(const std::uint16_t* x, bool both) {
    std::uint32_t pair = x[0];
    if (both) std::memcpy(&pair, x, sizeof pair);
    return _mm512_set1_epi32(static_cast<int>(pair));
  }
  static Acc madd_pairs(Acc acc, XPair x, Pairs w) {
    return _mm512_dpbf16_ps(acc, reinterpret_cast<__m512bh>(x), reinterpret_cast<__m512bh>(w));
  }
  static Acc load_bias(const std::uint16_t* b, int n) { return load_bf16_partial<WidenedBf16<Avx512>>(b, n); }
  static void store_bf16(std::uint16_t* y, Acc v, int n) {
    const __m256i bits = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v));  // round to nearest even
    _mm256_mask_storeu_epi16(y, static_cast<__mmask16>((1u << n) - 1), bits);
  }
};

}  // namespace

LinearColumnsBf16 linear_nt_bf16_avx512bf16() { return nt_bf16_columns<Avx512Bf16, 4, 4>; }
// 6 x 4 and 4 x 4 tiles measured the same as 8 x 2.
LinearColumnsBf16Pairs linear_nn_bf16_avx512bf16() { return nn_bf16_columns<Avx512Bf16Pairs, 8, 2>; }

}  // namespace inkstream::kernels
