#include "inkstream/completion/engine.h"

#include <algorithm>

#include "inkstream/model_runtime/line_breaks.h"

namespace inkstream {
namespace {

using Clock = std::chrono::steady_clock;

// The rest of the cursor's line, trimmed: a suggestion that merely repeats it
// is useless.
std::string rest_of_line(std::string_view after) {
  std::string_view line = after.substr(0, find_line_break(after));
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
  return std::string(line);
}

std::string_view trim_left(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r')) s.remove_prefix(1);
  return s;
}

// Final shaping of all alternatives: drop empty ones, ones that only repeat
// the text after the cursor, and duplicates (first wins).
std::vector<std::string> finalize(const std::vector<std::string>& texts, std::string_view after) {
  const std::string rest = rest_of_line(after);
  std::vector<std::string> out;
  for (const auto& t : texts) {
    const std::string_view body = trim_left(t);
    if (body.empty()) continue;
    if (!rest.empty() && rest.starts_with(body)) continue;
    if (std::find(out.begin(), out.end(), t) != out.end()) continue;
    out.push_back(t);
  }
  return out;
}

std::string window(std::string_view before, int context_chars) {
  // A cheap, stable stand-in for the context: the last context_chars*4 bytes.
  const std::size_t n = std::min<std::size_t>(before.size(), static_cast<std::size_t>(context_chars) * 4);
  return std::string(before.substr(before.size() - n));
}

}  // namespace

std::string CompletionEngine::cache_key(const CompletionQuery& q) const {
  return q.model + '\x1f' + window(q.before, q.settings.context_chars) + '\x1f' + rest_of_line(q.after) + '\x1f' +
         q.settings.generation_key();
}

void CompletionEngine::remember(const CompletionQuery& q, std::vector<std::string> items) {
  std::lock_guard lock(mutex_);
  shown_[q.key] = Shown{q.before, std::move(items), q.model, q.settings.generation_key()};
}

void CompletionEngine::forget(const std::string& key) {
  std::lock_guard lock(mutex_);
  shown_.erase(key);
}

std::optional<CompletionOutcome> CompletionEngine::answer_instantly(const CompletionQuery& q) {
  std::lock_guard lock(mutex_);
  // Typing through a shown suggestion: answer with what remains of it.
  const auto it = shown_.find(q.key);
  if (it != shown_.end() && q.before.size() > it->second.before.size() && q.before.starts_with(it->second.before) &&
      it->second.model == q.model && it->second.settings_key == q.settings.generation_key()) {
    const std::string typed = q.before.substr(it->second.before.size());
    std::vector<std::string> rest;
    for (const auto& item : it->second.items)
      if (item.size() > typed.size() && item.starts_with(typed)) rest.push_back(item.substr(typed.size()));
    rest = finalize(rest, q.after);
    if (!rest.empty()) {
      CompletionOutcome out;
      out.items = std::move(rest);
      out.source = "typing";
      return out;
    }
  }
  // An identical earlier request.
  const auto hit = lru_index_.find(cache_key(q));
  if (hit != lru_index_.end()) {
    lru_.splice(lru_.begin(), lru_, hit->second);
    CompletionOutcome out;
    out.items = hit->second->second;
    out.source = "cache";
    shown_[q.key] = Shown{q.before, out.items, q.model, q.settings.generation_key()};
    return out;
  }
  return std::nullopt;
}

namespace {

// The prompt's token budget: the model's context less room for max_tokens.
int prompt_budget(const CompletionSettings& s, const CompletionBackend& backend) {
  return backend.context_tokens() - std::min(s.max_tokens, backend.context_tokens() - 1);
}

}  // namespace

std::optional<std::string> CompletionEngine::next_window(const CompletionQuery& q, const CompletionBackend& backend,
                                                         const CancellationToken* cancel) const {
  return read_ahead_context(q.before, q.settings.context_chars, prompt_budget(q.settings, backend),
                            [&](std::string_view t) { return backend.token_starts(t); }, cancel);
}

CompletionOutcome CompletionEngine::complete(const CompletionQuery& q, CompletionBackend& backend, const PartialCallback& on_partial,
                                             const CancellationToken* cancel) {
  const CompletionSettings& s = q.settings;
  const std::optional<std::string> context = build_context(q.before, s.context_chars, prompt_budget(s, backend),
                                                           [&](std::string_view t) { return backend.token_starts(t); }, cancel);
  if (!context) {
    CompletionOutcome out;
    out.source = backend.source();
    out.cancelled = true;
    return out;
  }
  const std::string& prompt = *context;

  GenerationRequest req;
  req.n = s.n;
  req.max_tokens = s.max_tokens;
  req.sampling = s.sampling;
  req.seed = s.seed;
  req.stop = s.stop;
  // Stop an alternative as soon as its stop_at boundary is complete.
  req.stop_when = [&](int, std::string_view text) { return reached_boundary(text, s.stop_at); };

  const std::size_t n = static_cast<std::size_t>(s.n);
  std::vector<std::string> raw(n), sent(n);
  std::vector<bool> done(n, false);
  bool first_sent = false;
  int tokens_since = 0;
  auto last_update = Clock::now();
  CompletionOutcome out;
  out.source = backend.source();

  auto send = [&] {
    std::vector<PartialItem> items;
    std::vector<std::string> texts;
    for (std::size_t i = 0; i < n; ++i) {
      sent[i] = postprocess(raw[i], s.stop_at);
      items.push_back({static_cast<int>(i), sent[i], done[i]});
      texts.push_back(sent[i]);
    }
    if (cancel && cancel->cancelled()) return;  // the client no longer shows this
    remember(q, texts);  // typing-through works while streaming
    if (on_partial) on_partial(items);
    ++out.streamed_updates;
    first_sent = true;
    tokens_since = 0;
    last_update = Clock::now();
  };
  const auto interval = std::chrono::milliseconds(s.stream_interval_ms);
  auto on_token = [&](const StreamEvent& e) {
    const auto i = static_cast<std::size_t>(e.index);
    raw[i] += e.delta;  // deltas, not e.text: text held back for stop strings is not shown yet
    const bool newly_done = e.done && !done[i];
    done[i] = done[i] || e.done;
    ++tokens_since;
    if (!first_sent) {
      // The first visible text goes out at once: the writer sees the
      // suggestion begin after one token, then watches it grow.
      if (!postprocess(raw[i], s.stop_at).empty() || e.done) send();
      return;
    }
    const bool due = Clock::now() - last_update >= interval ||
                     (s.stream_every_tokens > 0 && tokens_since >= s.stream_every_tokens) || e.done;
    if (newly_done || (due && postprocess(raw[i], s.stop_at) != sent[i])) send();
  };

  const GenerationResult result = backend.generate(prompt, req, on_token, cancel);
  out.timings = result.timings;
  out.error = result.error;
  out.error_kind = result.error_kind;
  out.warning = result.warning;
  out.cancelled = cancel && cancel->cancelled();
  std::vector<std::string> texts;
  for (const auto& alt : result.alternatives) texts.push_back(postprocess(alt.text, s.stop_at));
  out.items = finalize(texts, q.after);
  if (!out.cancelled && out.error.empty()) {
    remember(q, out.items);
    std::lock_guard lock(mutex_);
    const std::string key = cache_key(q);
    if (const auto it = lru_index_.find(key); it != lru_index_.end()) lru_.erase(it->second);
    lru_.emplace_front(key, out.items);
    lru_index_[key] = lru_.begin();
    while (lru_.size() > cache_capacity_) {
      lru_index_.erase(lru_.back().first);
      lru_.pop_back();
    }
  }
  return out;
}

}  // namespace inkstream
