// Dispatch and threading for linear.h: the instruction set is picked once;
// output columns are split over libtorch's intra-op threads (each column is
// computed by one thread, so the split never changes a result).
#include "linear.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "attention.h"
#include "linear_isa.h"

namespace inkstream::kernels {
namespace {

LinearIsa choose() {
  const char* forced = std::getenv("INKSTREAM_KERNELS");
  const bool allow_avx512 = !forced || std::strcmp(forced, "avx512") == 0 || std::strcmp(forced, "auto") == 0;
  const bool allow_avx2 = allow_avx512 || std::strcmp(forced, "avx2") == 0;
  __builtin_cpu_init();
  if (allow_avx512 && __builtin_cpu_supports("avx512f")) return linear_isa_avx512();
  if (allow_avx2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return linear_isa_avx2();
  return linear_isa_scalar();
}

const LinearIsa& isa() {
  static const LinearIsa chosen = choose();  // immutable after the first call
  return chosen;
}

void run(LinearColumns fn, int block, const float* x, const float* w, const float* b, float* y, std::int64_t M,
         std::int64_t K, std::int64_t N) {
  if (M <= 0 || N <= 0) return;
  const std::int64_t blocks = (N + block - 1) / block;
  // Enough work per task to amortise the fork (~64K multiply-adds).
  const std::int64_t grain = std::max<std::int64_t>(1, (1 << 16) / std::max<std::int64_t>(1, M * K * block));
  at::parallel_for(0, blocks, grain, [&](std::int64_t begin, std::int64_t end) {
    fn(x, w, b, y, M, K, N, begin * block, std::min(N, end * block));
  });
}

}  // namespace

void linear_nn_f32(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N) {
  run(isa().nn, isa().nn_block, x, w, b, y, M, K, N);
}

void linear_nt_f32(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N) {
  run(isa().nt, isa().nt_block, x, w, b, y, M, K, N);
}

const char* linear_f32_isa() { return isa().name; }

void attention_decode_f32(const std::vector<AttentionGroup>& groups, std::int64_t H, std::int64_t D, float scale) {
  // Work items: every (group, row, head).
  std::vector<std::int64_t> first_item;
  std::int64_t items = 0, longest = 0;
  for (const AttentionGroup& g : groups) {
    first_item.push_back(items);
    items += g.rows * H;
    longest = std::max(longest, g.P + g.L);
  }
  const AttendRow attend = isa().attend;
  at::parallel_for(0, items, 1, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> scores(static_cast<std::size_t>(longest));
    std::size_t g = 0;
    for (std::int64_t item = begin; item < end; ++item) {
      while (g + 1 < groups.size() && item >= first_item[g + 1]) ++g;
      const AttentionGroup& G = groups[g];
      const std::int64_t local = item - first_item[g], r = local / H, h = local % H;
      attend(G.q + (r * H + h) * D, D, G.kp + h * G.ldp * D, G.vp + h * G.ldp * D, D, G.P, G.kt + (r * H + h) * G.ldt * D,
             G.vt + (r * H + h) * G.ldt * D, D, G.L, scale, scores.data(), G.y + (r * H + h) * D);
    }
  });
}

void attention_decode_f32_reference(const std::vector<AttentionGroup>& groups, std::int64_t H, std::int64_t D, float scale) {
  for (const AttentionGroup& G : groups)
    for (std::int64_t r = 0; r < G.rows; ++r)
      for (std::int64_t h = 0; h < H; ++h) {
        const float* q = G.q + (r * H + h) * D;
        std::vector<const float*> keys, values;
        for (std::int64_t j = 0; j < G.P; ++j) {
          keys.push_back(G.kp + (h * G.ldp + j) * D);
          values.push_back(G.vp + (h * G.ldp + j) * D);
        }
        for (std::int64_t j = 0; j < G.L; ++j) {
          keys.push_back(G.kt + ((r * H + h) * G.ldt + j) * D);
          values.push_back(G.vt + ((r * H + h) * G.ldt + j) * D);
        }
        std::vector<double> s(keys.size());
        double top = -1e300, sum = 0;
        for (std::size_t j = 0; j < keys.size(); ++j) {
          double dot = 0;
          for (std::int64_t d = 0; d < D; ++d) dot += static_cast<double>(q[d]) * keys[j][d];
          top = std::max(top, s[j] = dot * scale);
        }
        for (auto& v : s) sum += (v = std::exp(v - top));
        for (std::int64_t d = 0; d < D; ++d) {
          double y = 0;
          for (std::size_t j = 0; j < keys.size(); ++j) y += s[j] / sum * values[j][d];
          G.y[(r * H + h) * D + d] = static_cast<float>(y);
        }
      }
}

namespace {

// y = x · w + b in double, w[k][n] at w + k * k_stride + n * n_stride.
void linear_reference(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N,
                      std::int64_t k_stride, std::int64_t n_stride) {
  for (std::int64_t m = 0; m < M; ++m)
    for (std::int64_t n = 0; n < N; ++n) {
      double s = b ? b[n] : 0.0;
      for (std::int64_t k = 0; k < K; ++k) s += static_cast<double>(x[m * K + k]) * w[k * k_stride + n * n_stride];
      y[m * N + n] = static_cast<float>(s);
    }
}

}  // namespace

void linear_nn_f32_reference(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K,
                             std::int64_t N) {
  linear_reference(x, w, b, y, M, K, N, N, 1);  // w is (K, N)
}

void linear_nt_f32_reference(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K,
                             std::int64_t N) {
  linear_reference(x, w, b, y, M, K, N, 1, K);  // w is (N, K)
}

}  // namespace inkstream::kernels
