// The fp32 linear kernels of every instruction set this CPU has, against the
// double-precision reference, on random shapes with odd sizes and tails; and
// their batch invariance (a row's result does not depend on M, its place in
// the batch, the other rows or the thread count).
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cmath>
#include <c10/util/Half.h>

#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <random>
#include <tuple>
#include <vector>

#include "kernels/attention.h"
#include "kernels/bf16.h"
#include "kernels/linear.h"
#include "kernels/linear_isa.h"

namespace inkstream::kernels {
namespace {

std::vector<LinearIsa> available_isas() {
  std::vector<LinearIsa> out = {linear_isa_scalar()};
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) out.push_back(linear_isa_avx2());
  if (__builtin_cpu_supports("avx512f")) out.push_back(linear_isa_avx512());
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw")) {
    LinearIsa vnni = linear_isa_avx512();
    vnni.q8 = linear_q8_avx512vnni();
    vnni.q8_name = "avx512vnni";
    out.push_back(vnni);
    // AMX tiles once this process has asked for them (as the executables
    // do); absent on CPUs without AMX-INT8.
    if (request_amx_tile_state() && amx_int8_usable()) {
      LinearIsa amx = vnni;
      amx.q8 = linear_q8_amx();
      amx.q8_name = "amx-int8";
      out.push_back(amx);
    }
  }
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16")) {
    LinearIsa bf16 = linear_isa_avx512();
    bf16.nt_bf16 = linear_nt_bf16_avx512bf16();
    bf16.nn_bf16 = linear_nn_bf16_avx512bf16();
    bf16.bf16_name = "avx512bf16";
    out.push_back(bf16);
  }
  return out;
}

std::vector<float> random_vector(std::size_t n, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Largest |a - ref| relative to the scale of the dot products (sqrt(K)).
double max_error(const std::vector<float>& a, const std::vector<float>& ref, std::int64_t K) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double e = std::abs(static_cast<double>(a[i]) - ref[i]);
    worst = e == e ? std::max(worst, e) : INFINITY;  // an element never written (NaN) fails
  }
  return worst / std::sqrt(static_cast<double>(K));
}

struct Shape {
  std::int64_t M, K, N;
};
const Shape kShapes[] = {{1, 1, 1},    {1, 7, 5},     {3, 17, 33},  {8, 64, 32},  {9, 65, 31},  {5, 768, 97},
                         {13, 100, 257}, {1, 256, 768}, {24, 96, 50}, {2, 33, 1000}, {17, 15, 16}, {7, 5, 3},
                         {33, 128, 80}, {16, 32, 17}, {11, 64, 33}};

TEST(Kernels, EveryIsaMatchesTheReferenceOnOddShapes) {
  for (const LinearIsa& isa : available_isas()) {
    SCOPED_TRACE(isa.name);
    std::mt19937 rng(7);
    for (const Shape& s : kShapes) {
      SCOPED_TRACE(std::to_string(s.M) + "x" + std::to_string(s.K) + "x" + std::to_string(s.N));
      const auto x = random_vector(s.M * s.K, rng), w = random_vector(s.K * s.N, rng), b = random_vector(s.N, rng);
      std::vector<float> y(s.M * s.N, NAN), ref(s.M * s.N);
      isa.nn(x.data(), w.data(), b.data(), y.data(), s.M, s.K, s.N, 0, s.N);
      linear_nn_f32_reference(x.data(), w.data(), b.data(), ref.data(), s.M, s.K, s.N);
      EXPECT_LT(max_error(y, ref, s.K), 2e-5) << "nn";
      // nt: w read as (N, K).
      std::vector<float> yt(s.M * s.N, NAN), reft(s.M * s.N);
      isa.nt(x.data(), w.data(), nullptr, yt.data(), s.M, s.K, s.N, 0, s.N);
      linear_nt_f32_reference(x.data(), w.data(), nullptr, reft.data(), s.M, s.K, s.N);
      EXPECT_LT(max_error(yt, reft, s.K), 2e-5) << "nt";
      // A column range computes those columns only.
      if (s.N > isa.nn_block) {
        std::vector<float> part(s.M * s.N, -7.0f);
        isa.nn(x.data(), w.data(), b.data(), part.data(), s.M, s.K, s.N, isa.nn_block, s.N);
        for (std::int64_t m = 0; m < s.M; ++m) {
          EXPECT_EQ(part[m * s.N], -7.0f);
          EXPECT_EQ(part[m * s.N + s.N - 1], y[m * s.N + s.N - 1]);
        }
      }
    }
  }
}

