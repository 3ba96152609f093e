// The remote client's pure parts: SSE framing, the wire format of each
// engine, URLs and proxies, and the `remotes` settings.
#include <gtest/gtest.h>

#include <map>

#include "inkstream/completion/settings.h"
#include "sse.h"
#include "url.h"
#include "wire.h"

namespace inkstream::remote {
namespace {

using Json = nlohmann::json;

std::vector<std::string> events_of(const std::vector<std::string>& pieces, bool finish = true) {
  SseParser p;
  std::vector<std::string> out;
  auto on = [&](std::string_view d) {
    out.emplace_back(d);
    return true;
  };
  for (const auto& s : pieces) EXPECT_TRUE(p.feed(s, on));
  if (finish) p.finish(on);
  return out;
}

TEST(Sse, CommentsCrlfEventLinesAndMissingSpace) {
  const std::string stream =
      ": ping\r\n\r\nevent: completion\r\ndata:{\"a\":1}\r\n\r\ndata: {\"b\":2}\n\nid: 7\nretry: 10\ndata: x\ndata: y\n\n:keep-alive\n\ndata: [DONE]\n\n";
  const std::vector<std::string> want = {"{\"a\":1}", "{\"b\":2}", "x\ny", "[DONE]"};
  EXPECT_EQ(events_of({stream}), want);
  // Split at every byte (a "\r\n" across two reads included): the same events.
  std::vector<std::string> bytes;
  for (char c : stream) bytes.emplace_back(1, c);
  EXPECT_EQ(events_of(bytes), want);
  // Lone "\r" line ends.
  EXPECT_EQ(events_of({"data: a\r\rdata: b\r\r"}), (std::vector<std::string>{"a", "b"}));
}

TEST(Sse, AnEventWithoutItsBlankLineIsDeliveredAtTheEnd) {
  EXPECT_EQ(events_of({"data: [DONE]\n"}, true), std::vector<std::string>{"[DONE]"});
  EXPECT_TRUE(events_of({"data: [DONE]\n"}, false).empty());
}

TEST(Sse, AnEndlessLineIsRefused) {
  SseParser p;
  const std::string big(SseParser::kMaxLine + 10, 'x');
  EXPECT_FALSE(p.feed(big, [](std::string_view) { return true; }));
  EXPECT_TRUE(p.overflowed());
}

TEST(Wire, ChunksOfEveryEngine) {
  // vLLM-style with unknown fields, an empty delta, usage with cached tokens.
  WireEvent e = parse_event(R"({"id":"c","object":"text_completion","choices":[{"index":1,"text":" hi","logprobs":null,"finish_reason":null,"stop_reason":null}]})");
  ASSERT_EQ(e.choices.size(), 1u);
  EXPECT_EQ(e.choices[0].index, 1);
  EXPECT_EQ(e.choices[0].text, " hi");
  EXPECT_EQ(e.choices[0].finish_reason, "");
  e = parse_event(R"({"choices":[{"index":0,"text":"","finish_reason":"length"}],"timings":{"x":1}})");
  EXPECT_EQ(e.choices[0].finish_reason, "length");
  e = parse_event(R"({"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":8}}})");
  ASSERT_TRUE(e.usage);
  EXPECT_EQ(e.usage->prompt_tokens, 12);
  EXPECT_EQ(e.usage->cached_tokens, 8);
  EXPECT_TRUE(parse_event("[DONE]").done);
  // An error event: OpenAI/vLLM shape (int code) and flat.
  EXPECT_EQ(*parse_event(R"({"error":{"message":"boom","type":"internal","code":500}})").error, "boom");
  EXPECT_EQ(*parse_event(R"({"error":"flat boom","error_type":"generation"})").error, "flat boom");
  // Invalid UTF-8 (a character split between tokens) is repaired, not fatal.
  e = parse_event("{\"choices\":[{\"index\":0,\"text\":\"a\xE2\x82\"}]}");
  EXPECT_EQ(e.choices[0].text, "a\xEF\xBF\xBD");
  EXPECT_THROW(parse_event("{not json"), std::invalid_argument);
  EXPECT_THROW(parse_event(R"({"choices":[{"index":-1,"text":"x"}]})"), std::invalid_argument);
  EXPECT_THROW(parse_event(R"({"choices":[{"index":0,"text":5}]})"), std::invalid_argument);
  EXPECT_THROW(parse_event(R"({"choices":[],"usage":{"prompt_tokens":4294967297}})"), std::invalid_argument);
}

TEST(Wire, ErrorBodies) {
  EXPECT_EQ(parse_error_body(R"({"error":{"message":"The model `x` does not exist.","type":"NotFoundError","param":null,"code":404}})", 404).message,
            "The model `x` does not exist.");
  const WireError tgi = parse_error_body(R"({"error":"Model is overloaded","error_type":"overloaded"})", 429);
  EXPECT_EQ(tgi.message, "Model is overloaded");
  EXPECT_EQ(tgi.type, "overloaded");
  EXPECT_EQ(parse_error_body("<html><body>502 Bad Gateway</body></html>", 502).message, "HTTP 502");
  EXPECT_EQ(parse_error_body("upstream timed out\nmore", 504).message, "upstream timed out");
  EXPECT_EQ(parse_error_body("", 500).message, "HTTP 500");
  EXPECT_EQ(parse_error_body(R"({"detail":"Not Found"})", 404).message, "Not Found");
}

TEST(Wire, RequestBodyFollowsTheDialect) {
  WireRequest r;
  r.model = "m";
  r.prompt = std::string("Once");
  r.n = 2;
  r.max_tokens = 8;
  r.sampling.top_k = 40;
  r.sampling.min_p = 0.05;
  r.sampling.repeat_penalty = 1.1;
  r.sampling.top_p = 0.9;
  r.seed = 7;
  r.stop = {"a", "b", "c", "d", "e"};
  Json v = completion_body(r, dialect_traits(Dialect::Vllm));
  EXPECT_EQ(v["top_k"], 40);
  EXPECT_EQ(v["repetition_penalty"], 1.1);
  EXPECT_EQ(v["stop"].size(), 5u);
  EXPECT_EQ(v["stream_options"]["include_usage"], true);
  EXPECT_TRUE(v["stream"]);
  v = completion_body(r, dialect_traits(Dialect::LlamaCpp));
  EXPECT_EQ(v["repeat_penalty"], 1.1);
  EXPECT_FALSE(v.contains("repetition_penalty"));
  v = completion_body(r, dialect_traits(Dialect::OpenAI));
  EXPECT_FALSE(v.contains("top_k"));
  EXPECT_EQ(v["stop"].size(), 4u);  // OpenAI's limit
  v = completion_body(r, dialect_traits(Dialect::Tgi));
  EXPECT_FALSE(v.contains("stream_options"));
  EXPECT_FALSE(v.contains("echo") || v.contains("best_of") || v.contains("suffix"));
  r.prompt = std::vector<TokenId>{1, 2, 3};
  EXPECT_EQ(completion_body(r, dialect_traits(Dialect::Inkstream))["prompt"], Json::array({1, 2, 3}));
  // A seed past int64 (the language server takes any uint64): our serve gets
  // it whole, engines whose field is int64 (OpenAI, vLLM) get it modulo 2^63.
  r.seed = 18446744073709551615ULL;
  EXPECT_EQ(completion_body(r, dialect_traits(Dialect::Inkstream))["seed"].get<std::uint64_t>(), 18446744073709551615ULL);
  EXPECT_EQ(completion_body(r, dialect_traits(Dialect::Vllm))["seed"].get<std::uint64_t>(), 9223372036854775807ULL);
  EXPECT_EQ(completion_body(r, dialect_traits(Dialect::OpenAI))["seed"].get<std::int64_t>(), INT64_MAX);
}

TEST(Url, ParsesEndpointsAndRoutes) {
  auto u = Url::parse("https://gpu.example.com/inference/v1/");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->origin(), "https://gpu.example.com:443");
  EXPECT_EQ(api_path(*u, "/v1/completions"), "/inference/v1/completions");
  EXPECT_EQ(api_path(*u, "/health"), "/inference/health");
  u = Url::parse("http://127.0.0.1:8080");
  EXPECT_EQ(api_path(*u, "/v1/completions"), "/v1/completions");
  u = Url::parse("http://[::1]:9000/x");
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->origin(), "http://[::1]:9000");
  for (const char* bad : {"ftp://h", "http://", "http://h:0", "http://h:99999", "http://h:8x", "h:80", "http://h/a b"})
    EXPECT_FALSE(Url::parse(bad)) << bad;
}

