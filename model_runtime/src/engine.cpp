#include "inkstream/model_runtime/engine.h"
#include <torch/types.h>

#include <spdlog/spdlog.h>

#include <future>
#include <new>

#include "inkstream/model_runtime/errors.h"
#include "kv_pool.h"
#include "sequence.h"

#if INKSTREAM_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace inkstream {
namespace {

using Clock = std::chrono::steady_clock;

// The first line of an exception's message (libtorch appends a backtrace).
std::string first_line(const std::exception& e) {
  std::string what = e.what();
  if (const auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
  return what;
}

// What a failed computation tells the writer. Running out of memory (CPU:
// c10's "can't allocate memory" or std::bad_alloc; CUDA: "out of memory")
// says so and what to change, rather than only the allocator's words, and
// has a kind (front ends tell a kind once, not once per keystroke).
void fail_with(Sequence& s, const std::exception& e) {
  const std::string what = first_line(e);
  const bool out_of_memory = dynamic_cast<const std::bad_alloc*>(&e) != nullptr ||
                             what.find("can't allocate memory") != std::string::npos ||
                             what.find("out of memory") != std::string::npos;
  if (out_of_memory)
    s.finish_all(FinishReason::Error,
                 "generation failed: out of memory (" + what + "); lower n or max_tokens, or kv_cache_mb so that requests wait for memory",
                 "out_of_memory");
  else
    s.finish_all(FinishReason::Error, "generation failed: " + what);
}

// Moves the sequences for which `pred` holds from `from` to `to`, in order.
template <class Container, class Pred>
void move_if(Container& from, std::vector<std::unique_ptr<Sequence>>& to, Pred pred) {
  for (auto it = from.begin(); it != from.end();)
    if (pred(**it)) {
      to.push_back(std::move(*it));
      it = from.erase(it);
    } else {
      ++it;
    }
}

// Logits as fp32 on the CPU, contiguous: what the samplers read.
torch::Tensor host_logits(const torch::Tensor& logits) { return logits.to(torch::kFloat32).to(torch::kCPU).contiguous(); }

// After a forward that failed, before it runs again apart: on CUDA the
// caching allocator's free blocks go back, so that the smaller forwards find
// the memory the big one could not.
void after_failed_forward(const std::exception& e, c10::Device dev) {
  spdlog::warn("engine: a step's forward failed: {}", first_line(e));
#if INKSTREAM_WITH_CUDA
  if (dev.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#else
  (void)dev;
#endif
}

}  // namespace

Engine::Engine(std::shared_ptr<const Gpt2Model> model, EngineOptions options)
    : model_(std::move(model)), options_(options) {
  if (options_.prefill_chunk < 1) throw InvalidRequest("prefill_chunk must be at least 1");
  if (options_.max_rows < 1) throw InvalidRequest("max_rows must be at least 1");
  pool_ = std::make_unique<KvPool>(model_->config(), model_->kv_dtype(), model_->device(), options_.kv_cache_bytes,
                                   options_.prefix_cache);
  thread_ = std::thread([this] { run(); });
}

Engine::~Engine() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Engine::validate(const GenerationRequest& r) const {
  const GeneratorLimits& limits = options_.limits;
  if (r.n < 1 || r.n > limits.max_n) throw InvalidRequest("n must be between 1 and " + std::to_string(limits.max_n));
  if (r.n > options_.max_rows)
    throw InvalidRequest("n must be at most the engine's max_rows (" + std::to_string(options_.max_rows) + ")");
  if (r.max_tokens < 1 || r.max_tokens > limits.max_tokens)
    throw InvalidRequest("max_tokens must be between 1 and " + std::to_string(limits.max_tokens));
  if (r.stop.size() > limits.max_stop_strings)
    throw InvalidRequest("stop: at most " + std::to_string(limits.max_stop_strings) + " stop strings");
  for (const auto& s : r.stop)
    if (s.empty() || s.size() > limits.max_stop_length)
      throw InvalidRequest("stop: each stop string must have 1 to " + std::to_string(limits.max_stop_length) + " bytes");
  r.sampling.validate();
  const auto vocab = model_->config().vocab_size;
  for (const TokenId id : r.prompt)
    if (id < 0 || id >= vocab) throw InvalidRequest("prompt: token id " + std::to_string(id) + " is outside the vocabulary");
}

void Engine::submit(const GenerationRequest& request, StreamCallback on_token, const CancellationToken* cancel,
                    DoneCallback on_done) {
  validate(request);
  const ModelConfig& cfg = model_->config();
  // Fit the context: keep room for max_tokens, cut the oldest prompt tokens.
  const int max_tokens = static_cast<int>(std::min<std::int64_t>(request.max_tokens, cfg.n_positions - 1));
  std::vector<TokenId> prompt = request.prompt;
  if (prompt.empty()) prompt.push_back(static_cast<TokenId>(cfg.eos_token_id >= 0 ? cfg.eos_token_id : 0));
  const std::size_t room = static_cast<std::size_t>(cfg.n_positions - max_tokens);
  int dropped = 0;
  if (prompt.size() > room) {
    dropped = static_cast<int>(prompt.size() - room);
    prompt.erase(prompt.begin(), prompt.begin() + dropped);
  }
  auto seq = std::make_unique<Sequence>(request, std::move(prompt), dropped, max_tokens, model_->tokenizer(),
                                        static_cast<TokenId>(cfg.eos_token_id),
                                        std::move(on_token), cancel, std::move(on_done));
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && (options_.prefix_cache || !request.read_ahead)) {  // (nothing to keep a read-ahead in)
      if (!seq->read_ahead()) ++stats_.waiting;
      incoming_.push_back(std::move(seq));
    }
  }
  if (seq) {  // the engine is stopping (or a read-ahead has no cache): cancelled, delivered outside the lock (on_done may call stats())
    seq->finish_all(FinishReason::Cancelled);
    seq->deliver();
    return;
  }
  wake_.notify_one();
}

