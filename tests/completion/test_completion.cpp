#include <gtest/gtest.h>

#include "inkstream/model_runtime/json_numbers.h"
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
  // Lone CRs and CRLFs end lines and paragraphs as "\n" does.
  EXPECT_EQ(postprocess(" a line\rb", StopAt::Line), " a line");
  EXPECT_EQ(postprocess(" a line\r\nb", StopAt::Line), " a line");
  EXPECT_EQ(postprocess(" one line\rnext", StopAt::Sentence), " one line");
  EXPECT_EQ(postprocess(" p one\rstill\r\rp two", StopAt::Paragraph), " p one\rstill");
  EXPECT_EQ(postprocess(" p one\r\nstill\r\n\r\np two", StopAt::Paragraph), " p one\r\nstill");
  EXPECT_TRUE(reached_boundary(" It rained. T", StopAt::Sentence));
  EXPECT_FALSE(reached_boundary(" It rained.", StopAt::Sentence));
}

// A stand-in tokenizer: a token every 4 bytes.
std::vector<std::size_t> four_byte_tokens(std::string_view s) {
  std::vector<std::size_t> starts;
  for (std::size_t i = 0; i < s.size(); i += 4) starts.push_back(i);
  return starts;
}

std::string context(std::string_view before, int chars, int budget) {
  return build_context(before, chars, budget, four_byte_tokens).value();
}

// A prose document of numbered sentences, a paragraph every 5 sentences.
std::string prose(int sentences) {
  std::string text;
  for (int i = 0; i < sentences; ++i) {
    text += "Sentence " + std::to_string(i) + " says a few words more.";
    text += i % 5 == 4 ? "\n\n" : " ";
  }
  return text;
}

