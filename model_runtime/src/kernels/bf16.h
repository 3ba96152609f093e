#pragma once
// bf16 <-> fp32, one scalar helper for the kernels, their references and
// tests. bf16 is the upper half of an fp32; narrowing rounds to nearest
// even (as libtorch and the CPU's vcvtneps2bf16 do), NaN stays NaN.
#include <cstdint>
#include <cstring>

namespace inkstream::kernels {

inline float bf16_to_float(std::uint16_t bits) {
  const std::uint32_t wide = static_cast<std::uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof f);
  return f;
}

inline std::uint16_t float_to_bf16(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40);  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>(bits >> 16);
}

}  // namespace inkstream::kernels
