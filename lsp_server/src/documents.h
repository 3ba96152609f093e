#pragma once
// Open documents and LSP positions. Text is kept as UTF-8; positions arrive
// in the negotiated encoding (UTF-16 code units by default, or UTF-8 bytes,
// or UTF-32 code points) and are converted to byte offsets here. Lines end at
// "\n", "\r\n" or a lone "\r", as LSP 3.17 says (line_breaks.h).
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace inkstream::lsp {

enum class PositionEncoding { Utf8, Utf16, Utf32 };
const char* encoding_name(PositionEncoding e);

struct Position {
  std::int64_t line = 0;
  std::int64_t character = 0;
};

struct Document {
  std::string uri;
  std::string language_id;
  std::int64_t version = 0;
  std::string text;
};

// Byte offset of `pos` in `text`, or nullopt when the line does not exist. A
// character past the end of its line means the end of the line (as the spec
// says); one inside a surrogate pair means the start of that character.
std::optional<std::size_t> offset_of(const std::string& text, Position pos, PositionEncoding enc);
// The position of byte offset `offset` (which must be a character boundary).
Position position_of(const std::string& text, std::size_t offset, PositionEncoding enc);

// Bounds that keep a mistaken or hostile editor from exhausting memory; past
// one, open() and change() throw std::length_error naming it.
inline constexpr std::size_t kMaxDocumentBytes = std::size_t{32} << 20;
inline constexpr std::size_t kMaxOpenDocuments = 4096;
inline constexpr std::size_t kMaxTotalDocumentBytes = std::size_t{512} << 20;

class DocumentStore {
 public:
  // Opens (or replaces) a document; throws std::length_error past a bound
  // (the document is then not kept).
  void open(Document doc);
  void close(const std::string& uri);
  Document* find(const std::string& uri);
  // Applies `contentChanges` (full or ranged, in order). Throws
  // std::invalid_argument naming the change when a range is outside the
  // document; the document is then left unchanged.
  void change(const std::string& uri, std::int64_t version, const nlohmann::json& changes, PositionEncoding enc);

 private:
  void check_size(const std::string& uri, std::size_t new_bytes, std::size_t old_bytes) const;
  std::map<std::string, Document> docs_;
  std::size_t total_bytes_ = 0;
};

}  // namespace inkstream::lsp
