#include "inkstream/model_runtime/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "inkstream/model_runtime/errors.h"

namespace inkstream {
namespace {

std::set<TokenId> support(std::vector<float> logits, const SamplingParams& p, std::vector<TokenId> context = {}) {
  std::set<TokenId> ids;
  for (const auto& [id, prob] : Sampler::distribution(logits, context, p)) ids.insert(id);
  return ids;
}

// Logits whose softmax (temperature 1) is exactly `probs`.
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

SamplingParams plain() {
  SamplingParams p;
  p.temperature = 1;
  p.top_k = 0;
  p.top_p = 1;
  p.min_p = 0;
  return p;
}

TEST(Sampler, TopK) {
  SamplingParams p = plain();
  p.top_k = 2;
  EXPECT_EQ(support({5, 4, 3, 2, 1}, p), (std::set<TokenId>{0, 1}));
  p.top_k = 0;
  EXPECT_EQ(support({5, 4, 3}, p).size(), 3u);
}

// top-k picks candidates in one pass with a heap, passing over blocks that
// cannot enter it; it must keep exactly the k best of a full sort (ties to
// the lower id, NaN and -inf never), in order.
TEST(Sampler, TopKMatchesAFullSortWithTiesNaNAndInfinity) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> level(-6, 6);
  for (int round = 0; round < 40; ++round) {
    std::vector<float> logits(500);
    for (auto& l : logits) l = static_cast<float>(level(rng)) * 0.5f;  // many ties
    logits[3] = NAN;
    logits[7] = -INFINITY;
    logits[11] = 100;  // one clear winner
    if (round % 2) {   // late in a block that is passed over or not (blocks of 64 once the heap is full)
      logits[300] = NAN;
      logits[449] = INFINITY;
    }
    std::vector<std::pair<float, TokenId>> all;
    for (std::size_t i = 0; i < logits.size(); ++i)
      if (!std::isnan(logits[i]) && logits[i] != -INFINITY) all.emplace_back(logits[i], static_cast<TokenId>(i));
    std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
    for (const int k : {1, 2, 5, 40, 497, 498, 600}) {
      SamplingParams p = plain();
      p.temperature = 0.7;
      p.top_k = k;
      std::vector<float> copy = logits;
      const auto dist = Sampler::distribution(copy, {}, p);
      // k beyond the vocabulary keeps it whole, less the ids whose weight
      // underflows a float (e^-87 of the best's): here all but the best,
      // which leads by 100 / 0.7 or is infinite.
      ASSERT_EQ(dist.size(), k < static_cast<int>(logits.size()) ? std::min<std::size_t>(all.size(), k) : 1) << "k " << k;
      for (std::size_t i = 0; i < dist.size(); ++i) ASSERT_EQ(dist[i].first, all[i].second) << "k " << k << " place " << i;
    }
  }
}

TEST(Sampler, TopPKeepsSmallestPrefixReachingTheMass) {
  SamplingParams p = plain();
  const auto l = logits_of({0.5, 0.3, 0.15, 0.05});
  p.top_p = 0.79;
  EXPECT_EQ(support(l, p), (std::set<TokenId>{0, 1}));
  p.top_p = 0.81;
  EXPECT_EQ(support(l, p), (std::set<TokenId>{0, 1, 2}));
  p.top_p = 0.1;
  EXPECT_EQ(support(l, p), (std::set<TokenId>{0}));
  // Renormalised over the kept tokens.
  p.top_p = 0.79;
  std::vector<float> copy = l;
  const auto dist = Sampler::distribution(copy, {}, p);
  EXPECT_NEAR(dist[0].second, 0.5 / 0.8, 1e-6);
}

// Without top-k the vocabulary is never sorted whole: top-p sorts only what
// the mass bins say it can keep. It must keep what a full sort keeps (the
// same ids in the same order, the same probabilities up to float
// precision), for flat and peaked distributions, ties, NaN and infinities.
TEST(Sampler, WithoutTopKMatchesAFullSort) {
  std::mt19937 rng(11);
  for (int round = 0; round < 60; ++round) {
    const float spread = round % 3 == 0 ? 0.3f : round % 3 == 1 ? 3.0f : 12.0f;  // flat to peaked
    std::normal_distribution<float> level(0.0f, spread);
    std::vector<float> logits(round % 2 ? 3000 : 50257);
    for (auto& l : logits) l = level(rng);
    for (std::size_t i = 0; i < logits.size(); i += 97) logits[i] = logits[i / 2];  // ties
    logits[5] = NAN;
    logits[6] = -INFINITY;
    SamplingParams p = plain();
    p.temperature = round % 4 == 0 ? 0.7 : 1.0;
    p.top_p = std::vector<double>{0.5, 0.9, 0.95, 0.99, 1.0}[round % 5];
    p.min_p = round % 7 == 0 ? 0.01 : 0.0;
    // The reference: everything sorted, softmax in double.
    std::vector<std::pair<float, TokenId>> all;
    for (std::size_t i = 0; i < logits.size(); ++i)
      if (!std::isnan(logits[i]) && logits[i] != -INFINITY) all.emplace_back(logits[i], static_cast<TokenId>(i));
    std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
    const double top = all.front().first / p.temperature;
    double sum = 0;
    for (const auto& [l, id] : all) sum += std::exp(l / p.temperature - top);
    std::vector<std::pair<TokenId, double>> want;
    double cum = 0;
    for (const auto& [l, id] : all) {
      const double pr = std::exp(l / p.temperature - top) / sum;
      if (pr < p.min_p / sum) break;
      want.emplace_back(id, pr);
      if ((cum += pr) >= p.top_p && p.top_p < 1) break;  // (top_p 1 keeps all, whatever the rounding)
    }
    double total = 0;
    for (const auto& w : want) total += w.second;
    std::vector<float> copy = logits;
    auto got = Sampler::distribution(copy, {}, p);
    // The sampler's weights are floats: ids e^-87 or less below the best
    // one underflow and are out. Both lists are compared down to 1e-30.
    std::vector<double> ref(logits.size(), 1.0);  // ids the reference does not keep stay in `got`, to be caught
    for (const auto& [id, pr] : want) ref[static_cast<std::size_t>(id)] = pr / total;
    std::erase_if(want, [&](const auto& w) { return ref[static_cast<std::size_t>(w.first)] < 1e-30; });
    std::erase_if(got, [&](const auto& g) { return ref[static_cast<std::size_t>(g.first)] < 1e-30; });
    ASSERT_EQ(got.size(), want.size()) << "round " << round;
    for (std::size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i].first, want[i].first) << "round " << round << " place " << i;
      // (A float exponent's rounding, ~6e-8 of |x|, is ~5e-6 of e^x at x = -80.)
      ASSERT_NEAR(got[i].second, want[i].second / total, 1e-5 * want[i].second / total) << "round " << round << " place " << i;
    }
  }
}

