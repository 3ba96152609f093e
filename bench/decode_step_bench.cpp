// One batched decoding step (Gpt2Model::forward_decode) in process: G
// requests of n rows each, every request with its own prompt prefix of P
// positions, as the engine's scheduler runs them. Prints one JSON line per
// (groups, prefix) with the median step time and rows/s; the ratio of
// G = 8 to G = 1 is the ceiling of continuous batching's aggregate speed-up.
// With --chunks K, K new prompt chunks of --chunk-tokens tokens each (a
// writer's last words over a cached document of the same prefix length)
// join the step, run three ways that alternate rep by rep: one forward for
// all (Gpt2Model::forward_step: the engine's schedule on CUDA), the chunks
// together first and then the decoding rows (the engine's on the CPU), and
// one forward per chunk then the decoding rows (the engine's until the
// ninth session). Medians of the step and of the time to the chunks'
// logits (a newcomer's first token).
//
//   decode_step_bench --model DIR [--dtype auto] [--threads 2] [--rows 3]
//                     [--groups 1,8] [--prefix 200,1000] [--reps 15]
//                     [--chunks 0] [--chunk-tokens 6]
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
  std::int64_t chunk_count = 0, chunk_tokens = 6;
  app.add_option("--chunks", chunk_count, "prompt chunks joining each step (0: decoding only)")->check(CLI::Range(0, 64));
  app.add_option("--chunk-tokens", chunk_tokens, "tokens per prompt chunk")->check(CLI::Range(1, 256));
  std::string kv = "engine";
  app.add_option("--kv", kv, "engine (the engine's: bf16 for fp16, int8 for int8 weights), model (the activations' dtype), bf16 or int8")
      ->check(CLI::IsMember({"engine", "model", "bf16", "int8"}));
  CLI11_PARSE(app, argc, argv);

  keep_freed_memory_for_inference();
  allow_matrix_tiles();
  auto model = Gpt2Model::load(model_dir, {"cpu", dtype, true});
  configure_threads(threads, model->dtype());
  c10::InferenceMode guard;
  const ModelConfig& cfg = model->config();
  // Random keys and values at positions [0, n) of every layer (stored in
  // the cache's format, int8 quantized).
  auto fill_random = [&](KvCache& cache, std::int64_t n) {
    for (std::int64_t l = 0; l < cfg.n_layer; ++l)
      cache.write(l, 0, torch::randn({cache.batch(), cfg.n_head, n, cfg.head_dim()}),
                  torch::randn({cache.batch(), cfg.n_head, n, cfg.head_dim()}));
  };
  auto cache_dtype = [&] {
    if (kv == "engine") return model->kv_dtype();
    if (kv == "bf16") return c10::ScalarType::BFloat16;
    if (kv == "int8") return c10::ScalarType::Char;
    return model->dtype();
  };
  for (const std::int64_t P : numbers(prefix_list)) {
    // Each rep appends a token to every row (three times per rep with --chunks).
    const std::int64_t positions =
        std::max(P + (chunk_count > 0 ? 3 : 1) * (reps + 1) + 1, chunk_count > 0 ? P + chunk_tokens : 0);
    if (P < 1 || positions > cfg.n_positions) {
      std::cerr << "decode_step_bench: --prefix " << P << " with --reps " << reps << " needs " << positions
                << " positions; the model has " << cfg.n_positions << "\n";
      return 2;
    }
  }
  for (const std::int64_t P : numbers(prefix_list))
    for (const std::int64_t G : numbers(groups_list)) {
      std::vector<std::unique_ptr<KvCache>> prefixes, tails;
      std::vector<DecodeGroup> groups;
      for (std::int64_t g = 0; g < G; ++g) {
        const auto kv_dtype = cache_dtype();
        prefixes.push_back(std::make_unique<KvCache>(cfg, 1, P, kv_dtype, model->device()));
        tails.push_back(std::make_unique<KvCache>(cfg, rows, 3 * reps + 4, kv_dtype, model->device()));
        fill_random(*prefixes.back(), P);
        prefixes.back()->set_length(P);
        groups.push_back({prefixes.back().get(), P, tails.back().get(), rows});
      }
      const torch::Tensor ids = torch::randint(50000, {G * rows}, torch::kLong);
      if (chunk_count > 0) {
        // Each chunk continues a cached document of P tokens; every rep
        // starts it again from there.
        std::vector<std::unique_ptr<KvCache>> documents;
        std::vector<PromptChunk> chunks;
        for (std::int64_t c = 0; c < chunk_count; ++c) {
          documents.push_back(std::make_unique<KvCache>(cfg, 1, P + chunk_tokens, cache_dtype(),
                                                        model->device()));
          fill_random(*documents.back(), P);
          chunks.push_back({documents.back().get(), chunk_tokens, true});
        }
        const torch::Tensor chunk_ids = torch::randint(50000, {chunk_count, chunk_tokens}, torch::kLong);
        const torch::Tensor all_ids = torch::cat({ids, chunk_ids.reshape({-1})});
        // [variant] -> step times, times to the chunks' logits
        std::vector<double> step[3], first[3];
        auto ms_since = [](Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); };
        for (int r = 0; r < reps + 1; ++r) {
          for (const int variant : {0, 1, 2}) {
            for (auto& d : documents) d->set_length(P);
            const auto t0 = Clock::now();
            double to_first = 0;
            if (variant == 0) {
              model->forward_step(all_ids, groups, chunks);
              to_first = ms_since(t0);
            } else if (variant == 1) {
              model->forward_step(chunk_ids.reshape({-1}), {}, chunks);
              to_first = ms_since(t0);
              model->forward_decode(ids, groups);
            } else {
              for (std::int64_t c = 0; c < chunk_count; ++c) model->forward_last(chunk_ids.narrow(0, c, 1), documents[c].get());
              to_first = ms_since(t0);
              model->forward_decode(ids, groups);
            }
            if (r > 0) {
              step[variant].push_back(ms_since(t0));
              first[variant].push_back(to_first);
            }
          }
        }
        auto median = [](std::vector<double> v) {
          std::sort(v.begin(), v.end());
          return v[v.size() / 2];
        };
        std::cout << nlohmann::json{{"dtype", format_label(model->weight_format())}, {"kv", c10::toString(cache_dtype())}, {"threads", threads}, {"groups", G},
                                    {"rows", G * rows}, {"prefix", P}, {"chunks", chunk_count}, {"chunk_tokens", chunk_tokens},
                                    {"one_forward_step_ms", median(step[0])}, {"one_forward_first_token_ms", median(first[0])},
                                    {"chunks_first_step_ms", median(step[1])}, {"chunks_first_first_token_ms", median(first[1])},
                                    {"per_chunk_step_ms", median(step[2])}, {"per_chunk_first_token_ms", median(first[2])}}
                         .dump()
                  << std::endl;
        continue;
      }
      std::vector<double> times;
      for (int r = 0; r < reps + 1; ++r) {
        const auto t0 = Clock::now();
        model->forward_decode(ids, groups);
        if (r > 0) times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      std::sort(times.begin(), times.end());
      const double median = times[times.size() / 2];
      std::cout << nlohmann::json{{"dtype", format_label(model->weight_format())}, {"kv", c10::toString(cache_dtype())}, {"threads", threads}, {"groups", G}, {"rows", G * rows},
                                  {"prefix", P}, {"step_ms", median}, {"best_ms", times.front()},
                                  {"rows_per_s", static_cast<double>(G * rows) / (median / 1e3)}}
                       .dump()
                << std::endl;
    }
}
