// A remote server's stream, as the remote client parses it: SSE framing
// (split where the input says), each event as a completion chunk, and the
// whole input as an error body. Nothing may crash, hang or throw anything
// but the documented std::invalid_argument.
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "sse.h"
#include "wire.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace inkstream::remote;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)parse_error_body(in, 500);
  SseParser parser;
  auto on_event = [](std::string_view event) {
    try {
      const WireEvent e = parse_event(event);
      for (const WireChoice& c : e.choices)
        if (c.index < 0 || c.index > 1024) __builtin_trap();  // the parser's own bound
    } catch (const std::invalid_argument&) {
    }
    return true;
  };
  // The first byte picks the read size: servers' chunks split anywhere.
  const std::size_t step = size ? 1 + data[0] % 17 : 1;
  for (std::size_t i = 0; i < in.size(); i += step)
    if (!parser.feed(in.substr(i, step), on_event)) break;
  parser.finish(on_event);
  return 0;
}
