#include "model_worker.h"

#include <spdlog/spdlog.h>

#include "inkstream/model_runtime/errors.h"

namespace inkstream::lsp {

ModelWorker::ModelWorker(std::string model_dir, ModelLoadOptions load, EngineOptions engine_options, int max_concurrent,
                         CompletionEngine& engine, WorkerEvents events)
    : model_dir_(std::move(model_dir)),
      load_(std::move(load)),
      engine_options_(engine_options),
      max_concurrent_(std::max(1, max_concurrent)),
      engine_(engine),
      events_(std::move(events)) {
  loader_ = std::thread([this] { this->load(); });
}

ModelWorker::~ModelWorker() {
  std::deque<std::shared_ptr<CompletionJob>> dropped;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (auto& job : running_) job->cancel_with(error::kServerCancelled);
    dropped.swap(queue_);
  }
  // Answered outside the lock: writing to a slow client must not block the runners.
  for (auto& job : dropped) job->reply.error(error::kServerCancelled, "server is shutting down");
  wake_.notify_all();
  loader_.join();
  for (auto& t : runners_) t.join();
}

void ModelWorker::submit(std::shared_ptr<CompletionJob> job) {
  std::vector<std::shared_ptr<CompletionJob>> superseded;
  bool refused = false;
  {
    std::lock_guard lock(mutex_);
    for (auto it = queue_.begin(); it != queue_.end();) {
      if ((*it)->uri == job->uri) {
        superseded.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& running : running_)
      if (running->uri == job->uri) running->cancel_with(error::kServerCancelled);
    refused = stopping_;
    if (!refused) queue_.push_back(job);
  }
  for (auto& old : superseded) old->reply.error(error::kServerCancelled, "superseded by a newer completion request for this document");
  if (refused) job->reply.error(error::kServerCancelled, "server is shutting down");
  else wake_.notify_one();
}

void ModelWorker::cancel_if(const std::function<bool(const CompletionJob&)>& pred, int code) {
  std::vector<std::shared_ptr<CompletionJob>> cancelled;
  {
    std::lock_guard lock(mutex_);
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (pred(**it)) {
        cancelled.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& running : running_)
      if (pred(*running)) running->cancel_with(code);
  }
  for (auto& job : cancelled)
    job->reply.error(code, code == error::kContentModified ? "the document changed"
                           : code == error::kServerCancelled ? "superseded by a newer request"
                                                             : "request cancelled");
}

std::optional<EngineStats> ModelWorker::stats() const {
  if (!loaded_ || !backend_) return std::nullopt;
  return backend_->stats();
}

int ModelWorker::busy() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(queue_.size() + running_.size());
}

void ModelWorker::load() {
  if (events_.on_load) events_.on_load(model_dir_, true, "loading " + model_dir_);
  try {
    auto model = Gpt2Model::load(model_dir_, load_);
    backend_ = std::make_unique<LocalBackend>(std::move(model), engine_options_);
    spdlog::info("lsp: model {} loaded", model_dir_);
  } catch (const std::exception& e) {
    load_error_ = std::string("cannot load model ") + model_dir_ + ": " + e.what();
    load_failed_ = true;
    spdlog::error("lsp: {}", load_error_);
  }
  loaded_ = true;
  if (events_.on_load) events_.on_load(model_dir_, false, load_error_);
  std::lock_guard lock(mutex_);
  if (stopping_) return;
  for (int i = 0; i < max_concurrent_; ++i) runners_.emplace_back([this] { run_jobs(); });
}

void ModelWorker::run_jobs() {
  for (;;) {
    std::shared_ptr<CompletionJob> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      running_.push_back(job);
    }
    CompletionOutcome outcome;
    if (!backend_) {
      outcome.error = load_error_;
    } else if (!job->cancel.cancelled()) {
      try {
        outcome = engine_.complete(job->query, *backend_,
                                   [&](const std::vector<PartialItem>& items) {
                                     if (events_.on_partial && !job->cancel.cancelled()) events_.on_partial(*job, items);
                                   },
                                   &job->cancel);
      } catch (const InvalidRequest& e) {
        outcome.error = e.what();
      } catch (const std::exception& e) {
        outcome.error = std::string("completion failed: ") + e.what();
      }
    }
    outcome.cancelled = outcome.cancelled || job->cancel.cancelled();
    job->worker = this;
    if (events_.on_done) events_.on_done(*job, outcome);
    std::lock_guard lock(mutex_);
    running_.erase(std::find(running_.begin(), running_.end(), job));
  }
}

}  // namespace inkstream::lsp