TEST(Proxy, EnvironmentAsCurlReadsIt) {
  std::map<std::string, std::string> env;
  const EnvReader read = [&](const char* k) { return env.count(k) ? env[k] : std::string(); };
  const Url target = *Url::parse("https://gpu.corp.example:8443");
  EXPECT_FALSE(proxy_for(target, read));
  env["HTTPS_PROXY"] = "http://user:pw@proxy.corp:3128";
  auto p = proxy_for(target, read);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->host, "proxy.corp");
  EXPECT_EQ(p->port, 3128);
  EXPECT_EQ(p->user, "user");
  env["https_proxy"] = "proxy2:8080";  // lower case wins; no scheme means http
  EXPECT_EQ(proxy_for(target, read)->host, "proxy2");
  EXPECT_FALSE(proxy_for(*Url::parse("http://gpu.corp.example"), read));  // HTTP_PROXY unset
  for (const char* no : {"corp.example", ".corp.example", "gpu.corp.example:8443", "*", "other, corp.example"}) {
    env["NO_PROXY"] = no;
    EXPECT_FALSE(proxy_for(target, read)) << no;
  }
  for (const char* no : {"orp.example", "gpu.corp.example:9", "x.gpu.corp.example"}) {
    env["NO_PROXY"] = no;
    EXPECT_TRUE(proxy_for(target, read)) << no;
  }
  env.erase("NO_PROXY");
  EXPECT_FALSE(proxy_for(*Url::parse("https://127.0.0.1:1"), read));  // loopback: never proxied
  EXPECT_FALSE(proxy_for(*Url::parse("https://localhost:1"), read));
  env["https_proxy"] = "socks5://p:1080";
  try {
    proxy_for(target, read);
    FAIL() << "a socks proxy is not supported";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).find("p:1080"), std::string::npos) << "the value (it may hold a password) is not echoed";
  }
}

