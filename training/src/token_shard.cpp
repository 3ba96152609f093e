// Token shards and dataset.json: writing, and validating everything read
// back (see token_shard.h). Torch-free: the fuzz build compiles it directly.
#include "inkstream/training/token_shard.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "inkstream/model_runtime/atomic_file.h"
#include "inkstream/model_runtime/file_util.h"
#include "inkstream/model_runtime/json_numbers.h"
#include "inkstream/model_runtime/safetensors.h"

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

// A shard's name must stay inside the dataset folder.
bool plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos && name.find('\0') == std::string::npos;
}

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

ShardView ShardView::parse(const unsigned char* p, std::size_t size, const std::string& origin) {
  auto fail = [&](const std::string& why) { return std::runtime_error(origin + ": " + why); };
  if (size < kShardHeaderBytes || std::memcmp(p, kShardMagic, 8) != 0) throw fail("not an inkstream token shard (bad magic)");
  if (get_u32(p + 8) != kShardVersion)
    throw fail("token shard format version " + std::to_string(get_u32(p + 8)) + " is not supported (expected 1)");
  ShardView s;
  s.width = get_u32(p + 12);
  if (s.width != 2 && s.width != 4) throw fail("bad token width " + std::to_string(s.width));
  s.count = get_u64(p + 16);
  // (divided, not multiplied: a count near 2^64 must not wrap into a match)
  if (s.count > (size - kShardHeaderBytes) / s.width || kShardHeaderBytes + s.count * s.width != size)
    throw fail("header says " + std::to_string(s.count) + " tokens but the file holds " + std::to_string(size) + " bytes");
  if (get_u64(p + 24) != 0) throw fail("reserved header field is not 0");
  s.tokens = p + kShardHeaderBytes;
  return s;
}

std::uint32_t ShardView::operator[](std::uint64_t i) const {
  const unsigned char* t = tokens + i * width;
  return width == 2 ? static_cast<std::uint32_t>(t[0] | (t[1] << 8)) : get_u32(t);
}

TokenShard TokenShard::open(const fs::path& path) {
  TokenShard s;
  try {
    s.file_ = MappedFile::open(path);
  } catch (const std::exception& e) {
    throw std::runtime_error(path.string() + ": cannot open token shard (" + e.what() + ")");
  }
  s.view_ = ShardView::parse(reinterpret_cast<const unsigned char*>(s.file_->data()), s.file_->size(), path.string());
  return s;
}

