#pragma once
// The text-level steps of `inkstream data clean`, each a pure function over
// one document so it can be tested alone. The corpus-level steps
// (de-duplication across documents, minimum length, language filter) live in
// corpus_cleaning.h. Order (after ftfy and CCNet): decode -> mojibake ->
// controls -> line breaks -> NFC -> blank lines.
#include <cstddef>
#include <string>
#include <string_view>

namespace inkstream::training {

// Decoding bytes as UTF-8. `replaced` counts the U+FFFD substitutions made.
struct DecodeResult {
  std::string text;
  std::size_t replaced = 0;
};
DecodeResult decode_utf8(std::string_view bytes);

// Undoes UTF-8 that was decoded as Windows-1252 or Latin-1 ("cafÃ©" ->
// "café", "donâ€™t" -> "don’t"), also when it happened twice. Only
// sequences of non-ASCII characters that re-encode to a well-formed UTF-8
// multi-byte character are changed, so correct Latin-1 text ("naïve") stays.
// `repaired` counts the characters produced by repair.
std::string repair_mojibake(std::string_view text, std::size_t* repaired = nullptr);

// Drops C0 and C1 control characters and DEL, keeping tab and newline, and
// keeping CR and NEL (U+0085) for normalize_line_breaks, which runs next.
std::string drop_control_characters(std::string_view text, std::size_t* dropped = nullptr);

// "\r\n", lone "\r", U+2028, U+2029 and U+0085 become "\n".
std::string normalize_line_breaks(std::string_view text, std::size_t* changed = nullptr);

// Unicode Normalization Form C (ICU). Input must be valid UTF-8.
std::string to_nfc(std::string_view text);

// Lines holding only spaces/tabs become empty, runs of blank lines become
// one, and blank lines at the start and end go.
std::string collapse_blank_lines(std::string_view text);

// The key paragraphs are de-duplicated on: lower-case, every digit -> "0",
// punctuation and symbols removed, whitespace runs -> one space, trimmed.
std::string paragraph_key(std::string_view paragraph);

// Number of code points in valid UTF-8.
std::size_t code_point_count(std::string_view text);

}  // namespace inkstream::training
