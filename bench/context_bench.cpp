// Context selection benchmark: how long choosing the prompt window takes on a
// long document of many short sentences (the worst case of the old,
// quadratic boundary search), for several `context_chars`, with the real
// GPT-2 tokenizer. Prints one JSON line per setting.
//
//   context_bench --tokenizer DIR [--sentences 40000] [--budget 1000]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "inkstream/completion/engine.h"
#include "inkstream/model_runtime/tokenizer.h"

using namespace inkstream;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string dir;
  int sentences = 40000, budget = 1000, runs = 20;
  CLI::App app{"inkstream context selection benchmark"};
  app.add_option("--tokenizer", dir)->required();
  app.add_option("--sentences", sentences, "sentences in the document");
  app.add_option("--budget", budget, "token budget (model context - max_tokens)");
  app.add_option("--runs", runs);
  CLI11_PARSE(app, argc, argv);
  const Tokenizer tok = Tokenizer::from_folder(dir);
  const TokenStarts starts = [&](std::string_view text) { return token_start_offsets(tok, text); };
  std::string doc;
  const char* words[] = {"Yes.", "No!", "Go on.", "He ran.", "Why?", "It rained.", "She smiled.", "Later."};
  for (int i = 0; i < sentences; ++i) doc += std::string(words[i % 8]) + (i % 40 == 39 ? "\n\n" : " ");
  for (const int chars : {2000, 10000, 30000, 100000}) {
    std::vector<double> ms;
    std::size_t window = 0;
    for (int r = 0; r < runs; ++r) {
      // A different cursor each run: a cold word cache for part of the window.
      const std::string_view before = std::string_view(doc).substr(0, doc.size() - static_cast<std::size_t>(r) * 7);
      const auto t0 = Clock::now();
      window = build_context(before, chars, budget, starts)->size();
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    std::cout << nlohmann::json{{"context_chars", chars},   {"document_bytes", doc.size()}, {"token_budget", budget},
                                {"window_bytes", window},   {"p50_ms", ms[ms.size() / 2]},  {"max_ms", ms.back()}}
                     .dump()
              << std::endl;
  }
}