GenerationResult Engine::generate(const GenerationRequest& request, const StreamCallback& on_token,
                                  const CancellationToken* cancel) {
  std::promise<GenerationResult> promise;
  auto future = promise.get_future();
  submit(request, on_token, cancel, [&](GenerationResult r) { promise.set_value(std::move(r)); });
  return future.get();
}

EngineStats Engine::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Engine::run() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !incoming_.empty() || !running_.empty() || !waiting_.empty(); });
      if (stopping_) break;
      while (!incoming_.empty()) {
        waiting_.push_back(std::move(incoming_.front()));
        incoming_.pop_front();
      }
    }
    step();
  }
  // Shutting down: every request still here ends Cancelled.
  std::vector<std::unique_ptr<Sequence>> left;
  {
    std::lock_guard lock(mutex_);
    for (auto& s : incoming_) left.push_back(std::move(s));
    incoming_.clear();
  }
  for (auto& s : waiting_) left.push_back(std::move(s));
  waiting_.clear();
  for (auto& s : running_) left.push_back(std::move(s));
  running_.clear();
  for (auto& s : left) s->finish_all(FinishReason::Cancelled);
  retire(left);
}

// Prompt chunks that run in one forward: `readers[i]` reads `chunks[i]`,
// whose tokens are the next chunks[i].rows of `ids`.
struct Engine::Reading {
  std::vector<Sequence*> readers;
  std::vector<PromptChunk> chunks;
  std::vector<std::int64_t> ids;
};

// One decoding token for each active row of the requests in `batch`
// (`groups[i]` is batch[i]'s; `ids` their inputs in order).
struct Engine::Decoding {
  std::vector<Sequence*> batch;
  std::vector<DecodeGroup> groups;
  std::vector<std::int64_t> ids;
};

// Releases what finished requests hold and hands them their results.
void Engine::retire(Finished& done) {
  for (auto& s : done) {
    if (s->admitted) {
      // An entry whose prompt was not fully read stays valid up to its length.
      pool_->release(s->entry, pool_->bytes_for(s->n(), s->max_tokens()));
      s->admitted = false;
    }
    s->entry.reset();
    s->tail.reset();
  }
  {
    std::lock_guard lock(mutex_);
    // (Read-aheads are the engine's own errand, not a writer's request.)
    auto writers = [](const auto& queue) {
      return static_cast<int>(std::count_if(queue.begin(), queue.end(), [](const auto& s) { return !s->read_ahead(); }));
    };
    stats_.running = writers(running_);
    stats_.waiting = writers(waiting_) + writers(incoming_);
    int rows = 0;
    for (const auto& s : running_) rows += static_cast<int>(s->active().size());
    stats_.rows = rows;
    stats_.kv_used_bytes = pool_->used_bytes();
    stats_.kv_budget_bytes = pool_->budget_bytes();
    stats_.cached_entries = pool_->entries();
  }
  for (auto& s : done) s->deliver();
  done.clear();
}

