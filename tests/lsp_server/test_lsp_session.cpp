// `inkstream lsp` as a real child process over real pipes.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "lsp_client.h"

namespace inkstream {
namespace {

using test::Json;
using test::LspProcess;
using namespace std::chrono_literals;

std::string fixture(const char* name) { return std::string(INKSTREAM_FIXTURE_DIR) + "/" + name; }

std::unique_ptr<LspProcess> start(const std::string& model = fixture("tiny")) {
  return std::make_unique<LspProcess>(std::vector<std::string>{INKSTREAM_BINARY, "lsp", "--model", model, "--log-level", "debug"});
}

const std::string kUri = "file:///story.md";

void open(LspProcess& s, const std::string& text, const std::string& uri = kUri) {
  s.notify("textDocument/didOpen", {{"textDocument", {{"uri", uri}, {"languageId", "markdown"}, {"version", 1}, {"text", text}}}});
}

Json completion_params(std::int64_t line, std::int64_t character, const std::string& uri = kUri) {
  return {{"textDocument", {{"uri", uri}}}, {"position", {{"line", line}, {"character", character}}}, {"context", {{"triggerKind", 2}}}};
}

TEST(LspSession, FullLifecycle) {
  auto s = start();
  const Json init = s->initialize({{"n", 2}, {"max_tokens", 8}});
  const Json& caps = init["result"]["capabilities"];
  EXPECT_EQ(caps["positionEncoding"], "utf-16");
  EXPECT_EQ(caps["inlineCompletionProvider"], true);
  EXPECT_EQ(caps["textDocumentSync"]["change"], 2);
  EXPECT_EQ(init["result"]["serverInfo"]["name"], "inkstream");
  open(*s, "The old lighthouse keeper climbed the stairs and ");
  for (int i = 0; i < 2; ++i) {
    const Json r = s->request("textDocument/inlineCompletion", completion_params(0, 49));
    ASSERT_TRUE(r.contains("result")) << r.dump();
    const Json& items = r["result"]["items"];
    ASSERT_GE(items.size(), 1u);
    for (const auto& item : items) {
      EXPECT_TRUE(item["insertText"].is_string());
      EXPECT_EQ(item["range"]["start"], (Json{{"line", 0}, {"character", 49}}));
      EXPECT_EQ(item["command"]["command"], "inkstream.accept");
    }
  }
  // Accepting runs the item's command.
  const Json accepted = s->request("workspace/executeCommand", {{"command", "inkstream.accept"}, {"arguments", {{{"requestId", 1}, {"index", 0}}}}});
  EXPECT_TRUE(accepted.contains("result"));
  const Json status = s->request("workspace/executeCommand", {{"command", "inkstream.status"}});
  EXPECT_EQ(status["result"]["accepted"], 1);
  EXPECT_EQ(s->request("shutdown", nullptr)["result"], nullptr);
  s->notify("exit", nullptr);
  EXPECT_EQ(s->wait_exit(), 0);
  // stdout carried protocol only; the logs went to stderr.
  EXPECT_NE(s->stderr_text().find("language server starting"), std::string::npos);
}

TEST(LspSession, WrongTypesInInitializeAreTolerated) {
  auto s = start();
  const Json r = s->request("initialize", {{"capabilities", {{"window", {{"workDoneProgress", 1}}}, {"general", {{"positionEncodings", "utf-8"}}}}},
                                           {"initializationOptions", {{"streaming", "yes"}, {"n", "many"}}}});
  ASSERT_TRUE(r.contains("result")) << r.dump();
  EXPECT_EQ(r["result"]["capabilities"]["positionEncoding"], "utf-16");
  // The server is alive and usable.
  s->notify("initialized", Json::object());
  const Json st = s->request("workspace/executeCommand", {{"command", "inkstream.status"}});
  EXPECT_EQ(st["result"]["streaming"], false);
  EXPECT_EQ(st["result"]["settings"]["n"], 3);
}

TEST(LspSession, ExitWithoutShutdownIsCodeOne) {
  auto s = start();
  s->initialize();
  s->notify("exit", nullptr);
  EXPECT_EQ(s->wait_exit(), 1);
  auto eof = start();
  eof->initialize();
  eof->close_stdin();
  EXPECT_EQ(eof->wait_exit(), 1);
}

TEST(LspSession, StreamsGrowingAlternativesBeforeTheResponse) {
  auto s = start(fixture("deep-scaled"));
  s->initialize({{"streaming", true}, {"n", 3}, {"max_tokens", 20}, {"stop_at", "none"}, {"stream_interval_ms", 0}});
  open(*s, "Once upon a time, in a land far away, ");
  std::vector<Json> notes;
  const int id = s->request_async("textDocument/inlineCompletion", completion_params(0, 38));
  const Json r = s->wait_response(id, 60s, &notes);
  ASSERT_TRUE(r.contains("result")) << r.dump();
  std::vector<std::string> finals;
  for (const auto& item : r["result"]["items"]) finals.push_back(item["insertText"]);
  int partials = 0;
  std::map<int, std::string> last;
  for (const auto& n : notes) {
    if (n.value("method", "") != "inkstream/partialCompletion") continue;
    ++partials;
    EXPECT_EQ(n["params"]["requestId"], id);
    EXPECT_EQ(n["params"]["textDocument"]["uri"], kUri);
    for (const auto& item : n["params"]["items"]) {
      const int index = item["index"];
      const std::string text = item["text"];
      // Replace semantics: each update extends the previous one.
      EXPECT_EQ(text.compare(0, last[index].size(), last[index]), 0) << "update shrank";
      last[index] = text;
      // Every streamed text is a prefix of a final item (or was dropped as empty/duplicate).
      if (!text.empty()) {
        EXPECT_TRUE(std::any_of(finals.begin(), finals.end(), [&](const std::string& f) { return f.starts_with(text); }))
            << "'" << text << "' is not a prefix of any final item";
      }
    }
  }
  EXPECT_GE(partials, 3) << "expected several streamed updates";
}

// A client whose LSP library hides JSON-RPC ids (vscode-languageclient) names
// its request with workDoneToken; every notification about it carries the name.
TEST(LspSession, StreamedNotificationsEchoTheClientsToken) {
  auto s = start(fixture("tiny"));
  s->initialize({{"streaming", true}, {"n", 2}, {"max_tokens", 8}, {"stop_at", "none"}, {"stream_interval_ms", 0}});
  open(*s, "Once upon a time ");
  for (const Json& token : {Json("vscode-7"), Json(12345)}) {
    Json params = completion_params(0, 17);
    params["workDoneToken"] = token;
    params["context"]["triggerKind"] = 1;
    std::vector<Json> notes;
    s->notify("textDocument/didChange", {{"textDocument", {{"uri", kUri}, {"version", token.is_string() ? 2 : 3}}},
                                         {"contentChanges", {{{"text", token.is_string() ? "Once upon a time " : "Once upon a time, "}}}}});
    if (token.is_number()) params["position"]["character"] = 18;
    const int id = s->request_async("textDocument/inlineCompletion", params);
    const Json r = s->wait_response(id, 60s, &notes);
    ASSERT_TRUE(r.contains("result")) << r.dump();
    int partials = 0, statuses = 0;
    for (const auto& n : notes) {
      if (n.value("method", "") != "inkstream/partialCompletion") continue;
      ++partials;
      EXPECT_EQ(n["params"]["token"], token);
    }
    for (int i = 0; i < 20 && statuses == 0; ++i) {  // the status follows the response
      const auto m = s->next(2s);
      if (!m) break;
      if (m->value("method", "") == "inkstream/status" && (*m)["params"].value("requestId", Json()) == id) {
        ++statuses;
        EXPECT_EQ((*m)["params"]["token"], token);
      }
    }
    EXPECT_GE(partials, 1);
    EXPECT_EQ(statuses, 1);
  }
  Json bad = completion_params(0, 17);
  bad["workDoneToken"] = Json::array({1});
  const Json r = s->request("textDocument/inlineCompletion", bad, 10s);
  ASSERT_TRUE(r.contains("error")) << r.dump();
  EXPECT_EQ(r["error"]["code"], -32602);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("workDoneToken"), std::string::npos);
}

TEST(LspSession, CancelRequestAnswersRequestCancelledWithinAStep) {
  auto s = start(fixture("deep-scaled"));
  s->initialize({{"n", 4}, {"max_tokens", 60}, {"stop_at", "none"}});
  open(*s, "A long night. ");
  // Let the model load first.
  s->request("textDocument/inlineCompletion", completion_params(0, 14), 60s);
  // (the next request differs, so it cannot come from the cache)
  s->notify("textDocument/didChange", {{"textDocument", {{"uri", kUri}, {"version", 2}}},
                                       {"contentChanges", {{{"text", "Another long night. "}}}}});
  const int id = s->request_async("textDocument/inlineCompletion", completion_params(0, 20));
  std::this_thread::sleep_for(20ms);
  const auto t0 = std::chrono::steady_clock::now();
  s->notify("$/cancelRequest", {{"id", id}});
  const Json r = s->wait_response(id, 10s);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(r.contains("error")) << r.dump();
  EXPECT_EQ(r["error"]["code"], -32800);
  EXPECT_LT(ms, 1000.0);
  std::printf("cancellation answered in %.1f ms\n", ms);
}

// Waits until request `id` streams its first update: it is then running.
void wait_until_streaming(LspProcess& s, int id) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto m = s.next(1s);
    if (m && m->value("method", "") == "inkstream/partialCompletion" && (*m)["params"]["requestId"] == id) return;
    ASSERT_FALSE(m && m->contains("id") && (*m)["id"] == id) << "answered before it streamed: " << m->dump();
  }
  FAIL() << "request " << id << " never streamed";
}

