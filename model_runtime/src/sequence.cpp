#include "sequence.h"

#include <spdlog/spdlog.h>

#include "inkstream/model_runtime/stop_strings.h"

namespace inkstream {
namespace {

double ms_between(Sequence::Clock::time_point a, Sequence::Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

Sequence::Sequence(GenerationRequest request, std::vector<TokenId> prompt, int prompt_tokens_dropped, int max_tokens,
                   const Tokenizer& tokenizer, TokenId eos, StreamCallback on_token,
                   const CancellationToken* cancel, Engine::DoneCallback on_done)
    : request_(std::move(request)),
      prompt_(std::move(prompt)),
      max_tokens_(max_tokens),
      tokenizer_(tokenizer),
      eos_(eos),
      on_token_(std::move(on_token)),
      cancel_(cancel),
      on_done_(std::move(on_done)) {
  result_.prompt_tokens_dropped = prompt_tokens_dropped;
  rows_.reserve(static_cast<std::size_t>(request_.n));
  for (int i = 0; i < request_.n; ++i) {
    rows_.push_back({Alternative{i, {}, {}, FinishReason::Length}, Sampler(request_.sampling, alternative_seed(request_.seed, i)),
                     IncrementalDecoder(tokenizer_), prompt_, 0, false});
    active_.push_back(i);
  }
}

void Sequence::mark_prefilled(Clock::time_point t) {
  prefilled_at_ = t;
  result_.timings.prompt_n = static_cast<int>(prompt_.size() - static_cast<std::size_t>(reused));
  result_.timings.cache_n = static_cast<int>(reused);
  result_.timings.prompt_ms = ms_between(admitted_at_, t);
}

bool Sequence::end_if_cancelled_or_late(Clock::time_point now) {
  if (cancel_ && cancel_->cancelled()) finish_all(FinishReason::Cancelled);
  else if (prefilled() && request_.deadline && now >= *request_.deadline) finish_all(FinishReason::Length);
  return done();
}

void Sequence::emit(const StreamEvent& e) {
  if (!on_token_) return;
  try {
    on_token_(e);
  } catch (const std::exception& ex) {  // a caller's bug must not take the engine down
    spdlog::error("engine: stream callback failed: {}", ex.what());
  }
}

void Sequence::finish(Row& row, FinishReason reason) {
  row.finished = true;
  row.alt.finish_reason = reason;
  if (reason != FinishReason::Stop && reason != FinishReason::Error) row.alt.text += row.decoder.flush();
  if (reason != FinishReason::Error) {
    const std::string_view text = row.alt.text;
    emit({row.alt.index, text.substr(std::min(row.emitted, text.size())), text, true, reason});
  }
  row.emitted = row.alt.text.size();
}

void Sequence::sample(float* logits, std::int64_t rows, std::int64_t V) {
  const bool shared = !started_;  // right after the prompt: one row of logits for every alternative
  started_ = true;
  std::vector<int> still;
  std::vector<std::int64_t> keep;
  std::vector<TokenId> next;
  std::vector<float> copy;
  for (std::size_t r = 0; r < active_.size(); ++r) {
    Row& row = rows_[static_cast<std::size_t>(active_[r])];
    std::span<float> row_logits;
    if (shared) {
      // Each sampler transforms its logits in place: give each its own copy.
      copy.assign(logits, logits + V);
      row_logits = std::span<float>(copy);
    } else {
      TORCH_CHECK(static_cast<std::int64_t>(r) < rows, "logits rows");
      row_logits = std::span<float>(logits + static_cast<std::int64_t>(r) * V, static_cast<std::size_t>(V));
    }
    const TokenId id = row.sampler.sample(row_logits, row.context);
    ++result_.timings.predicted_n;
    if (id == eos_) {
      finish(row, FinishReason::Eos);
      continue;
    }
    row.alt.token_ids.push_back(id);
    row.context.push_back(id);
    const std::size_t old_size = row.alt.text.size();
    row.alt.text += row.decoder.push(id);
    if (!request_.stop.empty()) {
      const std::size_t at = find_stop(row.alt.text, request_.stop, old_size);
      if (at != std::string_view::npos) {
        row.alt.text.resize(at);
        finish(row, FinishReason::Stop);
        continue;
      }
    }
    if (request_.stop_when && request_.stop_when(row.alt.index, row.alt.text)) {
      finish(row, FinishReason::Stop);
      continue;
    }
    if (static_cast<int>(row.alt.token_ids.size()) >= max_tokens_) {
      finish(row, FinishReason::Length);
      continue;
    }
    const std::size_t safe = row.alt.text.size() - stop_prefix_length(row.alt.text, request_.stop);
    if (safe > row.emitted) {
      const std::string_view text = row.alt.text;
      emit({row.alt.index, text.substr(row.emitted, safe - row.emitted), text, false, FinishReason::Length});
      row.emitted = safe;
    }
    still.push_back(active_[r]);
    keep.push_back(static_cast<std::int64_t>(r));
    next.push_back(id);
  }
  // Finished rows leave the batch: they stop costing compute.
  if (tail && !still.empty() && still.size() != active_.size()) tail->keep_rows(keep);
  active_ = std::move(still);
  next_ids_ = std::move(next);
}

void Sequence::finish_all(FinishReason reason, const std::string& error, const std::string& error_kind) {
  started_ = true;
  if (!error.empty()) result_.error = error;
  if (!error_kind.empty()) result_.error_kind = error_kind;
  for (const int i : active_) {
    Row& row = rows_[static_cast<std::size_t>(i)];
    if (!row.finished) finish(row, reason);
  }
  active_.clear();
  next_ids_.clear();
}

void Sequence::deliver() {
  if (delivered_) return;
  delivered_ = true;
  const auto now = Clock::now();
  if (result_.timings.predicted_n > 0) {
    result_.timings.predicted_ms = ms_between(prefilled_at_, now);
    if (result_.timings.predicted_ms > 0)
      result_.timings.predicted_per_second = result_.timings.predicted_n * 1000.0 / result_.timings.predicted_ms;
  }
  for (Row& row : rows_) result_.alternatives.push_back(std::move(row.alt));
  if (on_done_) {
    try {
      on_done_(std::move(result_));
    } catch (const std::exception& ex) {
      spdlog::error("engine: completion callback failed: {}", ex.what());
    }
  }
}

}  // namespace inkstream
