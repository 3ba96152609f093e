// Generation benchmark: load time, prefill, decode tokens/s at N alternatives,
// peak RSS, and what the model itself adds to it: the peak over the
// process's resident memory before loading (libtorch's libraries mapped),
// against its weights and the largest KV memory the engine held. Prints one JSON object; bench/run.sh
// turns runs into a table.
//
//   generation_bench --model DIR --dtype bf16 --threads 2 --prompt 256 --decode 64 --n 1,4
#include <torch/types.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <thread>
#include <nlohmann/json.hpp>

#include "inkstream/model_runtime/device.h"
#include "inkstream/model_runtime/generator.h"

using namespace inkstream;
using Clock = std::chrono::steady_clock;

static double ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

// A field of /proc/self/status in MB: VmRSS (resident now) or VmHWM (the
// peak since start or since reset_peak_rss()).
static double status_mb(const char* field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field, 0) == 0) return std::stod(line.substr(std::strlen(field))) / 1024.0;
  return 0;
}
static double rss_mb() { return status_mb("VmRSS:"); }
static double peak_rss_mb() { return status_mb("VmHWM:"); }
// Starts a new VmHWM from the resident size now (Linux's clear_refs "5"), so
// each phase's own peak can be read.
static void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

static int run(int argc, char** argv) {
  std::string model_dir, dtype = "bf16", device = "cpu", ns = "1,4";
  int threads = 0, prompt_len = 256, decode = 64, repeats = 3;
  bool copy_weights = false;
  CLI::App app{"inkstream generation benchmark"};
  app.add_option("--model", model_dir)->required();
  app.add_option("--dtype", dtype);
  app.add_option("--device", device);
  app.add_option("--threads", threads);
  app.add_option("--prompt", prompt_len);
  app.add_option("--decode", decode);
  app.add_option("--n", ns, "comma-separated alternative counts");
  app.add_option("--repeats", repeats);
  app.add_flag("--copy-weights", copy_weights, "load weights into process memory instead of mapping the file");
  CLI11_PARSE(app, argc, argv);

  keep_freed_memory_for_inference();
  allow_matrix_tiles();
  // (measured before anything runs: what libtorch's pools and code pages
  // add later counts as the model's, an overestimate. Warming them here
  // left threads that halved the decode figures.)
  const double baseline_rss = rss_mb();
  const auto t0 = Clock::now();
  auto model = Gpt2Model::load(model_dir, {device, dtype, copy_weights});
  const double load_ms = ms(t0, Clock::now());
  const double loaded_rss = rss_mb();
  const double load_peak_rss = peak_rss_mb();
  const double loaded_file_rss = status_mb("RssFile:");
  reset_peak_rss();
  const int intra_threads = configure_threads(threads, model->dtype());
  const Generator gen(model);

  // Prompt: fixed pseudo-random ids (content does not change the cost).
  std::vector<TokenId> prompt;
  for (int i = 0; i < prompt_len; ++i) prompt.push_back(static_cast<TokenId>((i * 7919 + 13) % 50000));

  nlohmann::json out = {{"model", model_dir},       {"dtype", format_label(model->weight_format())}, {"device", model->device().str()},
                        {"threads", threads > 0 ? threads : physical_core_count()}, {"torch_intra_op_threads", intra_threads}, {"load_ms", load_ms}, {"prompt_tokens", prompt_len},
                        {"decode_tokens", decode}, {"weights", copy_weights ? "copied" : "mapped"}};
  // Prefill: forward of the whole prompt (median of repeats).
  {
    std::vector<double> times;
    for (int r = 0; r < repeats + 1; ++r) {
      GenerationRequest req;
      req.prompt = prompt;
      req.max_tokens = 1;
      const auto res = gen.generate(req);
      if (r > 0) times.push_back(res.timings.prompt_ms);  // first run warms up
    }
    std::sort(times.begin(), times.end());
    out["prefill_ms"] = times[times.size() / 2];
    // The same forward without a KV cache (what a training step does), and
    // with a fresh one, on a thread of their own that ends when they are
    // measured: run on the main thread, whose OpenMP team then stayed beside
    // the engine's, they cut the decode figures below from ~200 to ~139
    // tok/s (int8, this VM).
    std::thread([&] {
      c10::InferenceMode guard;
      const auto ids = torch::tensor(std::vector<std::int64_t>(prompt.begin(), prompt.end()), torch::kLong).view({1, -1});
      times.clear();
      for (int r = 0; r < repeats + 1; ++r) {
        const auto start = Clock::now();
        model->forward_last(ids.to(model->device())).to(torch::kCPU);
        if (r > 0) times.push_back(ms(start, Clock::now()));
      }
      std::sort(times.begin(), times.end());
      out["prefill_no_cache_ms"] = times[times.size() / 2];
      times.clear();
      for (int r = 0; r < repeats + 1; ++r) {
        KvCache cache(model->config(), 1, prompt_len + 1, model->dtype(), model->device());
        const auto start = Clock::now();
        model->forward_last(ids.to(model->device()), &cache).to(torch::kCPU);
        if (r > 0) times.push_back(ms(start, Clock::now()));
      }
      std::sort(times.begin(), times.end());
      out["prefill_fresh_cache_ms"] = times[times.size() / 2];
    }).join();
  }
  const double prefill_peak_rss = peak_rss_mb();
  reset_peak_rss();
  // Decode: tokens/s with N alternatives, sampling as the editor would.
  std::size_t kv_peak = gen.engine().stats().kv_used_bytes;
  std::stringstream ss(ns);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const int n = std::stoi(item);
    std::vector<double> rates;
    for (int r = 0; r < repeats; ++r) {
      GenerationRequest req;
      req.prompt = std::vector<TokenId>(prompt.end() - std::min<std::ptrdiff_t>(32, std::ssize(prompt)), prompt.end());
      req.n = n;
      req.max_tokens = decode;
      req.sampling.repeat_penalty = 1.0;
      const auto res = gen.generate(req);
      rates.push_back(res.timings.predicted_per_second);
    }
    std::sort(rates.begin(), rates.end());
    out["decode_tok_s_n" + item] = rates[rates.size() / 2];
    kv_peak = std::max(kv_peak, gen.engine().stats().kv_used_bytes);
  }
  const double decode_peak_rss = peak_rss_mb();
  out["peak_rss_mb"] = std::max({load_peak_rss, prefill_peak_rss, decode_peak_rss});
  out["baseline_rss_mb"] = baseline_rss;
  out["loaded_rss_mb"] = loaded_rss;
  // Each phase's own peak (VmHWM reset between them): loading, the prefill
  // figures, the decode figures.
  out["load_peak_rss_mb"] = load_peak_rss;
  out["loaded_file_rss_mb"] = loaded_file_rss;  // of loaded_rss: mapped files (code, a mapped checkpoint)
  out["prefill_peak_rss_mb"] = prefill_peak_rss;
  out["decode_peak_rss_mb"] = decode_peak_rss;
  out["final_rss_mb"] = rss_mb();
  release_freed_memory();
  out["trimmed_rss_mb"] = rss_mb();
  out["weights_mb"] = static_cast<double>(model->weight_bytes()) / (1 << 20);
  out["kv_mb"] = static_cast<double>(kv_peak) / (1 << 20);
  std::cout << out.dump() << std::endl;
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // e.g. --n beyond what a request may ask
    std::cerr << "generation_bench: " << e.what() << std::endl;
    return 1;
  }
}
