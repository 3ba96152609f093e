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

namespace inkstream::kernels {

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
          nt_bf16_columns<WidenedBf16<Avx512>, 4, 4>,
          nn_bf16_columns<WidenedPairs<Avx512>, 8, 2>,
          "avx512",
          attend_rows<Avx512, float>,
          attend_rows<Avx512, std::uint16_t>};
}

}  // namespace inkstream::kernels