// With neither top-k, top-p nor min-p a draw walks the vocabulary in id
// order (no sort at all): its draws still follow the softmax.
TEST(Sampler, UnsortedDrawsFollowTheSoftmax) {
  const std::vector<double> probs = {0.05, 0.4, 0.1, 0.3, 0.15};
  Sampler s(plain(), 3);
  std::vector<int> counts(probs.size());
  constexpr int kDraws = 40000;
  for (int i = 0; i < kDraws; ++i) {
    std::vector<float> l = logits_of(probs);
    ++counts[static_cast<std::size_t>(s.sample(l, {}))];
  }
  for (std::size_t i = 0; i < probs.size(); ++i) EXPECT_NEAR(counts[i] / double(kDraws), probs[i], 0.01) << "token " << i;
}

// Without top-k and top-p a draw runs over the whole vocabulary in blocks
// (its own vectorized exp): on 1,003 logits (a partial last block) with NaN,
// -inf, min-p and a temperature, each id's frequency is its softmax's within
// 5 standard deviations, and no excluded id is ever drawn.
TEST(Sampler, WholeVocabularyDrawsFollowTheSoftmax) {
  std::mt19937 rng(9);
  std::normal_distribution<float> level(0.0f, 2.0f);
  std::vector<float> logits(1003);
  for (auto& l : logits) l = std::clamp(level(rng), -5.0f, 5.0f);
  logits[5] = NAN;
  logits[64] = -INFINITY;
  logits[1002] = 6;  // the best, in the partial block
  logits[640] = 5.5f;
  for (const double min_p : {0.0, 0.05}) {
    SamplingParams p = plain();
    p.temperature = 0.7;
    p.min_p = min_p;
    double top = -INFINITY;
    for (const float l : logits) top = std::isnan(l) ? top : std::max<double>(top, l);
    std::vector<double> want(logits.size());
    double sum = 0;
    for (std::size_t i = 0; i < logits.size(); ++i) {
      const double w = std::isnan(logits[i]) ? 0 : std::exp((logits[i] - top) / p.temperature);
      sum += (want[i] = w >= min_p ? w : 0);
    }
    Sampler s(p, 11);
    std::vector<int> counts(logits.size());
    constexpr int kDraws = 60000;
    for (int d = 0; d < kDraws; ++d) {
      std::vector<float> copy = logits;
      ++counts[static_cast<std::size_t>(s.sample(copy, {}))];
    }
    for (std::size_t i = 0; i < logits.size(); ++i) {
      const double q = want[i] / sum;
      if (q == 0) {
        EXPECT_EQ(counts[i], 0) << "id " << i << " min_p " << min_p;
        continue;
      }
      EXPECT_NEAR(counts[i] / double(kDraws), q, 5 * std::sqrt(q * (1 - q) / kDraws) + 1e-4) << "id " << i << " min_p " << min_p;
    }
  }
}