TEST(LspSession, TypingCancelsOlderCompletionsNewestWins) {
  auto s = start(fixture("deep-scaled"));
  s->initialize({{"streaming", true}, {"n", 4}, {"max_tokens", 60}, {"stop_at", "none"}});
  open(*s, "Warm up. ", "file:///warm.md");
  s->request("textDocument/inlineCompletion", completion_params(0, 9, "file:///warm.md"), 60s);  // loads the model
  open(*s, "Rain. ");
  const int first = s->request_async("textDocument/inlineCompletion", completion_params(0, 6));
  s->notify("textDocument/didChange", {{"textDocument", {{"uri", kUri}, {"version", 2}}},
                                       {"contentChanges", {{{"range", {{"start", {{"line", 0}, {"character", 6}}}, {"end", {{"line", 0}, {"character", 6}}}}}, {"text", "W"}}}}});
  const int second = s->request_async("textDocument/inlineCompletion", completion_params(0, 7));
  const Json r1 = s->wait_response(first, 10s);
  ASSERT_TRUE(r1.contains("error")) << r1.dump();
  EXPECT_EQ(r1["error"]["code"], -32801);
  const Json r2 = s->wait_response(second, 60s);
  EXPECT_TRUE(r2.contains("result")) << r2.dump();
  // A newer request while one is generating supersedes it.
  s->notify("textDocument/didChange", {{"textDocument", {{"uri", kUri}, {"version", 3}}},
                                       {"contentChanges", {{{"range", {{"start", {{"line", 0}, {"character", 7}}}, {"end", {{"line", 0}, {"character", 7}}}}}, {"text", "e"}}}}});
  const int third = s->request_async("textDocument/inlineCompletion", completion_params(0, 8));
  wait_until_streaming(*s, third);
  const int fourth = s->request_async("textDocument/inlineCompletion", completion_params(0, 8));
  const Json r3 = s->wait_response(third, 60s);
  const Json r4 = s->wait_response(fourth, 60s);
  ASSERT_TRUE(r3.contains("error")) << r3.dump();
  EXPECT_EQ(r3["error"]["code"], -32802);
  EXPECT_TRUE(r4.contains("result")) << r4.dump();
}

