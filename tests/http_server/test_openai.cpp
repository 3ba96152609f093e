// The OpenAI request mapping, admission and the metrics text, without HTTP.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "admission.h"
#include "auth.h"
#include "metrics.h"
#include "openai.h"

namespace inkstream {
namespace {

using openai::Json;

openai::CompletionRequest parse(Json body) {
  if (!body.contains("model")) body["model"] = "m";
  if (!body.contains("prompt")) body["prompt"] = "hello";
  return openai::parse_completion_request(body, 1234);
}

std::string refused(Json body) {
  try {
    parse(std::move(body));
  } catch (const openai::ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.type, "invalid_request_error");
    return e.param;
  }
  return "(accepted)";
}

TEST(OpenAiRequest, DefaultsAreOpenAIs) {
  const auto r = parse({});
  EXPECT_EQ(r.generation.n, 1);
  EXPECT_EQ(r.generation.max_tokens, 16);
  EXPECT_DOUBLE_EQ(r.generation.sampling.temperature, 1.0);
  EXPECT_DOUBLE_EQ(r.generation.sampling.top_p, 1.0);
  EXPECT_EQ(r.generation.sampling.top_k, 0);
  EXPECT_DOUBLE_EQ(r.generation.sampling.repeat_penalty, 1.0);
  EXPECT_EQ(r.generation.seed, 1234u);  // none given: the caller's random one
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(std::get<std::string>(r.prompt), "hello");
}

TEST(OpenAiRequest, FieldsMapToTheRuntime) {
  const auto r = parse({{"n", 3}, {"max_tokens", 40}, {"temperature", 0}, {"top_p", 0.5}, {"top_k", 7}, {"min_p", 0.1},
                        {"repetition_penalty", 1.2}, {"seed", 9}, {"stop", "\n"}, {"stream", true},
                        {"stream_options", {{"include_usage", true}}}, {"prompt", {1, 2, 3}}, {"user", "u"}});
  EXPECT_EQ(r.generation.n, 3);
  EXPECT_EQ(r.generation.max_tokens, 40);
  EXPECT_DOUBLE_EQ(r.generation.sampling.temperature, 0);
  EXPECT_DOUBLE_EQ(r.generation.sampling.top_p, 0.5);
  EXPECT_EQ(r.generation.sampling.top_k, 7);
  EXPECT_DOUBLE_EQ(r.generation.sampling.min_p, 0.1);
  EXPECT_DOUBLE_EQ(r.generation.sampling.repeat_penalty, 1.2);
  EXPECT_EQ(r.generation.seed, 9u);
  EXPECT_EQ(parse({{"seed", 18446744073709551615ULL}}).generation.seed, 18446744073709551615ULL);  // the engine's whole range
  EXPECT_EQ(r.generation.stop, std::vector<std::string>{"\n"});
  EXPECT_TRUE(r.stream && r.include_usage);
  EXPECT_EQ(std::get<std::vector<TokenId>>(r.prompt), (std::vector<TokenId>{1, 2, 3}));
  EXPECT_DOUBLE_EQ(parse({{"repeat_penalty", 1.3}}).generation.sampling.repeat_penalty, 1.3);  // llama.cpp's name
  EXPECT_EQ(std::get<std::string>(parse({{"prompt", {"one"}}}).prompt), "one");
}

TEST(OpenAiRequest, RefusesWhatItCannotDoNamingTheParameter) {
  EXPECT_EQ(refused({{"echo", true}}), "echo");
  EXPECT_EQ(refused({{"best_of", 2}}), "best_of");
  EXPECT_EQ(refused({{"suffix", "x"}}), "suffix");
  EXPECT_EQ(refused({{"logprobs", 2}}), "logprobs");
  EXPECT_EQ(refused({{"presence_penalty", 0.5}}), "presence_penalty");
  // their neutral values are fine (clients send them)
  EXPECT_EQ(refused({{"echo", false}, {"best_of", 1}, {"logprobs", nullptr}, {"presence_penalty", 0}}), "(accepted)");
  EXPECT_EQ(refused({{"n", 0}}), "n");
  EXPECT_EQ(refused({{"n", 17}}), "n");
  EXPECT_EQ(refused({{"n", 1.5}}), "n");
  EXPECT_EQ(refused({{"max_tokens", 0}}), "max_tokens");
  EXPECT_EQ(refused({{"temperature", -0.1}}), "temperature");
  EXPECT_EQ(refused({{"temperature", "hot"}}), "temperature");
  EXPECT_EQ(refused({{"top_p", 0}}), "top_p");
  EXPECT_EQ(refused({{"top_p", 1.01}}), "top_p");
  EXPECT_EQ(refused({{"stop", {"a", "b", "c", "d", "e"}}}), "stop");
  EXPECT_EQ(refused({{"stop", ""}}), "stop");
  EXPECT_EQ(refused({{"stop", {1}}}), "stop");
  EXPECT_EQ(refused({{"prompt", {"a", "b"}}}), "prompt");
  EXPECT_EQ(refused({{"prompt", Json::array()}}), "prompt");
  EXPECT_EQ(refused({{"prompt", {-1}}}), "prompt");
  EXPECT_EQ(refused({{"stream", "yes"}}), "stream");
  EXPECT_EQ(refused({{"seed", -1}}), "seed");
  // never wrapped: these once became 1 and -1
  EXPECT_EQ(refused({{"n", 4294967297ULL}}), "n");
  EXPECT_EQ(refused({{"max_tokens", 18446744073709551615ULL}}), "max_tokens");
  EXPECT_EQ(refused({{"seed", 1.5}}), "seed");
  EXPECT_EQ(refused({{"seed", "7"}}), "seed");
  EXPECT_EQ(refused({{"prompt", {4294967297ULL}}}), "prompt");
  EXPECT_EQ(refused({{"model", 3}}), "model");
  EXPECT_EQ(refused({{"stream_options", {{"include_usage", "yes"}}}}), "stream_options.include_usage");
  EXPECT_EQ(refused({{"stream_options", 1}}), "stream_options");
}

TEST(OpenAiResponse, ChunksUsageAndErrorsHaveTheWireShape) {
  const Json c = openai::chunk("cmpl-1", 5, "m", 1, " sea", FinishReason::Eos);
  EXPECT_EQ(c["object"], "text_completion");
  EXPECT_EQ(c["choices"][0]["index"], 1);
  EXPECT_EQ(c["choices"][0]["text"], " sea");
  EXPECT_EQ(c["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(openai::chunk("cmpl-1", 5, "m", 0, "x", std::nullopt)["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(openai::chunk("cmpl-1", 5, "m", 0, "", FinishReason::Length)["choices"][0]["finish_reason"], "length");
  const Json u = openai::usage(10, 4, 8);
  EXPECT_EQ(u["total_tokens"], 14);
  EXPECT_EQ(u["prompt_tokens_details"]["cached_tokens"], 8);
  EXPECT_TRUE(openai::usage_chunk("cmpl-1", 5, "m", u)["choices"].empty());
  const std::string line = openai::sse(c);
  EXPECT_EQ(line.rfind("data: {", 0), 0u);
  EXPECT_EQ(line.substr(line.size() - 2), "\n\n");
  EXPECT_EQ(line.find('\n'), line.size() - 2);  // one line
  // a byte token that is not UTF-8 on its own does not fail the stream
  EXPECT_NO_THROW(openai::sse(openai::chunk("cmpl-1", 5, "m", 0, std::string("\xe2\x80"), std::nullopt)));
  const Json e = openai::error_body(openai::ApiError(404, "no such model", "invalid_request_error", "model", "model_not_found"));
  EXPECT_EQ(e["error"]["message"], "no such model");
  EXPECT_EQ(e["error"]["param"], "model");
  EXPECT_EQ(e["error"]["code"], "model_not_found");
}

TEST(Auth, BearerKeysMatchExactly) {
  const std::vector<std::string> keys = {"sk-one", "sk-two-longer"};
  EXPECT_TRUE(authorized({}, ""));  // no keys: open
  EXPECT_TRUE(authorized(keys, "Bearer sk-one"));
  EXPECT_TRUE(authorized(keys, "Bearer sk-two-longer"));
  EXPECT_FALSE(authorized(keys, "Bearer sk-on"));
  EXPECT_FALSE(authorized(keys, "Bearer sk-one "));
  EXPECT_FALSE(authorized(keys, "Bearer sk-onf"));
  EXPECT_FALSE(authorized(keys, "sk-one"));
  EXPECT_FALSE(authorized(keys, "Bearer "));
  EXPECT_FALSE(authorized(keys, ""));
  EXPECT_FALSE(same_key("", ""));
}

TEST(Admission, BoundedRunningAndQueueThenRefusals) {
  Admission a(1, 1, std::chrono::milliseconds(200));
  EXPECT_EQ(a.acquire(), std::nullopt);
  // one waits for the slot...
  auto waiter = std::async(std::launch::async, [&] { return a.acquire(); });
  for (int i = 0; i < 100 && a.waiting() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(a.waiting(), 1);
  // ...a third finds the queue full at once
  EXPECT_EQ(a.acquire(), std::optional<std::string>("queue_full"));
  a.release();
  EXPECT_EQ(waiter.get(), std::nullopt);  // got the freed slot
  // nobody frees it: a queued one gives up after max_wait
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(a.acquire(), std::optional<std::string>("queue_timeout"));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(190));
  a.close();
  EXPECT_EQ(a.acquire(), std::optional<std::string>("draining"));
  a.release();
  EXPECT_EQ(a.running(), 0);
}

TEST(Metrics, PrometheusTextWithVllmNames) {
  Metrics m;
  m.running = 2;
  m.generation_tokens += 7;
  m.ttft.observe(0.03);
  m.ttft.observe(20);
  m.finished("stop");
  m.rejected("queue_full");
  const std::string t = m.prometheus(0.25);
  EXPECT_NE(t.find("# TYPE inkstream:num_requests_running gauge\ninkstream:num_requests_running 2\n"), std::string::npos);
  EXPECT_NE(t.find("inkstream:kv_cache_usage_perc 0.25\n"), std::string::npos);
  EXPECT_NE(t.find("inkstream:generation_tokens_total 7\n"), std::string::npos);
  EXPECT_NE(t.find("inkstream:time_to_first_token_seconds_bucket{le=\"0.05\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("inkstream:time_to_first_token_seconds_bucket{le=\"+Inf\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("inkstream:time_to_first_token_seconds_count 2\n"), std::string::npos);
  EXPECT_NE(t.find("inkstream:request_success_total{finished_reason=\"stop\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("inkstream:admission_rejections_total{reason=\"queue_full\"} 1\n"), std::string::npos);
}

}  // namespace
}  // namespace inkstream
