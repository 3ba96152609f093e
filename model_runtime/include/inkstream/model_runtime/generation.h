#pragma once
// The vocabulary of text generation, shared by every engine and front end:
// requests, results, streamed events, cancellation. Torch-free, so that a
// client of a remote engine can use it without linking libtorch.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "inkstream/model_runtime/sampler.h"

namespace inkstream {

enum class FinishReason { Stop, Length, Eos, Cancelled, Error };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "eos", "cancelled", "error"

struct GenerationRequest {
  std::vector<TokenId> prompt;  // empty = start from <|endoftext|>
  int n = 1;                    // alternatives
  int max_tokens = 40;
  SamplingParams sampling;
  std::uint64_t seed = 42;
  std::vector<std::string> stop;  // stop strings, matched on decoded text
  // Generation ends (finish reason "length") when this passes.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  // Optional: called with an alternative's text after each token; returning
  // true finishes that alternative (reason "stop", text kept whole). Lets a
  // caller stop at a boundary it recognises, e.g. the end of a sentence.
  std::function<bool(int index, std::string_view text)> stop_when;
  // A prompt read ahead of need: its keys and values go to the prefix cache
  // for a later request that starts with it (a writer's next context window),
  // and what it generates is not for showing. The engine reads it only in
  // steps with nothing else to do, kReadAheadChunk tokens at a time, so
  // that it never delays a writer's request by more than one such chunk;
  // it is admitted only when no writer's request runs or waits, and ends
  // (finish reason "cancelled", what it read kept) when one needs its rows
  // or memory. Without a prefix cache it ends at once.
  bool read_ahead = false;
};
inline constexpr int kReadAheadChunk = 32;

struct Alternative {
  int index = 0;
  std::string text;               // stop string excluded
  std::vector<TokenId> token_ids;  // generated ids (end-of-text excluded)
  FinishReason finish_reason = FinishReason::Length;
};

// Named as llama.cpp names them.
struct Timings {
  int prompt_n = 0;        // prompt tokens evaluated
  double prompt_ms = 0;
  int predicted_n = 0;     // tokens generated, all alternatives together
  double predicted_ms = 0;
  double predicted_per_second = 0;
  int cache_n = 0;         // prompt tokens whose keys/values were reused from the prefix cache
};

struct GenerationResult {
  std::vector<Alternative> alternatives;
  Timings timings;
  int prompt_tokens_dropped = 0;  // cut from the left to fit the context
  std::string error;              // set when finish_reason is Error
  // A short name for the kind of error ("unreachable", "unauthorized"...):
  // front ends tell the writer once per change of kind, not per request.
  std::string error_kind;
  // Set when the answer came by a detour the writer should know about (a
  // local fallback while the remote fails); error_kind then says why.
  std::string warning;
};

// One streamed update: alternative `index` grew by `delta`; `text` is all of
// it so far. `done` is true once, on its last update.
struct StreamEvent {
  int index;
  std::string_view delta;
  std::string_view text;
  bool done;
  FinishReason finish_reason;  // meaningful when done
};
using StreamCallback = std::function<void(const StreamEvent&)>;

// Flipped by another thread; the generator checks it before every step.
class CancellationToken {
 public:
  void cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> cancelled_{false};
};

struct GeneratorLimits {
  int max_n = 16;
  int max_tokens = 2048;
  std::size_t max_stop_strings = 16;
  std::size_t max_stop_length = 256;
};

// What an engine reports about itself (local here; a remote one reports the
// same figures from its metrics).
struct EngineStats {
  int running = 0;           // requests admitted and not finished
  int waiting = 0;           // requests queued for admission
  int rows = 0;              // alternatives decoding
  std::size_t kv_used_bytes = 0, kv_budget_bytes = 0;
  std::size_t cached_entries = 0;
  std::uint64_t requests = 0;             // admitted so far
  std::uint64_t prompt_tokens = 0;        // prompt tokens of admitted requests (read-aheads not counted)
  std::uint64_t cached_prompt_tokens = 0; // of which reused from the cache
  std::uint64_t steps = 0;
};

}  // namespace inkstream
