#pragma once
// Server-sent events, incrementally: bytes in (split anywhere), the data of
// each event out. Lines end in "\n", "\r\n" or "\r"; comment lines (":" —
// llama.cpp's and TGI's keep-alive pings), "event:", "id:" and "retry:" are
// skipped; "data:" with or without its space; an event's data lines are
// joined with "\n" (the WHATWG rules).
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace inkstream::remote {

class SseParser {
 public:
  // Called with each event's data; returning false stops the parse.
  using OnEvent = std::function<bool(std::string_view data)>;
  // Returns false when `on_event` asked to stop, or a line grew past the bound.
  bool feed(std::string_view bytes, const OnEvent& on_event);
  // End of stream: an event whose blank line never came is still delivered
  // (servers that close right after their last "data:" line).
  bool finish(const OnEvent& on_event);
  bool overflowed() const { return overflowed_; }

  static constexpr std::size_t kMaxLine = 4 << 20;

 private:
  bool line(const OnEvent& on_event);
  std::string line_, data_;
  bool has_data_ = false, after_cr_ = false, overflowed_ = false;
};

}  // namespace inkstream::remote
