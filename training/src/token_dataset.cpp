#include "inkstream/model_runtime/atomic_file.h"
#include "inkstream/training/token_dataset.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "inkstream/model_runtime/file_util.h"
#include "inkstream/model_runtime/tokenizer.h"

namespace inkstream::training {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

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
    const std::string bytes = read_whole_file(file);
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

}  // namespace inkstream::training