TEST(LspSession, ShutdownDuringAGenerationAnswersEverythingAndExitsZero) {
  auto s = start(fixture("deep-scaled"));
  s->initialize({{"streaming", true}, {"n", 4}, {"max_tokens", 80}, {"stop_at", "none"}});
  open(*s, "Warm. ", "file:///warm.md");
  s->request("textDocument/inlineCompletion", completion_params(0, 6, "file:///warm.md"), 60s);
  open(*s, "Storm clouds gathered. ");
  const int running = s->request_async("textDocument/inlineCompletion", completion_params(0, 23));
  wait_until_streaming(*s, running);
  const int shutdown = s->request_async("shutdown", nullptr);
  const Json r = s->wait_response(running, 10s);
  const Json sd = s->wait_response(shutdown, 10s);
  EXPECT_TRUE(sd.contains("result")) << sd.dump();
  // It was generating: the shutdown cancelled it.
  ASSERT_TRUE(r.contains("error")) << r.dump();
  EXPECT_EQ(r["error"]["code"], -32802) << r.dump();
  s->notify("exit", nullptr);
  EXPECT_EQ(s->wait_exit(), 0);
}

// LSP 3.17 line ends: "\n", "\r\n" and a lone "\r", in edits and ranges.
TEST(LspSession, ALoneCarriageReturnIsALineEnd) {
  auto s = start();
  s->initialize({{"n", 1}, {"max_tokens", 4}, {"stop_at", "none"}, {"temperature", 0}});
  open(*s, "one\rtwo\r\nthree\nfour");
  auto insert = [&](int version, int line, int ch, const char* text) {
    const Json at = {{"line", line}, {"character", ch}};
    s->notify("textDocument/didChange", {{"textDocument", {{"uri", kUri}, {"version", version}}},
                                         {"contentChanges", {{{"range", {{"start", at}, {"end", at}}}, {"text", text}}}}});
  };
  insert(2, 1, 3, "!");  // end of "two" (before its "\r\n")
  insert(3, 0, 99, "?");  // past the end of "one": before its lone "\r"
  insert(4, 3, 0, "[");  // start of "four"
  const Json doc = s->request("workspace/executeCommand", {{"command", "inkstream.documentText"}, {"arguments", {kUri}}});
  EXPECT_EQ(doc["result"]["text"], "one?\rtwo!\r\nthree\n[four");
  const Json r = s->request("textDocument/inlineCompletion", completion_params(1, 4), 60s);
  ASSERT_TRUE(r.contains("result")) << r.dump();
  ASSERT_FALSE(r["result"]["items"].empty()) << r.dump();
  for (const auto& item : r["result"]["items"]) EXPECT_EQ(item["range"]["start"], (Json{{"line", 1}, {"character", 4}}));
}

