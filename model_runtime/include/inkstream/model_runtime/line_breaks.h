#pragma once
// Line ends as LSP 3.17 defines them: "\n", "\r\n" and a lone "\r". Every
// place that splits text into lines (document positions, stop_at, context
// boundaries) uses these two functions.
#include <cstddef>
#include <string_view>

namespace inkstream {

// Bytes of the line break that starts at byte `i` of `s`: 2 for "\r\n", 1
// for "\n" or a lone "\r", 0 when none starts there.
inline std::size_t line_break_at(std::string_view s, std::size_t i) {
  if (i >= s.size()) return 0;
  if (s[i] == '\n') return 1;
  if (s[i] == '\r') return i + 1 < s.size() && s[i + 1] == '\n' ? 2 : 1;
  return 0;
}

// Offset of the first line break at or after `from`, or npos.
inline std::size_t find_line_break(std::string_view s, std::size_t from = 0) {
  return s.find_first_of("\r\n", from);
}

}  // namespace inkstream
