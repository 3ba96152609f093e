#include "admission.h"

namespace inkstream {

std::optional<std::string> Admission::acquire() {
  std::unique_lock lock(mutex_);
  if (closed_) return "draining";
  if (running_ < max_running_) {
    ++running_;
    return std::nullopt;
  }
  if (waiting_ >= max_queued_) return "queue_full";
  ++waiting_;
  const bool got = freed_.wait_for(lock, max_wait_, [&] { return closed_ || running_ < max_running_; });
  --waiting_;
  if (closed_) return "draining";
  if (!got) return "queue_timeout";
  ++running_;
  return std::nullopt;
}

void Admission::release() {
  {
    std::lock_guard lock(mutex_);
    --running_;
  }
  freed_.notify_one();
}

void Admission::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  freed_.notify_all();
}

int Admission::running() const {
  std::lock_guard lock(mutex_);
  return running_;
}

int Admission::waiting() const {
  std::lock_guard lock(mutex_);
  return waiting_;
}

}  // namespace inkstream
