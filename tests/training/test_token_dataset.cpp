// Token shards (format, validation) and `data tokenize` (separators, split).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <limits>

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

TEST(TokenShards, ReservedHeaderFieldMustBeZero) {
  const fs::path dir = fresh_dir("shards-reserved");
  write_shard(dir / "good.bin", {1, 2}, 2);
  std::string bytes = read_file(dir / "good.bin");
  bytes[24] = 1;
  write_file(dir / "bad.bin", bytes);
  EXPECT_THROW(TokenShard::open(dir / "bad.bin"), std::runtime_error);
  fs::remove_all(dir);
}

namespace {
// A dataset folder with one train shard of `tokens` and dataset.json from `meta`.
fs::path dataset_with(const std::string& name, const std::vector<std::uint32_t>& tokens, const nlohmann::json& meta) {
  const fs::path dir = fresh_dir(name);
  write_shard(dir / "train_000.bin", tokens, 2);
  write_shard(dir / "val_000.bin", {0, 1}, 2);
  write_file(dir / "dataset.json", meta.dump());
  return dir;
}
nlohmann::json good_meta() {
  return {{"format", "inkstream-tokens"}, {"version", 1}, {"vocab_size", 100}, {"token_bytes", 2},
          {"train", {{"shards", {"train_000.bin"}}, {"tokens", 3}}}, {"val", {{"shards", {"val_000.bin"}}}}};
}
std::string open_error(const fs::path& dir, const std::string& split = "train") {
  try {
    TokenStream::open(dir, split);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(accepted)";
}
}  // namespace

TEST(TokenDatasetMeta, HostileDatasetJsonIsRefusedNamingTheField) {
  const std::vector<std::uint32_t> tokens = {1, 2, 3};
  {
    const fs::path dir = dataset_with("meta-good", tokens, good_meta());
    const TokenStream s = TokenStream::open(dir, "train");
    EXPECT_EQ(s.size(), 3u);
    EXPECT_EQ(s.vocab_size(), 100);
    fs::remove_all(dir);
  }
  struct Case {
    const char* what;
    std::function<void(nlohmann::json&)> edit;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {"path outside the folder", [](auto& m) { m["train"]["shards"] = {"../train_000.bin"}; }, "train.shards"},
      {"absolute path", [](auto& m) { m["train"]["shards"] = {"/etc/passwd"}; }, "train.shards"},
      {"number as name", [](auto& m) { m["train"]["shards"] = {7}; }, "train.shards"},
      {"shards not an array", [](auto& m) { m["val"]["shards"] = "val_000.bin"; }, "\"val\" must be an object"},
      {"vocab_size wraps", [](auto& m) { m["vocab_size"] = 4294967396ull; }, "\"vocab_size\" must be an integer from 1 to"},
      {"vocab_size negative", [](auto& m) { m["vocab_size"] = -5; }, "\"vocab_size\""},
      {"vocab_size float", [](auto& m) { m["vocab_size"] = 100.5; }, "\"vocab_size\""},
      {"token_bytes 3", [](auto& m) { m["token_bytes"] = 3; }, "\"token_bytes\" must be 2 or 4"},
      {"token_bytes too small for the vocabulary", [](auto& m) { m["vocab_size"] = 70000; }, "needs 4"},
      {"token count wraps", [](auto& m) { m["train"]["tokens"] = -1; }, "\"train.tokens\""},
      {"token count differs", [](auto& m) { m["train"]["tokens"] = 4; }, "says 4 tokens but the shards hold 3"},
      {"version", [](auto& m) { m["version"] = 2; }, "version 2 is not supported"},
      {"format", [](auto& m) { m["format"] = "other"; }, "not an inkstream token dataset"},
      {"end_of_text outside the vocabulary", [](auto& m) { m["end_of_text"] = 100; }, "\"end_of_text\""},
  };
  for (const Case& c : cases) {
    nlohmann::json meta = good_meta();
    c.edit(meta);
    const fs::path dir = dataset_with("meta-bad", tokens, meta);
    const std::string error = open_error(dir);
    EXPECT_NE(error.find(c.expected), std::string::npos) << c.what << ": " << error;
    EXPECT_NE(error.find("dataset.json"), std::string::npos) << c.what << ": " << error;
    fs::remove_all(dir);
  }
  const fs::path dir = fresh_dir("meta-garbage");
  write_file(dir / "dataset.json", "{\"format\": \"inkstream-tokens\", \"vocab_size\": 1e505}");
  EXPECT_NE(open_error(dir).find("dataset.json"), std::string::npos) << open_error(dir);
  write_file(dir / "dataset.json", "not json");
  EXPECT_NE(open_error(dir).find("not valid JSON"), std::string::npos) << open_error(dir);
  fs::remove_all(dir);
}

TEST(TokenDatasetMeta, ATokenOutsideTheVocabularyIsAnErrorNotAnIndex) {
  nlohmann::json meta = good_meta();
  meta["vocab_size"] = 3;
  const fs::path dir = dataset_with("meta-token", {0, 2, 3}, meta);
  const TokenStream s = TokenStream::open(dir, "train");
  std::vector<std::int64_t> out(3);
  s.read(0, 2, out.data());
  EXPECT_EQ(out[1], 2);
  try {
    s.read(1, 2, out.data());
    ADD_FAILURE() << "token 3 accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("token 3 at position 2 is outside the vocabulary of 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(s.read(2, std::numeric_limits<std::size_t>::max(), out.data()), std::out_of_range);  // (begin + n would wrap)
  fs::remove_all(dir);
}
