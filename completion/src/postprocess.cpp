// Shaping raw model text into a suggestion a writer can accept.
#include <optional>

#include "inkstream/completion/engine.h"
#include "inkstream/model_runtime/line_breaks.h"

namespace inkstream {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Where the suggestion ends for `stop_at`, if that boundary has been reached
// (the text after it has begun). Leading whitespace is part of the suggestion
// (" next words", "\n\nNew paragraph"), so boundaries are searched after it.
std::optional<std::size_t> boundary_cut(std::string_view t, StopAt stop_at) {
  std::size_t start = 0;
  while (start < t.size() && is_space(t[start])) ++start;
  switch (stop_at) {
    case StopAt::None:
      return std::nullopt;
    case StopAt::Word:
      for (std::size_t i = start; i < t.size(); ++i)
        if (is_space(t[i])) return i;
      return std::nullopt;
    case StopAt::Line: {
      const std::size_t nl = find_line_break(t, start);
      return nl == std::string_view::npos ? std::nullopt : std::optional(nl);
    }
    case StopAt::Paragraph:
      // Two line breaks in a row ("\n\n", "\r\n\r\n", "\r\r"...).
      for (std::size_t i = find_line_break(t, start); i != std::string_view::npos; i = find_line_break(t, i + 1)) {
        const std::size_t len = line_break_at(t, i);
        if (line_break_at(t, i + len) > 0) return i;
        i += len - 1;
      }
      return std::nullopt;
    case StopAt::Sentence:
      for (std::size_t i = start; i < t.size(); ++i) {
        if (line_break_at(t, i) > 0) return i;  // a line break ends a sentence in prose
        if (t[i] != '.' && t[i] != '!' && t[i] != '?') continue;
        std::size_t j = i + 1;
        while (j < t.size() && (t[j] == '"' || t[j] == '\'' || t[j] == ')' || t[j] == ']' || t[j] == '.' || t[j] == '!' || t[j] == '?'))
          ++j;
        if (j < t.size() && is_space(t[j])) return j;
        // Closing curly quotes (U+201D, U+2019) after the terminator.
        if (j + 3 < t.size() && t.substr(j, 2) == "\xE2\x80" && (t[j + 2] == '\x9D' || t[j + 2] == '\x99') && is_space(t[j + 3]))
          return j + 3;
      }
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

std::string postprocess(std::string_view text, StopAt stop_at) {
  if (const std::size_t eot = text.find("<|endoftext|>"); eot != std::string_view::npos) text = text.substr(0, eot);
  if (const auto cut = boundary_cut(text, stop_at)) text = text.substr(0, *cut);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return std::string(text);
}

bool reached_boundary(std::string_view raw, StopAt stop_at) {
  return raw.find("<|endoftext|>") != std::string_view::npos || boundary_cut(raw, stop_at).has_value();
}

}  // namespace inkstream
