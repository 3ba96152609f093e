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

// How many quad rows ahead an int8 tile (linear_q8_tiles.h) prefetches its
// panel's stream: 64 rows of 64 bytes, a page. Without it the 136 MB of
// GPT-2 small's int8 products took 4.9-5.2 ms a step at 1 row and 7.3-7.5 at
// 4 rows here (AVX-512 VNNI Xeon, 2 cores, kernels_bench --int8-step with
// every layer in its own memory); with it 3.8-4.3 and 4.4-4.6 (binaries
// alternated). 16 rows ahead gained about half of that.
constexpr std::int64_t kQ8PrefetchQuads = 64;

}  // namespace inkstream::kernels
