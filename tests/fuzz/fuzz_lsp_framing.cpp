// LSP base-protocol framing: any bytes on stdin give frames or framing
// errors, never a crash, a hang or an unbounded buffer.
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "transport.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 60000) return 0;  // (within one pipe buffer: written before reading)
  int fds[2];
  if (::pipe(fds) != 0) return 0;
  std::size_t written = 0;
  while (written < size) {
    const ssize_t n = ::write(fds[1], data + written, size - written);
    if (n <= 0) break;
    written += static_cast<std::size_t>(n);
  }
  ::close(fds[1]);
  inkstream::lsp::FrameReader reader(fds[0], 4096);
  int frames = 0;
  while (auto f = reader.next()) {
    if (f->body.size() > 4096) __builtin_trap();  // the cap holds
    if (++frames > 100000) __builtin_trap();      // progress: every frame consumes input
  }
  ::close(fds[0]);
  return 0;
}
