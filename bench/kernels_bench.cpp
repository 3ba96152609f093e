// Linear layers: inkstream's batch-invariant kernels against libtorch's
// addmm in the same run (fp32: OpenBLAS; bf16: oneDNN; fp16 and int8
// weights: ours only, libtorch has no CPU kernels for them), on GPT-2 small's four matrix shapes plus
// the tied lm_head, for the row counts of decoding (1 to 24 rows) and a
// prefill chunk. Prints one JSON line per (shape, rows).
//
// --attention: instead, the attention kernel (kernels/attention.h) of one
// document's decoding rows over its cached prefix, GPT-2 small's 12 heads of
// 64, bf16 and fp32 keys/values, at prefix lengths 200 and 1,000 (one line
// each: best ms per layer, cache-hot; and 12 layers read from memory, with
// the read bandwidth that is).
//
// --quantize: instead, quantizing GPT-2 small's weights to int8 at load
// (its 48 layer matrices and the tied lm_head, from fp32): quantize_q8
// against the column-by-column quantize_q8_reference, alternated, best of
// --reps each (one line).
//
// --int8-step: instead, the int8 products of one decoding step of GPT-2
// small (its 48 layer matrices and the lm_head, 136 MB: from memory, unless
// the last-level cache holds them) for 1 to 24 rows (one line per row
// count).
//
//   kernels_bench [--threads 2] [--reps 20] [--bandwidth-only | --attention | --quantize | --int8-step]
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "inkstream/model_runtime/device.h"
#include "kernels/attention.h"
#include "kernels/linear.h"

using namespace inkstream;
using Clock = std::chrono::steady_clock;

