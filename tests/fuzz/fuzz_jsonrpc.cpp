// JSON-RPC dispatch through the real language server, on an in-memory
// transport (a pipe; no process per input): each input line becomes one
// correctly framed message after an `initialize`, so the fuzzer explores
// methods and params rather than headers (fuzz_lsp_framing does those).
// Models come from a factory that fails at once: no inference here.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include <spdlog/spdlog.h>

#include "inkstream/completion/service.h"
#include "inkstream/lsp_server/server.h"

namespace {
// The executable owns the logger: this one is quiet.
const bool quiet = (spdlog::set_level(spdlog::level::off), true);

struct NoModels final : inkstream::BackendFactory {
  std::unique_ptr<inkstream::CompletionBackend> load(const inkstream::ModelSpec& spec) override {
    throw std::runtime_error("no models in the fuzzer (" + spec.dir + ")");
  }
};
std::string frame(const std::string& body) { return "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body; }
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 20000) return 0;
  std::string input = frame(R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"capabilities":{},"initializationOptions":{"model":"m"}}})") +
                      frame(R"({"jsonrpc":"2.0","method":"initialized","params":{}})");
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (std::size_t at = 0; at < text.size();) {
    std::size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    if (nl > at) input += frame(text.substr(at, nl - at));
    at = nl + 1;
  }
  input += frame(R"({"jsonrpc":"2.0","id":"end","method":"shutdown"})") + frame(R"({"jsonrpc":"2.0","method":"exit"})");
  // The whole input goes into the pipe before the server starts (a writer
  // thread per input cost more than the server itself): inputs are bounded
  // so that they fit the pipe's buffer, enlarged to 1 MiB.
  int in[2];
  if (::pipe(in) != 0) return 0;
  if (::fcntl(in[1], F_SETPIPE_SZ, 1 << 20) < static_cast<int>(input.size())) {
    ::close(in[0]);
    ::close(in[1]);
    return 0;
  }
  for (std::size_t done = 0; done < input.size();) {
    const ssize_t n = ::write(in[1], input.data() + done, input.size() - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(in[1]);
  const int out = ::open("/dev/null", O_WRONLY);
  inkstream::LspOptions options;
  options.backends = std::make_shared<NoModels>();
  options.model = "m";
  options.max_frame_bytes = 1 << 16;
  const int code = inkstream::run_language_server(in[0], out, options);
  ::close(in[0]);
  ::close(out);
  if (code != 0 && code != 1) __builtin_trap();
  return 0;
}
