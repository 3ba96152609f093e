#pragma once
// LSP base protocol framing over file descriptors: `Content-Length: N\r\n`
// (+ optional `Content-Type`) `\r\n` then N bytes of JSON. Reading and
// writing are separate objects so the reader thread never takes the
// writer's lock.
#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace inkstream::lsp {

// Reads frames from a file descriptor (stdin). Not thread-safe: one reader.
class FrameReader {
 public:
  FrameReader(int fd, std::size_t max_frame_bytes) : fd_(fd), max_frame_(max_frame_bytes) {}

  struct Frame {
    std::string body;   // the JSON text
    std::string error;  // non-empty: this frame was unusable (and skipped)
  };
  // Next frame, or nullopt at end of input. A frame with a bad header or
  // above the size cap comes back with `error` set; its body is skipped so
  // the stream stays in sync.
  std::optional<Frame> next();
  // While no input arrives, `fn` runs every `every` on the reading thread
  // (between frames or within one): housekeeping that must not wait for
  // the editor's next message.
  void on_idle(std::chrono::milliseconds every, std::function<void()> fn) {
    idle_every_ = every;
    on_idle_ = std::move(fn);
  }

 private:
  bool fill();  // reads more bytes; false at EOF
  std::optional<std::string> read_line();
  int fd_;
  std::size_t max_frame_;
  std::string buf_;
  std::size_t pos_ = 0;
  bool eof_ = false;
  std::chrono::milliseconds idle_every_{0};
  std::function<void()> on_idle_;
};

// Writes frames to a file descriptor (stdout). Thread-safe.
class FrameWriter {
 public:
  explicit FrameWriter(int fd) : fd_(fd) {}
  // Returns false once the peer has gone (write error); later calls do nothing.
  bool send(const nlohmann::json& message);

 private:
  int fd_;
  std::mutex mutex_;
  bool broken_ = false;
};

}  // namespace inkstream::lsp