// Admits waiting requests while rows and memory allow; returns them (now at
// the end of running_). Writers' requests go in arrival order. Read-aheads
// go only into an engine where no writer's request runs or waits (they are
// read only then, and must not hold rows or memory a writer waits for); a
// writer's request that finds no room ends the running read-aheads (what
// they read stays cached) and tries again. Those that can never fit end in
// `done`.
std::vector<Sequence*> Engine::admit(Finished& done) {
  const auto now = Clock::now();
  std::vector<Sequence*> admitted;
  auto running_rows = [&] {
    int rows = 0;
    for (const auto& s : running_) rows += static_cast<int>(s->active().size());
    return rows;
  };
  int rows = running_rows();
  auto end_read_aheads = [&] {
    bool any = false;
    for (auto& s : running_)
      if (s->read_ahead() && !s->done()) {
        s->finish_all(FinishReason::Cancelled);
        any = true;
      }
    if (!any) return false;
    move_if(running_, done, [](const Sequence& s) { return s.read_ahead() && s.done(); });
    retire(done);  // their entries and rows are free now
    rows = running_rows();
    return true;
  };
  // Admits *it, or says why not: rows or memory (nullopt lease) taken.
  enum class Result { Admitted, Ended, NoRows, NoMemory };
  auto try_admit = [&](std::deque<std::unique_ptr<Sequence>>::iterator& it) {
    Sequence& s = **it;
    if (rows + s.n() > options_.max_rows) return Result::NoRows;
    const std::size_t tail_bytes = pool_->bytes_for(s.n(), s.max_tokens());
    std::optional<KvPool::Lease> lease;
    try {
      lease = pool_->lease(s.prompt(), tail_bytes);
    } catch (const std::exception& e) {  // allocating the entry failed
      fail_with(s, e);
      done.push_back(std::move(*it));
      it = waiting_.erase(it);
      return Result::Ended;
    }
    if (!lease) {
      if (!running_.empty()) return Result::NoMemory;  // wait for memory to be released
      const std::size_t need = pool_->worst_case_bytes(s.prompt().size(), tail_bytes);
      s.finish_all(FinishReason::Error, "generation failed: the KV cache budget (" + std::to_string(pool_->budget_bytes() >> 20) +
                                            " MB) cannot hold this request (" + std::to_string((need + (1 << 20) - 1) >> 20) +
                                            " MB); raise kv_cache_mb or lower n or max_tokens",
                   "kv_budget");
      done.push_back(std::move(*it));
      it = waiting_.erase(it);
      return Result::Ended;
    }
    s.entry = lease->entry;
    s.reused = lease->reused;
    s.admitted = true;
    s.mark_admitted(now);
    rows += s.n();
    if (!s.read_ahead()) {  // the hit rate is what writers' requests found
      std::lock_guard lock(mutex_);
      ++stats_.requests;
      stats_.prompt_tokens += s.prompt().size();
      stats_.cached_prompt_tokens += static_cast<std::uint64_t>(s.reused);
    }
    admitted.push_back(&s);
    running_.push_back(std::move(*it));
    it = waiting_.erase(it);
    return Result::Admitted;
  };
  bool writer_waits = false;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if ((*it)->read_ahead()) {
      ++it;
      continue;
    }
    const Result r = try_admit(it);
    if ((r == Result::NoRows || r == Result::NoMemory) && !end_read_aheads()) {
      writer_waits = true;
      break;  // the next ones wait their turn
    }
  }
  if (writer_waits) return admitted;
  for (const auto& s : running_)
    if (!s->read_ahead()) return admitted;
  for (auto it = waiting_.begin(); it != waiting_.end();)
    if (const Result r = try_admit(it); r == Result::NoRows || r == Result::NoMemory) break;
  return admitted;
}

