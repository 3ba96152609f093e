#include "inkstream/model_runtime/generator.h"
#include <torch/types.h>

#include <gtest/gtest.h>

#include "inkstream/model_runtime/errors.h"
#include "failing_allocator.h"
#include "test_support.h"

namespace inkstream {
namespace {

std::shared_ptr<const Gpt2Model> tiny() {
  static const auto model = Gpt2Model::load(test::fixture_dir() / "tiny", {"cpu", "fp32"});
  return model;
}

GenerationRequest request(const std::string& prompt, int n, int max_tokens) {
  GenerationRequest r;
  r.prompt = tiny()->tokenizer().encode(prompt);
  r.n = n;
  r.max_tokens = max_tokens;
  r.sampling.temperature = 1.0;
  return r;
}

TEST(Generator, SameSeedSameTextAcrossRunsAndAcrossN) {
  const Generator gen(tiny());
  const auto a = gen.generate(request("The night was", 3, 12));
  const auto b = gen.generate(request("The night was", 3, 12));
  ASSERT_EQ(a.alternatives.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(a.alternatives[i].token_ids, b.alternatives[i].token_ids);
  // Alternative 0 does not depend on how many others share the batch.
  const auto one = gen.generate(request("The night was", 1, 12));
  EXPECT_EQ(one.alternatives[0].token_ids, a.alternatives[0].token_ids);
  // Different alternatives and different seeds give different text.
  EXPECT_NE(a.alternatives[0].token_ids, a.alternatives[1].token_ids);
  auto other = request("The night was", 1, 12);
  other.seed = 7;
  EXPECT_NE(gen.generate(other).alternatives[0].token_ids, one.alternatives[0].token_ids);
}

TEST(Generator, StreamedDeltasConcatenateToTheFinalText) {
  const Generator gen(tiny());
  std::map<int, std::string> streamed;
  std::map<int, int> done_events, updates;
  const auto result = gen.generate(request("Once upon a time", 3, 15), [&](const StreamEvent& e) {
    EXPECT_EQ(done_events[e.index], 0) << "update after done";
    streamed[e.index] += e.delta;
    EXPECT_EQ(streamed[e.index], e.text);
    ++updates[e.index];
    if (e.done) ++done_events[e.index];
  });
  for (const auto& alt : result.alternatives) {
    EXPECT_EQ(streamed[alt.index], alt.text);
    EXPECT_EQ(done_events[alt.index], 1);
    EXPECT_GT(updates[alt.index], 3);  // it streamed, not one final blob
    EXPECT_EQ(alt.finish_reason, FinishReason::Length);
    EXPECT_EQ(alt.token_ids.size(), 15u);
  }
  EXPECT_EQ(result.timings.prompt_n, 4);
  EXPECT_EQ(result.timings.predicted_n, 45);
  EXPECT_GT(result.timings.predicted_per_second, 0);
}

TEST(Generator, StopStringSpanningTokensCutsTheTextAndIsNeverStreamed) {
  const Generator gen(tiny());
  auto req = request("Hello world", 1, 20);
  req.sampling.temperature = 0;
  const auto free_run = gen.generate(req).alternatives[0];
  // A stop string that straddles the boundary between tokens 3 and 4.
  const Tokenizer& tok = tiny()->tokenizer();
  const std::string first3 = tok.decode(std::span(free_run.token_ids).first(3));
  const std::string first4 = tok.decode(std::span(free_run.token_ids).first(4));
  ASSERT_GE(first3.size(), 2u);
  ASSERT_GE(first4.size(), first3.size() + 2);
  const std::string stop = first4.substr(first3.size() - 2, 4);
  req.stop = {stop};
  std::string streamed;
  const auto stopped = gen.generate(req, [&](const StreamEvent& e) { streamed += e.delta; }).alternatives[0];
  EXPECT_EQ(stopped.finish_reason, FinishReason::Stop);
  const std::size_t at = free_run.text.find(stop);
  EXPECT_EQ(stopped.text, free_run.text.substr(0, at));
  EXPECT_EQ(streamed, stopped.text);
  EXPECT_EQ(streamed.find(stop), std::string::npos);
}

TEST(Generator, EndOfTextFinishesWithEos) {
  // A model whose final hidden state always points along a long wte[eos]:
  // end-of-text is the argmax at every step, so generation ends at once.
  ModelConfig cfg = tiny()->config();
  auto weights = tiny()->named_weights();
  torch::Tensor wte = weights["wte.weight"].clone();
  wte[cfg.eos_token_id] *= 10;
  weights["wte.weight"] = wte;
  weights["ln_f.weight"] = torch::zeros_like(weights["ln_f.weight"]);
  weights["ln_f.bias"] = wte[cfg.eos_token_id].clone() * 10;
  const auto model = std::make_shared<Gpt2Model>(cfg, weights, tiny()->tokenizer_ptr(), "eos");
  const auto result = Generator(model).generate(request("Hi", 2, 10));
  for (const auto& alt : result.alternatives) {
    EXPECT_EQ(alt.finish_reason, FinishReason::Eos);
    EXPECT_TRUE(alt.token_ids.empty());
    EXPECT_EQ(alt.text, "");
  }
}

TEST(Generator, CancellationStopsWithinOneStep) {
  const Generator gen(tiny());
  CancellationToken cancel;
  int events = 0;
  const auto result = gen.generate(
      request("The", 2, 40),
      [&](const StreamEvent& e) {
        ++events;
        cancel.cancel();  // as if $/cancelRequest arrived right after the first token
      },
      &cancel);
  for (const auto& alt : result.alternatives) {
    EXPECT_EQ(alt.finish_reason, FinishReason::Cancelled);
    EXPECT_EQ(alt.token_ids.size(), 1u);
  }
}

TEST(Generator, DeadlineEndsWithLength) {
  const Generator gen(tiny());
  auto req = request("The", 1, 40);
  req.deadline = std::chrono::steady_clock::now();
  const auto alt = gen.generate(req).alternatives[0];
  EXPECT_EQ(alt.finish_reason, FinishReason::Length);
  EXPECT_EQ(alt.token_ids.size(), 1u);
}

TEST(Generator, LongPromptsAreCutFromTheLeft) {
  const Generator gen(tiny());  // 64 positions
  GenerationRequest req;
  for (int i = 0; i < 1000; ++i) req.prompt.push_back(464 + i % 50);
  req.max_tokens = 10;
  const auto r = gen.generate(req);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.prompt_tokens_dropped, 1000 - (64 - 10));
  EXPECT_EQ(r.timings.prompt_n, 54);
  EXPECT_EQ(r.alternatives[0].token_ids.size(), 10u);
  // max_tokens beyond the context is clamped, never an index error.
  req.max_tokens = 500;
  const auto clamped = gen.generate(req);
  EXPECT_EQ(clamped.error, "");
  EXPECT_EQ(clamped.alternatives[0].token_ids.size(), 63u);
  // An empty prompt starts from <|endoftext|>.
  GenerationRequest empty;
  empty.max_tokens = 3;
  EXPECT_EQ(gen.generate(empty).alternatives[0].token_ids.size(), 3u);
}

TEST(Generator, InvalidValuesAreRejectedNamingTheField) {
  const Generator gen(tiny());
  auto message = [&](GenerationRequest r) {
    try {
      gen.generate(r);
    } catch (const InvalidRequest& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  GenerationRequest r;
  r.n = 0;
  EXPECT_NE(message(r).find("n must"), std::string::npos);
  r = {};
  r.n = 17;
  EXPECT_NE(message(r).find("n must"), std::string::npos);
  r = {};
  r.max_tokens = 0;
  EXPECT_NE(message(r).find("max_tokens"), std::string::npos);
  r = {};
  r.sampling.temperature = -0.5;
  EXPECT_NE(message(r).find("temperature"), std::string::npos);
  r = {};
  r.stop = {""};
  EXPECT_NE(message(r).find("stop"), std::string::npos);
  r = {};
  r.prompt = {60000};
  EXPECT_NE(message(r).find("prompt"), std::string::npos);
}

TEST(Generator, OutOfMemoryFailsTheRequestAndTheNextOneWorks) {
  const Generator gen(tiny());
  GenerationResult failed;
  {
    test::FailingAllocatorScope scope;
    scope.allocator().armed = true;
    std::string streamed;
    failed = gen.generate(request("The night was", 16, 20), [&](const StreamEvent& e) { streamed += e.delta; });
  }
  EXPECT_NE(failed.error.find("not enough memory"), std::string::npos) << failed.error;
  for (const auto& alt : failed.alternatives) EXPECT_EQ(alt.finish_reason, FinishReason::Error);
  const auto ok = gen.generate(request("The night was", 16, 20));
  EXPECT_EQ(ok.error, "");
  EXPECT_EQ(ok.alternatives.size(), 16u);
  for (const auto& alt : ok.alternatives) EXPECT_EQ(alt.token_ids.size(), 20u);
}

TEST(Generator, ConcurrentGenerationsShareOneModel) {
  const Generator gen(tiny());
  const auto expected = gen.generate(request("Shared model", 2, 10));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      const auto r = gen.generate(request("Shared model", 2, 10));
      for (int i = 0; i < 2; ++i) mismatches += r.alternatives[i].token_ids != expected.alternatives[i].token_ids;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches, 0);
}

}  // namespace
}  // namespace inkstream
