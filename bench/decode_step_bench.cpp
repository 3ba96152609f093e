// One batched decoding step (Gpt2Model::forward_decode) in process: G
// requests of n rows each, every request with its own prompt prefix of P
// positions, as the engine's scheduler runs them. Prints one JSON line per
// (groups, prefix) with the median step time and rows/s; the ratio of
// G = 8 to G = 1 is the ceiling of continuous batching's aggregate speed-up.
//
//   decode_step_bench --model DIR [--dtype auto] [--threads 2] [--rows 3]
//                     [--groups 1,8] [--prefix 200,1000] [--reps 15]
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "inkstream/model_runtime/device.h"
#include "inkstream/model_runtime/gpt2.h"

using namespace inkstream;
using Clock = std::chrono::steady_clock;

static std::vector<std::int64_t> numbers(const std::string& list) {
  std::vector<std::int64_t> out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(std::stoll(item));
  return out;
}

int main(int argc, char** argv) {
  std::string model_dir, dtype = "auto", groups_list = "1,8", prefix_list = "200,1000";
  int threads = 2, reps = 15;
  std::int64_t rows = 3;
  CLI::App app{"one batched decoding step"};
  app.add_option("--model", model_dir)->required();
  app.add_option("--dtype", dtype);
  app.add_option("--threads", threads);
  app.add_option("--rows", rows, "rows (alternatives) per request");
  app.add_option("--groups", groups_list, "comma-separated request counts");
  app.add_option("--prefix", prefix_list, "comma-separated prompt lengths");
  app.add_option("--reps", reps);
  std::string kv = "engine";
  app.add_option("--kv", kv, "engine (the engine's: bf16 for fp16/int8 weights) or model (the activations' dtype)")
      ->check(CLI::IsMember({"engine", "model"}));
  CLI11_PARSE(app, argc, argv);

  keep_freed_memory_for_inference();
  auto model = Gpt2Model::load(model_dir, {"cpu", dtype, true});
  configure_threads(threads, model->dtype());
  c10::InferenceMode guard;
  const ModelConfig& cfg = model->config();
  for (const std::int64_t P : numbers(prefix_list))
    for (const std::int64_t G : numbers(groups_list)) {
      std::vector<std::unique_ptr<KvCache>> prefixes, tails;
      std::vector<DecodeGroup> groups;
      for (std::int64_t g = 0; g < G; ++g) {
        const auto kv_dtype = kv == "engine" ? model->kv_dtype() : model->dtype();
        prefixes.push_back(std::make_unique<KvCache>(cfg, 1, P, kv_dtype, model->device()));
        tails.push_back(std::make_unique<KvCache>(cfg, rows, reps + 2, kv_dtype, model->device()));
        for (auto* list : {&prefixes.back()->k, &prefixes.back()->v})
          for (auto& t : *list) t.normal_();
        prefixes.back()->set_length(P);
        groups.push_back({prefixes.back().get(), P, tails.back().get(), rows});
      }
      const torch::Tensor ids = torch::randint(50000, {G * rows}, torch::kLong);
      std::vector<double> times;
      for (int r = 0; r < reps + 1; ++r) {
        const auto t0 = Clock::now();
        model->forward_decode(ids, groups);
        if (r > 0) times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      std::sort(times.begin(), times.end());
      const double median = times[times.size() / 2];
      std::cout << nlohmann::json{{"dtype", format_label(model->weight_format())}, {"kv", kv == "engine" ? "bf16 if fp16/int8" : "activations"}, {"threads", threads}, {"groups", G}, {"rows", G * rows},
                                  {"prefix", P}, {"step_ms", median}, {"best_ms", times.front()},
                                  {"rows_per_s", static_cast<double>(G * rows) / (median / 1e3)}}
                       .dump()
                << std::endl;
    }
}
