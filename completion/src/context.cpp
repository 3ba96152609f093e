// Choosing the text the model continues from: a window of the document
// before the cursor whose start stays put while the writer types forward,
// so that its tokens are a prefix of the next request's and the engine can
// reuse their keys and values.
//
// The rule (docs/protocol.md, "Context window"):
// - Limits: at most `context_chars` characters and `token_budget` tokens
//   before the cursor. A document that fits is sent whole, from its start.
// - Otherwise the window starts at an anchor. Anchors sit on a fixed grid of
//   byte offsets, one every `step` bytes (a quarter of the window): the
//   anchor of grid point g is the first paragraph start in [g, g + step/2),
//   else the first sentence or line start there, else the first word start
//   (so two anchors are always more than step/2 apart).
//   The window starts at the earliest anchor at least half a step inside
//   both limits (room for the next words), else the earliest inside them.
// - Typing forward moves the limits forward but leaves the anchor in place
//   until it no longer has that room; then the start jumps a whole grid step
//   (or more), never one word at a time.
// - Read-ahead: once half a grid step more typing would move the start (or
//   make a text that fits whole overflow), the window it would move to is
//   known (the anchors are fixed), and its prompt can be read before the
//   writer gets there.
// Cost: a constant number of tokenizations of at most the window (the token
// limit is found on the last ~8 bytes per budget token, doubling if needed),
// so it is linear in the window, not quadratic.
#include <vector>

#include "inkstream/completion/engine.h"
#include "inkstream/model_runtime/line_breaks.h"