// In a document longer than its context window, a suggestion near the
// window's next jump is followed by a read-ahead of the window it will jump
// to: the keystroke that moves the window then reuses that window's tokens
// and reads only the words typed since (without it, a jump read the whole
// new window again).
TEST(LspSession, TheNextWindowIsReadAheadSoTheRequestThatMovesItReusesIt) {
  auto s = start();
  s->initialize({{"n", 1}, {"max_tokens", 2}, {"stop_at", "none"}, {"temperature", 0}, {"context_chars", 400}});
  std::string text;
  for (int i = 0; i < 12; ++i) text += "The keeper wrote line " + std::to_string(i) + " of the log." + (i % 4 == 3 ? "\n\n" : " ");
  open(*s, text);
  int jumps = 0, last_prompt = 0;
  for (int version = 2; version < 40; ++version) {
    // The end of the document (ASCII: UTF-16 units are bytes).
    const std::size_t line_start = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
    const Json end = {{"line", std::count(text.begin(), text.end(), '\n')}, {"character", text.size() - line_start}};
    const std::string typed = version % 5 == 0 ? "It rained.\n\n" : "Then the sea rose. ";
    s->notify("textDocument/didChange", {{"textDocument", {{"uri", kUri}, {"version", version}}},
                                         {"contentChanges", {{{"range", {{"start", end}, {"end", end}}}, {"text", typed}}}}});
    text += typed;
    const std::size_t at = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
    const Json cursor = {{"line", std::count(text.begin(), text.end(), '\n')}, {"character", text.size() - at}};
    const Json r = s->request("textDocument/inlineCompletion",
                              {{"textDocument", {{"uri", kUri}}}, {"position", cursor}, {"context", {{"triggerKind", 2}}}}, 60s);
    ASSERT_TRUE(r.contains("result")) << r.dump();
    std::optional<Json> status;
    while (!status) {
      const auto m = s->next(10s);
      ASSERT_TRUE(m) << "no inkstream/status after the answer";
      if ((*m).value("method", "") == "inkstream/status" && (*m)["params"].value("requestId", Json()) == r["id"]) status = (*m)["params"];
    }
    const int prompt = (*status)["promptTokens"], cached = (*status)["cachedTokens"];
    if (prompt < last_prompt - 8) {  // the window moved on
      ++jumps;
      // At most the last half step's words read again.
      EXPECT_GE(cached, prompt - 20) << "at version " << version << ": " << status->dump();
    }
    last_prompt = prompt;
    std::this_thread::sleep_for(350ms);  // the writer types on (after the server's pause of 150 ms, the read-ahead runs meanwhile)
  }
  EXPECT_GE(jumps, 3);
}

