#pragma once
// How many k rows ahead a decoding tile prefetches its weights (fp32 and
// fp16 in linear_tiles.h, bf16 pairs in linear_bf16_tiles.h). A tile's next
// rows are a page or more apart row-major (fp32: N floats; bf16 pairs: N
// 32-bit pairs) and the hardware prefetchers stop at pages; in panels they
// are the next 64 bytes but 2 cores still waited on them: on an AVX2 Zen 2
// (26.5 GB/s), 16 rows ahead took fp32 decoding from 21 to 31-33 tok/s and
// fp16 from 56-62 to 68-71 (same run, interleaved).
#include <cstdint>

namespace inkstream::kernels {

constexpr std::int64_t kPrefetchRows = 16;

}  // namespace inkstream::kernels
