#pragma once
// The completion engine: what context to send, post-processing, the
// duplicate cache and typing-through. Thread-safe: the protocol thread asks
// for instant answers while a worker thread runs inference.
#include <chrono>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "inkstream/completion/backend.h"
#include "inkstream/completion/settings.h"

namespace inkstream {

struct CompletionQuery {
  std::string key;     // the document (its URI): typing-through memory is per document
  std::string before;  // document text before the cursor
  std::string after;   // document text after the cursor
  CompletionSettings settings;
  std::string model;   // which model serves it (part of the duplicate-cache key)
};

struct PartialItem {
  int index;
  std::string text;  // the whole suggestion so far (replace semantics)
  bool done;
};
using PartialCallback = std::function<void(const std::vector<PartialItem>&)>;

struct CompletionOutcome {
  std::vector<std::string> items;  // post-processed, non-empty, distinct
  std::string source;              // "model", "remote", "cache" or "typing"
  Timings timings;
  bool cancelled = false;
  std::string error;
  std::string error_kind;  // GenerationResult::error_kind and ::warning
  std::string warning;
  int streamed_updates = 0;
};

// Post-processing of one suggestion (also applied to streamed partial text,
// so every streamed text is a prefix of the final one): cut at the stop_at
// boundary, drop "<|endoftext|>", trim trailing whitespace.
std::string postprocess(std::string_view text, StopAt stop_at);
// True when `text` (post-processed) ends at a complete stop_at boundary, so
// generating further is wasted.
bool reached_boundary(std::string_view raw, StopAt stop_at);

// Byte offsets where each token of `text` starts (what the backend's
// tokenizer makes of it): the context is fitted with these.
using TokenStarts = std::function<std::vector<std::size_t>(std::string_view text)>;

// The context to send: the text before the cursor from a prefix-stable
// anchor, within `context_chars` characters and `token_budget` tokens (the
// rule is at the top of context.cpp and in docs/protocol.md). Linear in the
// window. Returns nullopt when `cancel` fired meanwhile.
std::optional<std::string> build_context(std::string_view before, int context_chars, int token_budget,
                                         const TokenStarts& token_starts, const CancellationToken* cancel = nullptr);

// The window the writer will need next, while the present one still
// serves: the context build_context gives once half a grid step more (an
// eighth of the window) is typed, when that moves the window's start (a
// text that fits whole: when that makes it overflow); nullopt otherwise, or
// when `cancel` fired.
// Its prompt can be read ahead into the prefix cache, so that the keystroke
// that moves the window re-reads only the words typed since.
std::optional<std::string> read_ahead_context(std::string_view before, int context_chars, int token_budget,
                                              const TokenStarts& token_starts, const CancellationToken* cancel = nullptr);

class CompletionEngine {
 public:
  explicit CompletionEngine(std::size_t cache_capacity = 256) : cache_capacity_(cache_capacity) {}

  // Instant answers, no inference: typing-through a shown suggestion, or an
  // identical earlier request.
  std::optional<CompletionOutcome> answer_instantly(const CompletionQuery& q);

  // Runs inference (worker thread). `on_partial` receives streamed updates at
  // the settings' cadence.
  CompletionOutcome complete(const CompletionQuery& q, CompletionBackend& backend, const PartialCallback& on_partial,
                             const CancellationToken* cancel);

  // The writer's next context window for `q` when it is near
  // (read_ahead_context with q's limits), for an in-process model to read
  // into its prefix cache.
  std::optional<std::string> next_window(const CompletionQuery& q, const CompletionBackend& backend,
                                         const CancellationToken* cancel = nullptr) const;

  // Forget what was shown for a document (closed).
  void forget(const std::string& key);

 private:
  struct Shown {
    std::string before;
    std::vector<std::string> items;
    std::string model, settings_key;  // typing-through only reuses what the same model and settings made
  };
  void remember(const CompletionQuery& q, std::vector<std::string> items);
  std::string cache_key(const CompletionQuery& q) const;

  std::mutex mutex_;
  std::unordered_map<std::string, Shown> shown_;
  // LRU of finished results: key -> items.
  std::size_t cache_capacity_;
  std::list<std::pair<std::string, std::vector<std::string>>> lru_;
  std::unordered_map<std::string, decltype(lru_)::iterator> lru_index_;
};

}  // namespace inkstream