TEST(Kernels, ARowIsTheSameWhateverElseIsInTheBatch) {
  const std::int64_t K = 200, N = 301, M = 80;  // both sides of the packed-strips switch (64 rows)
  std::mt19937 rng(3);
  const auto x = random_vector(M * K, rng), w = random_vector(K * N, rng), b = random_vector(N, rng);
  std::vector<float> all(M * N), all_t(M * N);
  linear_nn_f32(x.data(), w.data(), b.data(), all.data(), M, K, N);
  linear_nt_f32(x.data(), w.data(), nullptr, all_t.data(), M, K, N);
  const int threads = at::get_num_threads();
  for (const int t : {1, 2}) {
    at::set_num_threads(t);
    for (std::int64_t rows = 1; rows <= M; rows += 13)
      for (std::int64_t first = 0; first + rows <= M; first += 7) {
        std::vector<float> y(rows * N), yt(rows * N);
        linear_nn_f32(x.data() + first * K, w.data(), b.data(), y.data(), rows, K, N);
        linear_nt_f32(x.data() + first * K, w.data(), nullptr, yt.data(), rows, K, N);
        for (std::int64_t i = 0; i < rows * N; ++i) {
          ASSERT_EQ(y[i], all[first * N + i]) << "nn rows " << first << "+" << rows << " threads " << t;
          ASSERT_EQ(yt[i], all_t[first * N + i]) << "nt rows " << first << "+" << rows << " threads " << t;
        }
      }
  }
  at::set_num_threads(threads);
  // Other values in the neighbouring rows change nothing either.
  auto other = x;
  for (std::int64_t i = K; i < M * K; ++i) other[i] = -other[i] * 3;
  std::vector<float> y(M * N);
  linear_nn_f32(other.data(), w.data(), b.data(), y.data(), M, K, N);
  for (std::int64_t n = 0; n < N; ++n) ASSERT_EQ(y[n], all[n]);
}

}  // namespace
}  // namespace inkstream::kernels