// An infinite logit takes every draw; a vocabulary of NaN and -inf only
// gives the argmax (id 0), as the sorted paths do; the repeat penalty applies.
TEST(Sampler, WholeVocabularyDrawEdges) {
  Sampler s(plain(), 4);
  std::vector<float> inf = {1, 2, INFINITY, 3};
  EXPECT_EQ(s.sample(inf, {}), 2);
  std::vector<float> none = {NAN, -INFINITY, NAN};
  EXPECT_EQ(s.sample(none, {}), 0);
  SamplingParams p = plain();
  p.repeat_penalty = 1e6;  // token 0's logit 2 becomes ~0: p(0) = 1 / (1 + e^2)
  Sampler penalized(p, 5);
  int zeros = 0;
  for (int d = 0; d < 20000; ++d) {
    std::vector<float> l = {2, 2};
    zeros += penalized.sample(l, std::vector<TokenId>{0}) == 0;
  }
  EXPECT_NEAR(zeros / 20000.0, 1 / (1 + std::exp(2.0)), 0.012);
}

TEST(Sampler, MinPIsRelativeToTheBestToken) {
  SamplingParams p = plain();
  p.min_p = 0.5;
  EXPECT_EQ(support(logits_of({0.5, 0.3, 0.2}), p), (std::set<TokenId>{0, 1}));  // 0.2 < 0.25
  p.min_p = 0.3;
  EXPECT_EQ(support(logits_of({0.5, 0.3, 0.2}), p), (std::set<TokenId>{0, 1, 2}));
}

TEST(Sampler, TemperatureSharpens) {
  SamplingParams p = plain();
  p.temperature = 0.5;
  std::vector<float> l = logits_of({0.6, 0.4});
  const auto d = Sampler::distribution(l, {}, p);
  EXPECT_NEAR(d[0].second, 0.36 / 0.52, 1e-6);
}

TEST(Sampler, RepeatPenaltyLlamaCppSemantics) {
  SamplingParams p = plain();
  p.temperature = 0;
  p.repeat_penalty = 2;
  p.repeat_last_n = 64;
  // Positive logits are divided, negative multiplied; each distinct token once.
  std::vector<float> l = {2.0f, -2.0f, 1.5f};
  Sampler::distribution(l, std::vector<TokenId>{0, 1, 0}, p);
  EXPECT_FLOAT_EQ(l[0], 1.0f);
  EXPECT_FLOAT_EQ(l[1], -4.0f);
  EXPECT_FLOAT_EQ(l[2], 1.5f);
  // Only the last repeat_last_n tokens count.
  p.repeat_last_n = 1;
  std::vector<float> l2 = {2.0f, -2.0f, 1.5f};
  EXPECT_EQ(Sampler::distribution(l2, std::vector<TokenId>{0, 1}, p).front().first, 0);
  EXPECT_FLOAT_EQ(l2[0], 2.0f);
  EXPECT_FLOAT_EQ(l2[1], -4.0f);
}

TEST(Sampler, GreedyBreaksTiesTowardsTheLowestId) {
  SamplingParams p = plain();
  p.temperature = 0;
  std::vector<float> l = {1, 3, 3, 2};
  EXPECT_EQ(Sampler(p, 1).sample(l, {}), 1);
}

TEST(Sampler, SameSeedSameDraws) {
  SamplingParams p = plain();
  const std::vector<float> base = logits_of({0.25, 0.25, 0.25, 0.25});
  auto draws = [&](std::uint64_t seed) {
    Sampler s(p, seed);
    std::vector<TokenId> out;
    for (int i = 0; i < 64; ++i) {
      std::vector<float> l = base;
      out.push_back(s.sample(l, {}));
    }
    return out;
  };
  EXPECT_EQ(draws(42), draws(42));
  EXPECT_NE(draws(42), draws(43));
  EXPECT_NE(alternative_seed(42, 0), alternative_seed(42, 1));
  // The draws are spread over all four tokens.
  const auto d = draws(7);
  EXPECT_EQ(std::set<TokenId>(d.begin(), d.end()).size(), 4u);
}

TEST(Sampler, ValidationNamesTheField) {
  auto message = [](SamplingParams p) {
    try {
      p.validate();
    } catch (const InvalidRequest& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  SamplingParams p;
  p.temperature = -1;
  EXPECT_NE(message(p).find("temperature"), std::string::npos);
  p = {};
  p.top_p = 0;
  EXPECT_NE(message(p).find("top_p"), std::string::npos);
  p = {};
  p.top_p = 1.5;
  EXPECT_NE(message(p).find("top_p"), std::string::npos);
  p = {};
  p.top_k = -3;
  EXPECT_NE(message(p).find("top_k"), std::string::npos);
  p = {};
  p.min_p = 2;
  EXPECT_NE(message(p).find("min_p"), std::string::npos);
  p = {};
  p.repeat_penalty = 0;
  EXPECT_NE(message(p).find("repeat_penalty"), std::string::npos);
  EXPECT_EQ(message(SamplingParams{}), "");
}

}  // namespace
}  // namespace inkstream
