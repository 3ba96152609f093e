#include "inkstream/model_runtime/tokenizer.h"

#include <unicode/uchar.h>

#include <algorithm>
#include <array>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <stdexcept>
#include <unordered_map>

#include "inkstream/model_runtime/json_numbers.h"
#include "inkstream/model_runtime/file_util.h"
#include "inkstream/model_runtime/errors.h"
#include "inkstream/model_runtime/utf8.h"

namespace inkstream {
namespace {

// Decodes one code point of valid UTF-8 at `i`; returns its byte length.
int decode_at(std::string_view s, std::size_t i, char32_t& cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) { cp = b0; return 1; }
  if (b0 < 0xE0) { cp = ((b0 & 0x1F) << 6) | (s[i + 1] & 0x3F); return 2; }
  if (b0 < 0xF0) {
    cp = ((b0 & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
    return 3;
  }
  cp = ((b0 & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12) | ((s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
  return 4;
}

// Converts a vocabulary string in GPT-2's unicode alphabet back to bytes
// (bytes_to_unicode: printable bytes map to themselves, the 68 others to
// U+0100 + n in order, so space is U+0120 'Ġ' and newline U+010A 'Ċ').
// Returns false when it holds a character outside that alphabet (then the
// token is not byte-level, e.g. an added special token, and is taken verbatim).
bool unicode_token_to_bytes(std::string_view token, std::string& out) {
  out.clear();
  static constexpr auto kInverse = [] {
    std::array<int, 324> inv{};
    inv.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      inv[printable ? b : next++] = b;
    }
    return inv;
  }();
  if (!utf8::is_valid(token)) return false;
  for (std::size_t i = 0; i < token.size();) {
    char32_t cp;
    i += decode_at(token, i, cp);
    if (cp >= kInverse.size() || kInverse[cp] < 0) return false;
    out.push_back(static_cast<char>(kInverse[cp]));
  }
  return true;
}

// ---- pre-tokenizer ----------------------------------------------------------
// Character classes of the GPT-2 pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// where \s is Unicode White_Space (as in Python's `regex` module).
enum class CharClass : unsigned char { Letter, Number, Space, Other };

CharClass classify(char32_t cp) {
  if (cp < 0x80) {
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::Letter;
    if (cp >= '0' && cp <= '9') return CharClass::Number;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return CharClass::Space;
    return CharClass::Other;
  }
  if (u_hasBinaryProperty(static_cast<UChar32>(cp), UCHAR_WHITE_SPACE)) return CharClass::Space;
  const auto mask = U_GET_GC_MASK(static_cast<UChar32>(cp));
  if (mask & U_GC_L_MASK) return CharClass::Letter;
  if (mask & U_GC_N_MASK) return CharClass::Number;
  return CharClass::Other;
}

CharClass class_at(std::string_view s, std::size_t i, int& len) {
  char32_t cp;
  len = decode_at(s, i, cp);
  return classify(cp);
}

// End of the run of characters of class `cls` starting at `i`.
std::size_t run_end(std::string_view s, std::size_t i, CharClass cls) {
  while (i < s.size()) {
    int len;
    if (class_at(s, i, len) != cls) break;
    i += len;
  }
  return i;
}

// Length of a contraction ('s 't 're 've 'm 'll 'd) at `i`, or 0.
std::size_t contraction_at(std::string_view s, std::size_t i) {
  if (s[i] != '\'' || i + 1 >= s.size()) return 0;
  const char c = s[i + 1];
  if (c == 's' || c == 't' || c == 'm' || c == 'd') return 2;
  if (i + 2 < s.size()) {
    const char d = s[i + 2];
    if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l')) return 3;
  }
  return 0;
}

// End of the regex match that starts at `i` (first matching alternative wins).
std::size_t match_at(std::string_view s, std::size_t i) {
  if (const std::size_t c = contraction_at(s, i)) return i + c;
  int len;
  const CharClass first = class_at(s, i, len);
  if (first != CharClass::Space) return run_end(s, i, first);
  // " ?X+" with the optional space: a single ' ' followed by a non-space.
  if (s[i] == ' ' && i + 1 < s.size()) {
    int next_len;
    const CharClass next = class_at(s, i + 1, next_len);
    if (next != CharClass::Space) return run_end(s, i + 1, next);
  }
  // Whitespace run: "\s+(?!\S)" leaves the last space for the next word;
  // "\s+" takes a single whitespace character before a word, or a final run.
  std::size_t last_start = i;
  std::size_t j = i;
  while (j < s.size()) {
    int l;
    if (class_at(s, j, l) != CharClass::Space) break;
    last_start = j;
    j += l;
  }
  if (j == s.size() || last_start == i) return j;
  return last_start;
}

struct PairHash {
  std::size_t operator()(std::uint64_t v) const noexcept { return std::hash<std::uint64_t>{}(v * 0x9E3779B97F4A7C15ull); }
};

std::uint64_t pair_key(TokenId a, TokenId b) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
}

}  // namespace

struct Tokenizer::Impl {
  std::vector<std::string> id_to_bytes;
  std::unordered_map<std::string, TokenId> bytes_to_id;
  std::array<TokenId, 256> byte_id{};
  struct Merge {
    std::int32_t rank;
    TokenId merged;
  };
  std::unordered_map<std::uint64_t, Merge, PairHash> merges;
  std::vector<std::pair<std::string, TokenId>> specials;  // longest first
  TokenId eot = -1;

  // Word cache: BPE of a chunk is a pure function of its bytes.
  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<TokenId>> cache;
  static constexpr std::size_t kCacheLimit = 1 << 16;

  void bpe(std::string_view word, std::vector<TokenId>& out) const;
  void encode_ordinary(std::string_view text, std::vector<TokenId>& out) const;
};

// Byte-pair merging of one pre-tokenized chunk. Symbols form a linked list; a
// min-heap holds candidate pairs ordered by (rank, position), so the lowest
// rank merges first and equal ranks merge left to right — the same result as
// the reference's "merge every occurrence of the best pair" loop, in
// O(n log n) even for pathological 100 kB words.
void Tokenizer::Impl::bpe(std::string_view word, std::vector<TokenId>& out) const {
  const std::size_t n = word.size();
  if (n == 1) {
    out.push_back(byte_id[static_cast<unsigned char>(word[0])]);
    return;
  }
  std::vector<TokenId> sym(n);
  std::vector<std::int64_t> prev(n), next(n);
  for (std::size_t i = 0; i < n; ++i) {
    sym[i] = byte_id[static_cast<unsigned char>(word[i])];
    prev[i] = static_cast<std::int64_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<std::int64_t>(i + 1) : -1;
  }
  struct Candidate {
    std::int32_t rank;
    std::int64_t left;
    TokenId a, b;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push_pair = [&](std::int64_t left) {
    if (left < 0 || next[left] < 0) return;
    const auto it = merges.find(pair_key(sym[left], sym[next[left]]));
    if (it != merges.end()) heap.push({it->second.rank, left, sym[left], sym[next[left]]});
  };
  for (std::size_t i = 0; i + 1 < n; ++i) push_pair(static_cast<std::int64_t>(i));
  std::vector<bool> dead(n, false);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const std::int64_t right = next[c.left];
    if (dead[c.left] || right < 0 || sym[c.left] != c.a || sym[right] != c.b) continue;  // stale
    sym[c.left] = merges.at(pair_key(c.a, c.b)).merged;
    dead[right] = true;
    next[c.left] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.left;
    push_pair(prev[c.left]);
    push_pair(c.left);
  }
  for (std::int64_t i = 0; i >= 0; i = next[i]) out.push_back(sym[i]);
}

void Tokenizer::Impl::encode_ordinary(std::string_view text, std::vector<TokenId>& out) const {
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t end = match_at(text, i);
    const std::string_view word = text.substr(i, end - i);
    i = end;
    if (word.size() > 64) {  // long words are rare; don't let them evict the cache
      bpe(word, out);
      continue;
    }
    {
      std::lock_guard lock(cache_mutex);
      const auto it = cache.find(std::string(word));
      if (it != cache.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        continue;
      }
    }
    const std::size_t start = out.size();
    bpe(word, out);
    std::lock_guard lock(cache_mutex);
    if (cache.size() >= kCacheLimit) cache.clear();
    cache.emplace(std::string(word), std::vector<TokenId>(out.begin() + static_cast<std::ptrdiff_t>(start), out.end()));
  }
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

namespace {

using Json = nlohmann::json;

// Builds the tables from a token->id map and an ordered list of merges.
std::unique_ptr<Tokenizer::Impl> build(const Json& vocab, const std::vector<std::pair<std::string, std::string>>& merge_list,
                                       const std::vector<std::pair<std::string, TokenId>>& added, const std::string& origin) {
  auto impl = std::make_unique<Tokenizer::Impl>();
  if (!vocab.is_object() || vocab.empty()) throw CheckpointError(origin + ": vocabulary must be a non-empty JSON object");
  TokenId max_id = -1;
  for (const auto& [token, id] : vocab.items()) {
    const std::optional<TokenId> n = json_numbers::integer<TokenId>(id, 0, 10'000'000);
    if (!n) throw CheckpointError(origin + ": vocabulary id of token '" + token + "' is not a valid id");
    max_id = std::max(max_id, *n);
  }
  for (const auto& [content, id] : added) max_id = std::max(max_id, id);
  impl->id_to_bytes.assign(static_cast<std::size_t>(max_id) + 1, std::string());
  std::string bytes;
  for (const auto& [token, id_json] : vocab.items()) {
    const auto id = id_json.get<TokenId>();
    if (!unicode_token_to_bytes(token, bytes)) bytes = token;
    impl->id_to_bytes[id] = bytes;
    impl->bytes_to_id.emplace(bytes, id);
  }
  for (int b = 0; b < 256; ++b) {
    const auto it = impl->bytes_to_id.find(std::string(1, static_cast<char>(b)));
    if (it == impl->bytes_to_id.end())
      throw CheckpointError(origin + ": vocabulary lacks the token for byte " + std::to_string(b) +
                            " (not a byte-level BPE vocabulary)");
    impl->byte_id[b] = it->second;
  }
  std::int32_t rank = 0;
  std::string a_bytes, b_bytes;
  for (const auto& [a, b] : merge_list) {
    if (!unicode_token_to_bytes(a, a_bytes) || !unicode_token_to_bytes(b, b_bytes))
      throw CheckpointError(origin + ": merge '" + a + " " + b + "' uses characters outside the byte alphabet");
    const auto ia = impl->bytes_to_id.find(a_bytes);
    const auto ib = impl->bytes_to_id.find(b_bytes);
    const auto im = impl->bytes_to_id.find(a_bytes + b_bytes);
    // A merge whose parts or result are not in the vocabulary can never fire
    // in the reference either (its result has no id); skip it.
    if (ia != impl->bytes_to_id.end() && ib != impl->bytes_to_id.end() && im != impl->bytes_to_id.end())
      impl->merges.try_emplace(pair_key(ia->second, ib->second), Tokenizer::Impl::Merge{rank, im->second});
    ++rank;
  }
  std::vector<std::pair<std::string, TokenId>> specials = added;
  const auto eot = impl->bytes_to_id.find("<|endoftext|>");
  if (eot != impl->bytes_to_id.end()) {
    impl->eot = eot->second;
    specials.emplace_back("<|endoftext|>", eot->second);
  }
  for (const auto& [content, id] : added) {
    if (content.empty()) throw CheckpointError(origin + ": empty added token");
    impl->id_to_bytes[id] = content;
  }
  std::sort(specials.begin(), specials.end(), [](const auto& x, const auto& y) { return x.first.size() > y.first.size(); });
  specials.erase(std::unique(specials.begin(), specials.end()), specials.end());
  impl->specials = std::move(specials);
  return impl;
}

std::vector<std::pair<std::string, std::string>> parse_merges_txt(std::string_view text, const std::string& origin) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t pos = 0;
  std::size_t line_no = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    const std::size_t space = line.find(' ');
    if (space == std::string_view::npos || space == 0 || space + 1 == line.size() || line.find(' ', space + 1) != std::string_view::npos)
      throw CheckpointError(origin + ": line " + std::to_string(line_no) + " is not a merge 'A B'");
    out.emplace_back(std::string(line.substr(0, space)), std::string(line.substr(space + 1)));
  }
  return out;
}

Json parse_json(std::string_view text, const std::string& origin) {
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {  // parse_error, or out_of_range for numbers like 1e505
    throw CheckpointError(origin + ": invalid JSON: " + e.what());
  }
}

}  // namespace

Tokenizer Tokenizer::from_vocab_and_merges(std::string_view vocab_json, std::string_view merges_txt, const std::string& origin) {
  return Tokenizer(build(parse_json(vocab_json, origin + " (vocab.json)"), parse_merges_txt(merges_txt, origin + " (merges.txt)"), {},
                         origin));
}

Tokenizer Tokenizer::from_folder(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  const fs::path vocab = dir / "vocab.json", merges = dir / "merges.txt", tok_json = dir / "tokenizer.json";
  try {
    if (fs::exists(vocab) && fs::exists(merges)) {
      std::vector<std::pair<std::string, TokenId>> added;
      const fs::path added_path = dir / "added_tokens.json";
      if (fs::exists(added_path)) {
        const Json j = parse_json(read_whole_file<CheckpointError>(added_path), added_path.string());
        if (!j.is_object()) throw CheckpointError(added_path.string() + ": expected an object {token: id}");
        for (const auto& [content, id] : j.items()) {
          const std::optional<TokenId> n = json_numbers::integer<TokenId>(id, 0, 10'000'000);
          if (!n) throw CheckpointError(added_path.string() + ": bad id for '" + content + "'");
          added.emplace_back(content, *n);
        }
      }
      return Tokenizer(build(parse_json(read_whole_file<CheckpointError>(vocab), vocab.string()),
                             parse_merges_txt(read_whole_file<CheckpointError>(merges), merges.string()), added, dir.string()));
    }
    if (fs::exists(tok_json)) {
      const Json j = parse_json(read_whole_file<CheckpointError>(tok_json), tok_json.string());
      const std::string origin = tok_json.string();
      if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
        throw CheckpointError(origin + ": no \"model\" object");
      const Json& model = j["model"];
      if (model.value("type", "BPE") != "BPE") throw CheckpointError(origin + ": model type is not BPE");
      if (!model.contains("vocab") || !model.contains("merges") || !model["merges"].is_array())
        throw CheckpointError(origin + ": model lacks \"vocab\" or \"merges\"");
      std::vector<std::pair<std::string, std::string>> merge_list;
      for (const Json& m : model["merges"]) {
        if (m.is_string()) {
          const auto parsed = parse_merges_txt(m.get<std::string>(), origin);
          if (parsed.size() != 1) throw CheckpointError(origin + ": bad merge entry");
          merge_list.push_back(parsed[0]);
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
          merge_list.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
        } else {
          throw CheckpointError(origin + ": bad merge entry " + m.dump());
        }
      }
      std::vector<std::pair<std::string, TokenId>> added;
      if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
        for (const Json& t : j["added_tokens"]) {
          const std::optional<TokenId> id =
              t.is_object() && t.contains("id") ? json_numbers::integer<TokenId>(t["id"], 0, 10'000'000) : std::nullopt;
          if (!id || !t.contains("content") || !t["content"].is_string()) throw CheckpointError(origin + ": bad added_tokens entry");
          if (t["content"].get<std::string>() == "<|endoftext|>") continue;  // found through the vocabulary
          added.emplace_back(t["content"].get<std::string>(), *id);
        }
      }
      return Tokenizer(build(model["vocab"], merge_list, added, origin));
    }
  } catch (const Json::exception& e) {
    throw CheckpointError(dir.string() + ": malformed tokenizer files: " + e.what());
  }
  throw CheckpointError(dir.string() + ": no tokenizer (expected vocab.json + merges.txt, or tokenizer.json)");
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool split_special) const {
  const std::string valid = utf8::make_valid(text);
  std::string_view rest = valid;
  std::vector<TokenId> out;
  out.reserve(rest.size() / 3 + 4);
  while (!rest.empty()) {
    std::size_t best = std::string_view::npos;
    const std::pair<std::string, TokenId>* hit = nullptr;
    if (split_special) {
      for (const auto& special : impl_->specials) {  // longest first, so ties prefer the longer token
        const std::size_t at = rest.find(special.first);
        if (at < best) {
          best = at;
          hit = &special;
        }
      }
    }
    impl_->encode_ordinary(rest.substr(0, best), out);
    if (!hit) break;
    out.push_back(hit->second);
    rest.remove_prefix(best + hit->first.size());
  }
  return out;
}

