#pragma once
// `inkstream data tokenize`: documents in, a tokenised dataset out (the
// format and its readers: token_shard.h). Documents are separated by
// <|endoftext|> (a document is preceded by one, as GPT-2 was trained).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "inkstream/training/token_shard.h"

namespace inkstream::training {

struct TokenizeOptions {
  double val_fraction = 0.05;                   // share of documents for validation
  std::uint64_t seed = 0;                       // the split depends only on this and each document's text
  std::uint64_t shard_tokens = 100'000'000;     // tokens per shard at most
};

struct SplitSummary {
  std::uint64_t documents = 0, tokens = 0;
  std::vector<std::string> shards;
};

struct DatasetSummary {
  SplitSummary train, val;
  std::int32_t vocab_size = 0;
};

// Reads documents from IN (documents.jsonl from `data clean`, any *.jsonl
// with a "text" field, or other files as one document each, recursively),
// tokenizes them with the tokenizer of TOKENIZER_DIR (a model folder or a
// folder with vocab.json + merges.txt) and writes the dataset to OUT.
DatasetSummary tokenize_dataset(const std::filesystem::path& in, const std::filesystem::path& tokenizer_dir,
                                const std::filesystem::path& out, const TokenizeOptions& options);

}  // namespace inkstream::training
