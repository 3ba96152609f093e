#pragma once
// A request's answer, which must be sent exactly once (clangd's discipline):
// answering twice is ignored with a log line, and a Reply destroyed without
// an answer sends an InternalError so the client never waits forever.
#include <memory>
#include <spdlog/spdlog.h>
#include <string>

#include "protocol.h"
#include "transport.h"

namespace inkstream::lsp {

class Reply {
 public:
  Reply(std::shared_ptr<FrameWriter> out, Json id, std::string method)
      : out_(std::move(out)), id_(std::move(id)), method_(std::move(method)) {}
  Reply(Reply&& other) noexcept
      : out_(std::move(other.out_)), id_(std::move(other.id_)), method_(std::move(other.method_)), done_(other.done_) {
    other.done_ = true;
  }
  Reply& operator=(Reply&&) = delete;
  Reply(const Reply&) = delete;
  ~Reply() {
    if (!done_) error(error::kInternalError, "internal error: " + method_ + " was not answered");
  }

  void result(Json value) {
    if (claim()) out_->send({{"jsonrpc", "2.0"}, {"id", id_}, {"result", std::move(value)}});
  }
  void error(int code, const std::string& message) {
    if (claim()) out_->send({{"jsonrpc", "2.0"}, {"id", id_}, {"error", {{"code", code}, {"message", message}}}});
  }
  const Json& id() const { return id_; }
  const std::string& method() const { return method_; }

 private:
  bool claim() {
    if (done_) {
      spdlog::error("lsp: {} {} answered twice; dropping the second answer", method_, id_.dump());
      return false;
    }
    done_ = true;
    return true;
  }
  std::shared_ptr<FrameWriter> out_;
  Json id_;
  std::string method_;
  bool done_ = false;
};

}  // namespace inkstream::lsp