// Choosing the context of a huge document neither delays the answer to a
// cancellation nor other documents: they stream while it generates.
TEST(LspSession, AHugeContextDelaysNeitherCancellationNorOtherDocuments) {
  auto s = start(fixture("deep-scaled"));
  s->initialize({{"streaming", true}, {"n", 4}, {"max_tokens", 80}, {"stop_at", "none"}, {"context_chars", 100000}});
  std::string huge;
  const char* sentences[] = {"Yes. ", "No! ", "Go on. ", "He ran. ", "Why? ", "It rained. "};
  for (int i = 0; huge.size() < 300000; ++i) huge += sentences[i % 6];
  open(*s, huge, "file:///huge.md");
  open(*s, "A small note. ", "file:///small.md");
  s->request("textDocument/inlineCompletion", completion_params(0, 14, "file:///small.md"), 60s);  // loads the model
  const auto position = static_cast<int>(huge.size());
  // Cancelled at once: answered within 100 ms.
  const int cancelled = s->request_async("textDocument/inlineCompletion", completion_params(0, position, "file:///huge.md"));
  const auto t0 = std::chrono::steady_clock::now();
  s->notify("$/cancelRequest", {{"id", cancelled}});
  const Json rc = s->wait_response(cancelled, 10s);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(rc.contains("error")) << rc.dump();
  EXPECT_EQ(rc["error"]["code"], -32800);
  EXPECT_LT(ms, 100.0);
  // The small document's suggestion streams while the huge one is generating.
  const int big = s->request_async("textDocument/inlineCompletion", completion_params(0, position + 1, "file:///huge.md"));
  wait_until_streaming(*s, big);
  s->notify("textDocument/didChange", {{"textDocument", {{"uri", "file:///small.md"}, {"version", 2}}},
                                       {"contentChanges", {{{"text", "Another small note. "}}}}});
  const int small = s->request_async("textDocument/inlineCompletion", completion_params(0, 20, "file:///small.md"));
  bool small_streamed_first = false, big_answered = false;
  for (auto m = s->next(30s); m; m = s->next(30s)) {
    if (m->value("method", "") == "inkstream/partialCompletion" && (*m)["params"]["requestId"] == small && !big_answered)
      small_streamed_first = true;
    if (m->contains("id") && (*m)["id"] == big) big_answered = true;
    if (m->contains("id") && (*m)["id"] == small) {
      EXPECT_TRUE(m->contains("result")) << m->dump();
      break;
    }
  }
  EXPECT_TRUE(small_streamed_first) << "the small document waited for the huge one";
}

