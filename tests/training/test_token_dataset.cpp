// Token shards (format, validation) and `data tokenize` (separators, split).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "inkstream/model_runtime/tokenizer.h"
#include "inkstream/training/token_dataset.h"
#include "temp_files.h"

namespace fs = std::filesystem;
using namespace inkstream::training;
using inkstream::test::fresh_dir;
using inkstream::test::read_file;
using inkstream::test::write_file;

namespace {
const fs::path kTokenizer = fs::path(INKSTREAM_SOURCE_DIR) / "tests/fixtures/tokenizer/gpt2";
}

TEST(TokenShards, RoundTripIn16And32Bits) {
  const fs::path dir = fresh_dir("shards");
  const std::vector<std::uint32_t> small = {0, 1, 50256, 65535, 7};
  write_shard(dir / "a.bin", small, 2);
  EXPECT_EQ(fs::file_size(dir / "a.bin"), kShardHeaderBytes + 2 * small.size());
  const TokenShard a = TokenShard::open(dir / "a.bin");
  ASSERT_EQ(a.size(), small.size());
  for (std::size_t i = 0; i < small.size(); ++i) EXPECT_EQ(a[i], small[i]);
  const std::vector<std::uint32_t> big = {70000, 3, 4000000000u};
  write_shard(dir / "b.bin", big, 4);
  const TokenShard b = TokenShard::open(dir / "b.bin");
  for (std::size_t i = 0; i < big.size(); ++i) EXPECT_EQ(b[i], big[i]);
  EXPECT_THROW(write_shard(dir / "c.bin", big, 2), std::invalid_argument);
  fs::remove_all(dir);
}

TEST(TokenShards, CorruptShardsAreRejectedWithTheReason) {
  const fs::path dir = fresh_dir("shards-bad");
  write_shard(dir / "good.bin", {1, 2, 3, 4}, 2);
  const std::string good = read_file(dir / "good.bin");
  auto expect_error = [&](const std::string& bytes, const std::string& why) {
    write_file(dir / "bad.bin", bytes);
    try {
      TokenShard::open(dir / "bad.bin");
      ADD_FAILURE() << "accepted: " << why;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("bad.bin"), std::string::npos) << e.what();
    }
  };
  expect_error("BADMAGIC" + good.substr(8), "bad magic");
  expect_error(good.substr(0, 8) + std::string("\x02\0\0\0", 4) + good.substr(12), "version 2");
  expect_error(good.substr(0, good.size() - 1), "header says 4 tokens");
  expect_error(good + "xx", "header says 4 tokens");
  expect_error(good.substr(0, 10), "bad magic");
  fs::remove_all(dir);
}

TEST(TokenizeDataset, DocumentsArePrecededByEndOfTextAndTheSplitIsDeterministic) {
  const fs::path dir = fresh_dir("tokenize");
  std::string jsonl;
  std::vector<std::string> texts;
  for (int i = 0; i < 40; ++i) {
    texts.push_back("Document number " + std::to_string(i) + " says hello.");
    jsonl += nlohmann::json{{"text", texts.back()}, {"source", "x"}}.dump() + "\n";
  }
  write_file(dir / "clean/documents.jsonl", jsonl);
  write_file(dir / "clean/report.json", "{\"not\": \"a document\"}");
  TokenizeOptions options;
  options.val_fraction = 0.2;
  options.shard_tokens = 50;  // several shards
  const DatasetSummary s = tokenize_dataset(dir / "clean", kTokenizer, dir / "ds", options);
  EXPECT_EQ(s.train.documents + s.val.documents, 40u);
  EXPECT_GT(s.val.documents, 0u);
  EXPECT_GT(s.train.shards.size(), 1u);

  const inkstream::Tokenizer tok = inkstream::Tokenizer::from_folder(kTokenizer);
  std::uint64_t expected_tokens = 0;
  for (const auto& t : texts) expected_tokens += 1 + tok.encode(t, false).size();
  EXPECT_EQ(s.train.tokens + s.val.tokens, expected_tokens);

  // The train stream decodes to the training documents, each after <|endoftext|>.
  const TokenStream train = TokenStream::open(dir / "ds", "train");
  ASSERT_EQ(train.size(), s.train.tokens);
  std::vector<std::int64_t> ids(train.size());
  train.read(0, ids.size(), ids.data());
  EXPECT_EQ(ids.front(), 50256);
  std::vector<inkstream::TokenId> as32(ids.begin(), ids.end());
  const std::string decoded = tok.decode(as32);
  EXPECT_EQ(decoded.rfind("<|endoftext|>Document number ", 0), 0u);
  EXPECT_THROW(train.read(train.size() - 1, 2, ids.data()), std::out_of_range);

  // Same input, same seed: byte-identical shards; another seed: another split.
  tokenize_dataset(dir / "clean", kTokenizer, dir / "ds2", options);
  for (const auto& name : s.train.shards) EXPECT_EQ(read_file(dir / "ds" / name), read_file(dir / "ds2" / name));
  options.seed = 99;
  const DatasetSummary other = tokenize_dataset(dir / "clean", kTokenizer, dir / "ds3", options);
  EXPECT_NE(read_file(dir / "ds" / "val_000.bin"), read_file(dir / "ds3" / "val_000.bin"));
  (void)other;
  fs::remove_all(dir);
}

TEST(TokenizeDataset, ASmallCorpusStillGetsAValidationDocument) {
  const fs::path dir = fresh_dir("tokenize-small");
  write_file(dir / "in/one.txt", "Only one document here.");
  write_file(dir / "in/two.txt", "And a second one.");
  const DatasetSummary s = tokenize_dataset(dir / "in", kTokenizer, dir / "ds", {});
  EXPECT_EQ(s.train.documents, 1u);
  EXPECT_EQ(s.val.documents, 1u);
  EXPECT_THROW(tokenize_dataset(dir / "missing", kTokenizer, dir / "ds", {}), std::runtime_error);
  fs::remove_all(dir);
}
