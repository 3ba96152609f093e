#pragma once
// Tokenised datasets: `inkstream data tokenize` writes them, the trainer
// reads them.
//
// A dataset folder holds dataset.json and shard files train_NNN.bin /
// val_NNN.bin. A shard is a 32-byte little-endian header
//   0  char[8]  magic "INKTOKS\0"
//   8  u32      format version (1)
//  12  u32      bytes per token (2 when the vocabulary fits in 16 bits, else 4)
//  16  u64      token count
//  24  u64      reserved, 0
// followed by the tokens. Documents are separated by <|endoftext|> (a
// document is preceded by one, as GPT-2 was trained).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace inkstream {
class MappedFile;
}

namespace inkstream::training {

inline constexpr char kShardMagic[8] = {'I', 'N', 'K', 'T', 'O', 'K', 'S', '\0'};
inline constexpr std::uint32_t kShardVersion = 1;
inline constexpr std::size_t kShardHeaderBytes = 32;

// Writes one shard; token_bytes is 2 or 4 (every token must fit).
void write_shard(const std::filesystem::path& path, const std::vector<std::uint32_t>& tokens, std::uint32_t token_bytes);

// A memory-mapped shard, validated on open (magic, version, width, size).
class TokenShard {
 public:
  static TokenShard open(const std::filesystem::path& path);
  std::uint64_t size() const { return count_; }
  std::uint32_t operator[](std::uint64_t i) const;

 private:
  std::shared_ptr<MappedFile> file_;
  const unsigned char* tokens_ = nullptr;
  std::uint64_t count_ = 0;
  std::uint32_t width_ = 2;
};

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

// One split of a dataset as a single sequence of tokens across its shards.
class TokenStream {
 public:
  // split is "train" or "val"; throws std::runtime_error when missing/corrupt.
  static TokenStream open(const std::filesystem::path& dataset_dir, const std::string& split);
  std::uint64_t size() const { return total_; }
  // Copies tokens [begin, begin + n) into out (as int64, for libtorch).
  void read(std::uint64_t begin, std::size_t n, std::int64_t* out) const;

 private:
  std::vector<TokenShard> shards_;
  std::vector<std::uint64_t> starts_;
  std::uint64_t total_ = 0;
};

}  // namespace inkstream::training
