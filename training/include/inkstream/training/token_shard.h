#pragma once
// Token shards and datasets on disk: `inkstream data tokenize` writes them,
// the trainer and `inkstream eval` read them.
//
// A dataset folder holds dataset.json and shard files train_NNN.bin /
// val_NNN.bin. A shard is a 32-byte little-endian header
//   0  char[8]  magic "INKTOKS\0"
//   8  u32      format version (1)
//  12  u32      bytes per token (2 when the vocabulary fits in 16 bits, else 4)
//  16  u64      token count
//  24  u64      reserved, 0
// followed by the tokens. Everything read from these files is checked
// before use (sizes against the file, names, numbers' ranges, every token
// against the vocabulary): a corrupt or hostile dataset is an error naming
// the file and field, never a read outside the mapping.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace inkstream {
class MappedFile;
}

namespace inkstream::training {

inline constexpr char kShardMagic[8] = {'I', 'N', 'K', 'T', 'O', 'K', 'S', '\0'};
inline constexpr std::uint32_t kShardVersion = 1;
inline constexpr std::size_t kShardHeaderBytes = 32;

// Writes one shard (atomically); token_bytes is 2 or 4 (every token must fit).
void write_shard(const std::filesystem::path& path, const std::vector<std::uint32_t>& tokens, std::uint32_t token_bytes);

// A shard's tokens in memory (not owned). parse() validates the header
// against `size`; throws std::runtime_error starting with `origin`.
struct ShardView {
  const unsigned char* tokens = nullptr;
  std::uint64_t count = 0;
  std::uint32_t width = 2;
  static ShardView parse(const unsigned char* data, std::size_t size, const std::string& origin);
  std::uint32_t operator[](std::uint64_t i) const;
};

// A memory-mapped shard, validated on open.
class TokenShard {
 public:
  static TokenShard open(const std::filesystem::path& path);
  std::uint64_t size() const { return view_.count; }
  std::uint32_t width() const { return view_.width; }
  std::uint32_t operator[](std::uint64_t i) const { return view_[i]; }

 private:
  std::shared_ptr<MappedFile> file_;
  ShardView view_;
};

// dataset.json, validated: the format tag, numbers in range, and per split
// its shards as plain file names inside the dataset folder.
struct DatasetMeta {
  struct Split {
    std::vector<std::string> shards;
    std::optional<std::uint64_t> tokens, documents;  // as dataset.json says, when it does
  };
  std::int64_t vocab_size = 0;
  std::int64_t end_of_text = -1;
  std::uint32_t token_bytes = 2;
  std::string tokenizer;  // the folder it was tokenized with (may be empty)
  Split train, val;
  static DatasetMeta parse(std::string_view json_text, const std::string& origin);
  static DatasetMeta read(const std::filesystem::path& dataset_dir);
};

// One split of a dataset as a single sequence of tokens across its shards.
class TokenStream {
 public:
  // split is "train" or "val"; throws std::runtime_error when missing/corrupt.
  static TokenStream open(const std::filesystem::path& dataset_dir, const std::string& split);
  std::uint64_t size() const { return total_; }
  std::int64_t vocab_size() const { return vocab_size_; }
  // Copies tokens [begin, begin + n) into out (as int64, for libtorch);
  // throws std::out_of_range past the end and std::runtime_error for a
  // token outside the dataset's vocabulary.
  void read(std::uint64_t begin, std::size_t n, std::int64_t* out) const;

 private:
  std::string name_;
  std::vector<TokenShard> shards_;
  std::vector<std::uint64_t> starts_;
  std::uint64_t total_ = 0;
  std::int64_t vocab_size_ = 0;
};

}  // namespace inkstream::training
