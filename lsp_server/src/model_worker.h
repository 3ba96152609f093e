#pragma once
// One inference worker per loaded model: a thread that loads the model, then
// runs queued completion jobs one at a time. Protocol I/O never waits for it.
// Queued jobs are newest-wins per document.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "documents.h"
#include "inkstream/completion/engine.h"
#include "inkstream/model_runtime/gpt2.h"
#include "reply.h"

namespace inkstream::lsp {

struct CompletionJob {
  Reply reply;
  std::string uri;
  std::int64_t version = 0;
  Position position;
  CompletionQuery query;
  bool stream = false;
  CancellationToken cancel;
  std::atomic<int> cancel_code{0};  // the answer once cancelled; the first reason wins
  std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();

  CompletionJob(Reply r) : reply(std::move(r)) {}
  void cancel_with(int code) {
    int none = 0;
    cancel_code.compare_exchange_strong(none, code);
    cancel.cancel();
  }
  int cancel_reason() const { return cancel_code ? cancel_code.load() : error::kRequestCancelled; }
};

// What the worker tells the server (called on the worker thread).
struct WorkerEvents {
  std::function<void(const std::string& model, bool loading, const std::string& message)> on_load;  // begin/end
  std::function<void(const CompletionJob&, const std::vector<PartialItem>&)> on_partial;
  std::function<void(CompletionJob&, const CompletionOutcome&)> on_done;
};

class ModelWorker {
 public:
  ModelWorker(std::string model_dir, ModelLoadOptions load, int threads, CompletionEngine& engine, WorkerEvents events);
  ~ModelWorker();  // cancels everything and joins

  // Queues a job; older queued jobs for the same document are answered
  // ServerCancelled (newest wins), and a running one for it is cancelled.
  void submit(std::shared_ptr<CompletionJob> job);
  // Cancels jobs matching `pred` with `code`: queued ones are answered now,
  // a running one stops within one decoding step and answers itself.
  void cancel_if(const std::function<bool(const CompletionJob&)>& pred, int code);

  const std::string& model_dir() const { return model_dir_; }
  // The model could not be loaded (the server then makes a new worker, to retry).
  bool load_failed() const { return load_failed_; }

 private:
  void run();
  std::string model_dir_;
  ModelLoadOptions load_;
  int threads_;
  CompletionEngine& engine_;
  WorkerEvents events_;
  std::unique_ptr<CompletionBackend> backend_;
  std::string load_error_;
  std::atomic<bool> load_failed_{false};

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<CompletionJob>> queue_;
  std::shared_ptr<CompletionJob> running_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace inkstream::lsp
