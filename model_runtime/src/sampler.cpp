#include "inkstream/model_runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "inkstream/model_runtime/errors.h"
#include "kernels/exp_constants.h"

namespace inkstream {

void SamplingParams::validate() const {
  auto bad = [](const std::string& m) { throw InvalidRequest(m); };
  if (!std::isfinite(temperature) || temperature < 0) bad("temperature must be >= 0 (0 = greedy)");
  if (top_k < 0) bad("top_k must be >= 0 (0 = disabled)");
  if (!std::isfinite(top_p) || top_p <= 0 || top_p > 1) bad("top_p must be in (0, 1]");
  if (!std::isfinite(min_p) || min_p < 0 || min_p > 1) bad("min_p must be in [0, 1]");
  if (!std::isfinite(repeat_penalty) || repeat_penalty <= 0) bad("repeat_penalty must be > 0 (1 = off)");
  if (repeat_last_n < -1) bad("repeat_last_n must be >= -1 (-1 = whole context, 0 = off)");
}

std::uint64_t alternative_seed(std::uint64_t seed, std::int64_t index) {
  // splitmix64 of (seed, index): well-spread, independent streams.
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

namespace {

void apply_repeat_penalty(std::span<float> logits, std::span<const TokenId> context, const SamplingParams& p) {
  if (p.repeat_penalty == 1.0 || p.repeat_last_n == 0 || context.empty()) return;
  const std::size_t n = p.repeat_last_n < 0 ? context.size() : std::min<std::size_t>(context.size(), p.repeat_last_n);
  std::unordered_set<TokenId> seen(context.end() - static_cast<std::ptrdiff_t>(n), context.end());
  for (const TokenId id : seen) {
    if (id < 0 || static_cast<std::size_t>(id) >= logits.size()) continue;
    float& l = logits[static_cast<std::size_t>(id)];
    l = l > 0 ? static_cast<float>(l / p.repeat_penalty) : static_cast<float>(l * p.repeat_penalty);
  }
}

// The largest of n logits, NaN passed over (-inf if none): 16 running
// maxima in four vectors of 4 (GCC's vector extensions: the baseline
// x86-64's SSE, which the release build targets; one running maximum
// waited on itself every logit, and plain lanes stayed scalar), then
// theirs. A maximum does not depend on the order.
float block_max(const float* l, std::size_t n) {
  using V4 = float __attribute__((vector_size(16)));
  constexpr float kLow = -std::numeric_limits<float>::infinity();
  V4 acc[4] = {{kLow, kLow, kLow, kLow}, {kLow, kLow, kLow, kLow}, {kLow, kLow, kLow, kLow}, {kLow, kLow, kLow, kLow}};
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 4; ++j) {
      V4 v;
      std::memcpy(&v, l + i + 4 * j, sizeof v);
      acc[j] = v > acc[j] ? v : acc[j];
    }
  float top = kLow;
  for (const V4& a : acc)
    for (int j = 0; j < 4; ++j) top = a[j] > top ? a[j] : top;
  for (; i < n; ++i) top = l[i] > top ? l[i] : top;
  return top;
}

// e^x for 16 lanes of x <= 0, to float precision, with the kernels'
// constants (kernels/exp_constants.h: Cephes' expf), 2^n built in the
// exponent bits. Lanes below kExpLow (e^x under float's smallest normal)
// and NaN lanes give 0. (std::exp in double was 0.5-1 ms of a row's draw
// over 50,257 logits; these are the baseline SSE's vectors, 4 at a time:
// the sampler is not built per instruction set as the kernels are.)
using V16 = float __attribute__((vector_size(64)));
using I16 = std::int32_t __attribute__((vector_size(64)));
// (In and out by reference: a 64-byte vector passed by value has no ABI
// without AVX-512.)
void exp_nonpositive(V16& x) {
  using namespace kernels;
  const V16 in_range = x >= kExpLow ? V16{} + 1.0f : V16{};  // 0 for NaN and underflow
  x = x >= kExpLow ? x : V16{} + kExpLow;
  constexpr float kRound = 12582912.0f;  // 1.5 x 2^23: adding it rounds to an integer
  const V16 t = x * kLog2e + kRound;
  const V16 n = t - kRound;
  const V16 r = (x - n * kLn2Hi) - n * kLn2Lo;
  V16 q = V16{} + kExpP[0];
  for (int i = 1; i < 6; ++i) q = q * r + kExpP[i];
  const V16 er = q * r * r + r + 1.0f;
  const I16 scale_bits = (__builtin_convertvector(n, I16) + 127) << 23;  // 2^n, n in [-126, 0]
  V16 scale;
  std::memcpy(&scale, &scale_bits, sizeof scale);
  x = er * scale * in_range;
}

// The draw's weights of 16 logits: e^((l - top) / T), 1 where l == top (an
// infinite maximum too), 0 for NaN, -inf and, with min-p, below `floor` (the
// weight of the best one is 1: min-p's bound is `min_p` itself).
void draw_weights(const float* l, float top, float inv_t, float floor, V16& w) {
  V16 v;
  std::memcpy(&v, l, sizeof v);
  w = v == top ? V16{} : (v - top) * inv_t;
  exp_nonpositive(w);
  w = w >= floor ? w : V16{};
}

// The logits 16 at a time: lanes(i) points at logits i to i + 15, the last
// partial 16 copied and padded with -inf (weight 0).
class Lanes {
 public:
  static constexpr std::size_t kWidth = 16;
  explicit Lanes(std::span<const float> logits) : logits_(logits), whole_(logits.size() / kWidth * kWidth) {
    std::fill(std::begin(tail_), std::end(tail_), -std::numeric_limits<float>::infinity());
    std::copy(logits.begin() + static_cast<std::ptrdiff_t>(whole_), logits.end(), tail_);
  }
  const float* operator()(std::size_t i) const { return i < whole_ ? logits_.data() + i : tail_; }

 private:
  std::span<const float> logits_;
  std::size_t whole_;
  float tail_[kWidth];
};

// Every id's draw weight (no min-p) into `w` (logits.size() floats).
void vocabulary_weights(std::span<const float> logits, float top, float inv_t, std::vector<float>& w) {
  const Lanes lanes(logits);
  V16 out;
  for (std::size_t i = 0; i < logits.size(); i += Lanes::kWidth) {
    draw_weights(lanes(i), top, inv_t, 0.0f, out);
    for (std::size_t j = 0; j < Lanes::kWidth && i + j < logits.size(); ++j) w[i + j] = out[j];
  }
}

// Whether top-k leaves out part of a vocabulary of `size` ids.
bool top_k_cuts(const SamplingParams& p, std::size_t size) { return p.top_k > 0 && static_cast<std::size_t>(p.top_k) < size; }

TokenId argmax(std::span<const float> logits) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;  // strict: the lowest id wins ties
  return static_cast<TokenId>(best);
}

}  // namespace

