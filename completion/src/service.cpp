#include "inkstream/completion/service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "inkstream/model_runtime/errors.h"

namespace inkstream {

ModelSpec ModelSpec::from(const CompletionSettings& s, std::string dir) {
  ModelSpec spec;
  spec.dir = std::move(dir);
  spec.device = s.device;
  spec.dtype = s.dtype;
  spec.kv_cache_mb = s.kv_cache_mb;
  spec.prefill_chunk = s.prefill_chunk;
  spec.prefix_cache = s.prefix_cache;
  if (is_remote_model(spec.dir))
    if (const auto remote = s.remote_for(spec.dir)) spec.remote = remote->to_json(/*header_values=*/true).dump();
  return spec;
}

std::string ModelSpec::key() const {
  return dir + '\x1f' + device + '\x1f' + dtype + '\x1f' + std::to_string(kv_cache_mb) + '\x1f' + std::to_string(prefill_chunk) +
         (prefix_cache ? "" : "\x1fno-reuse") + '\x1f' + remote;
}

namespace {

// How long no new job must come in after an answer before the writer's
// next window is read ahead: longer than a fast typist's gap between
// requests, far shorter than typing the words that move the window.
constexpr std::chrono::milliseconds kReadAheadAfterIdle{150};

}  // namespace

// One loaded model: a thread that loads it, then runner threads that each
// take a queued job, choose its context and hand it to the backend, whose
// engine batches every running job together.
class CompletionService::Worker {
 public:
  Worker(ModelSpec spec, std::shared_ptr<BackendFactory> factory, CompletionEngine& engine, const Events& events, int runners)
      : spec_(std::move(spec)), factory_(std::move(factory)), engine_(engine), events_(events), runners_wanted_(std::max(1, runners)) {
    loader_ = std::thread([this] { load(); });
  }

  ~Worker() {
    std::deque<std::shared_ptr<CompletionJob>> dropped;
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      for (auto& job : running_) job->cancel_with(CancelReason::ShuttingDown);
      stop_read_ahead_.cancel();
      dropped.swap(queue_);
    }
    // Ended outside the lock: answering a slow client must not block the runners.
    for (auto& job : dropped) end_cancelled(*job, CancelReason::ShuttingDown);
    wake_.notify_all();
    submitted_changed_.notify_all();
    loader_.join();
    for (auto& t : runners_) t.join();
  }

  void submit(std::shared_ptr<CompletionJob> job) {
    bool refused = false;
    {
      std::lock_guard lock(mutex_);
      refused = stopping_;
      if (!refused) {
        queue_.push_back(job);
        ++submitted_;
      }
    }
    if (refused) {
      end_cancelled(*job, CancelReason::ShuttingDown);
    } else {
      wake_.notify_one();
      submitted_changed_.notify_all();
    }
  }

  void cancel_if(const std::function<bool(const CompletionJob&)>& pred, CancelReason reason) {
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
        if (pred(*running)) running->cancel_with(reason);
    }
    for (auto& job : cancelled) end_cancelled(*job, reason);
  }

  const ModelSpec& spec() const { return spec_; }
  bool loaded() const { return loaded_; }
  bool load_failed() const { return load_failed_; }
  int busy() const {
    std::lock_guard lock(mutex_);
    return static_cast<int>(queue_.size() + running_.size());
  }
  std::optional<EngineStats> stats() const {
    if (!loaded_ || !backend_) return std::nullopt;
    return backend_->stats();
  }

 private:
  static void end_cancelled(CompletionJob& job, CancelReason reason) {
    job.cancel_with(reason);
    CompletionOutcome outcome;
    outcome.cancelled = true;
    job.done(outcome, std::nullopt, false);
  }

  void load() {
    if (events_.on_load) events_.on_load(spec_.dir, true, "");
    try {
      backend_ = factory_->load(spec_);
      spdlog::info("service: model {} loaded", spec_.dir);
    } catch (const std::exception& e) {
      load_error_ = std::string("cannot load model ") + spec_.dir + ": " + e.what();
      load_failed_ = true;
      spdlog::error("service: {}", load_error_);
    }
    loaded_ = true;  // (set after backend_: readers check it first)
    if (events_.on_load) events_.on_load(spec_.dir, false, load_error_);
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    // A model that failed to load only answers with its error: one runner does.
    const int runners = backend_ ? runners_wanted_ : 1;
    for (int i = 0; i < runners; ++i) runners_.emplace_back([this] { run_jobs(); });
  }

  void run_jobs() {
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
                                       if (!job->cancel.cancelled()) job->partial(items);
                                     },
                                     &job->cancel);
        } catch (const InvalidRequest& e) {
          outcome.error = e.what();
        } catch (const std::exception& e) {
          outcome.error = std::string("completion failed: ") + e.what();
        }
      }
      outcome.cancelled = outcome.cancelled || job->cancel.cancelled();
      {
        // Out of the books before its end is told: once the front end has
        // the answer, this model is idle (and may be unloaded) unless other
        // jobs run.
        std::lock_guard lock(mutex_);
        running_.erase(std::find(running_.begin(), running_.end(), job));
      }
      std::uint64_t submitted_before_done = 0;
      {
        std::lock_guard lock(mutex_);
        submitted_before_done = submitted_;
      }
      job->done(outcome, stats(), busy() > 0);
      // (A remote engine keeps its own prefix cache: a read-ahead there
      // would be a request of its own.)
      if (!outcome.cancelled && outcome.error.empty() && outcome.source == "model" && writer_paused(submitted_before_done))
        read_ahead(job->query);
    }
  }

  // Whether no job came in for kReadAheadAfterIdle after the one that
  // ended (`submitted` jobs had come before it): the writer has paused. A
  // read-ahead started at once took the engine from the next keystroke's
  // request of a fast typist (a 1,000-token document, requests back to
  // back: first update median 9-12 -> 27-29 ms, the read-ahead's 32-token
  // chunk in the way, and the prefix cache filled with windows read for
  // nothing); after a pause it runs while the writer types.
  bool writer_paused(std::uint64_t submitted) {
    std::unique_lock lock(mutex_);
    return !submitted_changed_.wait_for(lock, kReadAheadAfterIdle, [&] { return stopping_ || submitted_ != submitted; });
  }

  // Reads the writer's next context window, when it is near, into the
  // engine's prefix cache, after the job's answer went out: the keystroke
  // that moves the window then reads only the words typed since. The engine
  // reads it only in steps with nothing else to do; the worker's end
  // cancels it.
  void read_ahead(const CompletionQuery& q) {
    try {
      const std::optional<std::string> next = engine_.next_window(q, *backend_, &stop_read_ahead_);
      if (!next) return;
      GenerationRequest req;
      req.max_tokens = 1;
      req.sampling.temperature = 0;
      req.read_ahead = true;
      const GenerationResult r = backend_->generate(*next, req, {}, &stop_read_ahead_);
      if (!r.error.empty()) spdlog::debug("service: read-ahead: {}", r.error);
    } catch (const std::exception& e) {
      spdlog::debug("service: read-ahead: {}", e.what());
    }
  }

  ModelSpec spec_;
  std::shared_ptr<BackendFactory> factory_;
  CompletionEngine& engine_;
  const Events& events_;
  int runners_wanted_;
  std::unique_ptr<CompletionBackend> backend_;  // set once by load(), before any runner starts
  std::string load_error_;
  std::atomic<bool> load_failed_{false}, loaded_{false};

  mutable std::mutex mutex_;
  std::condition_variable wake_;               // a job was queued, or stopping_ (one runner takes it)
  std::condition_variable submitted_changed_;  // the same, for every runner waiting to read ahead
  std::uint64_t submitted_ = 0;                // jobs queued so far
  std::deque<std::shared_ptr<CompletionJob>> queue_;
  std::vector<std::shared_ptr<CompletionJob>> running_;
  bool stopping_ = false;
  CancellationToken stop_read_ahead_;
  std::thread loader_;
  std::vector<std::thread> runners_;
};

