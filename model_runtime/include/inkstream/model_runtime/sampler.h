#pragma once
// Next-token sampling for one sequence, deterministic for a given seed.
//
// Order (as in Hugging Face generate): repetition penalty (llama.cpp
// semantics: each distinct token among the last `repeat_last_n` of the
// context has its logit divided by the penalty when positive, multiplied when
// negative), temperature (0 = greedy, lowest id wins ties), top-k (0 = off),
// top-p, min-p (relative to the most likely token), then one draw.
// The random source is mt19937_64 with our own uniform mapping, both fully
// specified, so the same logits and seed give the same token everywhere.
#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "inkstream/model_runtime/tokenizer.h"

namespace inkstream {

struct SamplingParams {
  double temperature = 0.8;
  int top_k = 40;
  double top_p = 0.95;
  double min_p = 0.0;
  double repeat_penalty = 1.0;
  int repeat_last_n = 64;  // 0 = off, -1 = the whole context

  // Throws InvalidRequest naming the field.
  void validate() const;
};

// The seed of alternative `index` of a request seeded with `seed`.
std::uint64_t alternative_seed(std::uint64_t seed, std::int64_t index);

class Sampler {
 public:
  Sampler(const SamplingParams& params, std::uint64_t seed) : params_(params), rng_(seed) {}

  // `logits` (V floats) is modified in place; `context` is prompt + generated.
  TokenId sample(std::span<float> logits, std::span<const TokenId> context);

  // The distribution a draw is made from, after every transformation: (id,
  // probability) pairs sorted by decreasing probability (greedy -> one pair).
  static std::vector<std::pair<TokenId, double>> distribution(std::span<float> logits, std::span<const TokenId> context,
                                                              const SamplingParams& params);

 private:
  // The distribution's pairs; in id order (not sorted) where neither top-k
  // nor top-p cuts it and `sorted` is false (a draw needs no order).
  static std::vector<std::pair<TokenId, double>> candidates(std::span<float> logits, std::span<const TokenId> context,
                                                            const SamplingParams& params, bool sorted);
  TokenId draw_whole_vocabulary(std::span<const float> logits);
  static std::vector<std::pair<TokenId, double>> truncate(const std::vector<std::pair<float, TokenId>>& cand,
                                                          const SamplingParams& params);
  SamplingParams params_;
  std::mt19937_64 rng_;
};

}  // namespace inkstream
