// The GPT-2 tokenizer: encoding any bytes terminates and decodes back to
// the same bytes when they are valid UTF-8 (byte-level BPE is lossless);
// token start offsets are increasing and inside the text.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "inkstream/model_runtime/tokenizer.h"
#include "inkstream/model_runtime/utf8.h"

namespace {
const inkstream::Tokenizer& tokenizer() {
  // The fixtures' GPT-2 tokenizer files (INKSTREAM_FUZZ_TOKENIZER overrides).
  static const inkstream::Tokenizer t = inkstream::Tokenizer::from_folder(
      std::getenv("INKSTREAM_FUZZ_TOKENIZER") ? std::getenv("INKSTREAM_FUZZ_TOKENIZER") : INKSTREAM_FUZZ_TOKENIZER_DIR);
  return t;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto& tok = tokenizer();
  const auto ids = tok.encode(text, /*split_special=*/false);
  if (inkstream::utf8::is_valid(text) && tok.decode(ids) != text) __builtin_trap();
  if (inkstream::utf8::is_valid(text)) {
    const auto starts = inkstream::token_start_offsets(tok, text);
    for (std::size_t i = 0; i < starts.size(); ++i)
      if (starts[i] > text.size() || (i && starts[i] <= starts[i - 1])) __builtin_trap();
  }
  // The input's bytes as token ids (any sequence, partial characters too):
  // streamed decoding equals decoding at once, and is valid UTF-8.
  std::vector<inkstream::TokenId> raw;
  for (std::size_t i = 0; i + 1 < size; i += 2) raw.push_back((data[i] | data[i + 1] << 8) % tok.vocab_size());
  inkstream::IncrementalDecoder dec(tok);
  std::string streamed;
  for (const auto id : raw) streamed += dec.push(id);
  streamed += dec.flush();
  const std::string whole = tok.decode(raw);
  if (streamed != whole || !inkstream::utf8::is_valid(whole)) __builtin_trap();
  return 0;
}
