// Editor-perceived latency of `inkstream lsp`, through real pipes: request ->
// first streamed notification -> final response, for a ~500-token document;
// then the same when the duplicate cache or typing-through answers.
//
//   lsp_bench --binary build/cli/inkstream --model DIR --text FILE [--n 3] [--max-tokens 24] [--runs 5]
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "lsp_client.h"

using namespace inkstream::test;
using Clock = std::chrono::steady_clock;

static double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

int main(int argc, char** argv) {
  std::string binary, model, text_file, dtype = "bf16";
  int n = 3, max_tokens = 24, runs = 5, chars = 2400;
  CLI::App app{"inkstream LSP latency benchmark"};
  app.add_option("--binary", binary)->required();
  app.add_option("--model", model)->required();
  app.add_option("--text", text_file)->required();
  app.add_option("--n", n);
  app.add_option("--max-tokens", max_tokens);
  app.add_option("--runs", runs);
  app.add_option("--chars", chars, "document size in characters (~4.7 per token)");
  app.add_option("--dtype", dtype);
  CLI11_PARSE(app, argc, argv);
  std::ifstream in(text_file);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string doc = ss.str().substr(0, static_cast<std::size_t>(chars));
  for (char& c : doc)
    if (c == '%') c = ' ';
  doc += " ";

  LspProcess s({binary, "lsp", "--model", model, "--log-level", "warn"});
  s.initialize({{"streaming", true}, {"n", n}, {"max_tokens", max_tokens}, {"stop_at", "none"}, {"dtype", dtype},
                {"context_chars", chars + 10}, {"stream_interval_ms", 50}});
  auto completion = [&](const std::string& uri, const std::string& text, double* first_ms, int* updates, Json* result) {
    const auto [line, col] = end_position(text);
    const auto t0 = Clock::now();
    const int id = s.request_async("textDocument/inlineCompletion",
                                   {{"textDocument", {{"uri", uri}}}, {"position", {{"line", line}, {"character", col}}}, {"context", {{"triggerKind", 2}}}});
    *first_ms = -1;
    *updates = 0;
    for (;;) {
      auto m = s.next(std::chrono::seconds(120));
      if (!m) throw std::runtime_error("timeout");
      if (m->value("method", "") == "inkstream/partialCompletion" && (*m)["params"]["requestId"] == id) {
        if (*first_ms < 0) *first_ms = ms_since(t0);
        ++*updates;
      } else if (m->contains("id") && (*m)["id"] == id) {
        *result = *m;
        return ms_since(t0);
      }
    }
  };
  // Model load (first request also waits for it).
  s.notify("textDocument/didOpen", {{"textDocument", {{"uri", "file:///warm.md"}, {"languageId", "markdown"}, {"version", 1}, {"text", "Warm up. "}}}});
  double first = 0;
  int updates = 0;
  Json result;
  const double load_and_first = completion("file:///warm.md", "Warm up. ", &first, &updates, &result);

  std::vector<double> firsts, finals, cache_ms, typing_ms, update_counts;
  for (int r = 0; r < runs; ++r) {
    const std::string uri = "file:///doc" + std::to_string(r) + ".md";
    const std::string text = doc + "Run " + std::to_string(r) + " and ";  // distinct, so never cached
    s.notify("textDocument/didOpen", {{"textDocument", {{"uri", uri}, {"languageId", "markdown"}, {"version", 1}, {"text", text}}}});
    finals.push_back(completion(uri, text, &first, &updates, &result));
    firsts.push_back(first);
    update_counts.push_back(updates);
    // Identical request on another document: the duplicate cache.
    const std::string twin = uri + ".twin.md";
    s.notify("textDocument/didOpen", {{"textDocument", {{"uri", twin}, {"languageId", "markdown"}, {"version", 1}, {"text", text}}}});
    cache_ms.push_back(completion(twin, text, &first, &updates, &result));
    // Typing through the first suggestion.
    const auto& items = result["result"]["items"];
    if (!items.empty() && items[0]["insertText"].get<std::string>().size() > 2) {
      const std::string typed = items[0]["insertText"].get<std::string>().substr(0, 2);
      const auto [line, col] = end_position(text);
      s.notify("textDocument/didChange", {{"textDocument", {{"uri", twin}, {"version", 2}}},
                                          {"contentChanges", {{{"range", {{"start", {{"line", line}, {"character", col}}}, {"end", {{"line", line}, {"character", col}}}}}, {"text", typed}}}}});
      typing_ms.push_back(completion(twin, text + typed, &first, &updates, &result));
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? -1.0 : v[v.size() / 2];
  };
  const Json doc_tokens = s.request("workspace/executeCommand", {{"command", "inkstream.status"}});
  Json out = {{"model", model},
              {"n", n},
              {"max_tokens", max_tokens},
              {"document_chars", doc.size()},
              {"load_plus_first_completion_ms", load_and_first},
              {"first_streamed_update_ms_median", median(firsts)},
              {"final_response_ms_median", median(finals)},
              {"streamed_updates_per_request_median", median(update_counts)},
              {"cache_answer_ms_median", median(cache_ms)},
              {"typing_through_answer_ms_median", median(typing_ms)},
              {"server_status", doc_tokens["result"]}};
  out["server_status"].erase("settings");
  std::cout << out.dump() << std::endl;
  s.request("shutdown", nullptr);
  s.notify("exit", nullptr);
  return s.wait_exit() == 0 ? 0 : 1;
}