TEST(LspSession, TypingThroughASuggestionAnswersInstantly) {
  auto s = start();
  s->initialize({{"n", 1}, {"max_tokens", 10}, {"stop_at", "none"}, {"temperature", 0}});
  open(*s, "Hello ");
  const Json r = s->request("textDocument/inlineCompletion", completion_params(0, 6), 60s);
  ASSERT_FALSE(r["result"]["items"].empty());
  const std::string suggestion = r["result"]["items"][0]["insertText"];
  ASSERT_GE(suggestion.size(), 3u);
  const std::string typed = suggestion.substr(0, 2);
  s->notify("textDocument/didChange", {{"textDocument", {{"uri", kUri}, {"version", 2}}},
                                       {"contentChanges", {{{"range", {{"start", {{"line", 0}, {"character", 6}}}, {"end", {{"line", 0}, {"character", 6}}}}}, {"text", typed}}}}});
  const Json again = s->request("textDocument/inlineCompletion", completion_params(0, 6 + static_cast<int>(typed.size())), 5s);
  ASSERT_FALSE(again["result"]["items"].empty()) << again.dump();
  EXPECT_EQ(again["result"]["items"][0]["insertText"], suggestion.substr(2));
  EXPECT_EQ(again["result"]["items"][0]["command"]["arguments"][0]["source"], "typing");
}

TEST(LspSession, IdenticalRequestIsAnsweredFromTheCache) {
  auto s = start();
  s->initialize({{"n", 2}, {"max_tokens", 10}});
  open(*s, "The sea was calm. ");
  open(*s, "The sea was calm. ", "file:///other.md");
  const Json a = s->request("textDocument/inlineCompletion", completion_params(0, 18), 60s);
  const Json b = s->request("textDocument/inlineCompletion", completion_params(0, 18, "file:///other.md"), 5s);
  EXPECT_EQ(b["result"]["items"][0]["command"]["arguments"][0]["source"], "cache");
  EXPECT_EQ(a["result"]["items"][0]["insertText"], b["result"]["items"][0]["insertText"]);
}

TEST(LspSession, InvalidSettingsAreReportedAndPreviousValuesKept) {
  auto s = start();
  s->initialize();
  s->notify("workspace/didChangeConfiguration", {{"settings", {{"inkstream", {{"n", 99}, {"top_p", 0.5}, {"colour", "red"}}}}}});
  std::vector<Json> notes;
  const Json st = s->request("workspace/executeCommand", {{"command", "inkstream.status"}}, 10s, &notes);
  EXPECT_EQ(st["result"]["settings"]["n"], 3);
  EXPECT_EQ(st["result"]["settings"]["top_p"], 0.5);
  bool reported = false;
  for (const auto& n : notes)
    if (n.value("method", "") == "window/showMessage") {
      const std::string m = n["params"]["message"];
      reported = m.find("n:") != std::string::npos && m.find("colour") != std::string::npos;
    }
  EXPECT_TRUE(reported);
}

// Changing device/dtype/cache settings loads another copy of the model; at
// most max_loaded_models stay loaded, and threads changes load nothing.
TEST(LspSession, LoadedModelsAreAnLruOfMaxLoadedModels) {
  auto s = start();
  s->initialize({{"n", 1}, {"max_tokens", 2}, {"max_loaded_models", 2}});
  open(*s, "Churn. ");
  const std::vector<Json> changes = {{{"dtype", "bf16"}}, {{"dtype", "fp32"}}, {{"kv_cache_mb", 64}}, {{"threads", 1}},
                                     {{"kv_cache_mb", 32}}, {{"dtype", "bf16"}}, {{"threads", 2}}, {{"prefix_cache", false}}};
  std::size_t most = 0;
  for (std::size_t i = 0; i < changes.size(); ++i) {
    s->notify("workspace/didChangeConfiguration", {{"settings", changes[i]}});
    s->notify("textDocument/didChange", {{"textDocument", {{"uri", kUri}, {"version", static_cast<int>(i) + 2}}},
                                         {"contentChanges", {{{"text", "Churn " + std::to_string(i) + ". "}}}}});
    const Json r = s->request("textDocument/inlineCompletion", completion_params(0, 9), 60s);
    ASSERT_TRUE(r.contains("result")) << r.dump();
    const Json st = s->request("workspace/executeCommand", {{"command", "inkstream.status"}});
    most = std::max(most, st["result"]["models"].size());
    EXPECT_LE(st["result"]["models"].size(), 2u) << "after " << changes[i].dump();
  }
  EXPECT_EQ(most, 2u);
  // One load per distinct model setting: the start-up default and 6 changes;
  // the two threads changes loaded nothing.
  const std::string log = s->stderr_text();
  std::size_t loads = 0;
  for (std::size_t at = log.find("service: model "); at != std::string::npos; at = log.find("service: model ", at + 1))
    loads += log.compare(log.find(' ', at + 15), 8, " loaded\n") == 0;
  EXPECT_EQ(loads, 7u) << log;
  const Json st = s->request("workspace/executeCommand", {{"command", "inkstream.status"}});
  EXPECT_EQ(st["result"]["settings"]["threads"], 2);
}

