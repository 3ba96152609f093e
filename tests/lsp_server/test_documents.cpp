// Document sync in all three position encodings, against a reference model
// of the text (an array of code points).
#include "documents.h"

#include <gtest/gtest.h>

#include <random>

#include "inkstream/model_runtime/utf8.h"

namespace inkstream::lsp {
namespace {

std::string to_utf8(const std::u32string& s) {
  std::string out;
  for (char32_t c : s) utf8::append_code_point(out, c);
  return out;
}

// Position of code point index `i` in the reference text, in `enc` units.
nlohmann::json ref_position(const std::u32string& s, std::size_t i, PositionEncoding enc) {
  std::int64_t line = 0, ch = 0;
  for (std::size_t k = 0; k < i; ++k) {
    if (s[k] == U'\n') {
      ++line;
      ch = 0;
      continue;
    }
    const char32_t c = s[k];
    if (enc == PositionEncoding::Utf32) ch += 1;
    else if (enc == PositionEncoding::Utf16) ch += c >= 0x10000 ? 2 : 1;
    else ch += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return {{"line", line}, {"character", ch}};
}

TEST(Documents, RandomIncrementalEditsInEveryEncoding) {
  const std::u32string alphabet = U"ab \n\u00e9\u4e2d\u6587e\u0301\U0001F600\U0001F468\u200D\U0001F469\U0001F1EB\U0001F1F7\u05D0\u0645";
  for (const auto enc : {PositionEncoding::Utf16, PositionEncoding::Utf8, PositionEncoding::Utf32}) {
    SCOPED_TRACE(encoding_name(enc));
    std::mt19937 rng(17);
    std::u32string ref = U"Start \U0001F600 text\n\u4e2d\u6587 line two\n";
    DocumentStore store;
    store.open({"file:///t", "markdown", 1, to_utf8(ref)});
    for (int step = 0; step < 500; ++step) {
      nlohmann::json changes = nlohmann::json::array();
      const int n_changes = 1 + static_cast<int>(rng() % 3);
      for (int c = 0; c < n_changes; ++c) {
        std::size_t a = rng() % (ref.size() + 1), b = rng() % (ref.size() + 1);
        if (a > b) std::swap(a, b);
        if (b - a > 6) b = a + rng() % 6;
        std::u32string ins;
        for (std::size_t k = rng() % 4; k > 0; --k) ins += alphabet[rng() % alphabet.size()];
        changes.push_back({{"range", {{"start", ref_position(ref, a, enc)}, {"end", ref_position(ref, b, enc)}}}, {"text", to_utf8(ins)}});
        ref.replace(a, b - a, ins);
      }
      store.change("file:///t", step + 2, changes, enc);
      ASSERT_EQ(store.find("file:///t")->text, to_utf8(ref)) << "step " << step;
    }
  }
}

TEST(Documents, PositionsInTheMiddleOfACharacterAndPastTheLineEnd) {
  const std::string text = "a\xF0\x9F\x98\x80" "b\nxy";  // a😀b / xy
  EXPECT_EQ(offset_of(text, {0, 1}, PositionEncoding::Utf16), 1u);
  EXPECT_EQ(offset_of(text, {0, 3}, PositionEncoding::Utf16), 5u);  // after the emoji (2 units)
  EXPECT_EQ(offset_of(text, {0, 2}, PositionEncoding::Utf16), 1u);  // inside the pair: its start
  EXPECT_EQ(offset_of(text, {0, 2}, PositionEncoding::Utf32), 5u);
  EXPECT_EQ(offset_of(text, {0, 99}, PositionEncoding::Utf16), 6u);  // clamped to the line end
  EXPECT_EQ(offset_of(text, {1, 2}, PositionEncoding::Utf8), 9u);
  EXPECT_FALSE(offset_of(text, {2, 0}, PositionEncoding::Utf16).has_value());
  EXPECT_EQ(position_of(text, 5, PositionEncoding::Utf16).character, 3);
}

TEST(Documents, BadRangesLeaveTheTextUnchanged) {
  DocumentStore store;
  store.open({"u", "", 1, "hello\nworld"});
  const auto bad = nlohmann::json::array({{{"range", {{"start", {{"line", 0}, {"character", 1}}}, {"end", {{"line", 0}, {"character", 2}}}}}, {"text", "E"}},
                                          {{"range", {{"start", {{"line", 9}, {"character", 0}}}, {"end", {{"line", 9}, {"character", 1}}}}}, {"text", "x"}}});
  EXPECT_THROW(store.change("u", 2, bad, PositionEncoding::Utf16), std::invalid_argument);
  EXPECT_EQ(store.find("u")->text, "hello\nworld");
  EXPECT_THROW(store.change("missing", 2, nlohmann::json::array(), PositionEncoding::Utf16), std::invalid_argument);
}

}  // namespace
}  // namespace inkstream::lsp
