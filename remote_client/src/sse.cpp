#include "sse.h"

namespace inkstream::remote {

bool SseParser::feed(std::string_view bytes, const OnEvent& on_event) {
  for (const char c : bytes) {
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n') continue;  // the "\n" of a "\r\n" split across reads
    }
    if (c == '\r' || c == '\n') {
      after_cr_ = c == '\r';
      if (!line(on_event)) return false;
      continue;
    }
    line_ += c;
    if (line_.size() > kMaxLine) {
      overflowed_ = true;
      return false;
    }
  }
  return true;
}

bool SseParser::line(const OnEvent& on_event) {
  std::string l;
  l.swap(line_);
  if (l.empty()) {  // blank line: the event is complete
    if (!has_data_) return true;
    has_data_ = false;
    std::string data;
    data.swap(data_);
    return on_event(data);
  }
  if (l.front() == ':') return true;  // comment
  const std::size_t colon = l.find(':');
  const std::string_view field = std::string_view(l).substr(0, colon);
  std::string_view value = colon == std::string::npos ? std::string_view() : std::string_view(l).substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field == "data") {
    if (has_data_) data_ += '\n';
    data_ += value;
    has_data_ = true;
  }
  return true;  // event:, id:, retry: and unknown fields are ignored
}

bool SseParser::finish(const OnEvent& on_event) {
  if (!line_.empty() && !line(on_event)) return false;
  if (!has_data_) return true;
  has_data_ = false;
  return on_event(data_);
}

}  // namespace inkstream::remote