// A model still serving a request when a newer one loads stays until that
// request ends, then goes within a few seconds with no further message
// from the editor (a writer who stopped typing).
TEST(LspSession, AModelBusyWhenANewerOneLoadedGoesOnceIdleWithoutAnotherMessage) {
  auto s = start();
  s->initialize({{"streaming", true}, {"n", 16}, {"max_tokens", 512}, {"stop_at", "none"}, {"max_loaded_models", 1}, {"stream_interval_ms", 0}});
  open(*s, "The long request. ");
  const int long_request = s->request_async("textDocument/inlineCompletion", completion_params(0, 18));
  // Once it is streaming, another copy of the model (another dtype) for a
  // short request on another document.
  for (auto m = s->next(30s); m && m->value("method", "") != "inkstream/partialCompletion"; m = s->next(30s)) {
  }
  s->notify("workspace/didChangeConfiguration", {{"settings", {{"dtype", "bf16"}, {"n", 1}, {"max_tokens", 1}}}});
  const std::string other = "file:///other.md";
  open(*s, "Short. ", other);
  const Json r = s->request("textDocument/inlineCompletion", completion_params(0, 7, other), 60s);
  ASSERT_TRUE(r.contains("result")) << r.dump();
  // (No other message until the check below: any message runs the same
  // check after it.)
  ASSERT_EQ(s->stderr_text().find("completion 2 answered"), std::string::npos)
      << "the long request ended before the second model served one: " << s->stderr_text();
  ASSERT_EQ(s->stderr_text().find("service: unloading model"), std::string::npos) << s->stderr_text();
  const Json done = s->wait_response(long_request, 120s);
  ASSERT_TRUE(done.contains("result")) << done.dump();
  // Nothing more is sent: the reader's idle check unloads the first copy.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (s->stderr_text().find("service: unloading model") == std::string::npos && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  EXPECT_NE(s->stderr_text().find("service: unloading model"), std::string::npos) << s->stderr_text();
  // (status runs the check after its answer: it would still list both.)
  const Json one = s->request("workspace/executeCommand", {{"command", "inkstream.status"}});
  EXPECT_EQ(one["result"]["models"].size(), 1u) << one.dump();
}

TEST(LspSession, ModelLoadProgressAndFailureAreReported) {
  auto s = start("/nonexistent-model");
  s->initialize({}, {{"window", {{"workDoneProgress", true}}}});
  open(*s, "Text. ");
  std::vector<Json> notes;
  const Json r = s->request("textDocument/inlineCompletion", completion_params(0, 6), 30s, &notes);
  ASSERT_TRUE(r.contains("error")) << r.dump();
  EXPECT_EQ(r["error"]["code"], -32803);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("nonexistent-model"), std::string::npos);
  std::set<std::string> kinds;
  for (const auto& n : notes)
    if (n.value("method", "") == "$/progress") kinds.insert(n["params"]["value"]["kind"].get<std::string>());
  EXPECT_TRUE(kinds.count("begin") && kinds.count("end"));
}

}  // namespace
}  // namespace inkstream
