#include "inkstream/model_runtime/generator.h"
#include <torch/types.h>

#include <spdlog/spdlog.h>

#include "inkstream/model_runtime/errors.h"

#if INKSTREAM_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace inkstream {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Eos: return "eos";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Error: return "error";
  }
  return "error";
}

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// Per-alternative decoding state.
struct Row {
  Alternative alt;
  Sampler sampler;
  IncrementalDecoder decoder;
  std::vector<TokenId> context;  // prompt + generated, for the repetition penalty
  std::size_t emitted = 0;       // bytes of alt.text already streamed
  bool finished = false;
};

// Length of the longest suffix of `text` that is a proper prefix of a stop
// string: text that might still become a stop string is held back.
std::size_t held_back(std::string_view text, const std::vector<std::string>& stops) {
  std::size_t best = 0;
  for (const auto& s : stops)
    for (std::size_t len = std::min(s.size() - 1, text.size()); len > best; --len)
      if (text.substr(text.size() - len) == std::string_view(s).substr(0, len)) {
        best = len;
        break;
      }
  return best;
}

// Earliest occurrence of any stop string at or after `from`.
std::size_t find_stop(std::string_view text, const std::vector<std::string>& stops, std::size_t from) {
  std::size_t best = std::string_view::npos;
  for (const auto& s : stops) best = std::min(best, text.find(s, from));
  return best;
}

}  // namespace

Generator::Generator(std::shared_ptr<const Gpt2Model> model, GeneratorLimits limits)
    : model_(std::move(model)), limits_(limits) {}

void Generator::validate(const GenerationRequest& r) const {
  if (r.n < 1 || r.n > limits_.max_n) throw InvalidRequest("n must be between 1 and " + std::to_string(limits_.max_n));
  if (r.max_tokens < 1 || r.max_tokens > limits_.max_tokens)
    throw InvalidRequest("max_tokens must be between 1 and " + std::to_string(limits_.max_tokens));
  if (r.stop.size() > limits_.max_stop_strings)
    throw InvalidRequest("stop: at most " + std::to_string(limits_.max_stop_strings) + " stop strings");
  for (const auto& s : r.stop)
    if (s.empty() || s.size() > limits_.max_stop_length)
      throw InvalidRequest("stop: each stop string must have 1 to " + std::to_string(limits_.max_stop_length) + " bytes");
  r.sampling.validate();
  const auto vocab = model_->config().vocab_size;
  for (const TokenId id : r.prompt)
    if (id < 0 || id >= vocab) throw InvalidRequest("prompt: token id " + std::to_string(id) + " is outside the vocabulary");
}

