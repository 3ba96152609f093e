// The engine through the real language server, as a writer meets it.
//
// Keystrokes: a writer types a prose document word by word into `inkstream
// lsp` (streaming on), pausing every few words; at each pause the editor asks
// for a completion. For documents of ~200, ~600 and ~1,000 tokens, with the
// prefix cache on and off: request -> first streamed update and -> final
// response, the decode step (the gap between streamed tokens) and the cache
// hit rate the server reports.
//
// Concurrency: 8 documents streaming at once (n=3 each) against one alone,
// end to end (prompts included) and while decoding (the server's tokens/s of
// each request, added up), with new documents and with documents already
// read (their windows cached, a word typed since);
// and a new request arriving while 7 others stream, against the same
// request on an idle server. Peak RSS against kv_cache_mb + weights.
//
// With --type-ms the writer takes that long to type each pause's words, as
// a person does: the server is idle meanwhile, and reads ahead the context
// window the document will need next (without it, requests follow each
// other at once and a read-ahead never runs).
//
// Prints one JSON line per figure group.
//   keystroke_bench --binary build/cli/inkstream --model DIR --text FILE... [--dtype auto] [--type-ms 0]
// (BENCH_LOG=debug prints the servers' logs at the end.)
#include <CLI/CLI.hpp>
#include <algorithm>
#include <thread>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "inkstream/model_runtime/file_util.h"
#include "inkstream/model_runtime/tokenizer.h"
#include "lsp_client.h"

using namespace inkstream;
using namespace inkstream::test;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string slurp(const std::vector<std::string>& files) {
  std::string all;
  for (const auto& f : files) all += read_whole_file(f);
  std::string out;
  for (char c : all) out += (c == '%' || c == '\t' || c == '\r') ? ' ' : c;  // fortune separators
  return out;
}

struct Measured {
  double first_ms = -1, final_ms = 0;
  int prompt_tokens = 0, cached_tokens = 0, generated = 0;
  double tokens_per_second = 0;  // all alternatives together, while decoding
};

class Server {
 public:
  Server(const std::string& binary, const std::string& model, const Json& settings)
      : lsp_({binary, "lsp", "--model", model, "--log-level", std::getenv("BENCH_LOG") ? std::getenv("BENCH_LOG") : "warn"}) {
    lsp_.initialize(settings);
  }
  void open(const std::string& uri, const std::string& text) {
    lsp_.notify("textDocument/didOpen", {{"textDocument", {{"uri", uri}, {"languageId", "markdown"}, {"version", ++version_}, {"text", text}}}});
  }
  void append(const std::string& uri, const std::string& before, const std::string& typed) {
    const auto [line, col] = end_position(before);
    const Json at = {{"line", line}, {"character", col}};
    lsp_.notify("textDocument/didChange", {{"textDocument", {{"uri", uri}, {"version", ++version_}}},
                                           {"contentChanges", {{{"range", {{"start", at}, {"end", at}}}, {"text", typed}}}}});
  }
  void configure(const Json& settings) { lsp_.notify("workspace/didChangeConfiguration", {{"settings", settings}}); }
  int ask(const std::string& uri, const std::string& text) {
    const auto [line, col] = end_position(text);
    const int id = lsp_.request_async("textDocument/inlineCompletion", {{"textDocument", {{"uri", uri}}},
                                                                        {"position", {{"line", line}, {"character", col}}},
                                                                        {"context", {{"triggerKind", 2}}}});
    pending_[id] = Clock::now();
    return id;
  }
  // Reads messages until every request sent so far is answered (and its
  // status, which says how many tokens were cached and generated, is in).
  // `on_first(id)` runs at a request's first streamed update.
  std::map<int, Measured> wait_all(const std::function<void(int id)>& on_first = {}) {
    std::map<int, Measured> out;
    std::set<int> statuses_due;
    while (!pending_.empty() || !statuses_due.empty()) {
      auto m = lsp_.next(std::chrono::seconds(300));
      if (!m) throw std::runtime_error("no answer from the server");
      const std::string method = m->value("method", "");
      if (method == "inkstream/partialCompletion") {
        const int id = (*m)["params"]["requestId"];
        if (!pending_.count(id)) continue;
        Measured& r = out[id];
        if (r.first_ms < 0) {
          r.first_ms = ms_since(pending_[id]);
          if (on_first) on_first(id);
        }
      } else if (method == "inkstream/status") {
        const Json& p = (*m)["params"];
        if (!p.contains("requestId") || !p["requestId"].is_number_integer()) continue;
        const int id = p["requestId"];
        if (!statuses_due.erase(id)) continue;
        Measured& r = out[id];
        r.prompt_tokens = p.value("promptTokens", 0);
        r.cached_tokens = p.value("cachedTokens", 0);
        r.generated = p.value("generatedTokens", 0);
        r.tokens_per_second = p.value("tokensPerSecond", 0.0);
      } else if (m->contains("id") && (*m)["id"].is_number_integer() && pending_.count((*m)["id"].get<int>())) {
        const int id = (*m)["id"];
        if (!m->contains("result")) throw std::runtime_error("completion failed: " + m->dump());
        out[id].final_ms = ms_since(pending_[id]);
        pending_.erase(id);
        statuses_due.insert(id);
      }
    }
    return out;
  }
  Measured ask_and_wait(const std::string& uri, const std::string& text) {
    const int id = ask(uri, text);
    return wait_all()[id];
  }
  double peak_rss_mb() {
    std::ifstream in("/proc/" + std::to_string(lsp_.pid()) + "/status");
    std::string line;
    while (std::getline(in, line))
      if (line.starts_with("VmHWM:")) return std::stod(line.substr(6)) / 1024.0;
    return -1;
  }
  Json status() { return lsp_.request("workspace/executeCommand", {{"command", "inkstream.status"}})["result"]; }
  ~Server() {
    lsp_.request("shutdown", nullptr);
    lsp_.notify("exit", nullptr);
    lsp_.wait_exit();
    if (std::getenv("BENCH_LOG")) std::cerr << lsp_.stderr_text();
  }