std::string Tokenizer::decode(std::span<const TokenId> ids) const {
  std::string bytes;
  for (const TokenId id : ids) bytes.append(token_bytes(id));
  return utf8::make_valid(bytes);
}

std::string_view Tokenizer::token_bytes(TokenId id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= impl_->id_to_bytes.size())
    throw std::out_of_range("token id " + std::to_string(id) + " is outside the vocabulary (size " +
                            std::to_string(impl_->id_to_bytes.size()) + ")");
  return impl_->id_to_bytes[id];
}

std::int32_t Tokenizer::vocab_size() const { return static_cast<std::int32_t>(impl_->id_to_bytes.size()); }
TokenId Tokenizer::end_of_text_id() const { return impl_->eot; }
const std::vector<std::pair<std::string, TokenId>>& Tokenizer::special_tokens() const { return impl_->specials; }

std::vector<std::pair<std::size_t, std::size_t>> Tokenizer::split_words(std::string_view text) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t end = match_at(text, i);
    out.emplace_back(i, end);
    i = end;
  }
  return out;
}

std::string IncrementalDecoder::push(TokenId id) {
  pending_.append(tokenizer_->token_bytes(id));
  utf8::RepairResult r = utf8::repair(pending_, /*final=*/false);
  pending_.erase(0, r.consumed);
  return std::move(r.text);
}

std::string IncrementalDecoder::flush() {
  std::string out = utf8::make_valid(pending_);
  pending_.clear();
  return out;
}

std::vector<std::size_t> token_start_offsets(const Tokenizer& tokenizer, std::string_view text) {
  std::vector<std::size_t> starts;
  std::size_t at = 0;
  for (const TokenId id : tokenizer.encode(text)) {
    starts.push_back(at);
    at += tokenizer.token_bytes(id).size();
  }
  return starts;
}

}  // namespace inkstream