// The next chunk of each unread prompt among `candidates`, in order, while
// `budget` (prompt tokens) lasts. A chunk's bounds depend only on its own
// request (its first uncached token, then every prefill_chunk tokens, or
// kReadAheadChunk for a read-ahead); the budget decides only when it runs.
// A step reads at least one chunk; with `whole_prompts_only` only prompts
// whose rest is one chunk that fits. Read-aheads only when nothing else
// runs: no other prompt to read and no row decoding, one a step.
Engine::Reading Engine::plan_reading(const std::vector<Sequence*>& candidates, std::int64_t& budget, bool whole_prompts_only) {
  Reading r;
  const auto now = Clock::now();
  bool others = false;
  for (Sequence* sp : candidates)
    others = others || (!sp->read_ahead() && !sp->done() && (!sp->prefilled() || sp->tail));
  for (Sequence* sp : candidates) {
    Sequence& s = *sp;
    if (s.prefilled() || s.done()) continue;
    if (s.read_ahead() && (others || whole_prompts_only || !r.readers.empty())) continue;
    // Checked again just before computing: a cancellation that came during
    // admission costs no further work.
    if (s.end_if_cancelled_or_late(now)) continue;
    KvCache& cache = s.entry->cache;
    const std::int64_t from = cache.length(), size = static_cast<std::int64_t>(s.prompt().size());
    const std::int64_t count = std::min<std::int64_t>(s.read_ahead() ? kReadAheadChunk : options_.prefill_chunk, size - from);
    if (whole_prompts_only) {
      if (from + count < size || count > budget) continue;  // a step's chunks read it
    } else if (count > budget && budget < options_.prefill_chunk) {
      break;  // the next step reads it
    }
    budget -= count;
    r.readers.push_back(&s);
    r.chunks.push_back({&cache, count, from + count == size});
    r.ids.insert(r.ids.end(), s.prompt().begin() + from, s.prompt().begin() + from + count);
  }
  return r;
}

// One forward: logits (R', V) as fp32 on the host; throws as the model does.
torch::Tensor Engine::forward(const std::vector<std::int64_t>& ids, const std::vector<DecodeGroup>& decode,
                              const std::vector<PromptChunk>& chunks, const std::function<void()>& between_blocks) {
  const auto dev = model_->device();
  const auto t = torch::tensor(ids, torch::TensorOptions().dtype(torch::kLong)).to(dev);
  return host_logits(model_->forward_step(t, decode, chunks, between_blocks));
}

// A failure fails the requests of that computation, frees what they held and
// leaves the engine usable. `prompt_written`: the computation was writing
// the prompt's entry (the last write may be partial: the entry is dropped);
// a decoding step only writes the request's own rows, so its cached prompt
// stays.
void Engine::fail(Sequence& s, const std::exception& e, bool prompt_written) {
  fail_with(s, e);
  spdlog::error("engine: {}", s.error());
  if (s.entry) pool_->release(s.entry, 0, /*discard=*/prompt_written);
  s.entry.reset();
}

// Chunk i's result at row `row` of `logits`: a prompt read to its end gives
// its first tokens and gets its decoding rows. Returns the next row.
std::int64_t Engine::take_chunk(Reading& r, std::size_t i, const torch::Tensor& logits, std::int64_t row) {
  Sequence& s = *r.readers[i];
  const PromptChunk& chunk = r.chunks[i];
  const auto first = s.prompt().begin() + (s.entry->cache.length() - chunk.rows);
  s.entry->tokens.insert(s.entry->tokens.end(), first, first + chunk.rows);
  if (!chunk.logits) return row;
  const auto now = Clock::now();
  s.mark_prefilled(now);
  s.sample(logits.data_ptr<float>() + row * logits.size(1), 1, logits.size(1));  // one row, shared by its N alternatives
  if (spdlog::should_log(spdlog::level::trace))
    spdlog::trace("engine: a request's first token {:.1f} ms after it was submitted (the last {} of its {} prompt tokens read now)",
                  std::chrono::duration<double, std::milli>(now - s.submitted_at()).count(), chunk.rows, s.prompt().size());
  try {
    if (!s.done())
      s.tail = std::make_unique<KvCache>(model_->config(), static_cast<std::int64_t>(s.active().size()), s.max_tokens(),
                                         model_->kv_dtype(), model_->device());
  } catch (const std::exception& e) {
    fail(s, e, /*prompt_written=*/false);
  }
  return row + 1;
}

