// The fp32 linear kernels of every instruction set this CPU has, against the
// double-precision reference, on random shapes with odd sizes and tails; and
// their batch invariance (a row's result does not depend on M, its place in
// the batch, the other rows or the thread count).
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/attention.h"
#include "kernels/linear.h"
#include "kernels/linear_isa.h"

namespace inkstream::kernels {
namespace {

std::vector<LinearIsa> available_isas() {
  std::vector<LinearIsa> out = {linear_isa_scalar()};
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) out.push_back(linear_isa_avx2());
  if (__builtin_cpu_supports("avx512f")) out.push_back(linear_isa_avx512());
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
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(a[i]) - ref[i]));
  return worst / std::sqrt(static_cast<double>(K));
}

struct Shape {
  std::int64_t M, K, N;
};
const Shape kShapes[] = {{1, 1, 1},    {1, 7, 5},     {3, 17, 33},  {8, 64, 32},  {9, 65, 31},  {5, 768, 97},
                         {13, 100, 257}, {1, 256, 768}, {24, 96, 50}, {2, 33, 1000}, {17, 15, 16}, {7, 5, 3}};

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
  const std::int64_t K = 200, N = 301, M = 24;
  std::mt19937 rng(3);
  const auto x = random_vector(M * K, rng), w = random_vector(K * N, rng), b = random_vector(N, rng);
  std::vector<float> all(M * N), all_t(M * N);
  linear_nn_f32(x.data(), w.data(), b.data(), all.data(), M, K, N);
  linear_nt_f32(x.data(), w.data(), nullptr, all_t.data(), M, K, N);
  const int threads = at::get_num_threads();
  for (const int t : {1, 2}) {
    at::set_num_threads(t);
    for (std::int64_t rows = 1; rows <= M; rows += 5)
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

TEST(Kernels, DecodeAttentionOfEveryIsaMatchesTheReference) {
  std::mt19937 rng(9);
  for (const std::int64_t D : {12, 16, 64, 33}) {
    const std::int64_t H = 3, rows = 2, ldp = 40, ldt = 9, P = 37, L = 5;
    const auto q = random_vector(rows * H * D, rng), kp = random_vector(H * ldp * D, rng), vp = random_vector(H * ldp * D, rng);
    const auto kt = random_vector(rows * H * ldt * D, rng), vt = random_vector(rows * H * ldt * D, rng);
    std::vector<float> ref(rows * H * D), y(rows * H * D);
    const float scale = 0.125f;
    AttentionGroup g{q.data(), ref.data(), rows, kp.data(), vp.data(), ldp, P, kt.data(), vt.data(), ldt, L};
    attention_decode_f32_reference({g}, H, D, scale);
    g.y = y.data();
    attention_decode_f32({g}, H, D, scale);
    EXPECT_LT(max_error(y, ref, 1), 1e-5) << "dispatch, D " << D;
    for (const LinearIsa& isa : available_isas()) {
      std::vector<float> scores(P + L), out(D);
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t h = 0; h < H; ++h) {
          isa.attend(q.data() + (r * H + h) * D, D, kp.data() + h * ldp * D, vp.data() + h * ldp * D, D, P,
                     kt.data() + (r * H + h) * ldt * D, vt.data() + (r * H + h) * ldt * D, D, L, scale, scores.data(), out.data());
          for (std::int64_t d = 0; d < D; ++d) EXPECT_NEAR(out[d], ref[(r * H + h) * D + d], 1e-5) << isa.name << " D " << D;
        }
    }
  }
}

}  // namespace
}  // namespace inkstream::kernels