std::size_t utf8_chars(std::string_view s) {
  std::size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

TEST(Context, ADocumentThatFitsIsSentWhole) {
  const std::string text = "First sentence here. Second one. The cursor is here";
  EXPECT_EQ(context(text, 10000, 1000), text);
  EXPECT_EQ(context("", 100, 10), "");
}

TEST(Context, StaysWithinBothLimitsAndStartsAtABoundary) {
  const std::string text = prose(200);
  for (const auto& [chars, budget] : {std::pair{300, 1000}, {10000, 60}, {900, 200}, {2000, 0}}) {
    SCOPED_TRACE(std::to_string(chars) + " chars, " + std::to_string(budget) + " tokens");
    const std::string ctx = context(text, chars, budget);
    EXPECT_TRUE(text.ends_with(ctx));
    EXPECT_LE(utf8_chars(ctx), static_cast<std::size_t>(chars));
    if (budget > 0) {
      EXPECT_LE(four_byte_tokens(ctx).size(), static_cast<std::size_t>(budget));
    }
    EXPECT_TRUE(ctx.starts_with("Sentence ")) << ctx.substr(0, 40);
    // The window is not needlessly small: at least half of what the limits allow.
    const std::size_t allowed = budget > 0 ? std::min<std::size_t>(chars, budget * 4) : chars;
    EXPECT_GE(ctx.size(), allowed / 2);
  }
}

TEST(Context, PrefersAParagraphStart) {
  std::string text = prose(100);
  const std::string ctx = context(text, 1200, 0);
  const std::size_t start = text.size() - ctx.size();
  EXPECT_EQ(text.substr(start - 2, 2), "\n\n") << ctx.substr(0, 40);
  // Lone CRs and CRLFs make paragraphs too.
  for (const char* brk : {"\r\r", "\r\n\r\n"}) {
    std::string t = text;
    for (std::size_t at; (at = t.find("\n\n")) != std::string::npos;) t.replace(at, 2, brk);
    const std::string c = context(t, 1200, 0);
    const std::size_t at = t.size() - c.size();
    EXPECT_EQ(t.substr(at - std::string(brk).size(), std::string(brk).size()), brk) << c.substr(0, 40);
  }
}

// The writer types a long document forward, character by character: the
// window's start never moves back, stays put between jumps, and jumps by more
// than an eighth of the window each time, also when it first leaves the
// document's start (a start just inside the limit would move again a few
// words later).
TEST(Context, WindowStartIsStableWhileTypingForward) {
  const std::string doc = prose(400);
  for (const auto& [chars, budget] : {std::pair{2000, 1000}, {2000, 232}, {600, 0}}) {
    SCOPED_TRACE(std::to_string(chars) + " chars, " + std::to_string(budget) + " tokens");
    std::size_t last_start = 0, jumps = 0, min_jump = SIZE_MAX;
    const std::size_t typed_from = 500;
    for (std::size_t len = typed_from; len <= doc.size(); ++len) {
      const std::string_view before = std::string_view(doc).substr(0, len);
      const std::size_t start = len - context(before, chars, budget).size();
      ASSERT_GE(start, last_start) << "at " << len;
      if (start != last_start) {  // the first move off the document's start too
        ++jumps;
        min_jump = std::min(min_jump, start - last_start);
      }
      last_start = start;
    }
    const std::size_t window = budget > 0 ? std::min<std::size_t>(chars, budget * 4) : chars;
    EXPECT_GT(min_jump, window / 8);
    // About one jump per quarter window typed.
    EXPECT_LE(jumps, (doc.size() - typed_from) / (window / 8));
    EXPECT_GE(jumps, 1u);
  }
}

// Typing forward word by word: within an eighth of the window before each
// jump, the first move off the document's start included, a read-ahead
// names the window the jump goes to (exactly: the same start), and only
// there.
TEST(Context, ReadAheadNamesTheWindowTheNextJumpGoesTo) {
  const std::string doc = prose(400);
  for (const auto& [chars, budget] : {std::pair{2000, 1000}, {2000, 232}, {600, 0}}) {
    SCOPED_TRACE(std::to_string(chars) + " chars, " + std::to_string(budget) + " tokens");
    const std::size_t window = budget > 0 ? std::min<std::size_t>(chars, budget * 4) : chars;
    std::size_t last_start = 0, jumps = 0, reads = 0;
    std::optional<std::size_t> ahead;  // the start the last read-ahead named
    for (std::size_t len = 100; len <= doc.size(); len = doc.find(' ', len + 1)) {
      if (len == std::string::npos) break;
      const std::string_view before = std::string_view(doc).substr(0, len);
      const std::size_t start = len - context(before, chars, budget).size();
      if (start != last_start) {
        ++jumps;
        ASSERT_TRUE(ahead.has_value()) << "a jump at " << len << " with no read-ahead before it";
        EXPECT_EQ(*ahead, start) << "at " << len;
        ahead.reset();
      }
      last_start = start;
      const auto next = read_ahead_context(before, chars, budget, four_byte_tokens);
      if (len < window / 2) {
        EXPECT_FALSE(next.has_value()) << "at " << len;  // far from full
      }
      if (next) {
        ++reads;
        const std::size_t at = len - next->size();
        EXPECT_GT(at, start);
        if (ahead) {
          EXPECT_EQ(at, *ahead) << "at " << len;  // the same target until the jump
        }
        ahead = at;
      }
    }
    EXPECT_GE(jumps, 3u);
    // Only near a jump: about an eighth of the window typed before each, of
    // a quarter between jumps (~7 words of 27 bytes a sentence here).
    EXPECT_LT(reads, jumps * (window / 8 / 4 + 2) + (window / 8 / 4 + 2));
  }
}

TEST(Context, NeverSplitsACharacterAndStopsWhenCancelled) {
  const std::string cjk = "\xE4\xB8\xAD\xE6\x96\x87\xE4\xB8\xAD\xE6\x96\x87";
  const std::string ctx = context(cjk, 3, 1000);
  EXPECT_EQ(utf8_chars(ctx), 3u);
  EXPECT_TRUE(cjk.ends_with(ctx));
  CancellationToken cancel;
  cancel.cancel();
  EXPECT_FALSE(build_context(prose(100), 500, 50, four_byte_tokens, &cancel).has_value());
  EXPECT_FALSE(read_ahead_context(prose(100), 500, 50, four_byte_tokens, &cancel).has_value());
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

// Hardening: numbers that do not fit their setting are refused, never
// wrapped (these are the values that once became 1, 4, 0, -1 and 2^64-1).
using Json = nlohmann::json;

TEST(Settings, OutOfRangeIntegersAreRefusedNotWrapped) {
  const std::vector<std::pair<Json, std::string>> cases = {
      {{{"n", 4294967297ULL}}, "n:"},          {{{"max_tokens", 4294967300ULL}}, "max_tokens:"},
      {{{"max_tokens", -4294967295LL}}, "max_tokens:"}, {{{"top_k", 4294967296ULL}}, "top_k:"},
      {{{"threads", 4294967297ULL}}, "threads:"}, {{{"repeat_last_n", 4294967295ULL}}, "repeat_last_n:"},
      {{{"seed", -1}}, "seed:"},               {{{"seed", 1.5}}, "seed:"},
      {{{"kv_cache_mb", 18446744073709551615ULL}}, "kv_cache_mb:"}, {{{"n", 2.0}}, "n:"}};
  for (const auto& [patch, key] : cases) {
    CompletionSettings s;
    const Json before = s.to_json();
    std::vector<std::string> errors;
    s.apply(patch, errors);
    ASSERT_EQ(errors.size(), 1u) << patch.dump();
    EXPECT_EQ(errors[0].rfind(key, 0), 0u) << errors[0];
    EXPECT_NE(errors[0].find(patch.begin().value().dump()), std::string::npos) << "names the value: " << errors[0];
    EXPECT_EQ(s.to_json(), before) << "the previous value stays: " << patch.dump();
  }
  CompletionSettings s;
  std::vector<std::string> errors;
  s.apply({{"seed", 18446744073709551615ULL}, {"repeat_last_n", -1}}, errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(s.seed, 18446744073709551615ULL);
  EXPECT_EQ(s.sampling.repeat_last_n, -1);
}

TEST(JsonNumbers, RangeCheckedAsTheJsonNumber) {
  using json_numbers::integer;
  EXPECT_EQ(integer<int>(Json(4294967297ULL)), std::nullopt);
  EXPECT_EQ(integer<int>(Json(-2147483648LL)), -2147483648);
  EXPECT_EQ(integer<int>(Json(-2147483649LL)), std::nullopt);
  EXPECT_EQ(integer<std::uint64_t>(Json(-1)), std::nullopt);
  EXPECT_EQ(integer<std::uint64_t>(Json(18446744073709551615ULL)), 18446744073709551615ULL);
  EXPECT_EQ(integer<std::int64_t>(Json(18446744073709551615ULL)), std::nullopt);
  EXPECT_EQ(integer<int>(Json(5), 1, 4), std::nullopt);
  EXPECT_EQ(integer<int>(Json(4), 1, 4), 4);
  EXPECT_EQ(integer<int>(Json(1.0)), std::nullopt);
  EXPECT_EQ(integer<int>(Json("1")), std::nullopt);
  EXPECT_EQ(integer<unsigned>(Json(3), 5, 9), std::nullopt);
}

// Streams scripted alternatives word by word, as a model would token by token.
class ScriptedBackend final : public CompletionBackend {
 public:
  explicit ScriptedBackend(std::vector<std::string> alts) : alts_(std::move(alts)) {}
  std::string model_name() const override { return "scripted"; }
  int context_tokens() const override { return 1024; }
  std::vector<std::size_t> token_starts(std::string_view t) const override { return four_byte_tokens(t); }
  EngineStats stats() const override { return {}; }
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
  // Every update is a prefix of the final text.
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