TEST(RemoteSettings, ParsedValidatedAndShownWithoutSecrets) {
  CompletionSettings s;
  std::vector<std::string> errors;
  s.apply(Json::parse(R"({"remotes":{
      "cluster":{"endpoints":[{"url":"https://a.example/v1","model":"gpt2","dialect":"vllm","api_key_env":"KEY","headers":{"X-Team":"secret-team"}},
                              "http://b.example:8000"],
                 "retries":2,"first_byte_timeout_ms":3000,"fallback":"default"},
      "one":"http://127.0.0.1:8080"},
    "routing":{"markdown":"remote:cluster"}})"),
          errors);
  EXPECT_TRUE(errors.empty()) << errors.front();
  ASSERT_EQ(s.remotes.size(), 2u);
  const RemoteConfig& c = s.remotes.at("cluster");
  ASSERT_EQ(c.endpoints.size(), 2u);
  EXPECT_EQ(c.endpoints[0].dialect, Dialect::Vllm);
  EXPECT_EQ(c.retries, 2);
  EXPECT_EQ(c.endpoints[1].dialect, Dialect::OpenAI);
  EXPECT_EQ(s.model_for("markdown", "file:///a.md"), "remote:cluster");
  EXPECT_TRUE(s.remote_for("remote:cluster"));
  EXPECT_FALSE(s.remote_for("remote:nope"));
  EXPECT_EQ(s.remote_for("http://10.0.0.1:8000")->endpoints[0].url, "http://10.0.0.1:8000");
  const std::string shown = s.to_json().dump();
  EXPECT_EQ(shown.find("secret-team"), std::string::npos) << "header values stay out of status";
  EXPECT_NE(shown.find("X-Team"), std::string::npos);
  // A round trip through the form ModelSpec carries keeps header values.
  std::string error;
  const auto again = RemoteConfig::parse(c.to_json(true), error);
  ASSERT_TRUE(again) << error;
  EXPECT_EQ(again->endpoints[0].headers.at("X-Team"), "secret-team");
  EXPECT_EQ(again->to_json(true), c.to_json(true));

  // Invalid: each reported, the previous remotes kept.
  const std::map<std::string, std::string> bad = {
      {R"({"remotes":{"x":"ftp://h"}})", "remotes.x: url: must start with http:// or https://"},
      {R"({"remotes":{"x":{"url":"http://h","retries":4294967297}}})", "remotes.x: retries: must be an integer from 0 to 5"},
      {R"({"remotes":{"x":{"url":"http://h","api_key":"sk-123"}}})", "remotes.x: api_key: put the key in an environment variable"},
      {R"({"remotes":{"x":{"url":"http://h","dialect":"gpt"}}})", "remotes.x: dialect: must be one of"},
      {R"({"remotes":{"x":{"endpoints":[]}}})", "remotes.x: endpoints: must be a list of 1 to 16"},
      {R"({"remotes":{"x":{"url":"http://h","headers":{"A":"b\r\nEvil: 1"}}}})", "remotes.x: headers.A: not a valid header"},
      {R"({"remotes":{"x":{"url":"http://h","colour":1}}})", "remotes.x: colour: unknown key"},
      {R"({"remotes":[1]})", "remotes: must be an object"},
  };
  for (const auto& [patch, message] : bad) {
    errors.clear();
    s.apply(Json::parse(patch), errors);
    ASSERT_EQ(errors.size(), 1u) << patch;
    EXPECT_EQ(errors[0].rfind(message, 0), 0u) << errors[0];
    EXPECT_EQ(errors[0].find("sk-123"), std::string::npos);
    EXPECT_EQ(s.remotes.size(), 2u);
  }
}

}  // namespace
}  // namespace inkstream::remote
