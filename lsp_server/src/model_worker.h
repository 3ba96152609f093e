#pragma once
// One worker per loaded model: a thread that loads the model, then a few
// runner threads that each take a queued completion job, choose its context
// and hand it to the model's engine, which batches every running job
// together (continuous batching). Protocol I/O never waits for them. Queued
// and running jobs are newest-wins per document.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <optional>
#include <thread>
#include <vector>

#include "documents.h"
#include "inkstream/completion/engine.h"
#include "inkstream/completion/local_backend.h"
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
  const class ModelWorker* worker = nullptr;  // the worker that ran it (null for instant answers)

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
  // At most `max_concurrent` jobs run at once (each is a request inside the
  // engine's batch); the rest wait in the queue.
  ModelWorker(std::string model_dir, ModelLoadOptions load, EngineOptions engine_options, int max_concurrent,
              CompletionEngine& engine, WorkerEvents events);
  ~ModelWorker();  // cancels everything and joins

  // Queues a job; older queued jobs for the same document are answered
  // ServerCancelled (newest wins), and a running one for it is cancelled.
  void submit(std::shared_ptr<CompletionJob> job);
  // Cancels jobs matching `pred` with `code`: queued ones are answered now,
  // a running one stops within one decoding step and answers itself.
  void cancel_if(const std::function<bool(const CompletionJob&)>& pred, int code);

  const std::string& model_dir() const { return model_dir_; }
  // The model is loaded (or failed to load).
  bool loaded() const { return loaded_; }
  // The engine's figures, once the model is loaded.
  std::optional<EngineStats> stats() const;
  // Jobs queued or running.
  int busy() const;
  // The model could not be loaded (the server then makes a new worker, to retry).
  bool load_failed() const { return load_failed_; }

 private:
  void load();
  void run_jobs();
  std::string model_dir_;
  ModelLoadOptions load_;
  EngineOptions engine_options_;
  int max_concurrent_;
  CompletionEngine& engine_;
  WorkerEvents events_;
  std::unique_ptr<LocalBackend> backend_;  // set once by load(), before any runner starts
  std::string load_error_;
  std::atomic<bool> load_failed_{false}, loaded_{false};

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<CompletionJob>> queue_;
  std::vector<std::shared_ptr<CompletionJob>> running_;
  bool stopping_ = false;
  std::thread loader_;
  std::vector<std::thread> runners_;
};

}  // namespace inkstream::lsp