template <class F>
double best_ms(int reps, F&& f) {
  f();  // warm
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = Clock::now();
    f();
    best = std::min(best, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return best;
}

int main(int argc, char** argv) {
  int threads = 2, reps = 20;
  CLI::App app{"fp32 linear kernels vs libtorch/OpenBLAS"};
  app.add_option("--threads", threads);
  app.add_option("--reps", reps);
  bool bandwidth_only = false;
  app.add_flag("--bandwidth-only", bandwidth_only, "print the read bandwidth line only");
  bool attention = false;
  app.add_flag("--attention", attention, "time the attention kernel instead");
  bool quantize = false;
  app.add_flag("--quantize", quantize, "time int8 quantization of GPT-2 small's weights instead");
  bool int8_step = false;
  app.add_flag("--int8-step", int8_step, "time the int8 products of one whole decoding step instead");
  CLI11_PARSE(app, argc, argv);
  inkstream::allow_matrix_tiles();  // as the executables do
  c10::InferenceMode guard;
  configure_threads(threads, torch::kFloat32);
  if (quantize || int8_step) {
    // (K, N) of each layer's c_attn, attn_proj, mlp_fc, mlp_proj, then the
    // lm_head stored as its (N, K) transpose.
    struct Matrix {
      std::int64_t K, N;
      bool transposed;
      int count;
    };
    const Matrix model[] = {{768, 2304, false, 12}, {768, 768, false, 12}, {768, 3072, false, 12}, {3072, 768, false, 12}, {768, 50257, true, 1}};
    // One fp32 source per shape, but every layer's int8 copy its own
    // memory, as in the model: one copy read 12 times stayed in the caches
    // and made the step look 2x faster than it runs.
    std::vector<torch::Tensor> weights;
    std::vector<std::vector<std::vector<std::uint32_t>>> quads;  // [shape][layer]
    std::vector<std::vector<std::vector<float>>> scales;
    for (const Matrix& m : model) {
      weights.push_back(torch::randn({m.K * m.N}) * 0.02);
      quads.emplace_back(m.count, std::vector<std::uint32_t>(kernels::q8_quads_size(m.K, m.N)));
      scales.emplace_back(m.count, std::vector<float>(kernels::q8_blocks(m.K) * m.N));
    }
    auto all = [&](auto fn) {
      for (std::size_t i = 0; i < std::size(model); ++i) {
        const Matrix& m = model[i];
        for (int c = 0; c < m.count; ++c)
          fn(weights[i].data_ptr<float>(), m.transposed ? 1 : m.N, m.transposed ? m.K : 1, quads[i][c].data(), scales[i][c].data(), m.K,
             m.N);
      }
    };
    if (int8_step) {
      // Every product of a decoding step of M rows, in order, each matrix
      // once (136 MB in all: more than most caches, though not the 260-480
      // MB L3 shared by the hosts of recent sessions), best and median of
      // --reps steps.
      all(kernels::quantize_q8);
      const double bytes = [&] {
        double sum = 0;
        for (std::size_t i = 0; i < std::size(model); ++i)
          sum += static_cast<double>(quads[i][0].size() * 4 + scales[i][0].size() * 4) * model[i].count;
        return sum;
      }();
      for (const std::int64_t M : {1, 4, 8, 16, 24, 32, 64, 256}) {
        std::vector<torch::Tensor> xs, ys;
        for (const Matrix& m : model) {
          xs.push_back(torch::randn({M, m.K}));
          ys.push_back(torch::empty({M, m.N}));
        }
        const torch::Tensor bias = torch::randn({4 * 768});
        auto step = [&] {
          for (std::size_t i = 0; i < std::size(model); ++i) {
            const Matrix& m = model[i];
            for (int c = 0; c < m.count; ++c)
              kernels::linear_q8(xs[i].data_ptr<float>(), {quads[i][c].data(), scales[i][c].data()}, m.transposed ? nullptr : bias.data_ptr<float>(),
                                 ys[i].data_ptr<float>(), M, m.K, m.N);
          }
        };
        step();
        std::vector<double> times;
        for (int r = 0; r < reps; ++r) {
          const auto t0 = Clock::now();
          step();
          times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        }
        std::sort(times.begin(), times.end());
        std::cout << nlohmann::json{{"figure", "int8_step"}, {"isa", kernels::linear_q8_isa()}, {"threads", threads}, {"rows", M},
                                    {"best_ms", times.front()}, {"median_ms", times[times.size() / 2]},
                                    {"best_gb_s", bytes / 1e9 / (times.front() / 1e3)},
                                    {"rows_per_s", M / (times[times.size() / 2] / 1e3)}}
                         .dump()
                  << std::endl;
      }
      return 0;
    }
    double fast = 1e30, reference = 1e30;
    for (int round = 0; round < 3; ++round) {
      fast = std::min(fast, best_ms(std::max(1, reps / 3), [&] { all(kernels::quantize_q8); }));
      reference = std::min(reference, best_ms(std::max(1, reps / 3), [&] { all(kernels::quantize_q8_reference); }));
    }
    std::cout << nlohmann::json{{"figure", "quantize_q8_gpt2_small"}, {"threads", threads}, {"quantize_q8_ms", fast},
                                {"reference_ms", reference}, {"speedup", reference / fast}}
                     .dump()
              << std::endl;
    return 0;
  }
  if (attention) {
    constexpr std::int64_t H = 12, D = 64;
    const torch::Tensor flush = torch::ones({std::int64_t{1} << 26});  // 256 MB, read to evict the caches
    // The best time of one pass over every layer's groups, the caches
    // flushed before each pass.
    auto cold_ms = [&](const std::vector<std::vector<kernels::AttentionGroup>>& layers, kernels::KvType kv) {
      double best = 1e30;
      for (int r = 0; r < std::max(3, reps / 4); ++r) {
        (void)flush.sum().item<float>();
        const auto t0 = Clock::now();
        for (const auto& g : layers) kernels::attention_decode(g, H, D, 0.125f, kv);
        best = std::min(best, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      return best;
    };
    // Random keys or values (vectors of D) in the cache's element type:
    // int8 ones with their scales, as KvCache holds them.
    struct Stream {
      torch::Tensor data, scales;
      const float* scale_ptr() const { return scales.defined() ? scales.data_ptr<float>() : nullptr; }
    };
    auto make = [&](kernels::KvType kv, std::vector<std::int64_t> shape) {
      const torch::Tensor x = torch::randn(shape);
      if (kv == kernels::KvType::F32) return Stream{x, {}};
      if (kv == kernels::KvType::BF16) return Stream{x.to(torch::kBFloat16), {}};
      Stream s{torch::empty(shape, torch::kChar), torch::empty({x.numel() / D})};
      kernels::quantize_kv(x.data_ptr<float>(), x.numel() / D, D, s.data.data_ptr<std::int8_t>(), s.scales.data_ptr<float>());
      return s;
    };
    auto name = [](kernels::KvType kv) { return kv == kernels::KvType::BF16 ? "bf16" : kv == kernels::KvType::F32 ? "fp32" : "int8"; };
    // One group of `rows` over prefix k, v and tails kt, vt (8 positions, 4 filled).
    auto group = [](const torch::Tensor& q, const torch::Tensor& y, std::int64_t rows, const Stream& k, const Stream& v, std::int64_t P,
                    const Stream& kt, const Stream& vt) {
      return kernels::AttentionGroup{q.data_ptr<float>(), y.data_ptr<float>(), rows, k.data.data_ptr(), v.data.data_ptr(), P, P,
                                     kt.data.data_ptr(), vt.data.data_ptr(), 8, 4, false, k.scale_ptr(), v.scale_ptr(), kt.scale_ptr(),
                                     vt.scale_ptr()};
    };
    for (const auto kv : {kernels::KvType::BF16, kernels::KvType::Q8, kernels::KvType::F32})
      for (const std::int64_t rows : {1, 3, 8})
        for (const std::int64_t P : {200, 1000}) {
          const Stream k = make(kv, {H, P, D}), v = make(kv, {H, P, D});  // prefix (1, H, P, D)
          const Stream kt = make(kv, {rows, H, 8, D}), vt = make(kv, {rows, H, 8, D});
          const torch::Tensor q = torch::randn({rows, H, D}), y = torch::empty({rows, H, D});
          const std::vector<kernels::AttentionGroup> groups = {group(q, y, rows, k, v, P, kt, vt)};
          const double ms = best_ms(reps, [&] { kernels::attention_decode(groups, H, D, 0.125f, kv); });
          // From memory, as in a decoding step (the weights stream between
          // two reads of a layer's keys): 12 layers' prefixes, the caches
          // flushed before each timed pass.
          std::vector<Stream> keep;
          std::vector<std::vector<kernels::AttentionGroup>> layers;
          for (int l = 0; l < 12; ++l) {
            keep.push_back(make(kv, {H, P, D}));
            keep.push_back(make(kv, {H, P, D}));
            layers.push_back({group(q, y, rows, keep[keep.size() - 2], keep.back(), P, kt, vt)});
          }
          const double cold = cold_ms(layers, kv);
          const double bytes = 12.0 * 2 * H * P * (D * k.data.element_size() + (k.scales.defined() ? 4 : 0));
          std::cout << nlohmann::json{{"figure", "attention"}, {"kv", name(kv)},
                                      {"threads", threads}, {"rows", rows}, {"prefix", P}, {"best_ms", ms},
                                      {"cold_12_layers_ms", cold}, {"cold_gb_s", bytes / 1e9 / (cold / 1e3)}}
                           .dump()
                    << std::endl;
        }
    // Ragged, as a serving step's writers are: 16 one-row groups whose
    // prefixes grow from 100 to 1,000 positions, 12 layers from memory
    // (the threads split the work by cost, not by count).
    for (const auto kv : {kernels::KvType::BF16, kernels::KvType::Q8}) {
      std::vector<Stream> keep;
      std::vector<std::vector<kernels::AttentionGroup>> layers(12);
      const torch::Tensor q = torch::randn({1, H, D}), y = torch::empty({1, H, D});
      const Stream kt = make(kv, {1, H, 8, D}), vt = make(kv, {1, H, 8, D});
      double bytes = 0;
      keep.reserve(12 * 16 * 2);
      for (auto& layer : layers)
        for (std::int64_t g = 0; g < 16; ++g) {
          const std::int64_t P = 100 + g * 60;
          keep.push_back(make(kv, {H, P, D}));
          keep.push_back(make(kv, {H, P, D}));
          layer.push_back(group(q, y, 1, keep[keep.size() - 2], keep.back(), P, kt, vt));
          bytes += 2.0 * H * P * (D * keep.back().data.element_size() + (kv == kernels::KvType::Q8 ? 4 : 0));
        }
      const double cold = cold_ms(layers, kv);
      std::cout << nlohmann::json{{"figure", "attention_ragged"}, {"kv", name(kv)}, {"threads", threads}, {"groups", 16},
                                  {"prefixes", "100 to 1000"}, {"cold_12_layers_ms", cold}, {"cold_gb_s", bytes / 1e9 / (cold / 1e3)}}
                       .dump()
                << std::endl;
    }
    return 0;
  }
  {
    // The machine's read bandwidth with these threads: summing 1 GiB of
    // floats (what decoding's weight streams are bounded by).
    const torch::Tensor big = torch::ones({std::int64_t{1} << 28});
    const double best = best_ms(5, [&] { (void)big.sum().item<float>(); });
    std::cout << nlohmann::json{{"figure", "read_bandwidth"}, {"threads", threads}, {"gb_s", big.nbytes() / 1e9 / (best / 1e3)}}.dump()
              << std::endl;
  }
  if (bandwidth_only) return 0;
  struct Case {
    const char* name;
    std::int64_t K, N;
    bool nt;
  };
  const Case cases[] = {{"c_attn", 768, 2304, false}, {"attn_proj", 768, 768, false}, {"mlp_fc", 768, 3072, false},
                        {"mlp_proj", 3072, 768, false}, {"lm_head", 768, 50257, true}};
  for (const Case& c : cases)
    for (const std::int64_t M : {1, 3, 8, 24, 128}) {
      const torch::Tensor x = torch::randn({M, c.K});
      const torch::Tensor w = c.nt ? torch::randn({c.N, c.K}) : torch::randn({c.K, c.N});
      const torch::Tensor b = torch::randn({c.N});
      torch::Tensor y = torch::empty({M, c.N});
      configure_threads(threads, torch::kFloat32, Workload::Training);  // OpenBLAS gets the threads
      const double blas = best_ms(reps, [&] { y = c.nt ? torch::matmul(x, w.t()) : torch::addmm(b, x, w); });
      // The kernels run on libtorch's pool; OpenBLAS then gets one thread.
      configure_threads(threads, torch::kFloat32);
      const double ours = best_ms(reps, [&] {
        if (c.nt) kernels::linear_nt_f32(x.data_ptr<float>(), w.data_ptr<float>(), nullptr, y.data_ptr<float>(), M, c.K, c.N);
        else kernels::linear_nn_f32(x.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(), y.data_ptr<float>(), M, c.K, c.N);
      });
      // bf16: libtorch (oneDNN) against ours.
      const torch::Tensor x16 = x.to(torch::kBFloat16), b16 = b.to(torch::kBFloat16);
      const torch::Tensor w16 = w.to(torch::kBFloat16);
      torch::Tensor y16 = torch::empty({M, c.N}, torch::kBFloat16);
      const double torch_bf16 = best_ms(reps, [&] { y16 = c.nt ? torch::matmul(x16, w16.t()) : torch::addmm(b16, x16, w16); });
      auto bits = [](const torch::Tensor& t) { return reinterpret_cast<const std::uint16_t*>(t.data_ptr()); };
      // Conv1D matrices in the k-pair layout a bf16 model keeps them in, the
      // tied lm_head as it is (N, K).
      std::vector<std::uint32_t> pairs(static_cast<std::size_t>((c.K + 1) / 2 * c.N));
      if (!c.nt) kernels::pack_bf16_pairs(bits(w16), pairs.data(), c.K, c.N);
      auto* y_bits = reinterpret_cast<std::uint16_t*>(y16.data_ptr());
      const double ours_bf16 = best_ms(reps, [&] {
        if (c.nt) kernels::linear_nt_bf16(bits(x16), bits(w16), nullptr, y_bits, M, c.K, c.N);
        else kernels::linear_nn_bf16(bits(x16), pairs.data(), bits(b16), y_bits, M, c.K, c.N);
      });
      // fp16 and int8 weights (fp32 activations), in the layouts a model of
      // those formats keeps them in.
      const torch::Tensor wh = w.to(torch::kHalf);
      const kernels::F16Matrix f16{reinterpret_cast<const std::uint16_t*>(wh.data_ptr())};
      const double ours_f16 = best_ms(reps, [&] {
        if (c.nt) kernels::linear_nt_f16(x.data_ptr<float>(), f16, nullptr, y.data_ptr<float>(), M, c.K, c.N);
        else kernels::linear_nn_f16(x.data_ptr<float>(), f16, b.data_ptr<float>(), y.data_ptr<float>(), M, c.K, c.N);
      });
      // int8: every matrix in Conv1D form (the lm_head as wᵀ, as a model keeps it).
      std::vector<std::uint32_t> quads(static_cast<std::size_t>(kernels::q8_quads_size(c.K, c.N)));
      std::vector<float> scales(static_cast<std::size_t>(kernels::q8_blocks(c.K) * c.N));
      kernels::quantize_q8(w.data_ptr<float>(), c.nt ? 1 : c.N, c.nt ? c.K : 1, quads.data(), scales.data(), c.K, c.N);
      const kernels::Q8Matrix q8{quads.data(), scales.data()};
      const double ours_q8 = best_ms(reps, [&] {
        kernels::linear_q8(x.data_ptr<float>(), q8, c.nt ? nullptr : b.data_ptr<float>(), y.data_ptr<float>(), M, c.K, c.N);
      });
      const double gb = static_cast<double>(c.K * c.N * 4) / 1e9;
      std::cout << nlohmann::json{{"matrix", c.name}, {"rows", M}, {"isa", kernels::linear_f32_isa()},
                                  {"openblas_ms", blas}, {"inkstream_ms", ours}, {"speedup", blas / ours},
                                  {"inkstream_gb_s", gb / (ours / 1e3)}, {"bf16_isa", kernels::linear_bf16_isa()},
                                  {"libtorch_bf16_ms", torch_bf16}, {"inkstream_bf16_ms", ours_bf16},
                                  {"bf16_speedup", torch_bf16 / ours_bf16}, {"inkstream_fp16_ms", ours_f16},
                                  {"inkstream_int8_ms", ours_q8}, {"int8_isa", kernels::linear_q8_isa()},
                                  {"int8_gb_s", gb * (1.0 + 4.0 / kernels::kQ8Block) / 4 / (ours_q8 / 1e3)}}
                       .dump()
                << std::endl;
    }
}
