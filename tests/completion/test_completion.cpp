#include <gtest/gtest.h>

#include "inkstream/completion/engine.h"
#include "inkstream/model_runtime/errors.h"

namespace inkstream {
namespace {

TEST(Postprocess, StopAtBoundaries) {
  EXPECT_EQ(postprocess(" quick brown fox", StopAt::Word), " quick");
  EXPECT_EQ(postprocess(" quick", StopAt::Word), " quick");
  EXPECT_EQ(postprocess(" It rained. Then it", StopAt::Sentence), " It rained.");
  EXPECT_EQ(postprocess(" \"Go!\" she said", StopAt::Sentence), " \"Go!\"");
  EXPECT_EQ(postprocess(" version 3.14 is out. Next", StopAt::Sentence), " version 3.14 is out.");
  EXPECT_EQ(postprocess(" one line\nnext", StopAt::Sentence), " one line");
  EXPECT_EQ(postprocess("\n\nNew paragraph starts. More", StopAt::Sentence), "\n\nNew paragraph starts.");
  EXPECT_EQ(postprocess(" a line\nb", StopAt::Line), " a line");
  EXPECT_EQ(postprocess(" p one\nstill\n\np two", StopAt::Paragraph), " p one\nstill");
  EXPECT_EQ(postprocess(" all of it.  \n", StopAt::None), " all of it.");
  EXPECT_EQ(postprocess(" end<|endoftext|>junk", StopAt::None), " end");
  EXPECT_TRUE(reached_boundary(" It rained. T", StopAt::Sentence));
  EXPECT_FALSE(reached_boundary(" It rained.", StopAt::Sentence));
}

TEST(Context, StartsAtABoundaryAndFitsTheBudget) {
  auto count = [](std::string_view s) { return static_cast<int>(s.size() / 4); };  // a stand-in tokenizer
  const std::string text = "First sentence here. Second sentence follows. Third one ends it. The cursor is here";
  // The whole text fits.
  EXPECT_EQ(build_context(text, 10000, 1000, count), text);
  // A window cut mid-text starts at the next sentence boundary in its first quarter.
  const std::string ctx = build_context(text, 70, 1000, count);
  EXPECT_TRUE(ctx.starts_with("Second sentence follows.")) << ctx;
  // Too many tokens: the earliest boundary that fits.
  const std::string small = build_context(text, 10000, 5, count);
  EXPECT_EQ(small, "The cursor is here");
  // Multi-byte characters are never split.
  const std::string cjk = "\xE4\xB8\xAD\xE6\x96\x87\xE4\xB8\xAD\xE6\x96\x87";
  EXPECT_EQ(build_context(cjk, 3, 1000, count), "\xE6\x96\x87\xE4\xB8\xAD\xE6\x96\x87");
}

TEST(Settings, InvalidKeysAreNamedAndPreviousValuesKept) {
  CompletionSettings s;
  std::vector<std::string> errors;
  s.apply({{"n", 0}, {"top_p", 0.5}, {"stop_at", "chapter"}, {"temperature", "hot"}, {"bogus", 1}, {"routing", {{"latex", "research"}}}},
          errors);
  EXPECT_EQ(s.n, 3);
  EXPECT_EQ(s.sampling.top_p, 0.5);
  EXPECT_EQ(s.stop_at, StopAt::Sentence);
  EXPECT_EQ(s.sampling.temperature, 0.8);
  ASSERT_EQ(errors.size(), 4u);
  std::string all;
  for (const auto& e : errors) all += e + "|";
  for (const char* key : {"n:", "stop_at:", "temperature:", "bogus:"}) EXPECT_NE(all.find(key), std::string::npos) << key;
  s.model = "writer";
  EXPECT_EQ(s.model_for("latex", "file:///a/paper.tex"), "research");
  EXPECT_EQ(s.model_for("markdown", "file:///a/story.md"), "writer");
  s.apply({{"routing", {{"*.tex", "research"}}}}, errors);
  EXPECT_EQ(s.model_for("plaintext", "file:///a/thesis.tex"), "research");
}

// Streams scripted alternatives word by word, as a model would token by token.
class ScriptedBackend final : public CompletionBackend {
 public:
  explicit ScriptedBackend(std::vector<std::string> alts) : alts_(std::move(alts)) {}
  std::string model_name() const override { return "scripted"; }
  int context_tokens() const override { return 1024; }
  int count_tokens(std::string_view t) const override { return static_cast<int>(t.size() / 4); }
  GenerationResult generate(const std::string& prompt, const GenerationRequest& p, const StreamCallback& on_token,
                            const CancellationToken* cancel) override {
    ++calls;
    last_prompt = prompt;
    GenerationResult r;
    std::vector<std::string> text(alts_.size());
    std::vector<bool> done(alts_.size(), false);
    for (std::size_t step = 0;; ++step) {
      bool any = false;
      for (std::size_t i = 0; i < alts_.size(); ++i) {
        if (done[i]) continue;
        // Next "token": up to and including the next space.
        const std::size_t from = text[i].size();
        std::size_t to = alts_[i].find(' ', from + 1);
        to = to == std::string::npos ? alts_[i].size() : to;
        text[i] = alts_[i].substr(0, to);
        const bool last = to == alts_[i].size() || (p.stop_when && p.stop_when(static_cast<int>(i), text[i]));
        on_token({static_cast<int>(i), std::string_view(text[i]).substr(from), text[i], last, FinishReason::Length});
        done[i] = last;
        any = true;
      }
      if (!any || (cancel && cancel->cancelled())) break;
    }
    for (std::size_t i = 0; i < alts_.size(); ++i) r.alternatives.push_back({static_cast<int>(i), text[i], {}, FinishReason::Length});
    return r;
  }
  int calls = 0;
  std::string last_prompt;

