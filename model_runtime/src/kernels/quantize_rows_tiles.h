#pragma once
// The activations' int8 quantization (Q8Rows, quantize_q8_rows_with in
// linear.cpp) for whole blocks of 32, written once over a trait `Q` and
// compiled per instruction set (linear_avx512.cpp, linear_avx2.cpp). It
// gives quantize_block's bits: the same product v · (127 / max) rounded to
// the nearest integer, ties to even (the vector conversion's rounding, and
// quantize_block's 1.5 · 2^23 trick), clamped to ±127. Internal linkage, as
// the other tiles.
//   Q::max_abs_bits(v): the largest |v[i]| of a block of 32, as bits (for
//     non-negative floats their order is the values' order; a NaN's exceed
//     infinity's);
//   Q::quantize(v, inv, q): q[i] = round(v[i] · inv) for the 32, returns
//     their sum.
#include <bit>
#include <cstdint>

#include "linear.h"

namespace inkstream::kernels {
namespace {

// Blocks [0, blocks) of x (32 floats each) into q, scales and offsets (128 ·
// the block's sum); stops at the first block whose maximum is zero, too
// small for 127 / max or not finite, and returns its index (quantize_block
// gives those their zeros and NaN or zero scales), else `blocks`.
template <class Q>
std::int64_t quantize_q8_blocks(const float* x, std::int64_t blocks, std::int8_t* q, float* scales, std::int32_t* offsets) {
  for (std::int64_t b = 0; b < blocks; ++b) {
    const float* v = x + b * kQ8Block;
    const std::uint32_t top = Q::max_abs_bits(v);
    const float amax = std::bit_cast<float>(top);
    const float inv = 127.0f / amax;
    if (!q8_block_usable(top, inv)) return b;
    offsets[b] = 128 * Q::quantize(v, inv, q + b * kQ8Block);
    scales[b] = amax / 127.0f;
  }
  return blocks;
}

}  // namespace
}  // namespace inkstream::kernels
