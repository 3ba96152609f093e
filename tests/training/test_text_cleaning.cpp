// Each cleaning step alone, then the whole `data clean` pipeline on a corpus
// with planted problems, compared with the exact expected output.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "inkstream/training/corpus_cleaning.h"
#include "inkstream/training/text_cleaning.h"
#include "temp_files.h"

namespace fs = std::filesystem;
using namespace inkstream::training;
using nlohmann::json;

using inkstream::test::fresh_dir;

TEST(TextCleaning, DecodeRepairsInvalidUtf8AndCountsIt) {
  const auto r = decode_utf8("ok \xff then \xe2\x82 end");
  EXPECT_EQ(r.text, "ok \xEF\xBF\xBD then \xEF\xBF\xBD end");
  EXPECT_EQ(r.replaced, 2u);
  EXPECT_EQ(decode_utf8("caf\xC3\xA9 \xEF\xBF\xBD").replaced, 0u);  // an existing U+FFFD is not a repair
}

TEST(TextCleaning, MojibakeIsRepairedAndCorrectLatin1IsLeftAlone) {
  std::size_t n = 0;
  EXPECT_EQ(repair_mojibake("caf\xC3\x83\xC2\xA9", &n), "caf\xC3\xA9");  // "cafÃ©" -> "café"
  EXPECT_EQ(n, 1u);
  // "donâ€™t" (UTF-8 of U+2019 read as Windows-1252) -> "don’t"
  EXPECT_EQ(repair_mojibake("don\xC3\xA2\xE2\x82\xAC\xE2\x84\xA2t"), "don\xE2\x80\x99t");
  // Twice mis-decoded: "HereÃ¢Â€Â™s" -> "Here’s"
  EXPECT_EQ(repair_mojibake("Here\xC3\x83\xC2\xA2\xC3\x82\xC2\x80\xC3\x82\xC2\x99s"), "Here\xE2\x80\x99s");
  // Correct text with Latin-1 letters stays as it is.
  for (const char* ok : {"na\xC3\xAFve caf\xC3\xA9", "\xC3\x83 alone", "\xC2\xA3" "5 and \xC2\xA9 2020", "\xE2\x80\x9Cquoted\xE2\x80\x9D"})
    EXPECT_EQ(repair_mojibake(ok, &n), ok) << ok;
  EXPECT_EQ(n, 0u);
}

TEST(TextCleaning, ControlCharactersGoExceptTabNewlineAndTheLineBreaksOfTheNextStep) {
  std::size_t n = 0;
  EXPECT_EQ(drop_control_characters("a\x01" "b\tc\x7f" "d\xC2\x80" "e\x1b[0m\n", &n), "ab\tcde[0m\n");
  EXPECT_EQ(n, 4u);
  EXPECT_EQ(drop_control_characters("x\ry\xC2\x85z"), "x\ry\xC2\x85z");
}

TEST(TextCleaning, LineBreaksBecomeNewlines) {
  std::size_t n = 0;
  EXPECT_EQ(normalize_line_breaks("a\r\nb\rc\xE2\x80\xA8" "d\xE2\x80\xA9" "e\xC2\x85" "f\n", &n), "a\nb\nc\nd\ne\nf\n");
  EXPECT_EQ(n, 5u);
}

TEST(TextCleaning, NfcComposes) {
  EXPECT_EQ(to_nfc("e\xCC\x81t\xC3\xA9"), "\xC3\xA9t\xC3\xA9");  // e + combining acute -> é
  EXPECT_EQ(to_nfc("already NFC"), "already NFC");
}

TEST(TextCleaning, BlankLinesCollapse) {
  EXPECT_EQ(collapse_blank_lines("\n\n  \nfirst\n \t\n\n\nsecond\nthird\n\n\n"), "first\n\nsecond\nthird");
}

TEST(TextCleaning, ParagraphKeyIgnoresCaseDigitsPunctuationAndSpacing) {
  EXPECT_EQ(paragraph_key("  Hello,  World!\n1984 \xE2\x80\x94 ok"), "hello world 0000 ok");
  EXPECT_EQ(paragraph_key("HELLO world 2001"), paragraph_key("hello, world... 1999!"));
  EXPECT_EQ(paragraph_key("* * *"), "");
}

