// linear.h in portable C++: any CPU (and the path the vector ones mirror).
#include <cmath>
#include <cstring>

#include "linear_isa.h"
#include "attention_tiles.h"
#include "linear_bf16_tiles.h"
#include "linear_q8_tiles.h"
#include "linear_tiles.h"

namespace inkstream::kernels {
namespace {

struct Scalar {
  using V = float;
  static constexpr int W = 1;
  static V zero() { return 0.0f; }
  static V load(const float* p) { return *p; }
  static V load_partial(const float* p, int n) { return n > 0 ? *p : 0.0f; }
  static void store(float* p, V v) { *p = v; }
  static void store_partial(float* p, V v, int n) {
    if (n > 0) *p = v;
  }
  static V load_bf16(const std::uint16_t* p) {
    const std::uint32_t bits = static_cast<std::uint32_t>(*p) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }
  static void load_bf16_pairs(const std::uint32_t* p, V& even, V& odd) {
    even = bf16_to_float(static_cast<std::uint16_t>(*p & 0xffffu));
    odd = bf16_to_float(static_cast<std::uint16_t>(*p >> 16));
  }
  static void store_bf16(std::uint16_t* p, V v) { *p = float_to_bf16(v); }
  static V load_f16(const std::uint16_t* p) { return c10::detail::fp16_ieee_to_fp32_value(*p); }
  static V load_i8(const std::int8_t* p) { return static_cast<float>(*p); }
  static V mul(V a, V b) { return a * b; }
  static V broadcast(float f) { return f; }
  static V fma(V a, V b, V c) { return std::fma(a, b, c); }
  static V add(V a, V b) { return a + b; }
  static V sub(V a, V b) { return a - b; }
  // The pieces of attention_tiles.h's exp_softmax, as the vector traits do them.
  static V max(V a, V b) { return a > b ? a : b; }  // a NaN a gives b
  static V round(V v) { return std::nearbyint(v); }  // to nearest even
  static V pow2(V n) {
    const std::uint32_t bits = static_cast<std::uint32_t>(static_cast<std::int32_t>(n) + 127) << 23;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }
  static V zero_below(V y, V x, V lo) { return x < lo ? 0.0f : y; }
  static V nan_from(V y, V x) { return x != x ? x : y; }
  static float reduce(V v) { return v; }
  static V sums_of(const V* a) { return a[0]; }  // lane j: the sum of a[j]'s lanes
};

// The int8 trait (linear_q8_tiles.h) on one lane: the weight bytes' offset
// undone before multiplying.
struct ScalarQ8 {
  using F = Scalar;
  using IV = std::int32_t;
  using WQ = std::uint32_t;
  using XQ = const std::int8_t*;
  static IV izero() { return 0; }
  static WQ load_quads(const std::uint32_t* p) { return *p; }
  static WQ load_quads_partial(const std::uint32_t* p, int n) { return n > 0 ? *p : 0x80808080u; }
  static XQ broadcast_x(const std::int8_t* x4) { return x4; }
  static IV dot(IV acc, WQ w, XQ x) {
    for (int i = 0; i < 4; ++i) acc += (static_cast<int>((w >> (8 * i)) & 0xffu) - 128) * x[i];
    return acc;
  }
  static IV finish(IV acc, std::int32_t) { return acc; }
  static float to_float(IV v) { return static_cast<float>(v); }
};

}  // namespace

LinearIsa linear_isa_scalar() {
  return {"scalar",
          nn_columns<Scalar, 4, 8, const float*>,
          nt_columns<Scalar, 2, 4, const float*>,
          8,
          4,
          nn_columns<Scalar, 4, 8, F16Matrix>,
          nt_columns<Scalar, 2, 4, F16Matrix>,
          q8_columns<ScalarQ8, 4, 4>,
          "scalar",
          nullptr,  // quantize_block's own loops
          nt_bf16_columns<WidenedBf16<Scalar>, 2, 4>,
          nn_bf16_columns<WidenedPairs<Scalar>, 4, 8>,
          "scalar",
          attend_rows<Scalar, float>,
          attend_rows<Scalar, std::uint16_t>,
          attend_rows<Scalar, std::int8_t>};
}

}  // namespace inkstream::kernels
