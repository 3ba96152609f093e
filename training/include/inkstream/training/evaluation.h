#pragma once
// Validation loss and perplexity of a loaded model on a tokenized dataset:
// the trainer's validation measure, run on the serving path (inference mode,
// the CPU kernels and whatever weight format the model was loaded in), so
// that formats can be compared on real text (`inkstream eval`).
#include <cstdint>
#include <vector>

#include "inkstream/model_runtime/gpt2.h"
#include "inkstream/training/token_dataset.h"

namespace inkstream::training {

// Start offsets of n windows of len + 1 tokens spread evenly over a split of
// `tokens` tokens (the trainer's and eval's choice: the same for every run).
std::vector<std::uint64_t> evaluation_offsets(std::uint64_t tokens, std::int64_t len, std::int64_t n);

// (B, T + 1) windows of the stream starting at the given offsets.
at::Tensor token_windows(const TokenStream& stream, const std::vector<std::uint64_t>& offsets, std::int64_t len);

struct EvaluationOptions {
  std::int64_t seq_len = 256;  // tokens predicted per window (clamped to the split and the model's context)
  std::int64_t windows = 160;  // the trainer's default: 20 batches of 8
};

struct Evaluation {
  double loss = 0;        // mean next-token cross-entropy, nats
  double perplexity = 0;  // exp(loss)
  std::int64_t windows = 0, tokens = 0;
};

// Throws std::invalid_argument for a split too small to hold one window.
Evaluation evaluate(const Gpt2Model& model, const TokenStream& split, const EvaluationOptions& options);

}  // namespace inkstream::training
