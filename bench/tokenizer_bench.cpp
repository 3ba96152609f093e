// Tokenizer benchmark: encode throughput on English prose (one thread) and
// per-call latency for a 2,000-character context (what the editor sends).
//
//   tokenizer_bench --tokenizer DIR --text FILE...
#include <CLI/CLI.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "inkstream/model_runtime/tokenizer.h"

using namespace inkstream;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string dir;
  std::vector<std::string> files;
  CLI::App app{"inkstream tokenizer benchmark"};
  app.add_option("--tokenizer", dir)->required();
  app.add_option("--text", files, "English prose files")->required();
  CLI11_PARSE(app, argc, argv);
  std::string corpus;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    corpus += s.str();
  }
  auto t0 = Clock::now();
  const Tokenizer tok = Tokenizer::from_folder(dir);
  const double load_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();

  auto encode_all = [&] {
    const auto start = Clock::now();
    const auto ids = tok.encode(corpus);
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    return std::pair{ids.size(), s};
  };
  const auto [tokens, cold_s] = encode_all();  // empty word cache
  const auto [tokens2, warm_s] = encode_all();
  (void)tokens2;

  // 2,000-character windows (bytes here; prose is nearly all ASCII) at many offsets.
  std::vector<double> lat;
  for (std::size_t off = 0; off + 2000 < corpus.size() && lat.size() < 2000; off += corpus.size() / 2000 + 1) {
    const auto start = Clock::now();
    const auto ids = tok.encode(std::string_view(corpus).substr(off, 2000));
    lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    if (ids.empty()) return 1;
  }
  std::sort(lat.begin(), lat.end());
  nlohmann::json out = {{"corpus_bytes", corpus.size()},
                        {"tokens", tokens},
                        {"load_ms", load_ms},
                        {"encode_mb_s_cold_cache", corpus.size() / cold_s / 1e6},
                        {"encode_mb_s_warm_cache", corpus.size() / warm_s / 1e6},
                        {"latency_2000_chars_us_p50", lat[lat.size() / 2]},
                        {"latency_2000_chars_us_p99", lat[lat.size() * 99 / 100]}};
  std::cout << out.dump() << std::endl;
  return 0;
}