namespace inkstream::kernels {
namespace {

// Keys/values of one group in every element type (bf16 = the fp32 values
// rounded, int8 = them quantized per vector, so the reference sees exactly
// what the kernel reads).
struct KvData {
  std::vector<float> kp, vp, kt, vt;
  std::vector<std::uint16_t> kp16, vp16, kt16, vt16;
  std::vector<std::int8_t> kp8, vp8, kt8, vt8;
  std::vector<float> kps, vps, kts, vts;  // the int8 vectors' scales
};

std::vector<std::uint16_t> to_bf16(std::vector<float>& v) {
  std::vector<std::uint16_t> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = bf16_to_float(out[i] = float_to_bf16(v[i]));
  return out;
}

void to_q8(const std::vector<float>& v, std::int64_t D, std::vector<std::int8_t>& q, std::vector<float>& scales) {
  q.resize(v.size());
  scales.resize(v.size() / D);
  quantize_kv(v.data(), static_cast<std::int64_t>(scales.size()), D, q.data(), scales.data());
}

const char* kv_name(KvType kv) { return kv == KvType::F32 ? " f32" : kv == KvType::BF16 ? " bf16" : " int8"; }

// Random ragged groups (prefix and tail lengths, rows, causal prefill chunks)
// for every instruction set and every KV element type, against the double
// reference; and each row's result is the same alone as beside the others.
TEST(Kernels, AttentionOfEveryIsaMatchesTheReferenceOnRaggedGroups) {
  std::mt19937 rng(9);
  // A large scale spreads the scores over hundreds: most e^(s - max) fall
  // under FLT_MIN (the kernels' exp gives 0 there); a score of ~300 itself
  // is rounded by ~2e-5 in fp32, hence the wider bound there, three times
  // as wide at D 128 (the scores' spread grows with √D: the top of 100 keys
  // ~1,000; 2.3e-4 seen on one draw).
  for (const float scale : {0.125f, 40.0f})
  for (const KvType kv : {KvType::F32, KvType::BF16, KvType::Q8})
    for (const std::int64_t D : {12, 16, 32, 64, 128, 33}) {  // 32, 64, 128: the values summed in registers (4 or 8 vectors)
      const std::int64_t H = 3;
      const double bound = scale > 1 ? (D > 64 ? 3e-4 : 1e-4) : 1e-5;
      struct Spec {
        std::int64_t rows, ldp, P, ldt, L;
        bool causal;
      };
      const Spec specs[] = {{2, 40, 37, 9, 5, false}, {3, 64, 1, 4, 1, false}, {1, 20, 20, 3, 3, false},
                            {5, 50, 44, 0, 0, true},  {1, 8, 1, 0, 0, true},  {4, 110, 100, 2, 2, false}};  // several key blocks
      std::vector<KvData> data;
      std::vector<std::vector<float>> queries;
      std::vector<AttentionGroup> groups;
      std::int64_t total_rows = 0;
      for (const Spec& s : specs) total_rows += s.rows;
      std::vector<float> ref(total_rows * H * D), y(total_rows * H * D), alone(total_rows * H * D);
      data.reserve(std::size(specs));
      queries.reserve(std::size(specs));
      std::int64_t row = 0;
      for (const Spec& s : specs) {
        KvData& d = data.emplace_back();
        d.kp = random_vector(H * s.ldp * D, rng), d.vp = random_vector(H * s.ldp * D, rng);
        d.kt = random_vector(s.rows * H * std::max<std::int64_t>(1, s.ldt) * D, rng);
        d.vt = random_vector(s.rows * H * std::max<std::int64_t>(1, s.ldt) * D, rng);
        d.kp16 = to_bf16(d.kp), d.vp16 = to_bf16(d.vp), d.kt16 = to_bf16(d.kt), d.vt16 = to_bf16(d.vt);
        to_q8(d.kp, D, d.kp8, d.kps), to_q8(d.vp, D, d.vp8, d.vps), to_q8(d.kt, D, d.kt8, d.kts), to_q8(d.vt, D, d.vt8, d.vts);
        queries.push_back(random_vector(s.rows * H * D, rng));
        auto pick = [&](const std::vector<float>& f, const std::vector<std::uint16_t>& b, const std::vector<std::int8_t>& q) {
          return kv == KvType::F32 ? static_cast<const void*>(f.data()) : kv == KvType::BF16 ? static_cast<const void*>(b.data()) : q.data();
        };
        const bool q8 = kv == KvType::Q8;
        groups.push_back({queries.back().data(), ref.data() + row * H * D, s.rows, pick(d.kp, d.kp16, d.kp8), pick(d.vp, d.vp16, d.vp8),
                          s.ldp, s.P, s.L ? pick(d.kt, d.kt16, d.kt8) : nullptr, s.L ? pick(d.vt, d.vt16, d.vt8) : nullptr, s.ldt, s.L,
                          s.causal, q8 ? d.kps.data() : nullptr, q8 ? d.vps.data() : nullptr,
                          q8 && s.L ? d.kts.data() : nullptr, q8 && s.L ? d.vts.data() : nullptr});
        row += s.rows;
      }
      attention_decode_reference(groups, H, D, scale, kv);
      auto with_output = [&](std::vector<float>& out) {
        auto g = groups;
        std::int64_t r = 0;
        for (std::size_t i = 0; i < g.size(); ++i) {
          g[i].y = out.data() + r * H * D;
          r += g[i].rows;
        }
        return g;
      };
      std::fill(y.begin(), y.end(), NAN);
      attention_decode(with_output(y), H, D, scale, kv);
      EXPECT_LT(max_error(y, ref, 1), bound) << "dispatch, D " << D << " scale " << scale << kv_name(kv);
      for (const LinearIsa& isa : available_isas()) {
        SCOPED_TRACE(std::string(isa.name) + kv_name(kv) + " D " + std::to_string(D) + " scale " + std::to_string(scale));
        std::fill(y.begin(), y.end(), NAN);
        attention_decode_with(isa, with_output(y), H, D, scale, kv);
        EXPECT_LT(max_error(y, ref, 1), bound);
        // Each non-causal row alone (a group of one with its own tail row).
        auto together = with_output(y);
        auto single = with_output(alone);
        for (std::size_t i = 0; i < together.size(); ++i) {
          if (together[i].causal) continue;
          const std::size_t elem = kv == KvType::F32 ? 4 : kv == KvType::BF16 ? 2 : 1;
          for (std::int64_t r = 0; r < together[i].rows; ++r) {
            AttentionGroup one = single[i];
            one.rows = 1;
            one.q = together[i].q + r * H * D;
            one.y = single[i].y + r * H * D;
            if (one.kt) {
              one.kt = static_cast<const char*>(together[i].kt) + r * H * one.ldt * D * elem;
              one.vt = static_cast<const char*>(together[i].vt) + r * H * one.ldt * D * elem;
            }
            if (one.kt_scales) {
              one.kt_scales = together[i].kt_scales + r * H * one.ldt;
              one.vt_scales = together[i].vt_scales + r * H * one.ldt;
            }
            attention_decode_with(isa, {one}, H, D, scale, kv);
            for (std::int64_t e = 0; e < H * D; ++e) ASSERT_EQ(one.y[e], together[i].y[r * H * D + e]) << "group " << i << " row " << r;
          }
        }
      }
    }
}

// int8 keys/values: each vector within half a step of its scale, by the
// weights' rule (a zero vector scale 0, a NaN one a NaN scale), whatever
// the vectors beside it.
TEST(Kernels, KeysAndValuesQuantizePerVector) {
  std::mt19937 rng(4);
  const std::int64_t D = 64, count = 5;
  std::vector<float> x = random_vector(count * D, rng);
  for (std::int64_t d = 0; d < D; ++d) x[D + d] = 0.0f;  // vector 1: zero
  x[2 * D + 7] = 1000.0f;                                 // vector 2: an outlier
  x[3 * D + 3] = NAN;                                      // vector 3: a NaN
  std::vector<std::int8_t> q(count * D);
  std::vector<float> s(count);
  quantize_kv(x.data(), count, D, q.data(), s.data());
  EXPECT_EQ(s[1], 0.0f);
  EXPECT_TRUE(std::isnan(s[3]));
  EXPECT_FLOAT_EQ(s[2], 1000.0f / 127);
  for (const std::int64_t i : {0, 2, 4}) {
    float top = 0;
    for (std::int64_t d = 0; d < D; ++d) top = std::max(top, std::abs(x[i * D + d]));
    EXPECT_FLOAT_EQ(s[i], top / 127);
    for (std::int64_t d = 0; d < D; ++d) ASSERT_LE(std::abs(q[i * D + d] * s[i] - x[i * D + d]), s[i] / 2 * 1.0001f) << i << " " << d;
  }
  std::vector<std::int8_t> q4(D);
  float s4;
  quantize_kv(x.data() + 4 * D, 1, D, q4.data(), &s4);
  EXPECT_EQ(s4, s[4]);
  EXPECT_TRUE(std::equal(q4.begin(), q4.end(), q.begin() + 4 * D));
}

}  // namespace
}  // namespace inkstream::kernels