std::vector<std::pair<TokenId, double>> Sampler::distribution(std::span<float> logits, std::span<const TokenId> context,
                                                              const SamplingParams& p) {
  return candidates(logits, context, p, /*sorted=*/true);
}

std::vector<std::pair<TokenId, double>> Sampler::candidates(std::span<float> logits, std::span<const TokenId> context,
                                                            const SamplingParams& p, bool sorted) {
  apply_repeat_penalty(logits, context, p);
  if (p.temperature == 0 || p.top_k == 1) return {{argmax(logits), 1.0}};
  // Candidates sorted by decreasing logit (ties: lower id first).
  auto by_logit = [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; };
  auto usable = [](float l) { return !std::isnan(l) && l != -std::numeric_limits<float>::infinity(); };
  std::vector<std::pair<float, TokenId>> cand;
  if (top_k_cuts(p, logits.size())) {
    // One pass with a heap of the k best so far (its front is the worst of
    // them): most logits cost one comparison, and no copy of the vocabulary
    // (this ran once per row of every decoding step).
    // Once the heap is full, a block of logits none of which beats its
    // worst is passed over after one branch-free maximum: nearly every
    // block after the first few (a comparison per logit was 0.2 ms a row,
    // ~9% of a 16-row decoding step, spent while the other threads waited).
    // A logit equal to the worst loses the tie (its id is higher), and NaN
    // is never the maximum, so the candidates are the same.
    const auto k = static_cast<std::size_t>(p.top_k);
    constexpr std::size_t kBlock = 64;
    cand.reserve(k);
    for (std::size_t i0 = 0; i0 < logits.size(); i0 += kBlock) {
      const std::size_t i1 = std::min(logits.size(), i0 + kBlock);
      if (cand.size() == k && !(block_max(logits.data() + i0, i1 - i0) > cand.front().first)) continue;
      for (std::size_t i = i0; i < i1; ++i) {
        if (!usable(logits[i])) continue;
        const std::pair<float, TokenId> c{logits[i], static_cast<TokenId>(i)};
        if (cand.size() < k) {
          cand.push_back(c);
          std::push_heap(cand.begin(), cand.end(), by_logit);
        } else if (by_logit(c, cand.front())) {
          std::pop_heap(cand.begin(), cand.end(), by_logit);
          cand.back() = c;
          std::push_heap(cand.begin(), cand.end(), by_logit);
        }
      }
    }
    std::sort_heap(cand.begin(), cand.end(), by_logit);
    if (cand.empty()) return {{argmax(logits), 1.0}};
    return truncate(cand, p);
  }
  // No top-k (OpenAI's requests have none): the whole vocabulary, without
  // sorting it (a full sort was 4.5-6 ms a row: a 16-row step of such
  // requests spent 70-100 ms here, on one thread). Each id's weight
  // e^((l - top) / T) comes from the vectorized exp of the whole-vocabulary
  // draw (float precision: ~1e-6 of a probability, far below what a draw can
  // tell; std::exp in double was most of this path's 0.4-0.8 ms a row); an
  // id whose weight underflows (e^-87 of the best one's) is out, like NaN
  // and -inf. The softmax is summed in id order; top-p sorts only the
  // candidates it may keep; without top-p, sample() draws in id order.
  const float top = block_max(logits.data(), logits.size());
  if (!(top > -std::numeric_limits<float>::infinity())) return {{argmax(logits), 1.0}};  // nothing usable
  const auto inv_t = static_cast<float>(1.0 / p.temperature);
  std::vector<float> e(logits.size());
  vocabulary_weights(logits, top, inv_t, e);
  double sum = 0;
  for (const float w : e) sum += w;
  struct Kept {
    std::pair<float, TokenId> c;  // (logit, id), ordered by by_logit
    double prob;
  };
  std::vector<Kept> kept;
  auto by_kept_logit = [&](const Kept& a, const Kept& b) { return by_logit(a.c, b.c); };
  if (p.top_p < 1) {
    // The smallest prefix (in the sorted order) whose mass reaches top_p,
    // sorting only the candidates it can hold: the probabilities' mass by
    // bins of log-probability (an eighth of a unit each, from the most
    // likely); the bins down to the one where the mass reaches top_p hold
    // the prefix. (Growing partial sorts were slower than one full sort
    // for a flat distribution, whose top-p keeps thousands.)
    constexpr int kBins = 512;
    std::vector<std::int16_t> bins(logits.size(), kBins);  // kBins: out
    double mass[kBins] = {};
    for (std::size_t i = 0; i < logits.size(); ++i) {
      if (!(e[i] > 0)) continue;
      const float below = logits[i] == top ? 0.0f : (top - logits[i]) * inv_t;  // >= 0
      bins[i] = static_cast<std::int16_t>(std::min<float>(kBins - 1, below * 8));
      mass[bins[i]] += e[i];
    }
    int last = kBins - 1;
    double acc = 0;
    for (int b = 0; b < kBins; ++b)
      if ((acc += mass[b]) >= p.top_p * sum) {
        last = b;
        break;
      }
    auto walk = [&](int up_to_bin) {
      std::vector<Kept> pool;
      for (std::size_t i = 0; i < logits.size(); ++i)
        if (bins[i] <= up_to_bin) pool.push_back({{logits[i], static_cast<TokenId>(i)}, e[i] / sum});
      std::sort(pool.begin(), pool.end(), by_kept_logit);
      kept.clear();
      double cum = 0;
      for (const Kept& k : pool) {
        kept.push_back(k);
        if ((cum += k.prob) >= p.top_p) return true;
      }
      return false;
    };
    // (The walk's sum runs in another order than the bins': at the edge it
    // may fall short by a rounding, and then takes them all.)
    if (!walk(last) && last < kBins - 1) walk(kBins - 1);
  } else {
    kept.reserve(logits.size());
    for (std::size_t i = 0; i < logits.size(); ++i)
      if (e[i] > 0) kept.push_back({{logits[i], static_cast<TokenId>(i)}, e[i] / sum});
  }
  if (p.min_p > 0) {
    // Less likely than min_p x the most likely one (whose probability is 1 / sum): out.
    const double floor = p.min_p / sum;
    std::erase_if(kept, [&](const Kept& k) { return k.c.first != top && !(k.prob >= floor); });
  }
  // (top-p's are in order already; a draw needs no order.)
  if (p.top_p >= 1 && sorted) std::sort(kept.begin(), kept.end(), by_kept_logit);
  std::vector<std::pair<TokenId, double>> probs;
  probs.reserve(kept.size());
  double total = 0;
  for (const Kept& k : kept) total += k.prob;
  for (const Kept& k : kept) probs.emplace_back(k.c.second, k.prob / total);
  return probs;
}

