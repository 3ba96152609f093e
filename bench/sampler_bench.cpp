// The sampler's cost per row of a decoding step: Sampler::sample over
// GPT-2's 50,257 logits, for the editor's defaults (top-k 40) and for
// requests without top-k (OpenAI's API has none: `inkstream serve`'s
// default), with and without top-p, on a flat and a peaked distribution
// (normal logits of standard deviation 3 and 8). Best of --reps, one JSON
// line per case. A step of R rows pays R of these on the scheduler's
// thread while the other threads wait. The allocator is set as in the
// executables (without it each row's buffers were mapped and faulted anew:
// ~0.5 ms more a row).
//
//   sampler_bench [--reps 30]
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "inkstream/model_runtime/device.h"
#include "inkstream/model_runtime/sampler.h"

using namespace inkstream;

int main(int argc, char** argv) {
  int reps = 30;
  CLI::App app{"sampler cost per row"};
  app.add_option("--reps", reps);
  CLI11_PARSE(app, argc, argv);
  keep_freed_memory_for_inference();  // as the executables do: freed vocabulary-sized buffers are reused, not mapped again
  struct Case {
    int top_k;
    double top_p;
  };
  const Case cases[] = {{40, 0.95}, {0, 0.95}, {0, 0.9}, {0, 1.0}};
  for (const float spread : {3.0f, 8.0f}) {
    std::mt19937 rng(1);
    std::normal_distribution<float> level(0.0f, spread);
    std::vector<float> logits(50257);
    for (auto& l : logits) l = level(rng);
    for (const Case& c : cases) {
      SamplingParams p;
      p.temperature = 1.0;
      p.top_k = c.top_k;
      p.top_p = c.top_p;
      Sampler sampler(p, 7);
      double best = 1e30;
      for (int r = 0; r < reps; ++r) {
        std::vector<float> copy = logits;
        const auto t0 = std::chrono::steady_clock::now();
        (void)sampler.sample(copy, {});
        best = std::min(best, std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
      }
      std::cout << nlohmann::json{{"figure", "sampler"}, {"logit_spread", spread}, {"top_k", c.top_k}, {"top_p", c.top_p},
                                  {"best_us", best}}
                       .dump()
                << std::endl;
    }
  }
}
