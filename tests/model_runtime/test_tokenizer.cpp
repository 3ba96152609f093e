#include "inkstream/model_runtime/tokenizer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <random>

#include "inkstream/model_runtime/errors.h"
#include "inkstream/model_runtime/utf8.h"
#include "test_support.h"

namespace inkstream {
namespace {

using test::gpt2_tokenizer;
using Ids = std::vector<TokenId>;

std::string base64_decode(const std::string& in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  int bits = 0, acc = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) continue;  // '=' padding
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

TEST(Tokenizer, KnownVectorsFromAnchors) {
  const Tokenizer& t = gpt2_tokenizer();
  EXPECT_EQ(t.encode("Hello world"), (Ids{15496, 995}));
  EXPECT_EQ(t.encode(" Hello world"), (Ids{18435, 995}));
  EXPECT_EQ(t.encode("\n"), (Ids{198}));
  EXPECT_EQ(t.encode("\n\n"), (Ids{628}));
  EXPECT_EQ(t.encode("<|endoftext|>"), (Ids{50256}));
  EXPECT_EQ(t.encode("<|endoftext|>", /*split_special=*/false), (Ids{27, 91, 437, 1659, 5239, 91, 29}));
  EXPECT_EQ(t.encode(""), Ids{});
  EXPECT_EQ(t.vocab_size(), 50257);
  EXPECT_EQ(t.end_of_text_id(), 50256);
  EXPECT_EQ(t.decode(Ids{15496, 995}), "Hello world");
}

// Ids from the reference encoder (npm gpt-3-encoder), see golden/tokenizer/README.md.
TEST(Tokenizer, MatchesReferenceEncoderOnGoldenCorpus) {
  const auto golden = nlohmann::json::parse(test::read_file(test::source_dir() / "tests/model_runtime/golden/tokenizer/golden.json"));
  ASSERT_GE(golden.size(), 300u);
  const Tokenizer& t = gpt2_tokenizer();
  std::map<std::string, int> per_category;
  for (const auto& c : golden) {
    const std::string text = base64_decode(c["text_b64"].get<std::string>());
    const Ids expected = c["ids"].get<Ids>();
    EXPECT_EQ(t.encode(text), expected) << "category " << c["category"] << ", text: " << c["text_b64"];
    // Decoding gives back the (repaired) input.
    EXPECT_EQ(t.decode(expected), utf8::make_valid(text)) << c["text_b64"];
    ++per_category[c["category"].get<std::string>()];
  }
  for (const char* needed : {"prose", "code_c", "numbers", "contractions", "whitespace", "line_endings", "emoji", "cjk",
                             "combining", "scripts", "invalid_utf8", "special"})
    EXPECT_GT(per_category[needed], 0) << needed;
}

TEST(Tokenizer, PreTokenizerFollowsTheRegex) {
  auto words = [](std::string_view s) {
    std::vector<std::string> out;
    for (const auto& [b, e] : Tokenizer::split_words(s)) out.emplace_back(s.substr(b, e - b));
    return out;
  };
  using W = std::vector<std::string>;
  EXPECT_EQ(words("a   b"), (W{"a", "  ", " b"}));
  EXPECT_EQ(words("it's IT'S"), (W{"it", "'s", " IT", "'", "S"}));
  EXPECT_EQ(words("\n\nHello"), (W{"\n", "\n", "Hello"}));
  EXPECT_EQ(words("x  "), (W{"x", "  "}));
  EXPECT_EQ(words("12ab!? "), (W{"12", "ab", "!?", " "}));
  EXPECT_EQ(words(" 's"), (W{" '", "s"}));
  EXPECT_EQ(words("\t\tx"), (W{"\t", "\t", "x"}));
}

// Random valid Unicode from a mix of ranges (ASCII-heavy, with whitespace,
// combining marks, CJK, emoji, RTL scripts).
std::string random_unicode(std::mt19937& rng, std::size_t max_chars) {
  static const std::vector<std::pair<char32_t, char32_t>> ranges = {
      {0x20, 0x7E}, {0x20, 0x7E}, {0x20, 0x7E}, {0x09, 0x0D}, {0xA0, 0x24F}, {0x300, 0x36F}, {0x391, 0x3C9},
      {0x410, 0x44F}, {0x5D0, 0x5EA}, {0x620, 0x64A}, {0x900, 0x97F}, {0x3040, 0x30FF}, {0x4E00, 0x9FFF},
      {0xAC00, 0xD7A3}, {0x1F300, 0x1F6FF}, {0x1F1E6, 0x1F1FF}, {0x2000, 0x206F}, {0x10000, 0x10FFFF}};
  std::uniform_int_distribution<std::size_t> len_dist(0, max_chars);
  std::uniform_int_distribution<std::size_t> range_dist(0, ranges.size() - 1);
  std::string s;
  const std::size_t n = len_dist(rng);
  for (std::size_t i = 0; i < n; ++i) {
    const auto [lo, hi] = ranges[range_dist(rng)];
    char32_t cp = std::uniform_int_distribution<char32_t>(lo, hi)(rng);
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
    utf8::append_code_point(s, cp);
  }
  return s;
}

TEST(Tokenizer, RoundTripsRandomValidUnicode) {
  const Tokenizer& t = gpt2_tokenizer();
  std::mt19937 rng(1234);
  for (int i = 0; i < 2000; ++i) {
    const std::string s = random_unicode(rng, 60);
    ASSERT_EQ(t.decode(t.encode(s, /*split_special=*/false)), s);
  }
}

TEST(Tokenizer, IncrementalDecodingEqualsOneShotForEverySplit) {
  const Tokenizer& t = gpt2_tokenizer();
  std::mt19937 rng(99);
  std::uniform_int_distribution<TokenId> any_id(0, t.vocab_size() - 1);
  for (int round = 0; round < 300; ++round) {
    Ids ids = round % 2 ? t.encode(random_unicode(rng, 30)) : Ids{};
    if (ids.empty())  // arbitrary ids, including ones that end inside a character
      for (int k = 0; k < 12; ++k) ids.push_back(any_id(rng));
    // At every prefix: what was streamed, plus a flush of a copy of the
    // decoder, equals one-shot decoding of that prefix; and the streamed text
    // only ever grows by valid characters.
    IncrementalDecoder dec(t);
    std::string streamed;
    for (std::size_t k = 0; k < ids.size(); ++k) {
      streamed += dec.push(ids[k]);
      ASSERT_TRUE(utf8::is_valid(streamed));
      IncrementalDecoder copy = dec;
      ASSERT_EQ(streamed + copy.flush(), t.decode(std::span(ids).first(k + 1)));
    }
    ASSERT_EQ(streamed + dec.flush(), t.decode(ids));
  }
}

TEST(Tokenizer, IncrementalDecoderHoldsBackPartialCharacters) {
  const Tokenizer& t = gpt2_tokenizer();
  const Ids ids = t.encode("\xF0\x9F\x98\x80");  // one emoji, several byte tokens
  ASSERT_GT(ids.size(), 1u);
  IncrementalDecoder dec(t);
  std::string out;
  for (std::size_t i = 0; i + 1 < ids.size(); ++i) out += dec.push(ids[i]);
  EXPECT_EQ(out, "");
  EXPECT_GT(dec.pending_bytes(), 0u);
  out += dec.push(ids.back());
  EXPECT_EQ(out, "\xF0\x9F\x98\x80");
  // A dangling partial character is flushed as U+FFFD.
  IncrementalDecoder dangling(t);
  EXPECT_EQ(dangling.push(ids[0]), "");
  EXPECT_EQ(dangling.flush(), std::string(utf8::kReplacement));
}

TEST(Tokenizer, PathologicalInputsFinish) {
  const Tokenizer& t = gpt2_tokenizer();
  const std::string long_word(200'000, 'a');
  const Ids ids = t.encode(long_word);
  EXPECT_EQ(t.decode(ids), long_word);
  const std::string spaces(100'000, ' ');
  EXPECT_EQ(t.decode(t.encode(spaces)), spaces);
}

TEST(Tokenizer, DecodeRejectsOutOfRangeIds) {
  EXPECT_THROW(gpt2_tokenizer().decode(Ids{50257}), std::out_of_range);
  EXPECT_THROW(gpt2_tokenizer().decode(Ids{-1}), std::out_of_range);
}

TEST(Tokenizer, LoadsTokenizerJsonWithAddedTokens) {
  const auto dir = test::temp_dir("tokjson");
  nlohmann::json vocab = nlohmann::json::parse(test::read_file(test::gpt2_tokenizer_dir() / "vocab.json"));
  nlohmann::json merges = nlohmann::json::array();
  const std::string merges_txt = test::read_file(test::gpt2_tokenizer_dir() / "merges.txt");
  std::istringstream lines(merges_txt);
  std::string line;
  std::getline(lines, line);  // #version
  while (std::getline(lines, line))
    if (!line.empty()) merges.push_back(line);
  nlohmann::json tj = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
                       {"added_tokens", {{{"id", 50256}, {"content", "<|endoftext|>"}, {"special", true}},
                                         {{"id", 50257}, {"content", "<|sep|>"}, {"special", true}}}}};
  test::write_file(dir / "tokenizer.json", tj.dump());
  const Tokenizer t = Tokenizer::from_folder(dir);
  EXPECT_EQ(t.encode("Hello world<|sep|>\n"), (Ids{15496, 995, 50257, 198}));
  EXPECT_EQ(t.decode(Ids{50257}), "<|sep|>");
  EXPECT_EQ(t.vocab_size(), 50258);
  std::filesystem::remove_all(dir);
}

TEST(Tokenizer, BadFilesGiveClearErrors) {
  const auto dir = test::temp_dir("badtok");
  EXPECT_THROW(
      {
        try {
          Tokenizer::from_folder(dir);
        } catch (const CheckpointError& e) {
          EXPECT_NE(std::string(e.what()).find("no tokenizer"), std::string::npos) << e.what();
          throw;
        }
      },
      CheckpointError);
  test::write_file(dir / "vocab.json", "{not json");
  test::write_file(dir / "merges.txt", "#version: 0.2\n");
  try {
    Tokenizer::from_folder(dir);
    FAIL() << "expected an error";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("vocab.json"), std::string::npos) << e.what();
  }
  test::write_file(dir / "vocab.json", R"({"a": 0})");
  try {
    Tokenizer::from_folder(dir);
    FAIL() << "expected an error";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("byte"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace inkstream