// top-p and min-p over candidates sorted by decreasing logit.
std::vector<std::pair<TokenId, double>> Sampler::truncate(const std::vector<std::pair<float, TokenId>>& cand, const SamplingParams& p) {
  const std::size_t k = cand.size();
  // Softmax of logits / temperature, in double.
  std::vector<std::pair<TokenId, double>> probs;
  probs.reserve(k);
  const double max_l = cand.front().first / p.temperature;
  double sum = 0;
  for (const auto& [l, id] : cand) {
    const double e = std::exp(l / p.temperature - max_l);
    probs.emplace_back(id, e);
    sum += e;
  }
  for (auto& pr : probs) pr.second /= sum;
  // top-p: the smallest prefix whose mass reaches top_p.
  if (p.top_p < 1) {
    double cum = 0;
    std::size_t keep = 0;
    while (keep < probs.size()) {
      cum += probs[keep++].second;
      if (cum >= p.top_p) break;
    }
    probs.resize(std::max<std::size_t>(1, keep));
  }
  // min-p: drop tokens less likely than min_p x the most likely one.
  if (p.min_p > 0) {
    const double floor = p.min_p * probs.front().second;
    std::size_t keep = 1;
    while (keep < probs.size() && probs[keep].second >= floor) ++keep;
    probs.resize(keep);
  }
  double total = 0;
  for (const auto& pr : probs) total += pr.second;
  for (auto& pr : probs) pr.second /= total;
  return probs;
}