namespace inkstream::kernels {
namespace {

// bf16 products of every instruction set (the widening ones and AVX-512
// BF16's dot products) against the double reference, on odd shapes, in both
// forms: x · wᵀ, and the Conv1D form x · w with k-pair-packed weights (odd K
// included: its last pair has a zero partner). The result is rounded once
// to bf16, so they agree within a bf16 step.
TEST(Kernels, Bf16ProductsOfEveryIsaMatchTheReference) {
  for (const LinearIsa& isa : available_isas()) {
    SCOPED_TRACE(isa.bf16_name);
    std::mt19937 rng(11);
    for (const Shape& s : kShapes) {
      SCOPED_TRACE(std::to_string(s.M) + "x" + std::to_string(s.K) + "x" + std::to_string(s.N));
      auto xf = random_vector(s.M * s.K, rng), wf = random_vector(s.N * s.K, rng), bf = random_vector(s.N, rng);
      const auto x = to_bf16(xf), w = to_bf16(wf), b = to_bf16(bf);  // w is (N, K) for nt, (K, N) for nn
      auto expect_near = [&](const std::vector<std::uint16_t>& y, const std::vector<std::uint16_t>& ref, const char* form) {
        for (std::size_t i = 0; i < y.size(); ++i) {
          const float got = bf16_to_float(y[i]), want = bf16_to_float(ref[i]);
          ASSERT_LE(std::abs(got - want), std::abs(want) / 128 + 1e-3f * std::sqrt(static_cast<float>(s.K)))
              << form << " element " << i;
        }
      };
      std::vector<std::uint16_t> y(s.M * s.N, 0x7fc0), ref(s.M * s.N);
      isa.nt_bf16(x.data(), w.data(), b.data(), y.data(), s.M, s.K, s.N, 0, s.N);
      linear_nt_bf16_reference(x.data(), w.data(), b.data(), ref.data(), s.M, s.K, s.N);
      expect_near(y, ref, "nt");

      std::vector<std::uint32_t> packed((s.K + 1) / 2 * s.N);
      pack_bf16_pairs(w.data(), packed.data(), s.K, s.N);
      std::fill(y.begin(), y.end(), 0x7fc0);
      isa.nn_bf16(x.data(), packed.data(), b.data(), y.data(), s.M, s.K, s.N, 0, s.N);
      linear_nn_bf16_reference(x.data(), w.data(), b.data(), ref.data(), s.M, s.K, s.N);
      expect_near(y, ref, "nn");
      // A split at a column block gives the same columns.
      if (s.N > isa.nn_block) {
        std::vector<std::uint16_t> part(s.M * s.N, 0);
        isa.nn_bf16(x.data(), packed.data(), b.data(), part.data(), s.M, s.K, s.N, isa.nn_block, s.N);
        for (std::int64_t m = 0; m < s.M; ++m)
          for (std::int64_t n = isa.nn_block; n < s.N; ++n) ASSERT_EQ(part[m * s.N + n], y[m * s.N + n]);
      }
    }
  }
}

TEST(Kernels, ABf16RowIsTheSameWhateverElseIsInTheBatch) {
  const std::int64_t K = 200, N = 301, M = 30;
  std::mt19937 rng(4);
  auto xf = random_vector(M * K, rng), wf = random_vector(K * N, rng), bf = random_vector(N, rng);
  const auto x = to_bf16(xf), w = to_bf16(wf), b = to_bf16(bf);
  std::vector<std::uint16_t> all(M * N), all_nn(M * N);
  std::vector<std::uint32_t> packed(K / 2 * N);
  pack_bf16_pairs(w.data(), packed.data(), K, N);
  linear_nt_bf16(x.data(), w.data(), b.data(), all.data(), M, K, N);
  linear_nn_bf16(x.data(), packed.data(), b.data(), all_nn.data(), M, K, N);
  const int threads = at::get_num_threads();
  for (const int t : {1, 2}) {
    at::set_num_threads(t);
    for (std::int64_t rows = 1; rows <= M; rows += 6)
      for (std::int64_t first = 0; first + rows <= M; first += 7) {
        std::vector<std::uint16_t> y(rows * N), y_nn(rows * N);
        linear_nt_bf16(x.data() + first * K, w.data(), b.data(), y.data(), rows, K, N);
        linear_nn_bf16(x.data() + first * K, packed.data(), b.data(), y_nn.data(), rows, K, N);
        for (std::int64_t i = 0; i < rows * N; ++i) {
          ASSERT_EQ(y[i], all[first * N + i]) << "nt rows " << first << "+" << rows;
          ASSERT_EQ(y_nn[i], all_nn[first * N + i]) << "nn rows " << first << "+" << rows;
        }
      }
  }
  at::set_num_threads(threads);
}

}  // namespace
}  // namespace inkstream::kernels