DatasetMeta DatasetMeta::parse(std::string_view text, const std::string& origin) {
  auto fail = [&](const std::string& why) { return std::runtime_error(origin + ": " + why); };
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw fail("not valid JSON");
  if (!j.is_object() || !j.contains("format") || j["format"] != "inkstream-tokens")
    throw fail("not an inkstream token dataset (\"format\" is not \"inkstream-tokens\")");
  auto integer = [&](const char* key, auto lo, auto hi, bool required) {
    using T = decltype(lo);
    if (!j.contains(key)) {
      if (required) throw fail(std::string("\"") + key + "\" is missing");
      return std::optional<T>();
    }
    const auto v = json_numbers::integer<T>(j[key], lo, hi);
    if (!v) throw fail(std::string("\"") + key + "\" " + json_numbers::range_rule<T>(lo, hi));
    return v;
  };
  if (integer("version", std::uint32_t{0}, std::uint32_t{1000000}, true) != kShardVersion)
    throw fail("dataset format version " + j["version"].dump() + " is not supported (expected 1)");
  DatasetMeta m;
  m.vocab_size = *integer("vocab_size", std::int64_t{1}, std::int64_t{1} << 31, true);
  m.end_of_text = integer("end_of_text", std::int64_t{-1}, m.vocab_size - 1, false).value_or(-1);
  m.token_bytes = *integer("token_bytes", std::uint32_t{2}, std::uint32_t{4}, true);
  if (m.token_bytes == 3) throw fail("\"token_bytes\" must be 2 or 4");
  if (m.token_bytes == 2 && m.vocab_size > 0x10000)
    throw fail("\"token_bytes\" is 2 but a vocabulary of " + std::to_string(m.vocab_size) + " needs 4");
  if (j.contains("tokenizer")) {
    if (!j["tokenizer"].is_string()) throw fail("\"tokenizer\" must be a string");
    m.tokenizer = j["tokenizer"].get<std::string>();
  }
  for (const char* name : {"train", "val"}) {
    Split& split = std::string(name) == "train" ? m.train : m.val;
    if (!j.contains(name)) throw fail(std::string("\"") + name + "\" is missing");
    const json& s = j[name];
    if (!s.is_object() || !s.contains("shards") || !s["shards"].is_array())
      throw fail(std::string("\"") + name + "\" must be an object with a \"shards\" array");
    for (const json& shard : s["shards"]) {
      if (!shard.is_string() || !plain_file_name(shard.get<std::string>()))
        throw fail(std::string("\"") + name + ".shards\" must hold file names inside the dataset folder, not " + shard.dump());
      split.shards.push_back(shard.get<std::string>());
    }
    auto count = [&](const char* key) -> std::optional<std::uint64_t> {
      if (!s.contains(key)) return std::nullopt;
      const auto v = json_numbers::integer<std::uint64_t>(s[key]);
      if (!v) throw fail(std::string("\"") + name + "." + key + "\" " + json_numbers::range_rule<std::uint64_t>(0, UINT64_MAX));
      return v;
    };
    split.tokens = count("tokens");
    split.documents = count("documents");
  }
  return m;
}

DatasetMeta DatasetMeta::read(const fs::path& dir) {
  const fs::path path = dir / "dataset.json";
  if (!fs::exists(path)) throw std::runtime_error("not a tokenized dataset (no dataset.json): " + dir.string());
  return parse(read_whole_file(path), path.string());
}

TokenStream TokenStream::open(const fs::path& dir, const std::string& split) {
  if (split != "train" && split != "val") throw std::invalid_argument("split must be train or val, not " + split);
  const DatasetMeta meta = DatasetMeta::read(dir);
  const DatasetMeta::Split& s = split == "train" ? meta.train : meta.val;
  TokenStream stream;
  stream.name_ = (dir / "dataset.json").string() + " (" + split + ")";
  stream.vocab_size_ = meta.vocab_size;
  for (const std::string& name : s.shards) {
    stream.shards_.push_back(TokenShard::open(dir / name));
    if (stream.shards_.back().width() != meta.token_bytes)
      throw std::runtime_error((dir / name).string() + ": tokens of " + std::to_string(stream.shards_.back().width()) +
                               " bytes but dataset.json says " + std::to_string(meta.token_bytes));
    stream.starts_.push_back(stream.total_);
    stream.total_ += stream.shards_.back().size();  // (each ≤ a file's size: no wrap)
  }
  if (s.tokens && *s.tokens != stream.total_)
    throw std::runtime_error(stream.name_ + ": dataset.json says " + std::to_string(*s.tokens) + " tokens but the shards hold " +
                             std::to_string(stream.total_));
  return stream;
}

void TokenStream::read(std::uint64_t begin, std::size_t n, std::int64_t* out) const {
  if (begin > total_ || n > total_ - begin) throw std::out_of_range("token range past the end of the split");
  if (n == 0) return;
  auto shard = static_cast<std::size_t>(std::upper_bound(starts_.begin(), starts_.end(), begin) - starts_.begin() - 1);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t pos = begin + i;
    while (pos - starts_[shard] >= shards_[shard].size()) ++shard;
    const std::uint32_t t = shards_[shard][pos - starts_[shard]];
    if (t >= static_cast<std::uint64_t>(vocab_size_))
      throw std::runtime_error(name_ + ": token " + std::to_string(t) + " at position " + std::to_string(pos) +
                               " is outside the vocabulary of " + std::to_string(vocab_size_));
    out[i] = t;
  }
}

}  // namespace inkstream::training