// A draw from the softmax of the whole vocabulary, with or without min-p
// (OpenAI's defaults: no top-k, top_p 1), in three passes and no candidate
// list: the maximum; the weights' sums by blocks of 64 ids; the block the
// uniform falls in, walked id by id. Each pass computes the same weights
// the same way, so the walk finds what the sums counted.
TokenId Sampler::draw_whole_vocabulary(std::span<const float> logits) {
  constexpr std::size_t kLanes = Lanes::kWidth, kBlock = 64;
  const float top = block_max(logits.data(), logits.size());
  if (!(top > -std::numeric_limits<float>::infinity())) return argmax(logits);  // nothing usable
  const auto inv_t = static_cast<float>(1.0 / params_.temperature);
  const auto floor = static_cast<float>(params_.min_p);
  const Lanes lanes(logits);
  auto weights = [&](std::size_t i, V16& w) { draw_weights(lanes(i), top, inv_t, floor, w); };
  std::vector<double> block_sums((logits.size() + kBlock - 1) / kBlock);
  double total = 0;
  for (std::size_t b = 0; b < block_sums.size(); ++b) {
    V16 acc{}, w;
    for (std::size_t i = b * kBlock; i < std::min(logits.size(), (b + 1) * kBlock); i += kLanes) {
      weights(i, w);
      acc += w;
    }
    double sum = 0;
    for (std::size_t j = 0; j < kLanes; ++j) sum += acc[j];
    total += (block_sums[b] = sum);
  }
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * total;  // uniform in [0, total)
  double cum = 0;
  std::size_t b = 0;
  while (b + 1 < block_sums.size() && !(u < cum + block_sums[b])) cum += block_sums[b++];
  // The block's ids in order; a rounding short of u at its end takes its
  // last weighted id (the best one has weight 1, so some block has one).
  TokenId last = -1;
  for (std::size_t i = b * kBlock; i < std::min(logits.size(), (b + 1) * kBlock); i += kLanes) {
    V16 w;
    weights(i, w);
    for (std::size_t j = 0; j < kLanes && i + j < logits.size(); ++j) {
      if (!(w[j] > 0)) continue;
      last = static_cast<TokenId>(i + j);
      if (u < (cum += w[j])) return last;
    }
  }
  return last >= 0 ? last : argmax(logits);
}

TokenId Sampler::sample(std::span<float> logits, std::span<const TokenId> context) {
  const SamplingParams& p = params_;
  if (p.temperature > 0 && !top_k_cuts(p, logits.size()) && p.top_p >= 1) {  // (top_k 1 cuts: greedy)
    apply_repeat_penalty(logits, context, p);
    return draw_whole_vocabulary(logits);
  }
  const auto dist = candidates(logits, context, params_, /*sorted=*/false);
  if (dist.size() == 1) return dist.front().first;
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;  // uniform in [0, 1)
  double cum = 0;
  for (const auto& [id, prob] : dist) {
    cum += prob;
    if (u < cum) return id;
  }
  return dist.back().first;
}

}  // namespace inkstream