namespace inkstream::kernels {
namespace {

// fp16 bits of v (rounded), and v replaced by the value they hold.
std::vector<std::uint16_t> to_f16(std::vector<float>& v) {
  std::vector<std::uint16_t> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = c10::detail::fp16_ieee_to_fp32_value(out[i] = c10::detail::fp16_ieee_from_fp32_value(v[i]));
  return out;
}

// A (K, N) matrix quantized for linear_q8, with the values it stands for.
struct Q8Data {
  std::vector<std::uint32_t> quads;
  std::vector<float> scales, values;
  Q8Matrix matrix() const { return {quads.data(), scales.data()}; }
};
Q8Data quantize(const std::vector<float>& w, std::int64_t K, std::int64_t N, bool transposed = false) {
  Q8Data d{std::vector<std::uint32_t>(q8_quads_size(K, N)), std::vector<float>(q8_blocks(K) * N), std::vector<float>(K * N)};
  quantize_q8(w.data(), transposed ? 1 : N, transposed ? K : 1, d.quads.data(), d.scales.data(), K, N);
  dequantize_q8(d.matrix(), d.values.data(), K, N);
  return d;
}

TEST(Kernels, Int8QuantizationIsWithinHalfAStepOfEveryWeight) {
  std::mt19937 rng(5);
  const std::int64_t K = 70, N = 45;  // a partial block and a partial quad at the end of k
  auto w = random_vector(K * N, rng);
  for (std::int64_t k = 0; k < 32; ++k) w[k * N] = 0.0f;  // an all-zero block
  w[5 * N + 7] = 1e4f;                                    // an outlier
  const Q8Data d = quantize(w, K, N);
  for (std::int64_t k = 0; k < K; ++k)
    for (std::int64_t n = 0; n < N; ++n) {
      const float scale = d.scales[q8_scale_index(k / kQ8Block, n, K, N)];
      ASSERT_LE(std::abs(d.values[k * N + n] - w[k * N + n]), scale / 2 * 1.0001f) << k << "," << n;
    }
  // The transposed form (an (N, K) matrix stored as its (K, N) transpose)
  // holds the same values.
  std::vector<float> t(K * N);
  for (std::int64_t k = 0; k < K; ++k)
    for (std::int64_t n = 0; n < N; ++n) t[n * K + k] = w[k * N + n];
  EXPECT_EQ(quantize(t, K, N, /*transposed=*/true).values, d.values);
  // A column is what an embedding lookup reads.
  std::vector<float> column(K);
  dequantize_q8_column(d.matrix(), 7, column.data(), K, N);
  for (std::int64_t k = 0; k < K; ++k) ASSERT_EQ(column[k], d.values[k * N + 7]);
}

// The panel-by-panel quantizer gives the column-by-column reference's bits,
// both layouts, on shapes with partial blocks, quads and panels, with
// zero, NaN, infinite and outlying blocks.
TEST(Kernels, Int8QuantizationMatchesTheReferenceBitForBit) {
  std::mt19937 rng(11);
  for (const auto& [K, N] : {std::pair<std::int64_t, std::int64_t>{70, 45}, {32, 16}, {100, 17}, {7, 3}, {768, 50}}) {
    auto w = random_vector(K * N, rng);
    for (std::int64_t k = 0; k < std::min<std::int64_t>(K, 32); ++k) w[k * N] = 0.0f;
    if (N > 2) {
      w[std::min<std::int64_t>(K - 1, 5) * N + 1] = std::numeric_limits<float>::quiet_NaN();
      w[(K - 1) * N + 2] = std::numeric_limits<float>::infinity();
    }
    w[(K / 2) * N + N - 1] = 3e4f;
    if (N > 3)  // a block too small for 127 / max (scale 0)
      for (std::int64_t k = 0; k < std::min<std::int64_t>(K, 32); ++k) w[k * N + 3] = 1e-38f * static_cast<float>(k % 3);
    for (const bool transposed : {false, true}) {
      std::vector<float> src = w;
      if (transposed)
        for (std::int64_t k = 0; k < K; ++k)
          for (std::int64_t n = 0; n < N; ++n) src[n * K + k] = w[k * N + n];
      const std::int64_t ks = transposed ? 1 : N, ns = transposed ? K : 1;
      std::vector<std::uint32_t> quads(q8_quads_size(K, N), 7), ref_quads(q8_quads_size(K, N), 9);
      std::vector<float> scales(q8_blocks(K) * N, 7.0f), ref_scales(q8_blocks(K) * N, 9.0f);
      quantize_q8(src.data(), ks, ns, quads.data(), scales.data(), K, N);
      quantize_q8_reference(src.data(), ks, ns, ref_quads.data(), ref_scales.data(), K, N);
      EXPECT_EQ(quads, ref_quads) << K << "x" << N << (transposed ? " transposed" : "");
      ASSERT_EQ(scales.size(), ref_scales.size());
      EXPECT_EQ(0, std::memcmp(scales.data(), ref_scales.data(), scales.size() * sizeof(float)))  // (NaN scales compare by bits)
          << K << "x" << N << (transposed ? " transposed" : "");
      // From bf16 bits: the same as from their exact fp32 widening.
      std::vector<std::uint16_t> bf16(src.size());
      std::vector<float> widened(src.size());
      for (std::size_t i = 0; i < src.size(); ++i) {
        bf16[i] = float_to_bf16(src[i]);
        widened[i] = bf16_to_float(bf16[i]);
      }
      quantize_q8_bf16(bf16.data(), ks, ns, quads.data(), scales.data(), K, N);
      quantize_q8_reference(widened.data(), ks, ns, ref_quads.data(), ref_scales.data(), K, N);
      EXPECT_EQ(quads, ref_quads) << K << "x" << N << " bf16" << (transposed ? " transposed" : "");
      EXPECT_EQ(0, std::memcmp(scales.data(), ref_scales.data(), scales.size() * sizeof(float)));
    }
  }
}

// Every instruction set's fp16 products against the fp32 reference on the
// widened weights (exact), and the int8 ones against the reference on the
// quantized activations and weights; the int8 kernels of all instruction
// sets agree bit for bit.
TEST(Kernels, Fp16AndInt8ProductsOfEveryIsaMatchTheReference) {
  std::vector<std::pair<std::string, std::vector<std::vector<float>>>> int8_results;
  for (const LinearIsa& isa : available_isas()) {
    SCOPED_TRACE(isa.name);
    std::mt19937 rng(13);
    int8_results.push_back({isa.q8_name, {}});
    std::vector<std::vector<float>>& mine = int8_results.back().second;
    for (const Shape& s : kShapes) {
      SCOPED_TRACE(std::to_string(s.M) + "x" + std::to_string(s.K) + "x" + std::to_string(s.N));
      const auto x = random_vector(s.M * s.K, rng), b = random_vector(s.N, rng);
      auto w16 = random_vector(s.K * s.N, rng);
      const auto bits = to_f16(w16);  // w16: the fp16 values
      const Q8Data q8 = quantize(random_vector(s.K * s.N, rng), s.K, s.N);
      std::vector<float> y(s.M * s.N), ref(s.M * s.N);
      auto check = [&](const char* what, double tolerance) {
        EXPECT_LT(max_error(y, ref, s.K), tolerance) << what;
        std::fill(y.begin(), y.end(), NAN);
      };
      isa.nn_f16(x.data(), {bits.data()}, b.data(), y.data(), s.M, s.K, s.N, 0, s.N);
      linear_nn_f32_reference(x.data(), w16.data(), b.data(), ref.data(), s.M, s.K, s.N);
      check("nn fp16", 2e-5);
      isa.nt_f16(x.data(), {bits.data()}, nullptr, y.data(), s.M, s.K, s.N, 0, s.N);
      linear_nt_f32_reference(x.data(), w16.data(), nullptr, ref.data(), s.M, s.K, s.N);
      check("nt fp16", 2e-5);
      // int8 through the dispatcher's quantization of x, on this ISA.
      linear_q8_with(isa.q8, x.data(), q8.matrix(), b.data(), y.data(), s.M, s.K, s.N);
      mine.push_back(y);
      linear_q8_reference(x.data(), q8.values.data(), b.data(), ref.data(), s.M, s.K, s.N);
      check("int8", 2e-5);
    }
  }
  for (const auto& [name, results] : int8_results) EXPECT_EQ(results, int8_results.front().second) << name;
}

// The panel layout of fp16 layer matrices changes where weights are read
// from, not the operations: the same outputs bit for bit as row-major, on
// every instruction set, for decoding rows and prompt chunks (> 64 rows:
// the packed-strips path) alike.
TEST(Kernels, Fp16PanelsGiveTheRowMajorResultsBitForBit) {
  for (const LinearIsa& isa : available_isas()) {
    SCOPED_TRACE(isa.name);
    std::mt19937 rng(21);
    for (const auto& [M, K, N] : {std::tuple<std::int64_t, std::int64_t, std::int64_t>{1, 37, 64}, {3, 200, 192}, {24, 129, 128},
                                 {70, 96, 320}, {5, 50, 96}}) {
      SCOPED_TRACE(std::to_string(M) + "x" + std::to_string(K) + "x" + std::to_string(N));
      const auto x = random_vector(M * K, rng), b = random_vector(N, rng);
      auto w16 = random_vector(K * N, rng);
      const auto bits = to_f16(w16);
      std::vector<std::uint16_t> panels(bits.size());  // laid out by the kernels' index (layers::pack_f16_panels at load)
      for (std::int64_t k = 0; k < K; ++k)
        for (std::int64_t n = 0; n < N; ++n) panels[f16_panel_index(k, n, K)] = bits[k * N + n];
      std::vector<float> rows(M * N), paneled(M * N);
      isa.nn_f16(x.data(), {bits.data()}, b.data(), rows.data(), M, K, N, 0, N);
      isa.nn_f16(x.data(), {panels.data(), true}, b.data(), paneled.data(), M, K, N, 0, N);
      EXPECT_EQ(paneled, rows);
      // a column range starting inside the matrix (how threads split it)
      std::fill(paneled.begin(), paneled.end(), 0.0f);
      isa.nn_f16(x.data(), {panels.data(), true}, b.data(), paneled.data(), M, K, N, 64, N);
      for (std::int64_t m = 0; m < M; ++m)
        for (std::int64_t n = 64; n < N; ++n) ASSERT_EQ(paneled[m * N + n], rows[m * N + n]) << m << "," << n;
    }
  }
}

TEST(Kernels, Fp16AndInt8RowsAreTheSameWhateverElseIsInTheBatch) {
  const std::int64_t K = 200, N = 301, M = 80;  // both sides of the fp16 packed-strips switch (64 rows)
  std::mt19937 rng(6);
  const auto x = random_vector(M * K, rng), b = random_vector(N, rng);
  auto w16 = random_vector(K * N, rng);
  const auto bits = to_f16(w16);
  const Q8Data q8 = quantize(random_vector(K * N, rng), K, N);
  using Product = std::function<void(const float*, float*, std::int64_t)>;
  const std::pair<const char*, Product> products[] = {
      {"nn fp16", [&](const float* xs, float* y, std::int64_t rows) { linear_nn_f16(xs, {bits.data()}, b.data(), y, rows, K, N); }},
      {"nt fp16", [&](const float* xs, float* y, std::int64_t rows) { linear_nt_f16(xs, {bits.data()}, b.data(), y, rows, K, N); }},
      {"int8", [&](const float* xs, float* y, std::int64_t rows) { linear_q8(xs, q8.matrix(), b.data(), y, rows, K, N); }},
  };
  const int threads = at::get_num_threads();
  for (const auto& [name, product] : products) {
    SCOPED_TRACE(name);
    std::vector<float> all(M * N);
    product(x.data(), all.data(), M);
    for (const int t : {1, 2}) {
      at::set_num_threads(t);
      for (std::int64_t rows = 1; rows <= M; rows += 13)
        for (std::int64_t first = 0; first + rows <= M; first += 11) {
          std::vector<float> y(rows * N);
          product(x.data() + first * K, y.data(), rows);
          for (std::int64_t i = 0; i < rows * N; ++i) ASSERT_EQ(y[i], all[first * N + i]) << first << "+" << rows << " threads " << t;
        }
    }
    at::set_num_threads(threads);
  }
}

// Every instruction set quantizes activations to quantize_block's bits:
// ties rounded to even, blocks whose maximum is zero, tiny, infinite or
// NaN, a partial last block, huge and denormal values.
TEST(Kernels, EveryIsaQuantizesActivationsAsTheReference) {
  std::mt19937 rng(12);
  for (const std::int64_t K : {32, 100, 768, 3075}) {
    const std::int64_t M = 3, blocks = q8_blocks(K), ld = blocks * kQ8Block;
    std::vector<float> x = random_vector(M * K, rng);
    auto block = [&](std::int64_t m, std::int64_t b) { return x.data() + m * K + b * kQ8Block; };
    if (blocks > 8) {
      std::fill(block(0, 1), block(0, 2), 0.0f);
      block(0, 2)[5] = std::numeric_limits<float>::quiet_NaN();
      block(0, 3)[31] = -std::numeric_limits<float>::infinity();
      for (int i = 0; i < 32; ++i) block(0, 4)[i] = 1e-38f * static_cast<float>(i);  // 127 / max overflows
      for (int i = 0; i < 32; ++i) block(0, 5)[i] = static_cast<float>(i) - 15.5f;  // |v| largest at both ends, one negative
      block(0, 6)[0] = 127.0f;  // inv = 1: every x.5 below is a tie
      for (int i = 1; i < 32; ++i) block(0, 6)[i] = static_cast<float>(i) * (i % 2 ? 0.5f : -0.5f);
      for (int i = 0; i < 32; ++i) block(1, 7)[i] = 3e38f * (i % 3 ? 1.0f : -0.9f);
      for (int i = 0; i < 32; ++i) block(1, 8)[i] = 1e-40f * static_cast<float>(i + 1);  // denormals: 127 / max overflows too
    }
    std::vector<std::int8_t> ref_q(M * ld), q(M * ld);
    std::vector<float> ref_scales(M * blocks), scales(M * blocks);
    std::vector<std::int32_t> ref_offsets(M * blocks), offsets(M * blocks);
    quantize_q8_rows_with(nullptr, x.data(), M, K, ref_q.data(), ref_scales.data(), ref_offsets.data());
    for (const LinearIsa& isa : available_isas()) {
      if (!isa.quantize_q8) continue;
      std::fill(q.begin(), q.end(), std::int8_t{0});
      quantize_q8_rows_with(isa.quantize_q8, x.data(), M, K, q.data(), scales.data(), offsets.data());
      EXPECT_EQ(q, ref_q) << isa.name << " K=" << K;
      EXPECT_EQ(std::memcmp(scales.data(), ref_scales.data(), scales.size() * sizeof(float)), 0) << isa.name << " K=" << K;
      EXPECT_EQ(offsets, ref_offsets) << isa.name << " K=" << K;
    }
    if (blocks > 8) {
      EXPECT_TRUE(std::isnan(ref_scales[2]));
      EXPECT_EQ(ref_scales[4], 0.0f);
      EXPECT_EQ(ref_q[6 * kQ8Block + 1], 0);  // 0.5 -> 0
      EXPECT_EQ(ref_q[6 * kQ8Block + 3], 2);  // 1.5 -> 2
      EXPECT_EQ(ref_q[6 * kQ8Block + 5], 2);  // 2.5 -> 2
    }
  }
}

// AMX tiles take blocks of 16 rows and leave the rest to AVX-512 VNNI: a
// row's result is the same whichever path it takes, wherever it sits in the
// batch and however many threads split the columns.
TEST(Kernels, Int8RowsInAmxTilesAreTheSameWhateverElseIsInTheBatch) {
  if (!request_amx_tile_state() || !amx_int8_usable()) GTEST_SKIP() << "no AMX-INT8 on this CPU";
  const std::int64_t K = 256, N = 301, M = 70;
  std::mt19937 rng(8);
  const auto x = random_vector(M * K, rng), b = random_vector(N, rng);
  const Q8Data q8 = quantize(random_vector(K * N, rng), K, N);
  std::vector<float> all(M * N), vnni(M * N);
  linear_q8_with(linear_q8_amx(), x.data(), q8.matrix(), b.data(), all.data(), M, K, N);
  linear_q8_with(linear_q8_avx512vnni(), x.data(), q8.matrix(), b.data(), vnni.data(), M, K, N);
  ASSERT_EQ(all, vnni);
  const int threads = at::get_num_threads();
  for (const int t : {1, 2}) {
    at::set_num_threads(t);
    for (std::int64_t rows = 1; rows <= M; rows += 9)
      for (std::int64_t first = 0; first + rows <= M; first += 7) {
        std::vector<float> y(rows * N);
        linear_q8_with(linear_q8_amx(), x.data() + first * K, q8.matrix(), b.data(), y.data(), rows, K, N);
        for (std::int64_t i = 0; i < rows * N; ++i) ASSERT_EQ(y[i], all[first * N + i]) << first << "+" << rows << " threads " << t;
      }
  }
  at::set_num_threads(threads);
}

}  // namespace
}  // namespace inkstream::kernels

