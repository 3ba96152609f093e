// Document sync in all three position encodings, against a reference model
// of the text (an array of code points).
#include "documents.h"

#include <stdexcept>

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
// Line ends as the specification has them: "\n", "\r\n" and a lone "\r".
nlohmann::json ref_position(const std::u32string& s, std::size_t i, PositionEncoding enc) {
  std::int64_t line = 0, ch = 0;
  for (std::size_t k = 0; k < i; ++k) {
    if (s[k] == U'\r' && k + 1 < s.size() && s[k + 1] == U'\n') continue;  // counted at its "\n"
    if (s[k] == U'\n' || s[k] == U'\r') {
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

// Between the "\r" and "\n" of a CRLF there is no position: move before it.
std::size_t addressable(const std::u32string& s, std::size_t i) {
  return i > 0 && i < s.size() && s[i - 1] == U'\r' && s[i] == U'\n' ? i - 1 : i;
}

TEST(Documents, RandomIncrementalEditsInEveryEncoding) {
  const std::u32string alphabet = U"ab \n\r\r\n\u00e9\u4e2d\u6587e\u0301\U0001F600\U0001F468\u200D\U0001F469\U0001F1EB\U0001F1F7\u05D0\u0645";
  for (const auto enc : {PositionEncoding::Utf16, PositionEncoding::Utf8, PositionEncoding::Utf32}) {
    SCOPED_TRACE(encoding_name(enc));
    std::mt19937 rng(17);
    std::u32string ref = U"Start \U0001F600 text\n\u4e2d\u6587 line two\rthree\r\nfour\n";
    DocumentStore store;
    store.open({"file:///t", "markdown", 1, to_utf8(ref)});
    for (int step = 0; step < 500; ++step) {
      nlohmann::json changes = nlohmann::json::array();
      const int n_changes = 1 + static_cast<int>(rng() % 3);
      for (int c = 0; c < n_changes; ++c) {
        std::size_t a = rng() % (ref.size() + 1), b = rng() % (ref.size() + 1);
        if (a > b) std::swap(a, b);
        if (b - a > 6) b = a + rng() % 6;
        a = addressable(ref, a);
        b = addressable(ref, b);
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

TEST(Documents, ALoneCarriageReturnEndsALine) {
  DocumentStore store;
  store.open({"u", "", 1, "a\rb"});
  auto insert = [](std::int64_t line, std::int64_t ch, const char* text) {
    const nlohmann::json p = {{"line", line}, {"character", ch}};
    return nlohmann::json::array({{{"range", {{"start", p}, {"end", p}}}, {"text", text}}});
  };
  store.change("u", 2, insert(0, 1, "Y"), PositionEncoding::Utf16);
  store.change("u", 3, insert(1, 0, "X"), PositionEncoding::Utf16);
  EXPECT_EQ(store.find("u")->text, "aY\rXb");
  // Mixed line ends: "\r\n" is one break, a lone "\r" and "\n" one each.
  const std::string mixed = "one\r\ntwo\rthree\nfour";
  EXPECT_EQ(offset_of(mixed, {1, 0}, PositionEncoding::Utf16), 5u);
  EXPECT_EQ(offset_of(mixed, {2, 0}, PositionEncoding::Utf16), 9u);
  EXPECT_EQ(offset_of(mixed, {3, 2}, PositionEncoding::Utf8), 17u);
  EXPECT_EQ(offset_of(mixed, {0, 99}, PositionEncoding::Utf16), 3u);  // the line ends before "\r\n"
  EXPECT_EQ(offset_of(mixed, {1, 99}, PositionEncoding::Utf32), 8u);  // before the lone "\r"
  EXPECT_FALSE(offset_of(mixed, {4, 0}, PositionEncoding::Utf16).has_value());
  EXPECT_EQ(position_of(mixed, 9, PositionEncoding::Utf16).line, 2);
  EXPECT_EQ(position_of(mixed, 9, PositionEncoding::Utf16).character, 0);
  EXPECT_EQ(position_of(mixed, 17, PositionEncoding::Utf16).line, 3);
  EXPECT_EQ(position_of(mixed, 17, PositionEncoding::Utf16).character, 2);
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

// Hardening: bounds on what the editor may make the server hold, each a
// clear error (std::length_error naming it), never an out-of-memory kill.
TEST(Documents, SizeAndCountBoundsAreClearErrors) {
  DocumentStore store;
  const std::string big(kMaxDocumentBytes + 1, 'x');
  try {
    store.open({"file:///big.md", "markdown", 1, big});
    FAIL() << "a document over the bound was kept";
  } catch (const std::length_error& e) {
    EXPECT_NE(std::string(e.what()).find("32 MiB"), std::string::npos) << e.what();
  }
  EXPECT_EQ(store.find("file:///big.md"), nullptr);
  store.open({"file:///a.md", "markdown", 1, std::string(kMaxDocumentBytes - 1, 'a')});
  // An edit past the bound leaves the text as it was.
  const nlohmann::json grow = {{{"range", {{"start", {{"line", 0}, {"character", 0}}}, {"end", {{"line", 0}, {"character", 0}}}}}, {"text", "xx"}}};
  EXPECT_THROW(store.change("file:///a.md", 2, grow, PositionEncoding::Utf16), std::length_error);
  EXPECT_EQ(store.find("file:///a.md")->text.size(), kMaxDocumentBytes - 1);
  // All documents together.
  for (std::size_t i = 0; i < kMaxTotalDocumentBytes / kMaxDocumentBytes - 1; ++i)
    store.open({"file:///f" + std::to_string(i) + ".md", "markdown", 1, std::string(kMaxDocumentBytes - 1, 'b')});
  EXPECT_THROW(store.open({"file:///one-more.md", "markdown", 1, std::string(kMaxDocumentBytes - 1, 'c')}), std::length_error);
  store.close("file:///f0.md");
  store.open({"file:///one-more.md", "markdown", 1, std::string(kMaxDocumentBytes - 1, 'c')});  // room again
  // The number of documents.
  DocumentStore many;
  for (std::size_t i = 0; i < kMaxOpenDocuments; ++i) many.open({"file:///" + std::to_string(i), "markdown", 1, "x"});
  EXPECT_THROW(many.open({"file:///one-too-many", "markdown", 1, "x"}), std::length_error);
  many.open({"file:///0", "markdown", 2, "reopened"});  // the same document again is no new one
  EXPECT_EQ(many.find("file:///0")->text, "reopened");
}

}  // namespace
}  // namespace inkstream::lsp
