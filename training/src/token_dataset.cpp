#include "inkstream/model_runtime/atomic_file.h"
#include "inkstream/training/token_dataset.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "inkstream/model_runtime/safetensors.h"
#include "inkstream/model_runtime/tokenizer.h"

namespace inkstream::training {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

void put_u32(unsigned char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void put_u64(unsigned char* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
std::uint32_t get_u32(const unsigned char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
std::uint64_t get_u64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// FNV-1a: a stable hash (std::hash may differ between library versions,
// and the split must not).
std::uint64_t fnv1a(std::string_view s, std::uint64_t seed) {
  std::uint64_t h = 1469598103934665603ull ^ (seed * 0x9E3779B97F4A7C15ull);
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Calls fn(text) for each document under `in`, in a stable order.
template <class Fn>
void for_each_document(const fs::path& in, Fn&& fn) {
  std::vector<fs::path> files;
  if (fs::is_directory(in)) {
    for (const auto& e : fs::recursive_directory_iterator(in))
      if (e.is_regular_file() && e.path().filename().string().rfind('.', 0) != 0 && e.path().filename() != "report.json")
        files.push_back(e.path());
    std::sort(files.begin(), files.end());
  } else if (fs::is_regular_file(in)) {
    files.push_back(in);
  } else {
    throw std::runtime_error("input not found: " + in.string());
  }
  for (const fs::path& file : files) {
    const std::string bytes = read_file(file);
    if (file.extension() == ".jsonl") {
      std::istringstream lines(bytes);
      std::string line;
      for (std::size_t n = 1; std::getline(lines, line); ++n) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const json j = json::parse(line, nullptr, false);
        if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
          throw std::runtime_error(file.string() + ":" + std::to_string(n) + ": not a JSON object with a \"text\" string");
        fn(j["text"].get<std::string>());
      }
    } else {
      fn(bytes);
    }
  }
}

// Accumulates one split's tokens and writes shards as they fill.
class SplitWriter {
 public:
  SplitWriter(fs::path dir, std::string name, std::uint32_t width, std::uint64_t shard_tokens)
      : dir_(std::move(dir)), name_(std::move(name)), width_(width), shard_tokens_(shard_tokens) {}
  void add_document(const std::vector<TokenId>& ids, TokenId eot) {
    ++summary_.documents;
    push(static_cast<std::uint32_t>(eot));
    for (TokenId id : ids) push(static_cast<std::uint32_t>(id));
  }
  std::uint64_t documents() const { return summary_.documents; }
  SplitSummary finish() {
    if (!buffer_.empty() || summary_.shards.empty()) flush();
    return summary_;
  }

 private:
  void push(std::uint32_t t) {
    buffer_.push_back(t);
    ++summary_.tokens;
    if (buffer_.size() >= shard_tokens_) flush();
  }
  void flush() {
    char name[64];
    std::snprintf(name, sizeof name, "%s_%03zu.bin", name_.c_str(), summary_.shards.size());
    write_shard(dir_ / name, buffer_, width_);
    summary_.shards.push_back(name);
    buffer_.clear();
  }
  fs::path dir_;
  std::string name_;
  std::uint32_t width_;
  std::uint64_t shard_tokens_;
  std::vector<std::uint32_t> buffer_;
  SplitSummary summary_;
};

}  // namespace

void write_shard(const fs::path& path, const std::vector<std::uint32_t>& tokens, std::uint32_t token_bytes) {
  if (token_bytes != 2 && token_bytes != 4) throw std::invalid_argument("token width must be 2 or 4 bytes");
  unsigned char header[kShardHeaderBytes] = {};
  std::memcpy(header, kShardMagic, 8);
  put_u32(header + 8, kShardVersion);
  put_u32(header + 12, token_bytes);
  put_u64(header + 16, tokens.size());
  std::vector<unsigned char> body(tokens.size() * token_bytes);
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (token_bytes == 2 && tokens[i] > 0xFFFF) throw std::invalid_argument("token id does not fit in 16 bits");
    for (std::uint32_t b = 0; b < token_bytes; ++b) body[i * token_bytes + b] = static_cast<unsigned char>(tokens[i] >> (8 * b));
  }
  AtomicFile file(path);
  file.stream().write(reinterpret_cast<const char*>(header), sizeof header);
  file.stream().write(reinterpret_cast<const char*>(body.data()), static_cast<std::streamsize>(body.size()));
  file.commit();
}

TokenShard TokenShard::open(const fs::path& path) {
  TokenShard s;
  s.file_ = MappedFile::open(path);
  const auto* p = reinterpret_cast<const unsigned char*>(s.file_->data());
  const std::size_t size = s.file_->size();
  auto fail = [&](const std::string& why) { return std::runtime_error(path.string() + ": " + why); };
  if (size < kShardHeaderBytes || std::memcmp(p, kShardMagic, 8) != 0) throw fail("not an inkstream token shard (bad magic)");
  if (get_u32(p + 8) != kShardVersion)
    throw fail("token shard format version " + std::to_string(get_u32(p + 8)) + " is not supported (expected 1)");
  s.width_ = get_u32(p + 12);
  if (s.width_ != 2 && s.width_ != 4) throw fail("bad token width " + std::to_string(s.width_));
  s.count_ = get_u64(p + 16);
  if (s.count_ > (size - kShardHeaderBytes) / s.width_ || kShardHeaderBytes + s.count_ * s.width_ != size)
    throw fail("header says " + std::to_string(s.count_) + " tokens but the file holds " + std::to_string(size) + " bytes");
  s.tokens_ = p + kShardHeaderBytes;
  return s;
}

std::uint32_t TokenShard::operator[](std::uint64_t i) const {
  const unsigned char* t = tokens_ + i * width_;
  return width_ == 2 ? static_cast<std::uint32_t>(t[0] | (t[1] << 8)) : get_u32(t);
}

DatasetSummary tokenize_dataset(const fs::path& in, const fs::path& tokenizer_dir, const fs::path& out,
                                const TokenizeOptions& options) {
  if (!(options.val_fraction >= 0.0 && options.val_fraction < 1.0))
    throw std::invalid_argument("validation fraction must be in [0, 1)");
  const Tokenizer tokenizer = Tokenizer::from_folder(tokenizer_dir);
  const TokenId eot = tokenizer.end_of_text_id();
  if (eot < 0) throw std::runtime_error("the tokenizer in " + tokenizer_dir.string() + " has no <|endoftext|> token");
  const std::uint32_t width = tokenizer.vocab_size() <= 0x10000 ? 2 : 4;
  fs::create_directories(out);
  SplitWriter train(out, "train", width, options.shard_tokens), val(out, "val", width, options.shard_tokens);
  // Keep the last training document aside so that a small corpus whose hash
  // split leaves validation empty still gets one validation document.
  std::vector<TokenId> held;
  bool have_held = false;
  for_each_document(in, [&](const std::string& text) {
    const std::vector<TokenId> ids = tokenizer.encode(text, /*split_special=*/false);
    const double u = static_cast<double>(fnv1a(text, options.seed) >> 11) * 0x1.0p-53;
    if (u < options.val_fraction) {
      val.add_document(ids, eot);
      return;
    }
    if (have_held) train.add_document(held, eot);
    held = ids;
    have_held = true;
  });
  DatasetSummary summary;
  if (have_held) {
    if (val.documents() == 0 && options.val_fraction > 0) val.add_document(held, eot);
    else train.add_document(held, eot);
  }
  summary.val = val.finish();
  summary.train = train.finish();
  summary.vocab_size = tokenizer.vocab_size();
  if (summary.train.documents == 0) throw std::runtime_error("no training documents found in " + in.string());
  auto split_json = [](const SplitSummary& s) {
    return json{{"documents", s.documents}, {"tokens", s.tokens}, {"shards", s.shards}};
  };
  const json meta = {{"format", "inkstream-tokens"},
                     {"version", kShardVersion},
                     {"tokenizer", fs::absolute(tokenizer_dir).string()},
                     {"vocab_size", summary.vocab_size},
                     {"end_of_text", eot},
                     {"token_bytes", width},
                     {"val_fraction", options.val_fraction},
                     {"seed", options.seed},
                     {"train", split_json(summary.train)},
                     {"val", split_json(summary.val)}};
  write_file_atomically(out / "dataset.json", meta.dump(2) + '\n');  // (last: a dataset is complete once it exists)
  return summary;
}

TokenStream TokenStream::open(const fs::path& dir, const std::string& split) {
  const fs::path meta_path = dir / "dataset.json";
  std::ifstream in(meta_path);
  if (!in) throw std::runtime_error("not a tokenized dataset (no dataset.json): " + dir.string());
  const json meta = json::parse(in, nullptr, false);
  if (!meta.is_object() || meta.value("format", "") != "inkstream-tokens" || !meta.contains(split) ||
      !meta[split].contains("shards"))
    throw std::runtime_error(meta_path.string() + ": not an inkstream token dataset");
  TokenStream s;
  for (const auto& name : meta[split]["shards"]) {
    s.shards_.push_back(TokenShard::open(dir / name.get<std::string>()));
    s.starts_.push_back(s.total_);
    s.total_ += s.shards_.back().size();
  }
  return s;
}

void TokenStream::read(std::uint64_t begin, std::size_t n, std::int64_t* out) const {
  if (begin + n > total_) throw std::out_of_range("token range past the end of the split");
  auto shard = static_cast<std::size_t>(std::upper_bound(starts_.begin(), starts_.end(), begin) - starts_.begin() - 1);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t pos = begin + i;
    while (pos - starts_[shard] >= shards_[shard].size()) ++shard;
    out[i] = shards_[shard][pos - starts_[shard]];
  }
}

}  // namespace inkstream::training
