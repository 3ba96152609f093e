#pragma once
// The engine of one loaded model, shared by every front end (the language
// server, `inkstream complete`, later `inkstream serve`): a scheduler thread
// that runs all active requests together (continuous batching) over a
// prefix cache of keys and values (KvPool).
//
// Each scheduler step:
//  1. drops requests that were cancelled or passed their deadline (they end
//     within one step) and delivers finished ones;
//  2. admits waiting requests, in arrival order, while the row limit and the
//     KV budget allow: each leases the cached entry sharing the longest
//     token prefix with its prompt, so only the rest is evaluated;
//  3. reads prompts: each is cut into chunks of `prefill_chunk` tokens
//     (from its first uncached token); chunks run in arrival order while the
//     step has read fewer than `prefill_chunk` prompt tokens in all (at
//     least one chunk per step), so that new documents, however many, do not
//     freeze the others' streams;
//  4. runs those chunks and one decoding token for every active row of
//     every request (rows of different lengths: Gpt2Model::forward_step):
//     on CUDA all in one forward, the weights read once per step however
//     many requests join; on the CPU, where a step's cost grows with its
//     rows, the chunks first, all together in one forward, so that a
//     newcomer's first token does not wait for every stream's next one,
//     then the decoding rows, the newcomers among them. Requests that
//     arrive during that decoding forward are admitted between two of its
//     blocks (unless a request ending this step still holds its cached
//     prompt), and a short prompt (all of it within what the step's chunks
//     left of `prefill_chunk`) is read there and gives its first token: a
//     step of many rows takes tens of milliseconds on a laptop CPU, a
//     block a twelfth of it. A prompt read to its end gives the first token
//     of each of its N alternatives.
// A request's output depends only on itself: each prompt is chunked the same
// way whatever else runs, and on the CPU in fp32 every row's arithmetic is
// independent of the other rows (kernels/linear.h).
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "inkstream/model_runtime/generation.h"
#include "inkstream/model_runtime/gpt2.h"

namespace inkstream {

struct EngineOptions {
  std::size_t kv_cache_bytes = std::size_t{512} << 20;  // prefix cache + running requests' rows
  int prefill_chunk = 256;                              // prompt tokens read per step, all requests together
  int max_rows = 64;                                    // alternatives decoded per step, all requests together
  bool prefix_cache = true;                             // reuse cached prompts' keys/values (off: for comparison)
  // A step's prompt chunks and decoding rows in one forward (true), or the
  // chunks first in a forward of their own (false); unset: one forward on
  // CUDA, chunks first on the CPU (see step 4 above).
  std::optional<bool> one_forward_per_step;
  // With the chunks first: a request that arrives while the decoding
  // forward runs is admitted between two of its blocks and, when its whole
  // (uncached) prompt fits in what the step's chunks left of its
  // `prefill_chunk` tokens, read there, so that its first token need not
  // wait for the rest of a long step (see step 4 above). Off: it waits for
  // the next step.
  bool read_newcomers_between_blocks = true;
  GeneratorLimits limits;
};

class Sequence;
class KvPool;

class Engine {
 public:
  using DoneCallback = std::function<void(GenerationResult)>;

  explicit Engine(std::shared_ptr<const Gpt2Model> model, EngineOptions options = {});
  ~Engine();  // stops the scheduler: unfinished requests end Cancelled
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Throws InvalidRequest naming the field (n, max_tokens, stop, sampling...).
  void validate(const GenerationRequest& request) const;

  // Validates (throws InvalidRequest), then queues the request. `on_token`
  // and `on_done` run on the scheduler thread; `on_done` runs exactly once,
  // also for failures (finish reason Error, `error` set: out of memory, a KV
  // budget too small for the prompt) and for cancellation. `cancel` may be
  // null; otherwise it must stay alive until `on_done` has run.
  void submit(const GenerationRequest& request, StreamCallback on_token, const CancellationToken* cancel, DoneCallback on_done);

  // submit() and wait.
  GenerationResult generate(const GenerationRequest& request, const StreamCallback& on_token = {},
                            const CancellationToken* cancel = nullptr);

  EngineStats stats() const;
  const Gpt2Model& model() const { return *model_; }
  const EngineOptions& options() const { return options_; }

 private:
  struct Reading;   // prompt chunks that run in one forward (engine.cpp)
  struct Decoding;  // one decoding token for each active row of some requests
  using Finished = std::vector<std::unique_ptr<Sequence>>;

  void run();
  void step();
  void retire(Finished& done);
  // The parts of a step (engine.cpp), scheduler thread only.
  std::vector<Sequence*> admit(Finished& done);
  Reading plan_reading(const std::vector<Sequence*>& candidates, std::int64_t& budget, bool whole_prompts_only);
  void read(Reading& reading, bool or_leave_for_a_step = false);
  std::int64_t take_chunk(Reading& reading, std::size_t i, const at::Tensor& logits, std::int64_t row);
  Decoding collect_decoding_rows();
  void decode(Decoding& decoding, const std::function<void()>& between_blocks);
  std::int64_t sample(Decoding& decoding, const at::Tensor& logits);
  void read_newcomers(std::int64_t& budget);
  at::Tensor forward(const std::vector<std::int64_t>& ids, const std::vector<DecodeGroup>& decode,
                     const std::vector<PromptChunk>& chunks, const std::function<void()>& between_blocks = {});
  void fail(Sequence& s, const std::exception& e, bool prompt_written);

  std::shared_ptr<const Gpt2Model> model_;
  EngineOptions options_;
  std::unique_ptr<KvPool> pool_;  // scheduler thread only

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Sequence>> incoming_;  // submitted, not yet seen by the scheduler
  bool stopping_ = false;
  EngineStats stats_;  // under mutex_

  // Scheduler thread only.
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;
  std::thread thread_;
};

}  // namespace inkstream