namespace inkstream::kernels {
namespace {

// A NaN or an infinite activation makes its row's outputs NaN (as fp32's
// would be: never hidden as finite logits), never an undefined
// float-to-int conversion, and leaves the other rows untouched; blocks too
// small for 127 / max quantize to zeros.
TEST(Kernels, Int8ProductsPropagateNonFiniteActivations) {
  const std::int64_t K = 64, N = 8;
  std::mt19937 rng(9);
  const Q8Data w = quantize(random_vector(K * N, rng), K, N);
  auto x = random_vector(4 * K, rng);
  x[3] = NAN;
  x[K + 40] = INFINITY;
  for (std::int64_t k = 0; k < K; ++k) x[3 * K + k] = 1e-38f * static_cast<float>(k % 3);
  std::vector<float> y(4 * N), clean(N);
  linear_q8(x.data(), w.matrix(), nullptr, y.data(), 4, K, N);
  linear_q8(x.data() + 2 * K, w.matrix(), nullptr, clean.data(), 1, K, N);
  for (std::int64_t n = 0; n < N; ++n) {
    EXPECT_TRUE(std::isnan(y[n])) << n;
    EXPECT_TRUE(std::isnan(y[N + n])) << n;
    EXPECT_EQ(y[2 * N + n], clean[n]);
    EXPECT_EQ(y[3 * N + n], 0.0f) << n;  // the tiny row: zeros
  }
}

}  // namespace
}  // namespace inkstream::kernels
