#pragma once
// The completion service: everything about serving completions that does not
// depend on a protocol, shared by every front end (the language server now,
// `inkstream serve` next). It owns the loaded models — one worker per model
// and its engine settings (ModelSpec), made by a BackendFactory so that a
// local engine or a remote cluster plug in alike, kept as an LRU — and runs
// jobs on them: context choice and inference on runner threads, several
// documents at once in each model's engine, newest-wins per document.
// Front ends subclass CompletionJob to receive its streamed updates and its
// end, and map CancelReason to their own error codes.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "inkstream/completion/backend.h"
#include "inkstream/completion/engine.h"

namespace inkstream {

// Why a job ended without its answer.
enum class CancelReason { Cancelled, DocumentChanged, Superseded, ShuttingDown };

// One completion request. A front end derives from it (adding its reply
// handle, positions...) and receives the job's updates through the virtual
// functions, called on a runner thread (or the submitting thread for an
// answer given at once).
class CompletionJob {
 public:
  virtual ~CompletionJob() = default;
  std::string document;  // newest-wins applies per document
  CompletionQuery query;
  CancellationToken cancel;
  std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();

  // Cancels it; the first reason wins.
  void cancel_with(CancelReason reason) {
    int none = 0;
    reason_.compare_exchange_strong(none, static_cast<int>(reason) + 1);
    cancel.cancel();
  }
  CancelReason cancel_reason() const {
    const int r = reason_.load();
    return r ? static_cast<CancelReason>(r - 1) : CancelReason::Cancelled;
  }

  // A streamed update (the whole text of each alternative so far).
  virtual void partial(const std::vector<PartialItem>& items) = 0;
  // The end: exactly once. `outcome.cancelled` says to answer with
  // cancel_reason(); `engine` is the model's figures (none for instant answers).
  virtual void done(const CompletionOutcome& outcome, const std::optional<EngineStats>& engine, bool busy) = 0;

 private:
  std::atomic<int> reason_{0};  // CancelReason + 1, 0 = none yet
};

// A model as the service loads it: the folder and every setting that needs
// its own loaded copy or engine.
struct ModelSpec {
  std::string dir;
  std::string device = "auto", dtype = "auto";
  int kv_cache_mb = 512;
  int prefill_chunk = 256;
  bool prefix_cache = true;
  // A remote model ("remote:NAME" or a URL in `dir`): its RemoteConfig as
  // JSON (with header values), "" when the name is unknown. Part of the key,
  // so a changed remote gets a fresh backend.
  std::string remote;

  static ModelSpec from(const CompletionSettings& settings, std::string dir);
  std::string key() const;
};

// Makes the backend of a model (loads it; may take seconds; throws on failure).
class BackendFactory {
 public:
  virtual ~BackendFactory() = default;
  virtual std::unique_ptr<CompletionBackend> load(const ModelSpec& spec) = 0;
};

struct ModelStatus {
  std::string model;
  bool loaded = false, failed = false;
  int busy = 0;  // jobs queued or running
  std::optional<EngineStats> engine;
};

class CompletionService {
 public:
  struct Events {
    // A model starts loading (`loading`) or has loaded / failed (`error` set);
    // called on the model's loader thread.
    std::function<void(const std::string& model, bool loading, const std::string& error)> on_load;
    // Models were unloaded (on the front end's thread): the executable may
    // hand freed memory back to the system.
    std::function<void()> after_unload;
  };
  // At most `max_concurrent_jobs` jobs of one model run at once.
  CompletionService(std::shared_ptr<BackendFactory> factory, Events events, int max_concurrent_jobs = 16);
  ~CompletionService();  // cancels everything (ShuttingDown) and joins

  // Answers typing-through and duplicate requests at once (no model).
  std::optional<CompletionOutcome> answer_instantly(const CompletionQuery& q) { return engine_.answer_instantly(q); }
  // Queues `job` on the model `spec` (loading it if needed); whatever is
  // queued or running for the same document is superseded first.
  void submit(std::shared_ptr<CompletionJob> job, const ModelSpec& spec);
  // Starts loading a model now (the first request is then fast).
  void preload(const ModelSpec& spec);
  // Cancels queued and running jobs matching `pred` with `reason` (queued
  // ones end at once; a running one within one decoding step).
  void cancel_if(const std::function<bool(const CompletionJob&)>& pred, CancelReason reason);
  // Forget what was shown for a document (closed).
  void forget(const std::string& document) { engine_.forget(document); }
  // At most `n` models stay loaded; idle ones go first, least recently used first.
  void set_max_loaded_models(int n) { max_loaded_models_ = n; }
  // Unloads idle models beyond max_loaded_models (ones that were busy when
  // newer ones loaded); the front end calls it now and then.
  void unload_idle_models() { evict_models(static_cast<std::size_t>(std::max(1, max_loaded_models_)), ""); }
  std::vector<ModelStatus> status() const;

 private:
  class Worker;
  Worker& worker_for(const ModelSpec& spec);
  // Unloads idle models, least recently used first, until at most `keep`
  // remain; never the one keyed `in_use`.
  void evict_models(std::size_t keep, const std::string& in_use);

  std::shared_ptr<BackendFactory> factory_;
  Events events_;
  int max_concurrent_jobs_;
  int max_loaded_models_ = 2;
  CompletionEngine engine_;  // post-processing, duplicate cache, typing-through (thread-safe)
  // Touched by the front end's thread only (submit, cancel_if, status...).
  std::map<std::string, std::unique_ptr<Worker>> workers_;  // ModelSpec::key() ->
  std::map<std::string, std::uint64_t> last_used_;
  std::uint64_t use_clock_ = 0;
};

}  // namespace inkstream
