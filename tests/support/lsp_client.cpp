#include "lsp_client.h"

#include "process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>

namespace inkstream::test {

LspProcess::LspProcess(const std::vector<std::string>& argv) {
  const ChildPipes child = spawn_with_pipes(argv);
  pid_ = child.pid;
  in_fd_ = child.in_fd;
  out_fd_ = child.out_fd;
  err_fd_ = child.err_fd;
  reader_ = std::thread([this] { read_loop(); });
  err_reader_ = std::thread([this] {
    char buf[4096];
    for (;;) {
      const ssize_t n = read(err_fd_, buf, sizeof buf);
      if (n <= 0) break;
      std::lock_guard lock(mutex_);
      err_.append(buf, static_cast<std::size_t>(n));
    }
  });
}

LspProcess::~LspProcess() {
  if (exit_code_ == -2) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (in_fd_ >= 0) close(in_fd_);
  reader_.join();
  err_reader_.join();
  close(out_fd_);
  close(err_fd_);
}

void LspProcess::read_loop() {
  std::string buf;
  char chunk[65536];
  for (;;) {
    // Parse as many complete frames as the buffer holds.
    for (;;) {
      const std::size_t header_end = buf.find("\r\n\r\n");
      if (header_end == std::string::npos) break;
      const std::size_t cl = buf.find("Content-Length: ");
      if (cl == std::string::npos || cl > header_end) {  // the test then fails on the marker
        std::lock_guard lock(mutex_);
        messages_.push_back(Json{{"malformed_frame_from_server", buf.substr(0, header_end)}});
        buf.clear();
        break;
      }
      const std::size_t len = std::stoul(buf.substr(cl + 16, header_end - cl - 16));
      if (buf.size() < header_end + 4 + len) break;
      Json msg = Json::parse(buf.substr(header_end + 4, len));
      buf.erase(0, header_end + 4 + len);
      std::lock_guard lock(mutex_);
      messages_.push_back(std::move(msg));
      cv_.notify_all();
    }
    const ssize_t n = read(out_fd_, chunk, sizeof chunk);
    if (n <= 0) break;
    buf.append(chunk, static_cast<std::size_t>(n));
  }
  std::lock_guard lock(mutex_);
  output_closed_ = true;
  cv_.notify_all();
}

void LspProcess::send_raw(const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(in_fd_, bytes.data() + done, bytes.size() - done);
    if (n <= 0) throw std::runtime_error("server stdin closed");
    done += static_cast<std::size_t>(n);
  }
}

void LspProcess::send(const Json& message) {
  const std::string body = message.dump();
  send_raw("Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
}

int LspProcess::request_async(const std::string& method, const Json& params) {
  const int id = next_id_++;
  send({{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}});
  return id;
}

void LspProcess::notify(const std::string& method, const Json& params) {
  send({{"jsonrpc", "2.0"}, {"method", method}, {"params", params}});
}

std::optional<Json> LspProcess::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!cv_.wait_for(lock, timeout, [&] { return !messages_.empty() || output_closed_; })) return std::nullopt;
  if (messages_.empty()) return std::nullopt;
  Json m = std::move(messages_.front());
  messages_.pop_front();
  return m;
}

Json LspProcess::wait_response(int id, std::chrono::milliseconds timeout, std::vector<Json>* notifications) {
  if (const auto early = early_responses_.find(id); early != early_responses_.end()) {
    Json r = std::move(early->second);
    early_responses_.erase(early);
    return r;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw std::runtime_error("timed out waiting for the response to request " + std::to_string(id));
    auto m = next(left);
    if (!m) {
      if (output_closed_) throw std::runtime_error("server output closed while waiting for request " + std::to_string(id));
      continue;
    }
    if (m->contains("id") && !m->contains("method")) {
      if ((*m)["id"] == id) return *m;
      if ((*m)["id"].is_number_integer()) {  // another request's answer: keep it for its waiter
        early_responses_[(*m)["id"].get<int>()] = *m;
        continue;
      }
    }
    if (notifications) notifications->push_back(*m);
  }
}

Json LspProcess::request(const std::string& method, const Json& params, std::chrono::milliseconds timeout,
                         std::vector<Json>* notifications) {
  return wait_response(request_async(method, params), timeout, notifications);
}

Json LspProcess::initialize(const Json& init_options, const Json& capabilities) {
  Json r = request("initialize", {{"processId", nullptr}, {"rootUri", nullptr}, {"capabilities", capabilities},
                                  {"initializationOptions", init_options}});
  notify("initialized", Json::object());
  return r;
}

void LspProcess::close_stdin() {
  if (in_fd_ >= 0) close(in_fd_);
  in_fd_ = -1;
}

int LspProcess::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      return exit_code_;
    }
    std::this_thread::sleep_for(10ms);
  }
  return -1;
}

std::string LspProcess::stderr_text() {
  std::lock_guard lock(mutex_);
  return err_;
}

}  // namespace inkstream::test