GenerationResult Generator::generate(const GenerationRequest& request, const StreamCallback& on_token,
                                     const CancellationToken* cancel) const {
  validate(request);
  const ModelConfig& cfg = model_->config();
  const Tokenizer& tok = model_->tokenizer();
  GenerationResult result;

  // Fit the context: keep room for max_tokens, cut the oldest prompt tokens.
  const int max_tokens = static_cast<int>(std::min<std::int64_t>(request.max_tokens, cfg.n_positions - 1));
  std::vector<TokenId> prompt = request.prompt;
  if (prompt.empty()) prompt.push_back(static_cast<TokenId>(cfg.eos_token_id >= 0 ? cfg.eos_token_id : 0));
  const std::size_t room = static_cast<std::size_t>(cfg.n_positions - max_tokens);
  if (prompt.size() > room) {
    result.prompt_tokens_dropped = static_cast<int>(prompt.size() - room);
    prompt.erase(prompt.begin(), prompt.begin() + result.prompt_tokens_dropped);
  }

  std::vector<Row> rows;

  auto finish = [&](Row& row, FinishReason reason) {
    row.finished = true;
    row.alt.finish_reason = reason;
    if (reason != FinishReason::Stop) row.alt.text += row.decoder.flush();
    if (on_token) {
      const std::string_view text = row.alt.text;
      on_token({row.alt.index, text.substr(std::min(row.emitted, text.size())), text, true, reason});
    }
    row.emitted = row.alt.text.size();
  };

  const auto eos = static_cast<TokenId>(cfg.eos_token_id);
  const auto start = Clock::now();
  try {
    rows.reserve(static_cast<std::size_t>(request.n));
    for (int i = 0; i < request.n; ++i)
      rows.push_back({Alternative{i, {}, {}, FinishReason::Length}, Sampler(request.sampling, alternative_seed(request.seed, i)),
                      IncrementalDecoder(tok), prompt, 0, false});
    c10::InferenceMode inference;
    const auto dev = model_->device();
    const auto long_opts = torch::TensorOptions().dtype(torch::kLong);
    KvCache cache(cfg, 1, static_cast<std::int64_t>(prompt.size()) + max_tokens, model_->dtype(), dev);

    // Prefill: the prompt once, for all alternatives.
    torch::Tensor ids = torch::tensor(std::vector<std::int64_t>(prompt.begin(), prompt.end()), long_opts).view({1, -1}).to(dev);
    torch::Tensor logits = model_->forward_last(ids, &cache).to(torch::kFloat32).to(torch::kCPU).contiguous();  // (1, V)
    result.timings.prompt_n = static_cast<int>(prompt.size());
    result.timings.prompt_ms = ms_since(start);
    if (request.n > 1) {
      cache.expand_rows(request.n);
      logits = logits.expand({request.n, -1}).contiguous();  // (N, V): same first distribution
    }
    const auto decode_start = Clock::now();
    std::vector<std::int64_t> active(rows.size());  // cache row -> alternative index
    for (std::size_t i = 0; i < rows.size(); ++i) active[i] = static_cast<std::int64_t>(i);

    for (int step = 0;; ++step) {
      // Sample one token for every active alternative from its logits row.
      const auto V = logits.size(1);
      float* base = logits.data_ptr<float>();
      std::vector<std::int64_t> next_ids, still_active;
      for (std::size_t r = 0; r < active.size(); ++r) {
        Row& row = rows[static_cast<std::size_t>(active[r])];
        const TokenId id = row.sampler.sample(std::span<float>(base + r * V, static_cast<std::size_t>(V)), row.context);
        ++result.timings.predicted_n;
        if (id == eos) {
          finish(row, FinishReason::Eos);
          continue;
        }
        row.alt.token_ids.push_back(id);
        row.context.push_back(id);
        const std::size_t old_size = row.alt.text.size();
        row.alt.text += row.decoder.push(id);
        if (!request.stop.empty()) {
          const std::size_t from = old_size >= limits_.max_stop_length ? old_size - limits_.max_stop_length : 0;
          const std::size_t at = find_stop(row.alt.text, request.stop, from);
          if (at != std::string_view::npos) {
            row.alt.text.resize(at);
            finish(row, FinishReason::Stop);
            continue;
          }
        }
        if (request.stop_when && request.stop_when(row.alt.index, row.alt.text)) {
          finish(row, FinishReason::Stop);
          continue;
        }
        if (static_cast<int>(row.alt.token_ids.size()) >= max_tokens) {
          finish(row, FinishReason::Length);
          continue;
        }
        const std::size_t safe = row.alt.text.size() - held_back(row.alt.text, request.stop);
        if (on_token && safe > row.emitted) {
          const std::string_view text = row.alt.text;
          on_token({row.alt.index, text.substr(row.emitted, safe - row.emitted), text, false, FinishReason::Length});
          row.emitted = safe;
        }
        next_ids.push_back(id);
        still_active.push_back(static_cast<std::int64_t>(r));
      }
      if (still_active.empty()) break;
      const bool cancelled = cancel && cancel->cancelled();
      const bool late = request.deadline && Clock::now() >= *request.deadline;
      if (cancelled || late) {
        for (const auto r : still_active) finish(rows[static_cast<std::size_t>(active[r])], cancelled ? FinishReason::Cancelled : FinishReason::Length);
        break;
      }
      // Finished rows leave the batch: they stop costing compute.
      if (still_active.size() != active.size()) {
        cache.keep_rows(still_active);
        std::vector<std::int64_t> remaining;
        for (const auto r : still_active) remaining.push_back(active[r]);
        active = std::move(remaining);
      }
      ids = torch::tensor(next_ids, long_opts).view({-1, 1}).to(dev);                               // (A, 1)
      logits = model_->forward_last(ids, &cache).to(torch::kFloat32).to(torch::kCPU).contiguous();  // (A, V)
    }
    result.timings.predicted_ms = ms_since(decode_start);
  } catch (const std::exception& e) {
    // Out of memory (c10::Error, std::bad_alloc) or a device failure: this
    // request fails, the cache is already released by unwinding, and the
    // model stays usable for the next request.
    std::string what = e.what();
    if (const auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
    result.error = "generation failed: " + what;
    spdlog::error("{}", result.error);
#if INKSTREAM_WITH_CUDA
    if (model_->device().is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
    for (Row& row : rows)
      if (!row.finished) {
        row.finished = true;
        row.alt.finish_reason = FinishReason::Error;
      }
  }
  if (result.timings.predicted_ms > 0)
    result.timings.predicted_per_second = result.timings.predicted_n * 1000.0 / result.timings.predicted_ms;
  for (Row& row : rows) result.alternatives.push_back(std::move(row.alt));
  return result;
}

}  // namespace inkstream