namespace inkstream {
namespace {

// Start of the UTF-8 character containing byte `i`.
std::size_t char_start(std::string_view s, std::size_t i) {
  while (i > 0 && i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

bool is_blank(char c) { return c == ' ' || c == '\t'; }
bool is_space(char c) { return is_blank(c) || c == '\n' || c == '\r'; }

// Byte offset where the last `chars` characters of `s` begin.
std::size_t start_of_last_chars(std::string_view s, int chars) {
  std::size_t start = s.size();
  for (int n = 0; start > 0 && n < chars; ++n) start = char_start(s, start - 1);
  return start;
}

// The kind of boundary at which text starting at `i` would begin.
enum class Boundary { None, Word, Sentence, Paragraph };

Boundary boundary_before(std::string_view s, std::size_t i) {
  if (i == 0 || i >= s.size() || is_space(s[i]) || (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) return Boundary::None;
  std::size_t j = i;
  while (j > 0 && is_blank(s[j - 1])) --j;  // blanks before the text
  int breaks = 0;
  while (j > 0 && (s[j - 1] == '\n' || s[j - 1] == '\r')) {
    // "\r\n" counts once.
    j -= (j >= 2 && s[j - 1] == '\n' && s[j - 2] == '\r') ? 2 : 1;
    ++breaks;
    while (j > 0 && is_blank(s[j - 1])) --j;
  }
  if (breaks >= 2) return Boundary::Paragraph;
  if (breaks == 1) return Boundary::Sentence;  // a line start: lyrics, lists, verse
  if (j == i) return Boundary::None;           // no space before: mid-word
  const char end = s[j - 1];
  if (end == '.' || end == '!' || end == '?') return Boundary::Sentence;
  return Boundary::Word;
}

// The anchor of grid point `g`: the best boundary in [g, g + step/2),
// earliest of its kind; `g` itself (at a character start) when it has none.
std::size_t anchor_at(std::string_view s, std::size_t g, std::size_t step) {
  const std::size_t end = std::min(s.size(), g + step / 2);
  std::size_t best = std::string_view::npos;
  Boundary best_kind = Boundary::None;
  for (std::size_t i = g; i < end; ++i) {
    const Boundary b = boundary_before(s, i);
    if (b > best_kind) {
      best = i;
      best_kind = b;
      if (b == Boundary::Paragraph) break;
    }
  }
  return best == std::string_view::npos ? char_start(s, g) : best;
}

bool cancelled(const CancellationToken* cancel) { return cancel && cancel->cancelled(); }

// The rule's pieces for one text before the cursor: the limits, the grid
// step and the anchors that fit.
class Window {
 public:
  Window(std::string_view before, int context_chars, int token_budget, const TokenStarts& token_starts,
         const CancellationToken* cancel)
      : before_(before), token_budget_(token_budget), token_starts_(token_starts), cancel_(cancel) {
    const std::size_t char_limit = start_of_last_chars(before, context_chars);
    // The token limit: where the last `token_budget` tokens begin.
    std::size_t token_limit = 0;
    if (token_budget > 0) {
      std::size_t span = static_cast<std::size_t>(token_budget) * 8;
      for (;;) {
        const std::size_t from = span >= before.size() - char_limit ? char_limit : char_start(before, before.size() - span);
        const std::vector<std::size_t> starts = token_starts(before.substr(from));
        if ((stop_ = cancelled(cancel))) return;
        if (starts.size() > static_cast<std::size_t>(token_budget)) {
          token_limit = from + starts[starts.size() - static_cast<std::size_t>(token_budget)];
          break;
        }
        if (from == char_limit) {  // the whole character window fits
          if (char_limit == 0) whole_tokens_ = starts.size();
          break;
        }
        span *= 2;
      }
    }
    lower_ = std::max(char_limit, token_limit);
    // A quarter of the window, in bytes, from the limits alone (so it does
    // not move while the writer types): ~4 bytes per token in English prose.
    std::size_t window_bytes = static_cast<std::size_t>(context_chars);
    if (token_budget > 0) window_bytes = std::min(window_bytes, static_cast<std::size_t>(token_budget) * 4);
    step_ = std::max<std::size_t>(16, window_bytes / 4);
  }

  bool stopped() const { return stop_; }
  // For a text that fits whole: whether `ahead` more bytes (~4 a token)
  // would overflow a limit.
  bool overflows_within(std::size_t ahead, int context_chars) const {
    const std::size_t room = static_cast<std::size_t>(context_chars) > ahead ? context_chars - ahead : 0;
    return start_of_last_chars(before_, static_cast<int>(room)) > 0 ||
           (token_budget_ > 0 && whole_tokens_ + ahead / 4 > static_cast<std::size_t>(token_budget_));
  }
  std::size_t lower() const { return lower_; }  // 0: the whole text fits
  std::size_t step() const { return step_; }

  // The earliest anchor at or after `from` whose window fits; npos if none.
  std::size_t first_fitting(std::size_t from) {
    for (std::size_t g = from / step_ * step_; g < before_.size(); g += step_) {
      const std::size_t a = anchor_at(before_, g, step_);
      if (a < from || a >= before_.size()) continue;
      // The limit came from tokens of a longer text; the window's own first
      // word may split differently, so check it exactly.
      if (token_budget_ > 0) {
        const bool fits = token_starts_(before_.substr(a)).size() <= static_cast<std::size_t>(token_budget_);
        if ((stop_ = cancelled(cancel_))) return std::string_view::npos;
        if (!fits) continue;
      }
      return a;
    }
    return std::string_view::npos;
  }

  // The window's start as the rule puts it with the limits `ahead` bytes
  // further on; npos when no anchor fits (a window shorter than a step).
  // Room to type: the start sits at least half a grid step (an eighth of
  // the window) inside the limits, so the window does not move again a few
  // words later; only text without such an anchor takes one just inside.
  std::size_t start(std::size_t ahead = 0) {
    std::size_t a = first_fitting(lower_ + ahead + step_ / 2);
    if (a == std::string_view::npos && !stop_) a = first_fitting(lower_ + ahead);
    return a;
  }

 private:
  std::string_view before_;
  int token_budget_;
  const TokenStarts& token_starts_;
  const CancellationToken* cancel_;
  std::size_t lower_ = 0, step_ = 16, whole_tokens_ = 0;
  bool stop_ = false;
};

}  // namespace

std::optional<std::string> build_context(std::string_view before, int context_chars, int token_budget,
                                         const TokenStarts& token_starts, const CancellationToken* cancel) {
  Window w(before, context_chars, token_budget, token_starts, cancel);
  if (w.stopped()) return std::nullopt;
  if (w.lower() == 0) return std::string(before);
  const std::size_t start = w.start();
  if (w.stopped()) return std::nullopt;
  if (start != std::string_view::npos) return std::string(before.substr(start));
  // No anchor fits (a window shorter than a grid step): cut at the limit;
  // the generator drops any tokens still too many.
  return std::string(before.substr(char_start(before, w.lower())));
}

std::optional<std::string> read_ahead_context(std::string_view before, int context_chars, int token_budget,
                                              const TokenStarts& token_starts, const CancellationToken* cancel) {
  Window w(before, context_chars, token_budget, token_starts, cancel);
  if (w.stopped()) return std::nullopt;
  // Half a step more typing (an eighth of the window) from here on.
  const std::size_t ahead = w.step() / 2;
  std::size_t now = 0, next;
  if (w.lower() == 0) {
    // The text fits whole. Once it overflows by less than half a step, the
    // rule starts the window at the first anchor half a step in (no grid
    // point's anchor lies between half a step and one step).
    if (!w.overflows_within(ahead, context_chars)) return std::nullopt;
    next = w.first_fitting(ahead);
  } else {
    now = w.start();
    if (w.stopped() || now == std::string_view::npos) return std::nullopt;
    next = w.start(ahead);
  }
  if (w.stopped() || next == std::string_view::npos || next <= now) return std::nullopt;
  return std::string(before.substr(next));
}

}  // namespace inkstream
