#pragma once
// Drives a real `inkstream lsp` child process over real pipes, as an editor
// would: framed JSON-RPC out, frames parsed back on a reader thread.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace inkstream::test {

using Json = nlohmann::json;
using namespace std::chrono_literals;

// The utf-16 LSP position {line, character} of the end of `text` (lines end
// at "\n", "\r\n" or a lone "\r"): where an editor's cursor is after typing it.
inline std::pair<int, int> end_position(const std::string& text) {
  int line = 0, col = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n' || (c == '\r' && (i + 1 == text.size() || text[i + 1] != '\n'))) {
      ++line;
      col = 0;
    } else if (c != '\r' && (c & 0xC0) != 0x80) {
      col += c >= 0xF0 ? 2 : 1;  // astral characters are two utf-16 units
    }
  }
  return {line, col};
}

class LspProcess {
 public:
  explicit LspProcess(const std::vector<std::string>& argv);
  ~LspProcess();
  LspProcess(const LspProcess&) = delete;

  void send(const Json& message);
  void send_raw(const std::string& bytes);
  int request_async(const std::string& method, const Json& params);  // returns the id
  void notify(const std::string& method, const Json& params);
  // Waits for the response to `id`; notifications that arrive meanwhile are
  // appended to `notifications` (if given). Throws on timeout.
  Json wait_response(int id, std::chrono::milliseconds timeout = 30s, std::vector<Json>* notifications = nullptr);
  Json request(const std::string& method, const Json& params, std::chrono::milliseconds timeout = 30s,
               std::vector<Json>* notifications = nullptr);
  // Next message of any kind, or nullopt on timeout / end of output.
  std::optional<Json> next(std::chrono::milliseconds timeout);
  // Standard opening: initialize (with `init_options` and `capabilities`) + initialized.
  Json initialize(const Json& init_options = Json::object(), const Json& capabilities = Json::object());
  void close_stdin();
  // Exit code, or -1 on timeout (the child is then killed).
  int wait_exit(std::chrono::milliseconds timeout = 10s);
  std::string stderr_text();
  int pid() const { return pid_; }

 private:
  void read_loop();
  int pid_ = -1;
  int in_fd_ = -1, out_fd_ = -1, err_fd_ = -1;
  int next_id_ = 1;
  std::thread reader_, err_reader_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Json> messages_;
  std::map<int, Json> early_responses_;  // responses that arrived while waiting for another id
  bool output_closed_ = false;
  std::string err_;
  int exit_code_ = -2;
};

}  // namespace inkstream::test