// The chunks in one forward; if that fails, each alone, so that only a
// request whose own chunk fails ends. (A failed forward advanced no cache's
// length: running a chunk again writes the same positions.) With
// `or_leave_for_a_step`, a failed forward fails nobody: a step reads the
// chunks again.
void Engine::read(Reading& r, bool or_leave_for_a_step) {
  if (r.chunks.empty()) return;
  torch::Tensor logits;
  try {
    logits = forward(r.ids, {}, r.chunks);
  } catch (const std::exception& e) {
    after_failed_forward(e, model_->device());
    if (or_leave_for_a_step) return;
    if (r.readers.size() == 1) {  // already alone
      fail(*r.readers.front(), e, /*prompt_written=*/true);
      return;
    }
  }
  if (logits.defined()) {
    std::int64_t row = 0;
    for (std::size_t i = 0; i < r.readers.size(); ++i) row = take_chunk(r, i, logits, row);
    return;
  }
  for (std::size_t i = 0, first = 0; i < r.readers.size(); first += static_cast<std::size_t>(r.chunks[i].rows), ++i) {
    torch::Tensor own_logits;
    try {
      const std::vector<std::int64_t> own(r.ids.begin() + static_cast<std::ptrdiff_t>(first),
                                          r.ids.begin() + static_cast<std::ptrdiff_t>(first) + r.chunks[i].rows);
      own_logits = forward(own, {}, {r.chunks[i]});
    } catch (const std::exception& e) {
      fail(*r.readers[i], e, /*prompt_written=*/true);
      continue;
    }
    take_chunk(r, i, own_logits, 0);
  }
}

// Every active row of every request whose prompt is read.
Engine::Decoding Engine::collect_decoding_rows() {
  Decoding d;
  const auto now = Clock::now();  // a deadline that passed during the chunks' forward costs no token
  for (auto& sp : running_) {
    Sequence& s = *sp;
    if (!s.prefilled() || s.done() || !s.tail) continue;
    if (s.end_if_cancelled_or_late(now)) continue;
    d.batch.push_back(&s);
    d.groups.push_back({&s.entry->cache, static_cast<std::int64_t>(s.prompt().size()), s.tail.get(),
                        static_cast<std::int64_t>(s.active().size())});
    d.ids.insert(d.ids.end(), s.next_ids().begin(), s.next_ids().end());
  }
  return d;
}

// Samples the decoding rows from the first rows of `logits`; returns the
// next row.
std::int64_t Engine::sample(Decoding& d, const torch::Tensor& logits) {
  const std::int64_t V = logits.size(1);
  std::int64_t row = 0;
  for (std::size_t i = 0; i < d.batch.size(); ++i) {
    d.batch[i]->sample(logits.data_ptr<float>() + row * V, d.groups[i].rows, V);
    row += d.groups[i].rows;
  }
  return row;
}

void Engine::decode(Decoding& d, const std::function<void()>& between_blocks) {
  if (d.ids.empty()) return;
  torch::Tensor logits;
  try {
    logits = forward(d.ids, d.groups, {}, between_blocks);
  } catch (const std::exception& e) {
    after_failed_forward(e, model_->device());
    for (Sequence* s : d.batch) fail(*s, e, /*prompt_written=*/false);
    return;
  }
  sample(d, logits);
}

// Between two blocks of a decoding forward: requests submitted since are
// admitted, and those whose whole prompt rest fits in `budget` are read and
// give their first tokens now; they decode from the next step on. Nothing
// here touches the running forward's requests: an entry is leased by one
// request, a newcomer's rows are its own, and the model is immutable. Not
// while a request that ends this step still holds its entry: a newcomer
// (the writer's next keystroke after a cancelled suggestion) may need its
// cached prompt, free from the step's end on. Reading here runs beside the
// suspended forward's activations: if it runs out of memory, a step reads
// the prompt again instead of failing the request.
void Engine::read_newcomers(std::int64_t& budget) {
  {
    std::lock_guard lock(mutex_);
    if (incoming_.empty() || budget <= 0) return;
  }
  for (const auto& s : running_)
    if (s->done() || s->cancelled()) return;
  {
    std::lock_guard lock(mutex_);
    while (!incoming_.empty()) {
      waiting_.push_back(std::move(incoming_.front()));
      incoming_.pop_front();
    }
  }
  Finished done;
  std::vector<Sequence*> admitted;
  try {
    const auto now = Clock::now();
    move_if(waiting_, done, [&](Sequence& s) { return s.end_if_cancelled_or_late(now); });
    admitted = admit(done);
    Reading r = plan_reading(admitted, budget, /*whole_prompts_only=*/true);
    read(r, /*or_leave_for_a_step=*/true);
  } catch (const std::exception& e) {  // e.g. bad_alloc in bookkeeping: the running forward must go on
    spdlog::error("engine: reading newcomers during a step failed: {}", first_line(e));
    // A prompt read but not taken would never decode nor end: it fails.
    for (Sequence* s : admitted)
      if (!s->done() && s->prefilled() && !s->tail) fail(*s, e, /*prompt_written=*/true);
  }
  retire(done);  // none of them holds anything the forward uses
}