 private:
  std::vector<std::string> alts_;
};

CompletionQuery query(const std::string& before, const std::string& after = "") {
  CompletionQuery q;
  q.key = "doc";
  q.before = before;
  q.after = after;
  q.model = "scripted";
  q.settings.stream_interval_ms = 0;
  q.settings.stop_at = StopAt::Sentence;
  q.settings.n = 3;
  return q;
}

TEST(Engine, StreamsPrefixesThenFinalisesCachesAndTypesThrough) {
  CompletionEngine engine;
  ScriptedBackend backend({" the sea was grey. And then", " nobody came", " the sea was grey. Again"});
  std::vector<std::vector<PartialItem>> updates;
  const CompletionOutcome out = engine.complete(query("Outside, "), backend, [&](const auto& items) { updates.push_back(items); }, nullptr);
  // Duplicates dropped, sentences cut.
  EXPECT_EQ(out.items, (std::vector<std::string>{" the sea was grey.", " nobody came"}));
  ASSERT_GE(updates.size(), 3u);
  // The first update came once a word was complete, and every update is a prefix of the final text.
  for (const auto& u : updates)
    for (const auto& item : u) {
      const std::string final_text = item.index == 1 ? " nobody came" : " the sea was grey.";
      EXPECT_TRUE(final_text.starts_with(item.text)) << item.text;
    }
  // Identical request from another document: from the cache, no inference.
  auto twin = query("Outside, ");
  twin.key = "other document";
  const auto cached = engine.answer_instantly(twin);
  ASSERT_TRUE(cached);
  EXPECT_EQ(cached->source, "cache");
  EXPECT_EQ(cached->items, out.items);
  EXPECT_EQ(backend.calls, 1);
  // Typing through: the writer typed " the s".
  const auto typed = engine.answer_instantly(query("Outside,  the s"));
  ASSERT_TRUE(typed);
  EXPECT_EQ(typed->source, "typing");
  EXPECT_EQ(typed->items, (std::vector<std::string>{"ea was grey."}));
  // Typing something else: no instant answer.
  EXPECT_FALSE(engine.answer_instantly(query("Outside, x")));
}

TEST(Engine, DropsSuggestionsThatRepeatTheTextAfterTheCursor) {
  CompletionEngine engine;
  ScriptedBackend backend({" world", " there"});
  auto q = query("Hello", " world");
  q.settings.n = 2;
  const auto out = engine.complete(q, backend, {}, nullptr);
  EXPECT_EQ(out.items, (std::vector<std::string>{" there"}));
}

}  // namespace
}  // namespace inkstream
