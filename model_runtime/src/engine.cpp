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
    if (stopping_) {
      seq->finish_all(FinishReason::Cancelled);
      seq->deliver();
      return;
    }
    incoming_.push_back(std::move(seq));
    ++stats_.waiting;
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

// Releases what finished requests hold and hands them their results.
void Engine::retire(std::vector<std::unique_ptr<Sequence>>& done) {
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
    stats_.running = static_cast<int>(running_.size());
    stats_.waiting = static_cast<int>(waiting_.size() + incoming_.size());
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

void Engine::step() {
  const ModelConfig& cfg = model_->config();
  const auto now = Clock::now();
  std::vector<std::unique_ptr<Sequence>> done;

  // 1. Cancelled and late requests end now, waiting or running (a deadline
  // still lets the prompt give its first token, as it always did).
  auto ended = [&](Sequence& s) { return s.end_if_cancelled_or_late(now); };
  move_if(waiting_, done, ended);
  move_if(running_, done, ended);
  retire(done);  // frees their entries before admission looks for reusable ones

  // 2. Admission, in arrival order, while rows and memory allow.
  int rows = 0;
  for (const auto& s : running_) rows += static_cast<int>(s->active().size());
  while (!waiting_.empty()) {
    Sequence& s = *waiting_.front();
    if (rows + s.n() > options_.max_rows) break;
    const std::size_t tail_bytes = pool_->bytes_for(s.n(), s.max_tokens());
    std::optional<KvPool::Lease> lease;
    try {
      lease = pool_->lease(s.prompt(), tail_bytes);
    } catch (const std::exception& e) {  // allocating the entry failed
      fail_with(s, e);
      done.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
      continue;
    }
    if (!lease) {
      if (!running_.empty()) break;  // wait for memory to be released
      const std::size_t need = pool_->worst_case_bytes(s.prompt().size(), tail_bytes);
      s.finish_all(FinishReason::Error, "generation failed: the KV cache budget (" + std::to_string(pool_->budget_bytes() >> 20) +
                                            " MB) cannot hold this request (" + std::to_string((need + (1 << 20) - 1) >> 20) +
                                            " MB); raise kv_cache_mb or lower n or max_tokens",
                   "kv_budget");
      done.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
      continue;
    }
    s.entry = lease->entry;
    s.reused = lease->reused;
    s.admitted = true;
    s.mark_admitted(now);
    rows += s.n();
    {
      std::lock_guard lock(mutex_);
      ++stats_.requests;
      stats_.prompt_tokens += s.prompt().size();
      stats_.cached_prompt_tokens += static_cast<std::uint64_t>(s.reused);
    }
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }

  c10::InferenceMode inference;
  const auto dev = model_->device();
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong);
  // A failure fails the requests of that computation, frees what they held
  // and leaves the engine usable.
  // `prompt_written`: the computation was writing its prompt's entry (the
  // last write may be partial: the entry is dropped); a decoding step only
  // writes the request's own rows, so its cached prompt stays.
  auto fail = [&](Sequence& s, const std::exception& e, bool prompt_written) {
    fail_with(s, e);
    spdlog::error("engine: {}", s.error());
    if (s.entry) pool_->release(s.entry, 0, /*discard=*/prompt_written);
    s.entry.reset();
  };

  // 3. Prompt chunks, in arrival order, while this step's prompt budget
  // lasts. A chunk's bounds depend only on its own request (its first
  // uncached token, then every prefill_chunk tokens); the budget decides
  // only when it runs.
  std::vector<Sequence*> readers;
  std::vector<PromptChunk> chunks;
  std::vector<std::int64_t> chunk_ids;
  std::int64_t prompt_budget = options_.prefill_chunk;
  const auto compute_time = Clock::now();
  for (auto& sp : running_) {
    Sequence& s = *sp;
    if (s.prefilled() || s.done()) continue;
    // Checked again just before computing: a cancellation that came during
    // this step's admission costs no further work.
    if (s.end_if_cancelled_or_late(compute_time)) continue;
    KvCache& cache = s.entry->cache;
    const std::int64_t from = cache.length(), size = static_cast<std::int64_t>(s.prompt().size());
    const std::int64_t count = std::min<std::int64_t>(options_.prefill_chunk, size - from);
    if (count > prompt_budget && prompt_budget < options_.prefill_chunk) break;  // the next step reads it
    prompt_budget -= count;
    readers.push_back(&s);
    chunks.push_back({&cache, count, from + count == size});
    chunk_ids.insert(chunk_ids.end(), s.prompt().begin() + from, s.prompt().begin() + from + count);
  }

  // 4. The chunks and one decoding token for every active row of every
  // request. Where a forward costs about the same for a few rows as for many
  // (CUDA: memory-bound), all of it is one forward, the weights read once.
  // On the CPU a step is compute-bound (~1.5 ms per row for GPT-2 small on
  // two AVX2 cores): a newcomer's first token would wait for every
  // streaming row's work, so the chunks run first, together in one forward
  // of their own, and their requests' first tokens go out before the
  // decoding forward, which they join at once. (Fixed per device: a row's
  // numbers do not depend on the schedule either way.) A forward that fails
  // (out of memory) runs again apart, the chunks each alone, so that only a
  // request whose own work fails ends.
  const bool one_forward = options_.one_forward_per_step.value_or(dev.is_cuda());
  std::vector<Sequence*> batch;
  std::vector<DecodeGroup> groups;
  std::vector<std::int64_t> ids;
  auto collect_decoding_rows = [&] {
    const auto now = Clock::now();  // a deadline that passed during the chunks' forward costs no token
    for (auto& sp : running_) {
      Sequence& s = *sp;
      if (!s.prefilled() || s.done() || !s.tail) continue;
      if (s.end_if_cancelled_or_late(now)) continue;
      batch.push_back(&s);
      groups.push_back({&s.entry->cache, static_cast<std::int64_t>(s.prompt().size()), s.tail.get(),
                        static_cast<std::int64_t>(s.active().size())});
      ids.insert(ids.end(), s.next_ids().begin(), s.next_ids().end());
    }
  };
  // One forward: logits (R', V) as fp32 on the host; throws as the model does.
  auto forward = [&](const std::vector<std::int64_t>& all_ids, const std::vector<DecodeGroup>& decode,
                     const std::vector<PromptChunk>& reading) {
    return host_logits(model_->forward_step(torch::tensor(all_ids, long_opts).to(dev), decode, reading));
  };
  auto after_failure = [&](const std::exception& e) {
    spdlog::warn("engine: a step's forward failed: {}", first_line(e));
#if INKSTREAM_WITH_CUDA
    if (dev.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
  };
  auto sample_decoding_rows = [&](const torch::Tensor& logits) {
    const std::int64_t V = logits.size(1);
    std::int64_t row = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i]->sample(logits.data_ptr<float>() + row * V, groups[i].rows, V);
      row += groups[i].rows;
    }
    return row;
  };
  // Chunk i's result at row `row` of `logits`: a prompt read to its end gives
  // its first tokens and gets its decoding rows. Returns the next row.
  auto take_chunk = [&](std::size_t i, const torch::Tensor& logits, std::int64_t row) -> std::int64_t {
    Sequence& s = *readers[i];
    const auto first = s.prompt().begin() + (s.entry->cache.length() - chunks[i].rows);
    s.entry->tokens.insert(s.entry->tokens.end(), first, first + chunks[i].rows);
    if (!chunks[i].logits) return row;
    s.mark_prefilled(Clock::now());
    s.sample(logits.data_ptr<float>() + row * logits.size(1), 1, logits.size(1));  // one row, shared by its N alternatives
    try {
      if (!s.done()) s.tail = std::make_unique<KvCache>(cfg, static_cast<std::int64_t>(s.active().size()), s.max_tokens(),
                                                        model_->kv_dtype(), dev);
    } catch (const std::exception& e) {
      fail(s, e, /*prompt_written=*/false);
    }
    return row + 1;
  };
  // The chunks in one forward; if that fails, each alone, so that only a
  // request whose own chunk fails ends. (A failed forward advanced no
  // cache's length: running a chunk again writes the same positions.)
  auto read_chunks = [&] {
    if (chunks.empty()) return;
    torch::Tensor logits;
    try {
      logits = forward(chunk_ids, {}, chunks);
    } catch (const std::exception& e) {
      after_failure(e);
      if (readers.size() == 1) {  // already alone
        fail(*readers.front(), e, /*prompt_written=*/true);
        return;
      }
    }
    if (logits.defined()) {
      for (std::int64_t i = 0, row = 0; i < static_cast<std::int64_t>(readers.size()); ++i) row = take_chunk(static_cast<std::size_t>(i), logits, row);
      return;
    }
    for (std::size_t i = 0, first = 0; i < readers.size(); first += static_cast<std::size_t>(chunks[i].rows), ++i) {
      torch::Tensor own_logits;
      try {
        const std::vector<std::int64_t> own(chunk_ids.begin() + first, chunk_ids.begin() + first + chunks[i].rows);
        own_logits = forward(own, {}, {chunks[i]});
      } catch (const std::exception& e) {
        fail(*readers[i], e, /*prompt_written=*/true);
        continue;
      }
      take_chunk(i, own_logits, 0);
    }
  };
  auto decode_rows_once = [&] {
    if (ids.empty()) return;
    torch::Tensor logits;
    try {
      logits = forward(ids, groups, {});
    } catch (const std::exception& e) {
      after_failure(e);
      for (Sequence* s : batch) fail(*s, e, /*prompt_written=*/false);
      return;
    }
    sample_decoding_rows(logits);
  };
  bool apart = !one_forward;
  if (one_forward) {
    collect_decoding_rows();
    std::vector<std::int64_t> all_ids = ids;
    all_ids.insert(all_ids.end(), chunk_ids.begin(), chunk_ids.end());
    torch::Tensor logits;
    try {
      if (!all_ids.empty()) logits = forward(all_ids, groups, chunks);
    } catch (const std::exception& e) {
      after_failure(e);
      apart = true;  // one request's chunk must not end every stream: again, apart
    }
    if (logits.defined())
      for (std::int64_t i = 0, row = sample_decoding_rows(logits); i < static_cast<std::int64_t>(readers.size()); ++i)
        row = take_chunk(static_cast<std::size_t>(i), logits, row);
  }
  if (apart) {
    read_chunks();
    if (!one_forward) collect_decoding_rows();  // the newcomers decode at once
    decode_rows_once();
  }
  const std::size_t decode_rows = ids.size();
  {
    std::lock_guard lock(mutex_);
    ++stats_.steps;
  }

  if (spdlog::should_log(spdlog::level::trace))
    spdlog::trace("engine: step {}: {} prompt tokens in {} chunks, {} rows decoded; {:.1f} ms", stats_.steps, chunk_ids.size(),
                  chunks.size(), decode_rows, std::chrono::duration<double, std::milli>(Clock::now() - compute_time).count());

  // 5. Finished requests leave.
  move_if(running_, done, [](const Sequence& s) { return s.done(); });
  retire(done);
}

}  // namespace inkstream
