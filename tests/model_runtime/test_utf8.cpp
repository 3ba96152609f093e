#include "inkstream/model_runtime/utf8.h"

#include <gtest/gtest.h>

namespace inkstream::utf8 {
namespace {

const std::string R(kReplacement);

TEST(Utf8, ValidTextIsUnchanged) {
  for (const std::string s : {"", "hello", "caf\xC3\xA9", "\xE4\xB8\xAD\xE6\x96\x87", "\xF0\x9F\x98\x80"}) {
    EXPECT_EQ(make_valid(s), s);
    EXPECT_TRUE(is_valid(s));
  }
}

TEST(Utf8, MaximalSubpartsBecomeOneReplacementEach) {
  EXPECT_EQ(make_valid("\x80"), R);
  EXPECT_EQ(make_valid("a\xC3"), "a" + R);
  EXPECT_EQ(make_valid("\xE2\x82"), R);                      // truncated 3-byte: one subpart
  EXPECT_EQ(make_valid("\xC0\xAF"), R + R);                  // overlong lead is never valid
  EXPECT_EQ(make_valid("\xE0\x80\xAF"), R + R + R);          // E0 80 is not a valid prefix
  EXPECT_EQ(make_valid("\xED\xA0\x80"), R + R + R);          // surrogate
  EXPECT_EQ(make_valid("\xF4\x90\x80\x80"), R + R + R + R);  // above U+10FFFF
  EXPECT_EQ(make_valid("\xF0\x9F\x98x"), R + "x");
  EXPECT_EQ(make_valid("\xFF\xFE"), R + R);
  EXPECT_FALSE(is_valid("\xC3"));
}

TEST(Utf8, NonFinalRepairWaitsForIncompleteTail) {
  const RepairResult r = repair("ab\xF0\x9F", false);
  EXPECT_EQ(r.text, "ab");
  EXPECT_EQ(r.consumed, 2u);
  const RepairResult bad = repair("ab\xF0x", false);  // can no longer complete
  EXPECT_EQ(bad.text, "ab" + R + "x");
  EXPECT_EQ(bad.consumed, 4u);
}

TEST(Utf8, AppendCodePoint) {
  std::string s;
  for (char32_t cp : {U'A', U'\u00E9', U'\u4E2D', U'\U0001F600'}) append_code_point(s, cp);
  EXPECT_EQ(s, "A\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80");
}

}  // namespace
}  // namespace inkstream::utf8
