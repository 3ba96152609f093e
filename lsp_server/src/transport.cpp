#include "transport.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <spdlog/spdlog.h>

namespace inkstream::lsp {

bool FrameReader::fill() {
  if (eof_) return false;
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > (1 << 20)) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  char chunk[65536];
  for (;;) {
    if (on_idle_) {
      pollfd p{fd_, POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(idle_every_.count()));
      if (ready == 0) {
        on_idle_();
        continue;
      }
      if (ready < 0 && errno == EINTR) continue;
      // ready (input, end of input or an error): read says which
    }
    const ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n > 0) {
      buf_.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
    if (n < 0 && errno == EINTR) continue;
    eof_ = true;
    return false;
  }
}

std::optional<std::string> FrameReader::read_line() {
  for (;;) {
    const std::size_t nl = buf_.find('\n', pos_);
    if (nl != std::string::npos) {
      std::string line = buf_.substr(pos_, nl - pos_);
      pos_ = nl + 1;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return line;
    }
    if (buf_.size() - pos_ > 64 * 1024) {  // a "header" this long is garbage
      pos_ = buf_.size();
      return std::string("\x01garbage");
    }
    if (!fill()) return std::nullopt;
  }
}

std::optional<FrameReader::Frame> FrameReader::next() {
  for (;;) {
    std::optional<std::size_t> length;
    std::string header_error;
    bool saw_header = false;
    // Headers up to the empty line; names are case-insensitive.
    for (;;) {
      auto line = read_line();
      if (!line) return std::nullopt;
      if (line->empty()) {
        if (saw_header) break;
        continue;  // stray blank lines between frames
      }
      saw_header = true;
      // Resynchronise after garbage: a header glued to the end of junk
      // ("...}Content-Length: 52") still starts a frame.
      std::string lower = *line;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (const std::size_t at = lower.find("content-length:"); at != std::string::npos && at > 0) {
        line->erase(0, at);
        header_error.clear();
      }
      const std::size_t colon = line->find(':');
      if (colon == std::string::npos) {
        header_error = "malformed header line";
        continue;
      }
      std::string name = line->substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line->substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
      if (name == "content-length") {
        std::size_t used = 0;
        unsigned long long v = 0;
        try {
          v = std::stoull(value, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != value.size() || !std::isdigit(static_cast<unsigned char>(value.front())))
          header_error = "invalid Content-Length '" + value + "'";
        else length = static_cast<std::size_t>(v);
      }
    }
    if (!length) {
      if (header_error.empty()) header_error = "missing Content-Length header";
      return Frame{"", header_error};
    }
    const bool too_big = *length > max_frame_;
    // Read (or skip) the body.
    std::string body;
    std::size_t left = *length;
    while (left > 0) {
      if (pos_ == buf_.size() && !fill()) return Frame{"", "input ended inside a frame"};
      const std::size_t take = std::min(left, buf_.size() - pos_);
      if (!too_big) body.append(buf_, pos_, take);
      pos_ += take;
      left -= take;
    }
    if (too_big)
      return Frame{"", "frame of " + std::to_string(*length) + " bytes exceeds the limit of " + std::to_string(max_frame_) + " bytes"};
    if (!header_error.empty()) return Frame{"", header_error};
    return Frame{std::move(body), ""};
  }
}

bool FrameWriter::send(const nlohmann::json& message) {
  const std::string body = message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::string frame = "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  std::lock_guard lock(mutex_);
  if (broken_) return false;
  std::size_t done = 0;
  while (done < frame.size()) {
    const ssize_t n = ::write(fd_, frame.data() + done, frame.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      broken_ = true;
      spdlog::warn("lsp: output closed; dropping further messages");
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace inkstream::lsp