TEST(CorpusCleaning, PlantedCorpusComesOutExactlyAsExpected) {
  const fs::path root = fresh_dir("clean");
  const fs::path in = root / "in";
  // Mojibake, a control character, CRLF line ends, blank-line runs.
  inkstream::test::write_file(in / "a.txt", "It was the caf\xC3\x83\xC2\xA9 on the corner.\r\n\r\n\r\n\r\nShe didn\xC3\xA2\xE2\x82\xAC\xE2\x84\xA2t\x07 go in.\r\n");
  // NFD text, and a paragraph repeated from a.txt with other case, digits and punctuation.
  inkstream::test::write_file(in / "sub/b.txt", "Cafe\xCC\x81 au lait, said Rene\xCC\x81 in 1999.\n\nIT WAS THE CAF\xC3\x89 ON THE CORNER!\n");
  // Too short after cleaning.
  inkstream::test::write_file(in / "sub/c.txt", "Tiny.\n");
  // JSON lines: a document, a bad line, a duplicate document.
  inkstream::test::write_file(in / "d.jsonl",
        "{\"text\": \"A line\\u2028with a separator and a long enough body.\"}\n"
        "not json\n"
        "{\"text\": \"Caf\\u00e9 au lait, said Ren\\u00e9 in 2024.\"}\n");
  // Undecodable bytes.
  inkstream::test::write_file(in / "e.txt", "Bytes \xff\xfe here, and the rest is fine text.");
  const std::string before_a = inkstream::test::read_file(in / "a.txt");

  CleanOptions options;
  options.min_chars = 20;
  const fs::path out = root / "out";
  const CleanSummary s = clean_corpus({in}, out, options);

  std::vector<json> docs;
  std::istringstream lines(inkstream::test::read_file(out / "documents.jsonl"));
  for (std::string line; std::getline(lines, line);) docs.push_back(json::parse(line));
  ASSERT_EQ(docs.size(), 4u);
  EXPECT_EQ(docs[0]["text"], "It was the caf\xC3\xA9 on the corner.\n\nShe didn\xE2\x80\x99t go in.");
  EXPECT_EQ(docs[0]["source"], (in / "a.txt").string());
  EXPECT_EQ(docs[1]["text"], "A line\nwith a separator and a long enough body.");
  EXPECT_EQ(docs[2]["text"], "Caf\xC3\xA9 au lait, said Ren\xC3\xA9 in 2024.");
  EXPECT_EQ(docs[3]["text"], "Bytes \xEF\xBF\xBD\xEF\xBF\xBD here, and the rest is fine text.");
  // sub/b.txt, once in NFC, only repeats paragraphs of a.txt and d.jsonl
  // (other case, digits, punctuation): both go, and the empty rest with them.
  EXPECT_EQ(s.documents_in, 6u);
  EXPECT_EQ(s.documents_out, 4u);

  // Inputs are never modified; the report says what each step did.
  EXPECT_EQ(inkstream::test::read_file(in / "a.txt"), before_a);
  const json report = json::parse(inkstream::test::read_file(out / "report.json"));
  std::map<std::string, json> steps;
  for (const auto& st : report["steps"]) steps[st["step"]] = st;
  EXPECT_EQ(steps["decode_utf8"]["replaced_bytes"], 2);
  EXPECT_EQ(steps["repair_mojibake"]["characters_repaired"], 2);
  EXPECT_EQ(steps["drop_control_characters"]["characters_dropped"], 1);
  EXPECT_EQ(steps["normalize_line_breaks"]["line_breaks_changed"], 6);
  EXPECT_EQ(steps["nfc"]["documents_changed"], 1);
  EXPECT_EQ(steps["dedup_paragraphs"]["paragraphs_removed"], 2);
  EXPECT_EQ(steps["min_length"]["documents_dropped"], 2);
  EXPECT_EQ(report["json_lines_skipped"]["lines"], 1);
  EXPECT_FALSE(steps["repair_mojibake"]["examples"].empty());
  EXPECT_EQ(steps["language_filter"]["available"], language_filter_available());

  // Dropping undecodable documents instead of repairing them.
  options.invalid_utf8 = CleanOptions::InvalidUtf8::Drop;
  EXPECT_EQ(clean_corpus({in}, root / "out2", options).documents_out, 3u);
  fs::remove_all(root);
}

TEST(CorpusCleaning, RefusesAnOutputInsideAnInputAndMissingInputs) {
  const fs::path root = fresh_dir("clean-refuse");
  inkstream::test::write_file(root / "in/a.txt", "Some text that is long enough to keep around here.");
  EXPECT_THROW(clean_corpus({root / "in"}, root / "in/out", {}), std::runtime_error);
  EXPECT_THROW(clean_corpus({root / "missing"}, root / "out", {}), std::runtime_error);
  fs::remove_all(root);
}

TEST(CorpusCleaning, DelimiterSplitsFilesAndTheLanguageFilterKeepsEnglish) {
  const fs::path root = fresh_dir("clean-delim");
  inkstream::test::write_file(root / "in/cookies", "The first cookie says something wise about life and work.\n%\n"
                             "Le second biscuit dit quelque chose de sage sur la vie, le travail et les amis.\n%\n"
                             "The third cookie is also written in plain English words, as you see.\n");
  CleanOptions options;
  options.delimiter = "\n%\n";
  options.min_chars = 10;
  EXPECT_EQ(clean_corpus({root / "in"}, root / "out", options).documents_out, 3u);
  if (language_filter_available()) {
    options.language = "en";
    const CleanSummary s = clean_corpus({root / "in"}, root / "out-en", options);
    EXPECT_EQ(s.documents_out, 2u);
  }
  fs::remove_all(root);
}
