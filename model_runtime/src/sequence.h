#pragma once
// One request inside the engine: its N alternatives (rows), their samplers
// and streaming decoders, the stop rules, and the state of its prompt's
// evaluation. Owned and driven by the engine's scheduler thread only.
#include <chrono>
#include <memory>
#include <vector>

#include "inkstream/model_runtime/engine.h"
#include "kv_pool.h"

namespace inkstream {

class Sequence {
 public:
  using Clock = std::chrono::steady_clock;

  // `prompt` is already fitted to the context (Engine::submit).
  Sequence(GenerationRequest request, std::vector<TokenId> prompt, int prompt_tokens_dropped, int max_tokens,
           const Tokenizer& tokenizer, TokenId eos, StreamCallback on_token,
           const CancellationToken* cancel, Engine::DoneCallback on_done);

  const std::vector<TokenId>& prompt() const { return prompt_; }
  int n() const { return request_.n; }
  int max_tokens() const { return max_tokens_; }
  bool read_ahead() const { return request_.read_ahead; }

  // Prompt evaluation. `entry` holds the prompt's keys and values; its
  // length is how much of the prompt is evaluated.
  std::shared_ptr<PrefixEntry> entry;
  std::int64_t reused = 0;  // prompt tokens whose keys/values came from the cache
  bool admitted = false;    // holds a lease (entry and decoding-row bytes) in the pool
  bool prefilled() const { return entry && entry->cache.length() == static_cast<std::int64_t>(prompt_.size()); }

  // Decoding: the keys and values of generated tokens, one row per active
  // alternative (in `active()` order).
  std::unique_ptr<KvCache> tail;
  const std::vector<int>& active() const { return active_; }
  const std::vector<TokenId>& next_ids() const { return next_ids_; }  // inputs of the next decode step

  // Samples every active row from `logits` (rows x V floats, one row per
  // active alternative, or a single row shared by all of them right after
  // the prompt), streams, applies the stop rules, and drops finished rows
  // from `tail`.
  void sample(float* logits, std::int64_t rows, std::int64_t V);

  // Ends every unfinished alternative with `reason` (cancellation,
  // deadline, failure: `error` set for Error).
  void finish_all(FinishReason reason, const std::string& error = "", const std::string& error_kind = "");

  bool done() const { return active_.empty() && started_; }
  const std::string& error() const { return result_.error; }
  // Ends it when it was cancelled (Cancelled) or, once its prompt has given
  // the first token, when its deadline has passed (Length). Returns done().
  bool end_if_cancelled_or_late(Clock::time_point now);
  bool cancelled() const { return cancel_ && cancel_->cancelled(); }

  // Timing marks, set by the engine.
  Clock::time_point submitted_at() const { return submitted_at_; }
  void mark_admitted(Clock::time_point t) { admitted_at_ = t; }
  void mark_prefilled(Clock::time_point t);

  // Delivers the result to the caller (once).
  void deliver();

 private:
  struct Row {
    Alternative alt;
    Sampler sampler;
    IncrementalDecoder decoder;
    std::vector<TokenId> context;  // prompt + generated, for the repetition penalty
    std::size_t emitted = 0;       // bytes of alt.text already streamed
    bool finished = false;
  };
  void finish(Row& row, FinishReason reason);
  void emit(const StreamEvent& e);

  GenerationRequest request_;
  std::vector<TokenId> prompt_;
  int max_tokens_;
  const Tokenizer& tokenizer_;
  TokenId eos_;
  StreamCallback on_token_;
  const CancellationToken* cancel_;
  Engine::DoneCallback on_done_;

  std::vector<Row> rows_;
  std::vector<int> active_;
  std::vector<TokenId> next_ids_;
  bool started_ = false, delivered_ = false;
  GenerationResult result_;
  Clock::time_point submitted_at_ = Clock::now();  // made by Engine::submit
  Clock::time_point admitted_at_ = submitted_at_, prefilled_at_ = admitted_at_;
};

}  // namespace inkstream
