#include "inkstream/training/evaluation.h"

#include <torch/types.h>

#include <c10/core/InferenceMode.h>

#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>

namespace inkstream::training {

std::vector<std::uint64_t> evaluation_offsets(std::uint64_t tokens, std::int64_t len, std::int64_t n) {
  const std::uint64_t span = tokens - static_cast<std::uint64_t>(len);  // starts in [0, span)
  std::vector<std::uint64_t> out;
  for (std::int64_t i = 0; i < n; ++i) out.push_back(span * static_cast<std::uint64_t>(i) / static_cast<std::uint64_t>(n));
  return out;
}

torch::Tensor token_windows(const TokenStream& stream, const std::vector<std::uint64_t>& offsets, std::int64_t len) {
  torch::Tensor out = torch::empty({static_cast<std::int64_t>(offsets.size()), len + 1}, torch::kLong);
  auto* p = out.data_ptr<std::int64_t>();
  for (std::size_t i = 0; i < offsets.size(); ++i)
    stream.read(offsets[i], static_cast<std::size_t>(len + 1), p + i * static_cast<std::size_t>(len + 1));
  return out;
}

Evaluation evaluate(const Gpt2Model& model, const TokenStream& split, const EvaluationOptions& options) {
  if (options.seq_len < 1 || options.windows < 1) throw std::invalid_argument("sequence length and window count must be positive");
  if (split.vocab_size() > model.config().vocab_size)
    throw std::invalid_argument("the dataset's vocabulary (" + std::to_string(split.vocab_size()) + ") is larger than the model's (" +
                                std::to_string(model.config().vocab_size) + ")");
  if (split.size() < 2) throw std::invalid_argument("the split has " + std::to_string(split.size()) + " tokens: nothing to predict");
  const std::int64_t len = std::min({options.seq_len, static_cast<std::int64_t>(split.size()) - 1, model.config().n_positions});
  const auto offsets = evaluation_offsets(split.size(), len, options.windows);
  c10::InferenceMode guard;
  double sum = 0;
  // Through a KV cache of the engine's dtype where that rounds the keys and
  // values (bf16 or int8 ones for fp16 or int8 weights): the numbers a user
  // gets, not only the weights' rounding.
  const bool rounded_cache = model.kv_dtype() != model.dtype();
  for (const std::uint64_t offset : offsets) {  // one window at a time: its logits alone are (len, V)
    const torch::Tensor w = token_windows(split, {offset}, len).to(model.device());  // (1, len + 1)
    std::optional<KvCache> cache;
    if (rounded_cache) cache.emplace(model.config(), 1, len, model.kv_dtype(), model.device());
    const torch::Tensor logits = model.forward(w.narrow(1, 0, len), cache ? &*cache : nullptr)[0].to(torch::kFloat32);  // (len, V)
    sum += at::cross_entropy_loss(logits, w[0].narrow(0, 1, len)).item<double>();
  }
  Evaluation e;
  e.windows = options.windows;
  e.tokens = options.windows * len;
  e.loss = sum / static_cast<double>(options.windows);
  e.perplexity = std::exp(e.loss);
  return e;
}

}  // namespace inkstream::training
