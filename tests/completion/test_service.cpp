// The protocol-free completion service with a fake backend factory: jobs
// reach their end exactly once, newest wins per document, cancellation
// reasons, failed loads, and the loaded-model LRU.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "inkstream/completion/engine.h"
#include "inkstream/completion/service.h"

namespace inkstream {
namespace {

// A backend that generates "word word word..." one word per step, slowly
// enough to be cancelled, until cancelled or max_tokens.
class SlowBackend final : public CompletionBackend {
 public:
  std::string model_name() const override { return "slow"; }
  int context_tokens() const override { return 1024; }
  std::vector<std::size_t> token_starts(std::string_view t) const override {
    std::vector<std::size_t> s;
    for (std::size_t i = 0; i < t.size(); i += 4) s.push_back(i);
    return s;
  }
  EngineStats stats() const override { return {}; }
  GenerationResult generate(const std::string&, const GenerationRequest& p, const StreamCallback& on_token,
                            const CancellationToken* cancel) override {
    GenerationResult r;
    if (p.read_ahead) {
      ++*read_aheads;
      return r;
    }
    std::string text;
    for (int i = 0; i < p.max_tokens && !(cancel && cancel->cancelled()); ++i) {
      text.append(" word");
      on_token({0, " word", text, false, FinishReason::Length});
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    r.alternatives.push_back({0, text, {}, cancel && cancel->cancelled() ? FinishReason::Cancelled : FinishReason::Length});
    return r;
  }
  std::shared_ptr<std::atomic<int>> read_aheads = std::make_shared<std::atomic<int>>(0);
};

class Factory final : public BackendFactory {
 public:
  std::unique_ptr<CompletionBackend> load(const ModelSpec& spec) override {
    ++loads;
    if (spec.dir == "broken") throw std::runtime_error("no such model");
    auto backend = std::make_unique<SlowBackend>();
    backend->read_aheads = read_aheads;
    return backend;
  }
  std::atomic<int> loads{0};
  std::shared_ptr<std::atomic<int>> read_aheads = std::make_shared<std::atomic<int>>(0);
};

class Job final : public CompletionJob {
 public:
  void partial(const std::vector<PartialItem>&) override { ++partials; }
  void done(const CompletionOutcome& o, const std::optional<EngineStats>&, bool) override {
    ++ends;
    outcome = o;
    finished.set_value();
  }
  std::atomic<int> partials{0}, ends{0};
  CompletionOutcome outcome;
  std::promise<void> finished;
};

std::shared_ptr<Job> job(const std::string& document, int max_tokens) {
  auto j = std::make_shared<Job>();
  j->document = document;
  j->query.key = document;
  j->query.before = "Once upon a time";
  j->query.settings.n = 1;
  j->query.settings.max_tokens = max_tokens;
  j->query.settings.stop_at = StopAt::None;
  j->query.settings.stream_interval_ms = 0;
  j->query.model = std::string(document.size(), 'm');  // (a literal here trips GCC 12's -Wrestrict false positive)
  return j;
}

ModelSpec spec(const std::string& dir, const std::string& dtype = "auto") {
  ModelSpec s;
  s.dir = dir;
  s.dtype = dtype;
  return s;
}

void wait(Job& j) { ASSERT_EQ(j.finished.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready); }

TEST(Service, JobsEndOnceNewestWinsAndCancellationHasItsReason) {
  auto factory = std::make_shared<Factory>();
  CompletionService service(factory, {});
  // A normal job.
  auto a = job("doc", 3);
  service.submit(a, spec("m"));
  wait(*a);
  EXPECT_FALSE(a->outcome.cancelled);
  EXPECT_EQ(a->outcome.items, (std::vector<std::string>{" word word word"}));
  EXPECT_GE(a->partials, 1);
  // A newer job for the same document supersedes the running one.
  auto b = job("doc", 1000), c = job("doc", 2);
  service.submit(b, spec("m"));
  while (b->partials == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  service.submit(c, spec("m"));
  wait(*b);
  wait(*c);
  EXPECT_TRUE(b->outcome.cancelled);
  EXPECT_EQ(b->cancel_reason(), CancelReason::Superseded);
  EXPECT_FALSE(c->outcome.cancelled);
  // The document changed: DocumentChanged; another document is untouched.
  auto d = job("doc", 1000), e = job("other", 3);
  service.submit(d, spec("m"));
  service.submit(e, spec("m"));
  while (d->partials == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  service.cancel_if([](const CompletionJob& j) { return j.document == "doc"; }, CancelReason::DocumentChanged);
  wait(*d);
  wait(*e);
  EXPECT_EQ(d->cancel_reason(), CancelReason::DocumentChanged);
  EXPECT_FALSE(e->outcome.cancelled);
  for (const auto& j : {a, b, c, d, e}) EXPECT_EQ(j->ends, 1);
  EXPECT_EQ(factory->loads, 1);  // one model, loaded once
}

TEST(Service, AFailedLoadFailsItsJobsAndIsRetried) {
  auto factory = std::make_shared<Factory>();
  CompletionService service(factory, {});
  auto a = job("doc", 3);
  service.submit(a, spec("broken"));
  wait(*a);
  EXPECT_NE(a->outcome.error.find("no such model"), std::string::npos) << a->outcome.error;
  auto b = job("doc", 3);
  service.submit(b, spec("broken"));
  wait(*b);
  EXPECT_EQ(factory->loads, 2);  // tried again
}

// The next window is read ahead only once the writer has paused: a job
// that another follows at once (a fast typist) leaves the engine to it.
TEST(Service, TheNextWindowIsReadAheadOnlyAfterTheWriterPauses) {
  auto factory = std::make_shared<Factory>();
  CompletionService service(factory, {});
  constexpr int kChars = 400;
  // A text whose next window is near (SlowBackend's tokens are 4 bytes;
  // 400 characters bind before its token budget).
  std::string before;
  for (int i = 0; !read_ahead_context(before, kChars, 0, [](std::string_view t) { return SlowBackend().token_starts(t); }); ++i) {
    ASSERT_LT(i, 1000) << "no text near a jump";
    before += "The sea rose " + std::to_string(i) + " times. ";
  }
  auto near_jump = [&] {
    auto j = job("doc", 2);
    j->query.before = before;
    j->query.settings.context_chars = kChars;
    return j;
  };
  auto a = near_jump(), b = near_jump();
  service.submit(a, spec("m"));
  wait(*a);
  service.submit(b, spec("m"));  // at once: a's read-ahead gives way
  wait(*b);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // the writer pauses: b's runs
  EXPECT_EQ(*factory->read_aheads, 1);
}

TEST(Service, LoadedModelsAreAnLru) {
  auto factory = std::make_shared<Factory>();
  CompletionService service(factory, {});
  service.set_max_loaded_models(2);
  for (const char* dtype : {"fp32", "bf16", "fp32", "auto", "bf16"}) {
    auto j = job("doc", 1);
    service.submit(j, spec("m", dtype));
    wait(*j);
    // (the runner leaves the job's bookkeeping just after its end)
    auto busy = [&] {
      const auto all = service.status();
      return std::any_of(all.begin(), all.end(), [](const ModelStatus& s) { return s.busy > 0; });
    };
    while (busy()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_LE(service.status().size(), 2u) << dtype;
  }
  EXPECT_EQ(factory->loads, 4);  // fp32, bf16, (fp32 still loaded), auto evicts bf16, bf16 again
}

}  // namespace
}  // namespace inkstream
