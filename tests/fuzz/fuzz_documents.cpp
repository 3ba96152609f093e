// Incremental document edits in every position encoding: hostile ranges
// (past line ends, inside surrogate pairs, reversed, huge numbers) are
// applied or refused whole; the text stays valid UTF-8 when it started so,
// and positions convert back and forth.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "documents.h"
#include "inkstream/model_runtime/utf8.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace inkstream::lsp;
  if (size < 1) return 0;
  const PositionEncoding enc = data[0] % 3 == 0 ? PositionEncoding::Utf8 : data[0] % 3 == 1 ? PositionEncoding::Utf16 : PositionEncoding::Utf32;
  const auto changes = nlohmann::json::parse(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1), nullptr, false);
  if (changes.is_discarded()) return 0;
  DocumentStore store;
  store.open({"file:///a.md", "markdown", 1, "Once upon a time \xF0\x9F\x98\x80 there\r\nwas a\rkeeper\n\xC3\xA9t\xC3\xA9"});
  try {
    store.change("file:///a.md", 2, changes, enc);
  } catch (const std::invalid_argument&) {
  }
  const Document* doc = store.find("file:///a.md");
  if (!doc) __builtin_trap();
  const bool valid = inkstream::utf8::is_valid(doc->text);
  for (std::int64_t line = 0; line < 8; ++line)
    for (std::int64_t ch : {std::int64_t{0}, std::int64_t{1}, std::int64_t{3}, std::int64_t{40}, std::int64_t{1} << 40}) {
      const auto off = offset_of(doc->text, {line, ch}, enc);
      if (!off) continue;
      if (*off > doc->text.size()) __builtin_trap();
      if (valid) {
        const Position p = position_of(doc->text, *off, enc);
        if (offset_of(doc->text, p, enc) != off) __builtin_trap();  // positions round-trip
      }
    }
  return 0;
}