void Engine::step() {
  // 1. Cancelled and late requests end now, waiting or running (a deadline
  // still lets the prompt give its first token, as it always did).
  Finished done;
  const auto now = Clock::now();
  auto ended = [&](Sequence& s) { return s.end_if_cancelled_or_late(now); };
  move_if(waiting_, done, ended);
  move_if(running_, done, ended);
  retire(done);  // frees their entries before admission looks for reusable ones

  // 2. Admission, in arrival order, while rows and memory allow.
  admit(done);
  retire(done);

  // 3. Prompt chunks, in arrival order, while this step's prompt budget lasts.
  c10::InferenceMode inference;
  const auto compute_time = Clock::now();
  std::vector<Sequence*> all;
  for (auto& s : running_) all.push_back(s.get());
  std::int64_t budget = options_.prefill_chunk;
  Reading reading = plan_reading(all, budget, /*whole_prompts_only=*/false);

  // 4. The chunks and one decoding token for every active row of every
  // request. Where a forward costs about the same for a few rows as for many
  // (CUDA: memory-bound), all of it is one forward, the weights read once.
  // On the CPU a step is compute-bound (~1.5 ms per row for GPT-2 small on
  // two AVX2 cores): a newcomer's first token would wait for every
  // streaming row's work, so the chunks run first, together in one forward
  // of their own, and their requests' first tokens go out before the
  // decoding forward, which they join at once; requests that arrive during
  // that forward are read between its blocks. (Fixed per device: a row's
  // numbers do not depend on the schedule either way.) A forward that fails
  // (out of memory) runs again apart, the chunks each alone, so that only a
  // request whose own work fails ends.
  const bool one_forward = options_.one_forward_per_step.value_or(model_->device().is_cuda());
  Decoding decoding;
  bool apart = !one_forward;
  if (one_forward) {
    decoding = collect_decoding_rows();
    std::vector<std::int64_t> all_ids = decoding.ids;
    all_ids.insert(all_ids.end(), reading.ids.begin(), reading.ids.end());
    torch::Tensor logits;
    try {
      if (!all_ids.empty()) logits = forward(all_ids, decoding.groups, reading.chunks);
    } catch (const std::exception& e) {
      after_failed_forward(e, model_->device());
      apart = true;  // one request's chunk must not end every stream: again, apart
    }
    if (logits.defined()) {
      std::int64_t row = sample(decoding, logits);
      for (std::size_t i = 0; i < reading.readers.size(); ++i) row = take_chunk(reading, i, logits, row);
    }
  }
  // What the step's chunks left of its prompt budget (prefill_chunk tokens
  // a step, all requests together) is for newcomers between blocks.
  std::int64_t between_budget = budget;
  if (apart) {
    read(reading);
    if (!one_forward) decoding = collect_decoding_rows();  // the newcomers decode at once
    std::function<void()> between_blocks;
    if (!one_forward && options_.read_newcomers_between_blocks) between_blocks = [&] { read_newcomers(between_budget); };
    decode(decoding, between_blocks);
  }
  {
    std::lock_guard lock(mutex_);
    ++stats_.steps;
  }

  if (spdlog::should_log(spdlog::level::trace))
    spdlog::trace("engine: step {}: {} prompt tokens in {} chunks, {} rows decoded, {} prompt tokens read between blocks; {:.1f} ms",
                  stats_.steps, reading.ids.size(), reading.chunks.size(), decoding.ids.size(), budget - between_budget,
                  std::chrono::duration<double, std::milli>(Clock::now() - compute_time).count());

  // 5. Finished requests leave.
  move_if(running_, done, [](const Sequence& s) { return s.done(); });
  retire(done);
}

}  // namespace inkstream