CompletionService::CompletionService(std::shared_ptr<BackendFactory> factory, Events events, int max_concurrent_jobs)
    : factory_(std::move(factory)), events_(std::move(events)), max_concurrent_jobs_(max_concurrent_jobs) {}

CompletionService::~CompletionService() { workers_.clear(); }  // cancels and joins every model's work

CompletionService::Worker& CompletionService::worker_for(const ModelSpec& spec) {
  const std::string key = spec.key();
  auto it = workers_.find(key);
  if (it != workers_.end() && it->second->load_failed()) {  // try again: the model may have been fixed
    workers_.erase(it);
    it = workers_.end();
  }
  last_used_[key] = ++use_clock_;
  if (it == workers_.end()) {
    evict_models(static_cast<std::size_t>(std::max(0, max_loaded_models_ - 1)), key);
    it = workers_.emplace(key, std::make_unique<Worker>(spec, factory_, engine_, events_, max_concurrent_jobs_)).first;
  } else {
    evict_models(static_cast<std::size_t>(std::max(1, max_loaded_models_)), key);  // one that was busy before may go now
  }
  return *it->second;
}

// A model still loading or serving a request stays (it goes later), so this
// never waits for a load nor cancels a writer's request.
void CompletionService::evict_models(std::size_t keep, const std::string& in_use) {
  bool unloaded = false;
  while (workers_.size() > keep) {
    auto victim = workers_.end();
    for (auto it = workers_.begin(); it != workers_.end(); ++it)
      if (it->first != in_use && it->second->loaded() && it->second->busy() == 0 &&
          (victim == workers_.end() || last_used_[it->first] < last_used_[victim->first]))
        victim = it;
    if (victim == workers_.end()) break;
    spdlog::info("service: unloading model {} (max_loaded_models {})", victim->second->spec().dir, max_loaded_models_);
    last_used_.erase(victim->first);
    workers_.erase(victim);
    unloaded = true;
  }
  if (unloaded && events_.after_unload) events_.after_unload();
}

void CompletionService::submit(std::shared_ptr<CompletionJob> job, const ModelSpec& spec) {
  Worker& worker = worker_for(spec);
  const std::string document = job->document;
  cancel_if([&](const CompletionJob& j) { return j.document == document && &j != job.get(); }, CancelReason::Superseded);
  worker.submit(std::move(job));
}

void CompletionService::preload(const ModelSpec& spec) { worker_for(spec); }

void CompletionService::cancel_if(const std::function<bool(const CompletionJob&)>& pred, CancelReason reason) {
  for (auto& [key, worker] : workers_) worker->cancel_if(pred, reason);
}

std::vector<ModelStatus> CompletionService::status() const {
  std::vector<ModelStatus> out;
  for (const auto& [key, worker] : workers_)
    out.push_back({worker->spec().dir, worker->loaded() && !worker->load_failed(), worker->load_failed(), worker->busy(),
                   worker->stats()});
  return out;
}

}  // namespace inkstream
