// Dispatch and threading for attention.h: work items are (group, head),
// split over libtorch's intra-op threads by cost; each item's numbers do
// not depend on the split.
#include "attention.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "bf16.h"
#include "linear_isa.h"

namespace inkstream::kernels {
namespace {

template <class E>
void run(const std::vector<AttentionGroup>& groups, std::int64_t H, std::int64_t D, float scale, AttendRows<E> attend) {
  static_assert(std::is_same_v<E, std::int8_t> || std::is_same_v<E, float> || std::is_same_v<E, std::uint16_t>);
  // Items go to the threads in contiguous runs of about equal cost, not
  // equal count: a serving step's groups have prefixes of ~100 to ~1,000
  // positions, and halves by count left one thread waiting for the other.
  // An item reads its prefix once for all its rows and its rows' tails, and
  // scores every row against both.
  std::vector<std::int64_t> first_item, cost_before;  // cost_before: of the items before each item
  std::int64_t items = 0, total = 0;
  std::size_t scratch = 0;
  for (const AttentionGroup& g : groups) {
    first_item.push_back(items);
    items += H;
    const std::int64_t item_cost = 16 + g.P + g.rows * (g.L + g.P / 4);
    for (std::int64_t h = 0; h < H; ++h, total += item_cost) cost_before.push_back(total);
    scratch = std::max(scratch, static_cast<std::size_t>(g.rows * (g.P + g.L)));
  }
  const std::int64_t runs = std::max(1, at::get_num_threads());
  // The first item of run t: the first whose cost before it reaches t / runs of the total.
  auto run_start = [&](std::int64_t t) {
    return std::partition_point(cost_before.begin(), cost_before.end(), [&](std::int64_t c) { return c * runs < total * t; }) -
           cost_before.begin();
  };
  at::parallel_for(0, runs, 1, [&](std::int64_t t0, std::int64_t t1) {
    std::vector<float> scores(scratch);
    std::size_t g = 0;
    for (std::int64_t item = run_start(t0), end = t1 == runs ? items : run_start(t1); item < end; ++item) {
      while (g + 1 < groups.size() && item >= first_item[g + 1]) ++g;
      const AttentionGroup& G = groups[g];
      const std::int64_t h = item - first_item[g];
      // Head h's streams (a scale per vector: offsets as the data's over D).
      auto at = [&](const void* p, std::int64_t ld) { return p ? static_cast<const E*>(p) + h * ld * D : nullptr; };
      auto scales_at = [&](const float* p, std::int64_t ld) { return p ? p + h * ld : nullptr; };
      const KvStreams<E> kv{at(G.kp, G.ldp),
                            at(G.vp, G.ldp),
                            at(G.kt, G.ldt),
                            at(G.vt, G.ldt),
                            scales_at(G.kp_scales, G.ldp),
                            scales_at(G.vp_scales, G.ldp),
                            scales_at(G.kt_scales, G.ldt),
                            scales_at(G.vt_scales, G.ldt)};
      attend(G.q + h * D, G.y + h * D, H * D, G.rows, kv, G.P, G.causal, H * G.ldt * D, G.L, D, scale, scores.data());
    }
  });
}

float to_float(float f, float) { return f; }
float to_float(std::uint16_t bits, float) { return bf16_to_float(bits); }
float to_float(std::int8_t q, float s) { return static_cast<float>(q) * s; }  // the fp32 product the kernels use

template <class E>
void reference(const std::vector<AttentionGroup>& groups, std::int64_t H, std::int64_t D, float scale) {
  for (const AttentionGroup& G : groups)
    for (std::int64_t r = 0; r < G.rows; ++r)
      for (std::int64_t h = 0; h < H; ++h) {
        const float* q = G.q + (r * H + h) * D;
        const std::int64_t seen = G.causal ? G.P - G.rows + r + 1 : G.P, tail = G.causal ? 0 : G.L;
        std::vector<const E*> keys, values;
        std::vector<float> key_scales, value_scales;  // 1 unless int8
        auto scale_of = [](const float* s, std::int64_t i) { return s ? s[i] : 1.0f; };
        for (std::int64_t j = 0; j < seen; ++j) {
          keys.push_back(static_cast<const E*>(G.kp) + (h * G.ldp + j) * D);
          values.push_back(static_cast<const E*>(G.vp) + (h * G.ldp + j) * D);
          key_scales.push_back(scale_of(G.kp_scales, h * G.ldp + j));
          value_scales.push_back(scale_of(G.vp_scales, h * G.ldp + j));
        }
        for (std::int64_t j = 0; j < tail; ++j) {
          keys.push_back(static_cast<const E*>(G.kt) + ((r * H + h) * G.ldt + j) * D);
          values.push_back(static_cast<const E*>(G.vt) + ((r * H + h) * G.ldt + j) * D);
          key_scales.push_back(scale_of(G.kt_scales, (r * H + h) * G.ldt + j));
          value_scales.push_back(scale_of(G.vt_scales, (r * H + h) * G.ldt + j));
        }
        std::vector<double> s(keys.size());
        double top = -1e300, sum = 0;
        for (std::size_t j = 0; j < keys.size(); ++j) {
          double dot = 0;
          for (std::int64_t d = 0; d < D; ++d) dot += static_cast<double>(q[d]) * to_float(keys[j][d], key_scales[j]);
          top = std::max(top, s[j] = dot * scale);
        }
        for (auto& v : s) sum += (v = std::exp(v - top));
        for (std::int64_t d = 0; d < D; ++d) {
          double y = 0;
          for (std::size_t j = 0; j < keys.size(); ++j) y += s[j] / sum * to_float(values[j][d], value_scales[j]);
          G.y[(r * H + h) * D + d] = static_cast<float>(y);
        }
      }
}

}  // namespace

void attention_decode_with(const LinearIsa& isa, const std::vector<AttentionGroup>& groups, std::int64_t H, std::int64_t D,
                           float scale, KvType kv) {
  switch (kv) {
    case KvType::F32: return run<float>(groups, H, D, scale, isa.attend_f32);
    case KvType::BF16: return run<std::uint16_t>(groups, H, D, scale, isa.attend_bf16);
    case KvType::Q8: return run<std::int8_t>(groups, H, D, scale, isa.attend_q8);
  }
}

void attention_decode(const std::vector<AttentionGroup>& groups, std::int64_t H, std::int64_t D, float scale, KvType kv) {
  attention_decode_with(chosen_isa(), groups, H, D, scale, kv);
}

void attention_decode_reference(const std::vector<AttentionGroup>& groups, std::int64_t H, std::int64_t D, float scale,
                                KvType kv) {
  switch (kv) {
    case KvType::F32: return reference<float>(groups, H, D, scale);
    case KvType::BF16: return reference<std::uint16_t>(groups, H, D, scale);
    case KvType::Q8: return reference<std::int8_t>(groups, H, D, scale);
  }
}

}  // namespace inkstream::kernels
