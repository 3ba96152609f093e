#pragma once
// UTF-8 validation and repair shared by the tokenizer and the streaming decoder.
//
// Invalid input is repaired the way the Unicode standard recommends ("maximal
// subpart" substitution, also used by WHATWG, Python's errors="replace" and
// Node's Buffer.toString): each maximal prefix of a would-be character that
// cannot be completed becomes one U+FFFD.
#include <cstddef>
#include <string>
#include <string_view>

namespace inkstream::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Result of decoding as much of `bytes` as is decidable.
struct RepairResult {
  std::string text;       // valid UTF-8: the decided part, with U+FFFD substitutions
  std::size_t consumed;   // bytes of input covered by `text`
};

// Repairs `bytes` into valid UTF-8. When `final` is false, an incomplete but so
// far valid sequence at the end is left unconsumed (it may be completed by
// later bytes); when `final` is true it becomes U+FFFD.
RepairResult repair(std::string_view bytes, bool final);

// Convenience: repair(bytes, true).text.
std::string make_valid(std::string_view bytes);

// True when `bytes` is entirely valid UTF-8.
bool is_valid(std::string_view bytes);

// Appends the UTF-8 encoding of code point `cp` (must be a scalar value).
void append_code_point(std::string& out, char32_t cp);

}  // namespace inkstream::utf8
