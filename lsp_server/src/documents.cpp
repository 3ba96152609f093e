#include "documents.h"

#include <stdexcept>

#include "inkstream/model_runtime/json_numbers.h"
#include "inkstream/model_runtime/line_breaks.h"

namespace inkstream::lsp {

const char* encoding_name(PositionEncoding e) {
  switch (e) {
    case PositionEncoding::Utf8: return "utf-8";
    case PositionEncoding::Utf16: return "utf-16";
    case PositionEncoding::Utf32: return "utf-32";
  }
  return "utf-16";
}

namespace {

int utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;  // stray continuation byte: one unit, never split further
}

// Units of one character in the encoding.
int units(int bytes, PositionEncoding enc) {
  switch (enc) {
    case PositionEncoding::Utf8: return bytes;
    case PositionEncoding::Utf16: return bytes == 4 ? 2 : 1;
    case PositionEncoding::Utf32: return 1;
  }
  return 1;
}

}  // namespace

std::optional<std::size_t> offset_of(const std::string& text, Position pos, PositionEncoding enc) {
  if (pos.line < 0 || pos.character < 0) return std::nullopt;
  std::size_t i = 0;
  for (std::int64_t l = 0; l < pos.line; ++l) {
    const std::size_t brk = find_line_break(text, i);
    if (brk == std::string::npos) return std::nullopt;
    i = brk + line_break_at(text, brk);
  }
  std::int64_t left = pos.character;
  while (left > 0) {
    // Past the end of the line: the spec says it means the end of the line.
    if (i >= text.size() || line_break_at(text, i) > 0) break;
    const int len = utf8_length(static_cast<unsigned char>(text[i]));
    const int u = units(len, enc);
    if (u > left) break;  // inside a surrogate pair: before that character
    left -= u;
    i += static_cast<std::size_t>(len);
  }
  return std::min(i, text.size());
}

Position position_of(const std::string& text, std::size_t offset, PositionEncoding enc) {
  Position p;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset && i < text.size();) {
    const std::size_t brk = line_break_at(text, i);
    // A break ends the line once the offset is past all of it ("\r\n" is one).
    if (brk == 0 || i + brk > offset) {
      ++i;
      continue;
    }
    ++p.line;
    i += brk;
    line_start = i;
  }
  for (std::size_t i = line_start; i < offset && i < text.size();) {
    const int len = utf8_length(static_cast<unsigned char>(text[i]));
    p.character += units(len, enc);
    i += static_cast<std::size_t>(len);
  }
  return p;
}

void DocumentStore::check_size(const std::string& uri, std::size_t new_bytes, std::size_t old_bytes) const {
  const auto mb = [](std::size_t b) { return std::to_string(b >> 20) + " MiB"; };
  if (new_bytes > kMaxDocumentBytes)
    throw std::length_error(uri + " is " + mb(new_bytes) + ": documents over " + mb(kMaxDocumentBytes) + " get no suggestions");
  if (total_bytes_ - old_bytes + new_bytes > kMaxTotalDocumentBytes)
    throw std::length_error("open documents would hold over " + mb(kMaxTotalDocumentBytes) + ": close some for suggestions in " + uri);
}

void DocumentStore::open(Document doc) {
  const auto it = docs_.find(doc.uri);
  const std::size_t old = it == docs_.end() ? 0 : it->second.text.size();
  if (it == docs_.end() && docs_.size() >= kMaxOpenDocuments)
    throw std::length_error(std::to_string(kMaxOpenDocuments) + " documents are open already: close some for suggestions in " + doc.uri);
  check_size(doc.uri, doc.text.size(), old);
  total_bytes_ = total_bytes_ - old + doc.text.size();
  docs_[doc.uri] = std::move(doc);
}

void DocumentStore::close(const std::string& uri) {
  const auto it = docs_.find(uri);
  if (it == docs_.end()) return;
  total_bytes_ -= it->second.text.size();
  docs_.erase(it);
}

Document* DocumentStore::find(const std::string& uri) {
  const auto it = docs_.find(uri);
  return it == docs_.end() ? nullptr : &it->second;
}

void DocumentStore::change(const std::string& uri, std::int64_t version, const nlohmann::json& changes, PositionEncoding enc) {
  Document* doc = find(uri);
  if (!doc) throw std::invalid_argument("didChange for a document that is not open: " + uri);
  if (!changes.is_array()) throw std::invalid_argument("contentChanges must be an array");
  std::string text = doc->text;
  int index = 0;
  for (const auto& change : changes) {
    if (!change.is_object() || !change.contains("text") || !change["text"].is_string())
      throw std::invalid_argument("contentChanges[" + std::to_string(index) + "] has no text");
    const std::string& new_text = change["text"].get_ref<const std::string&>();
    if (!change.contains("range") || change["range"].is_null()) {
      text = new_text;
    } else {
      const auto& r = change["range"];
      auto pos = [&](const char* key) -> std::optional<std::size_t> {
        if (!r.contains(key) || !r[key].is_object() || !r[key].contains("line") || !r[key].contains("character")) return std::nullopt;
        const auto line = json_numbers::integer<std::int64_t>(r[key]["line"], 0, 0x7fffffff);
        const auto character = json_numbers::integer<std::int64_t>(r[key]["character"], 0, 0x7fffffff);
        if (!line || !character) return std::nullopt;
        return offset_of(text, {*line, *character}, enc);
      };
      const auto start = pos("start"), end = pos("end");
      if (!start || !end || *start > *end)
        throw std::invalid_argument("contentChanges[" + std::to_string(index) + "].range " + r.dump() +
                                    " is outside the document (" + encoding_name(enc) + " positions)");
      text.replace(*start, *end - *start, new_text);
    }
    ++index;
  }
  check_size(uri, text.size(), doc->text.size());
  total_bytes_ = total_bytes_ - doc->text.size() + text.size();
  doc->text = std::move(text);
  doc->version = version;
}

}  // namespace inkstream::lsp
