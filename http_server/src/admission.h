#pragma once
// Bounded admission, decided before a stream starts: at most `max_running`
// requests run and `max_queued` wait for a slot, each at most `max_wait`;
// beyond that the caller answers 429. Never an unbounded queue.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>

namespace inkstream {

class Admission {
 public:
  Admission(int max_running, int max_queued, std::chrono::milliseconds max_wait)
      : max_running_(max_running), max_queued_(max_queued), max_wait_(max_wait) {}

  // A running slot, or why not ("queue_full", "queue_timeout", "draining").
  // Blocks up to max_wait while queued.
  std::optional<std::string> acquire();
  void release();
  // From now on nobody is admitted; queued callers give up at once.
  void close();
  int running() const;
  int waiting() const;

 private:
  const int max_running_, max_queued_;
  const std::chrono::milliseconds max_wait_;
  mutable std::mutex mutex_;
  std::condition_variable freed_;
  int running_ = 0, waiting_ = 0;
  bool closed_ = false;
};

}  // namespace inkstream