 private:
  LspProcess lsp_;
  int version_ = 0;
  std::map<int, Clock::time_point> pending_;  // request id -> sent
};

}  // namespace

static int run(int argc, char** argv) {
  std::string binary, model, dtype = "auto";
  std::vector<std::string> texts;
  std::vector<int> lengths = {200, 600, 1000};
  int n = 3, max_tokens = 16, pauses = 8, words_per_pause = 4, kv_mb = 512;  // kv_cache_mb: the default
  int type_ms = 0;
  bool skip_keystrokes = false, skip_concurrency = false;
  CLI::App app{"inkstream keystroke latency and concurrency benchmark"};
  app.add_option("--binary", binary)->required();
  app.add_option("--model", model)->required();
  app.add_option("--text", texts, "prose files")->required();
  app.add_option("--dtype", dtype);
  app.add_option("--lengths", lengths, "document lengths in tokens");
  app.add_option("--n", n);
  app.add_option("--max-tokens", max_tokens);
  app.add_option("--pauses", pauses);
  app.add_option("--words-per-pause", words_per_pause);
  app.add_option("--kv-cache-mb", kv_mb);
  app.add_option("--type-ms", type_ms, "ms the writer spends typing each pause's words (the server idles: read-aheads run then)");
  app.add_flag("--skip-keystrokes", skip_keystrokes);
  app.add_flag("--skip-concurrency", skip_concurrency);
  CLI11_PARSE(app, argc, argv);
  const Tokenizer tok = Tokenizer::from_folder(model);
  const std::string corpus = slurp(texts);
  const auto corpus_ids = tok.encode(corpus);
  // The first `tokens` tokens of the corpus from `from`, as text, cut at a word end.
  auto prose = [&](std::size_t from, int tokens) {
    if (from + static_cast<std::size_t>(tokens) > corpus_ids.size())
      throw std::runtime_error("the --text files hold " + std::to_string(corpus_ids.size()) + " tokens; this run needs " +
                               std::to_string(from + static_cast<std::size_t>(tokens)) + " (give more prose)");
    std::string t = tok.decode(std::span<const TokenId>(corpus_ids).subspan(from, static_cast<std::size_t>(tokens)));
    while (!t.empty() && t.back() != ' ' && t.back() != '\n') t.pop_back();
    return t;
  };
  const Json base = {{"streaming", true}, {"n", n}, {"max_tokens", max_tokens}, {"stop_at", "none"}, {"dtype", dtype},
                     {"context_chars", 20000}, {"stream_interval_ms", 0}, {"stream_every_tokens", 1}, {"kv_cache_mb", kv_mb}};

  if (!skip_keystrokes)
    for (const bool reuse : {true, false}) {
      Json settings = base;
      settings["prefix_cache"] = reuse;
      Server s(binary, model, settings);
      s.open("file:///warm.md", "Warm up. ");
      s.ask_and_wait("file:///warm.md", "Warm up. ");
      for (const int length : lengths) {
        const std::string uri = "file:///doc" + std::to_string(length) + ".md";
        std::string text = prose(static_cast<std::size_t>(length) * 3, length);
        // The words the writer will type: the corpus right after.
        std::istringstream next_words(prose(static_cast<std::size_t>(length) * 3 + static_cast<std::size_t>(length), 400));
        s.open(uri, text);
        const Measured cold = s.ask_and_wait(uri, text);
        std::vector<double> firsts, finals, gaps, prompts;
        long prompt = 0, cached = 0;
        for (int p = 0; p < pauses; ++p) {
          for (int w = 0; w < words_per_pause; ++w) {
            std::string word;
            next_words >> word;
            const std::string typed = (text.empty() || text.back() == ' ' || text.back() == '\n' ? "" : " ") + word + " ";
            s.append(uri, text, typed);
            text += typed;
          }
          if (type_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(type_ms));
          const Measured m = s.ask_and_wait(uri, text);
          firsts.push_back(m.first_ms);
          finals.push_back(m.final_ms);
          // One step decodes a token of each of the n alternatives.
          if (m.tokens_per_second > 0) gaps.push_back(1000.0 * n / m.tokens_per_second);
          prompt += m.prompt_tokens;
          cached += m.cached_tokens;
          prompts.push_back(static_cast<double>(m.prompt_tokens));
        }
        std::cout << Json{{"figure", "keystroke"},
                          {"prefix_cache", reuse},
                          {"document_tokens", length},
                          {"prompt_tokens_last", static_cast<int>(tok.encode(text).size())},
                          // What the model read: the context window, which moves forward once full.
                          {"model_prompt_tokens_median", median(prompts)},
                          {"cold_first_update_ms", cold.first_ms},
                          {"first_update_ms_median", median(firsts)},
                          {"first_update_ms_max", *std::max_element(firsts.begin(), firsts.end())},
                          {"final_ms_median", median(finals)},
                          {"decode_step_ms_median", median(gaps)},
                          {"cache_hit_rate", prompt ? static_cast<double>(cached) / static_cast<double>(prompt) : 0.0},
                          {"pauses", pauses},
                          {"type_ms", type_ms}}
                         .dump()
                  << std::endl;
      }
      std::cout << Json{{"figure", "status"}, {"prefix_cache", reuse}, {"status", s.status()["models"]}}.dump() << std::endl;
    }

  if (!skip_concurrency) {
    Json settings = base;
    settings["max_tokens"] = 48;
    Server s(binary, model, settings);
    s.open("file:///warm.md", "Warm up. ");
    s.ask_and_wait("file:///warm.md", "Warm up. ");
    std::vector<std::string> docs;
    for (int d = 0; d < 8; ++d) docs.push_back(prose(static_cast<std::size_t>(d) * 500 + 7, 200));
    for (int d = 0; d < 8; ++d) s.open("file:///c" + std::to_string(d) + ".md", docs[static_cast<std::size_t>(d)]);
    int variant = 0;
    // A fresh first word each time: never a cached prefix, so alone and
    // together do the same work.
    auto fresh = [&](int d) {
      const std::string uri = "file:///c" + std::to_string(d) + ".md";
      const std::string text = "Take" + std::to_string(++variant) + " " + docs[static_cast<std::size_t>(d)];
      s.open(uri, text);
      return std::pair{uri, text};
    };
    // One document alone (median of 3) against eight at once, each document
    // made ready by `prepare`. "decode": the server's tokens/s of each
    // request, added up for the eight (they decode together).
    struct Throughput {
      double alone = 0, alone_decode = 0, together = 0, together_decode = 0;
    };
    auto one_vs_eight = [&](const auto& prepare) {
      std::vector<double> alone, alone_decode;
      for (int r = 0; r < 3; ++r) {
        const auto [uri, text] = prepare(0);
        const auto t0 = Clock::now();
        const Measured m = s.ask_and_wait(uri, text);
        alone.push_back(m.generated / (ms_since(t0) / 1000.0));
        alone_decode.push_back(m.tokens_per_second);
      }
      std::vector<std::pair<std::string, std::string>> batch;
      for (int d = 0; d < 8; ++d) batch.push_back(prepare(d));
      const auto t0 = Clock::now();
      for (const auto& [uri, text] : batch) s.ask(uri, text);
      const auto all = s.wait_all();
      const double wall = ms_since(t0);
      Throughput t{median(alone), median(alone_decode), 0, 0};
      int generated = 0;
      for (const auto& [id, m] : all) {
        generated += m.generated;
        t.together_decode += m.tokens_per_second;
      }
      t.together = generated / (wall / 1000.0);
      return t;
    };
    const Throughput fresh_docs = one_vs_eight(fresh);
    // The same with the documents already read (writers pausing again after
    // a word: their windows are cached, so all eight decode from the first
    // steps; above, most of the wall time goes to reading 8 new prompts).
    const Throughput read_docs = one_vs_eight([&](int d) {
      const auto [uri, text] = fresh(d);
      s.ask_and_wait(uri, text);
      s.open(uri, text + " and");
      return std::pair{uri, text + " and"};
    });
    // A newcomer while 7 stream, against the same newcomer idle.
    std::vector<double> idle_first;
    for (int r = 0; r < 3; ++r) {
      const auto [uri, text] = fresh(7);
      idle_first.push_back(s.ask_and_wait(uri, text).first_ms);
    }
    s.configure({{"max_tokens", 160}});
    std::vector<double> loaded_first;
    for (int r = 0; r < 3; ++r) {
      std::set<int> streams;
      for (int d = 0; d < 7; ++d) {
        const auto [uri, text] = fresh(d);
        streams.insert(s.ask(uri, text));
      }
      std::size_t started = 0;
      int newcomer = -1;
      // The newcomer is sent once all 7 stream.
      const auto results = s.wait_all([&](int id) {
        if (streams.count(id) && ++started == streams.size()) {
          const auto [uri, text] = fresh(7);
          newcomer = s.ask(uri, text);
        }
      });
      if (newcomer >= 0) loaded_first.push_back(results.at(newcomer).first_ms);
    }
    std::cout << Json{{"figure", "concurrency"},
                      {"one_document_tok_s", fresh_docs.alone},
                      {"eight_documents_tok_s", fresh_docs.together},
                      {"ratio", fresh_docs.together / fresh_docs.alone},
                      {"one_document_decode_tok_s", fresh_docs.alone_decode},
                      {"eight_documents_decode_tok_s", fresh_docs.together_decode},
                      {"decode_ratio", fresh_docs.together_decode / fresh_docs.alone_decode},
                      {"read_one_document_tok_s", read_docs.alone},
                      {"read_eight_documents_tok_s", read_docs.together},
                      {"read_ratio", read_docs.together / read_docs.alone},
                      {"read_one_document_decode_tok_s", read_docs.alone_decode},
                      {"read_eight_documents_decode_tok_s", read_docs.together_decode},
                      {"read_decode_ratio", read_docs.together_decode / read_docs.alone_decode},
                      {"idle_first_update_ms_median", median(idle_first)},
                      {"first_update_with_7_streaming_ms_median", median(loaded_first)},
                      {"peak_rss_mb", s.peak_rss_mb()},
                      {"kv_cache_mb", kv_mb},
                      {"weights_mb", std::filesystem::file_size(std::filesystem::path(model) / "model.safetensors") / 1048576.0}}
                     .dump()
              << std::endl;
  }
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // e.g. a --text file missing or too short
    std::cerr << "keystroke_bench: " << e.what() << std::endl;
    return 1;
  }
}
