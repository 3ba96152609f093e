#pragma once
// GPT-2 byte-level BPE tokenizer (exact: same ids as OpenAI's encoder.py and
// Hugging Face's GPT2Tokenizer).
//
// Thread-safety: a loaded Tokenizer is immutable apart from an internal,
// mutex-guarded word cache, so one instance may be shared by any number of
// threads.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace inkstream {

using TokenId = std::int32_t;

class Tokenizer {
 public:
  // Loads `vocab.json` + `merges.txt` from `dir`, or `tokenizer.json` when the
  // folder has only that. Special tokens: `<|endoftext|>` when in the
  // vocabulary, plus `added_tokens.json` / tokenizer.json's added tokens.
  // Throws CheckpointError naming the file on any problem.
  static Tokenizer from_folder(const std::filesystem::path& dir);

  // From the text of the two classic files (`vocab_json` is JSON).
  static Tokenizer from_vocab_and_merges(std::string_view vocab_json, std::string_view merges_txt,
                                         const std::string& origin = "tokenizer");

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Encodes arbitrary bytes. Invalid UTF-8 is first repaired (each maximal
  // invalid subpart becomes U+FFFD). Special tokens in the text become their
  // ids when `split_special` is true, else they are encoded as plain text.
  std::vector<TokenId> encode(std::string_view text, bool split_special = true) const;

  // Decodes ids to valid UTF-8 (invalid byte sequences become U+FFFD).
  // Throws std::out_of_range for an id outside the vocabulary.
  std::string decode(std::span<const TokenId> ids) const;

  // The raw bytes of one token (may be an incomplete UTF-8 sequence).
  std::string_view token_bytes(TokenId id) const;

  // Number of ids (the largest id + 1).
  std::int32_t vocab_size() const;

  // Id of `<|endoftext|>`, or -1 when the vocabulary has none.
  TokenId end_of_text_id() const;

  // Special tokens (content, id), e.g. {"<|endoftext|>", 50256}.
  const std::vector<std::pair<std::string, TokenId>>& special_tokens() const;

  // The pre-tokenizer alone: byte ranges [begin, end) of the regex chunks of
  // valid UTF-8 `text` (exposed for tests).
  static std::vector<std::pair<std::size_t, std::size_t>> split_words(std::string_view text);

  struct Impl;  // opaque tables, defined in tokenizer.cpp

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Byte offset in `text` where each of its tokens starts (`text` valid UTF-8:
// token bytes then add up to the text).
std::vector<std::size_t> token_start_offsets(const Tokenizer& tokenizer, std::string_view text);

// Turns a stream of token ids into text that is always whole UTF-8
// characters: a token that ends inside a multi-byte character is held back
// until the following tokens complete it. Concatenating every push() and the
// final flush() equals Tokenizer::decode of all ids.
class IncrementalDecoder {
 public:
  explicit IncrementalDecoder(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}

  // Returns the newly completed text (possibly empty).
  std::string push(TokenId id);
  // Emits what is pending; a dangling partial character becomes U+FFFD.
  std::string flush();
  // Bytes held back, waiting for the rest of a character.
  std::size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  std::string pending_;
};

}  // namespace inkstream
