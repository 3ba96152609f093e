#include "inkstream/model_runtime/atomic_file.h"
#include "inkstream/training/trainer.h"

#include "inkstream/training/evaluation.h"

#include <ATen/autocast_mode.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <malloc.h>
#include <sys/resource.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>
#include <torch/types.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include "inkstream/model_runtime/checkpoint.h"
#include "inkstream/model_runtime/device.h"
#include "inkstream/model_runtime/file_util.h"
#include "inkstream/model_runtime/safetensors.h"
#include "inkstream/training/token_dataset.h"

namespace inkstream::training {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

torch::ScalarType compute_dtype(const std::string& name) {
  if (name == "fp32") return torch::kFloat32;
  if (name == "bf16") return torch::kBFloat16;
  if (name == "fp16") return torch::kFloat16;
  throw std::invalid_argument("dtype must be fp32, bf16 or fp16, not '" + name + "'");
}

// Mixed precision for the forward pass only (as torch.autocast): matmuls in
// the low-precision type, reductions and the loss in fp32, master weights
// fp32. Leaving the scope drops the cached low-precision weight copies.
class AutocastScope {
 public:
  AutocastScope(torch::ScalarType dtype, const torch::Device& device) {
    if (dtype == torch::kFloat32) return;
    cuda_ = device.is_cuda();
    if (cuda_) {
      at::autocast::set_enabled(true);
      at::autocast::set_autocast_gpu_dtype(dtype);
    } else {
      at::autocast::set_cpu_enabled(true);
      at::autocast::set_autocast_cpu_dtype(dtype);
    }
    active_ = true;
  }
  ~AutocastScope() {
    if (!active_) return;
    if (cuda_) at::autocast::set_enabled(false);
    else at::autocast::set_cpu_enabled(false);
    at::autocast::clear_cache();
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false, cuda_ = false;
};

torch::Tensor mean_cross_entropy(const Gpt2Model& model, const torch::Tensor& inputs, const torch::Tensor& targets,
                                 bool recompute, torch::ScalarType dtype) {
  // inputs, targets are (B, T)
  torch::Tensor logits;
  {
    AutocastScope autocast(dtype, inputs.device());
    logits = model.forward_train(inputs, recompute);  // (B, T, V)
  }
  const auto V = logits.size(-1);
  return at::cross_entropy_loss(logits.reshape({-1, V}).to(torch::kFloat32), targets.reshape(-1));  // ()
}

StoredDtype stored(torch::ScalarType t) {
  return t == torch::kBFloat16 ? StoredDtype::BF16 : t == torch::kFloat16 ? StoredDtype::F16 : StoredDtype::F32;
}

// splitmix64: independent, reproducible seeds for (seed, step, micro-batch).
std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}


// The training batch of (step, micro): depends on nothing else, so a resumed
// run sees exactly the data an uninterrupted one would.
torch::Tensor training_batch(const TokenStream& train, const TrainOptions& o, std::int64_t step, std::int64_t micro) {
  std::mt19937_64 rng(mix(o.seed ^ mix(static_cast<std::uint64_t>(step) * 1000003ull + static_cast<std::uint64_t>(micro))));
  const std::uint64_t span = train.size() - static_cast<std::uint64_t>(o.seq_len);  // offsets in [0, span)
  std::vector<std::uint64_t> offsets;
  for (std::int64_t b = 0; b < o.batch_size; ++b) offsets.push_back(rng() % span);
  return token_windows(train, offsets, o.seq_len);
}

// glibc serves blocks over 32 MiB with fresh mmap()s, and the kernel zeroes
// and faults in every page of them again on each step: the (B, T, V) logits
// of a 2048-token batch are 400 MB, and filling a fresh 400 MB buffer took
// 0.9 s on the 2-core VM against 0.02 s for reused memory (the training
// step ran ~3x slower). Training allocates the same shapes every step, so
// keep everything in the heap and never give it back.
}  // namespace

void keep_training_memory_in_heap() {
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
}

namespace {

std::int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<std::int64_t>(u.ru_maxrss) * 1024;
}

std::string format_duration(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  std::ostringstream os;
  if (s >= 3600) os << s / 3600 << "h" << (s % 3600) / 60 << "m";
  else if (s >= 60) os << s / 60 << "m" << s % 60 << "s";
  else os << s << "s";
  return os.str();
}

json read_json(const fs::path& p) {
  json j = json::parse(read_whole_file(p), nullptr, false);
  if (j.is_discarded()) throw std::runtime_error(p.string() + " is not valid JSON");
  return j;
}

}  // namespace

double learning_rate(std::int64_t step, const TrainOptions& o) {
  if (step < o.warmup_steps) return o.lr * static_cast<double>(step + 1) / static_cast<double>(o.warmup_steps);
  const double min_lr = o.lr * o.min_lr_ratio;
  const double span = static_cast<double>(std::max<std::int64_t>(1, o.steps - o.warmup_steps));
  const double progress = std::min(1.0, static_cast<double>(step - o.warmup_steps) / span);
  return min_lr + 0.5 * (1.0 + std::cos(M_PI * progress)) * (o.lr - min_lr);
}

std::map<std::string, torch::Tensor> initial_weights(const ModelConfig& c, std::uint64_t seed) {
  torch::manual_seed(seed);
  const double std = 0.02, residual_std = 0.02 / std::sqrt(2.0 * static_cast<double>(c.n_layer));
  std::map<std::string, torch::Tensor> w;
  for (const auto& [name, shape] : expected_gpt2_tensors(c)) {
    const bool is_bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    const bool is_ln = name.find("ln_") != std::string::npos;
    torch::Tensor t;
    if (is_ln && !is_bias) t = torch::ones(shape);
    else if (is_bias) t = torch::zeros(shape);
    else if (name.find("c_proj.weight") != std::string::npos) t = torch::randn(shape) * residual_std;
    else t = torch::randn(shape) * std;
    w[name] = t;
  }
  return w;
}

struct Trainer::Optimizer {
  std::unique_ptr<torch::optim::AdamW> adamw;
};

Trainer::Trainer(std::shared_ptr<Gpt2Model> model, const TrainOptions& options)
    : model_(std::move(model)), options_(options), optimizer_(std::make_unique<Optimizer>()) {
  compute_dtype(options_.dtype);  // validates
  params_ = model_->named_weights();
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& [name, t] : params_) {
    if (t.scalar_type() != torch::kFloat32)
      throw std::invalid_argument("training needs fp32 master weights; '" + name + "' is " + dtype_label(t.scalar_type()));
    t.requires_grad_(true);
    // Decoupled weight decay on matrices only: not on biases or LayerNorm.
    (t.dim() >= 2 ? decay : no_decay).push_back(t);
  }
  const auto base = torch::optim::AdamWOptions(options_.lr)
                        .betas(std::make_tuple(options_.beta1, options_.beta2))
                        .eps(options_.adam_eps)
                        .weight_decay(options_.weight_decay);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(base));
  auto without_decay = std::make_unique<torch::optim::AdamWOptions>(base);
  without_decay->weight_decay(0.0);
  groups.emplace_back(no_decay, std::move(without_decay));
  optimizer_->adamw = std::make_unique<torch::optim::AdamW>(groups, base);
  if (options_.dtype == "fp16") loss_scale_ = 65536.0;
}

Trainer::~Trainer() = default;

double Trainer::forward_backward(const torch::Tensor& inputs, const torch::Tensor& targets, double grad_scale) {
  const torch::Tensor loss = mean_cross_entropy(*model_, inputs, targets, options_.gradient_checkpointing,
                                                compute_dtype(options_.dtype));
  (loss * (grad_scale * loss_scale_)).backward();
  return loss.item<double>();
}

double Trainer::evaluate(const torch::Tensor& inputs, const torch::Tensor& targets) {
  torch::NoGradGuard no_grad;
  return mean_cross_entropy(*model_, inputs, targets, false, compute_dtype(options_.dtype)).item<double>();
}

double Trainer::optimizer_step(std::int64_t step) {
  auto& adamw = *optimizer_->adamw;
  const double lr = learning_rate(step, options_);
  for (auto& group : adamw.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);

  std::vector<torch::Tensor> grads;
  for (auto& [name, p] : params_)
    if (p.grad().defined()) grads.push_back(p.mutable_grad());
  if (loss_scale_ != 1.0)
    for (auto& g : grads) g.div_(loss_scale_);
  // Global L2 norm as torch.nn.utils.clip_grad_norm_ computes it.
  std::vector<torch::Tensor> norms;
  for (const auto& g : grads) norms.push_back(g.norm());
  const double total = norms.empty() ? 0.0 : torch::stack(norms).norm().item<double>();
  if (!std::isfinite(total)) {
    adamw.zero_grad();
    if (options_.dtype == "fp16") {  // an overflow: skip the step, lower the scale
      loss_scale_ = std::max(1.0, loss_scale_ / 2);
      good_steps_ = 0;
      return std::nan("");
    }
    throw std::runtime_error("the gradient norm is not finite at step " + std::to_string(step) +
                             " (learning rate too high, or bad data)");
  }
  if (options_.grad_clip > 0) {
    const double coef = options_.grad_clip / (total + 1e-6);
    if (coef < 1.0)
      for (auto& g : grads) g.mul_(coef);
  }
  adamw.step();
  adamw.zero_grad();
  if (options_.dtype == "fp16" && ++good_steps_ % 2000 == 0) loss_scale_ *= 2;
  return total;
}

void Trainer::save_optimizer(const fs::path& file) const { torch::save(*optimizer_->adamw, file.string()); }

void Trainer::load_optimizer(const fs::path& file) { torch::load(*optimizer_->adamw, file.string()); }

void export_model(const Gpt2Model& model, const fs::path& tokenizer_dir, const fs::path& out, const std::string& dtype) {
  const torch::ScalarType type = compute_dtype(dtype);
  fs::create_directories(out);
  const auto named = model.named_weights();
  std::vector<torch::Tensor> keep;  // owns the converted data while writing
  std::vector<TensorToWrite> tensors;
  for (const auto& [name, t] : named) {
    keep.push_back(t.detach().to(torch::kCPU).to(type).contiguous());
    const torch::Tensor& c = keep.back();
    tensors.push_back({name, stored(type), c.sizes().vec(), c.data_ptr(), c.nbytes()});
  }
  write_safetensors(out / "model.safetensors", tensors);
  json config = json::parse(model.config().to_json());
  config["tie_word_embeddings"] = !named.count("lm_head.weight");
  config["torch_dtype"] = type == torch::kBFloat16 ? "bfloat16" : type == torch::kFloat16 ? "float16" : "float32";
  write_file_atomically(out / "config.json", config.dump(2) + '\n');
  bool have_vocab = false;
  for (const char* file : {"vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                           "added_tokens.json"}) {
    const fs::path src = tokenizer_dir / file;
    if (!fs::exists(src)) continue;
    if (fs::exists(out / file) && fs::equivalent(src, out / file)) continue;
    copy_file_atomically(src, out / file);
    have_vocab = have_vocab || std::string(file) == "vocab.json" || std::string(file) == "tokenizer.json";
  }
  if (!have_vocab && !fs::exists(out / "vocab.json"))
    throw std::runtime_error("no tokenizer files (vocab.json + merges.txt) in " + tokenizer_dir.string());
}

TrainResult run_training(const TrainOptions& o, const std::atomic<bool>* stop,
                         const std::function<void(const std::string&)>& progress) {
  if (o.steps <= 0 || o.batch_size <= 0 || o.seq_len <= 0 || o.grad_accum <= 0)
    throw std::invalid_argument("steps, batch size, sequence length and gradient accumulation must be positive");
  const torch::ScalarType dtype = compute_dtype(o.dtype);
  const torch::Device device = parse_device(o.device);
  if (dtype == torch::kFloat16 && !device.is_cuda()) throw std::invalid_argument("fp16 training needs a CUDA device; use bf16 on the CPU");

  const TokenStream train = TokenStream::open(o.data, "train");
  const TokenStream val = TokenStream::open(o.data, "val");
  if (train.size() <= static_cast<std::uint64_t>(o.seq_len))
    throw std::invalid_argument("the training split has " + std::to_string(train.size()) + " tokens, fewer than one sequence of " +
                                std::to_string(o.seq_len + 1));
  const DatasetMeta dataset = DatasetMeta::read(o.data);

  const fs::path checkpoint_dir = o.out / "checkpoint", previous_dir = o.out / "checkpoint.old";
  if (o.resume && !fs::exists(checkpoint_dir / "trainer.json") && fs::exists(previous_dir / "trainer.json")) {
    // killed between moving the last checkpoint aside and renaming the new one
    fs::remove_all(checkpoint_dir);
    fs::rename(previous_dir, checkpoint_dir);
  }
  const bool resuming = o.resume && fs::exists(checkpoint_dir / "trainer.json");
  if (o.resume && !resuming) spdlog::warn("no checkpoint in {}: starting a new run", checkpoint_dir.string());
  fs::path tokenizer_dir = !o.tokenizer.empty() ? o.tokenizer
                           : !o.init.empty()     ? o.init
                                                 : fs::path(dataset.tokenizer);
  if (resuming) tokenizer_dir = checkpoint_dir;

  std::shared_ptr<Gpt2Model> model;
  const LoadOptions load{torch::kFloat32, device, /*copy_weights=*/true};
  if (resuming || !o.init.empty()) {
    const fs::path from = resuming ? checkpoint_dir : o.init;
    Checkpoint ck = load_checkpoint(from, load);
    model = std::make_shared<Gpt2Model>(ck.config, ck.weights, ck.tokenizer, from.filename().string());
  } else {
    ModelConfig config = o.config;
    config.vocab_size = std::max<std::int64_t>(config.vocab_size, dataset.vocab_size);
    config.validate("training config");
    auto tokenizer = std::make_shared<const Tokenizer>(Tokenizer::from_folder(tokenizer_dir));
    auto weights = initial_weights(config, o.seed);
    for (auto& [name, t] : weights) t = t.to(device);
    model = std::make_shared<Gpt2Model>(config, weights, tokenizer, "scratch");
  }
  if (o.seq_len > model->config().n_positions)
    throw std::invalid_argument("sequence length " + std::to_string(o.seq_len) + " exceeds the model's context of " +
                                std::to_string(model->config().n_positions));
  if (dataset.vocab_size > model->config().vocab_size)
    throw std::invalid_argument("the dataset's vocabulary (" + std::to_string(dataset.vocab_size) +
                                ") is larger than the model's (" + std::to_string(model->config().vocab_size) + ")");

  Trainer trainer(model, o);
  std::int64_t start = 0;
  const json run_shape = {{"batch_size", o.batch_size}, {"seq_len", o.seq_len}, {"grad_accum", o.grad_accum},
                          {"seed", o.seed},             {"steps", o.steps},     {"lr", o.lr},
                          {"warmup_steps", o.warmup_steps}, {"dtype", o.dtype}};
  if (resuming) {
    const json state = read_json(checkpoint_dir / "trainer.json");
    if (state.value("run", json::object()) != run_shape)
      throw std::invalid_argument("--resume needs the options of the interrupted run: it had " +
                                  state.value("run", json::object()).dump() + ", now " + run_shape.dump());
    trainer.load_optimizer(checkpoint_dir / "optimizer.pt");
    start = state.at("step").get<std::int64_t>();
  }

  const std::int64_t tokens_per_step = o.batch_size * o.seq_len * o.grad_accum;
  std::ofstream log(o.out / "log.jsonl", std::ios::app);
  auto evaluate = [&]() -> double {
    if (val.size() < 2) return std::nan("");
    const std::int64_t len = std::min<std::int64_t>(o.seq_len, static_cast<std::int64_t>(val.size()) - 1);
    const std::int64_t n = std::max<std::int64_t>(1, o.eval_batches) * o.batch_size;
    const std::vector<std::uint64_t> all = evaluation_offsets(val.size(), len, n);
    double sum = 0;
    for (std::int64_t b = 0; b < n; b += o.batch_size) {
      const std::vector<std::uint64_t> offsets(all.begin() + b, all.begin() + std::min(n, b + o.batch_size));
      const torch::Tensor w = token_windows(val, offsets, len).to(device);
      sum += trainer.evaluate(w.narrow(1, 0, len), w.narrow(1, 1, len)) * static_cast<double>(offsets.size());
    }
    return sum / static_cast<double>(n);
  };
  auto save = [&](std::int64_t steps_done) {
    const fs::path tmp = o.out / "checkpoint.tmp";
    fs::remove_all(tmp);
    export_model(*model, tokenizer_dir, tmp, "fp32");
    trainer.save_optimizer(tmp / "optimizer.pt");
    sync_path(tmp / "optimizer.pt");
    // trainer.json last: a checkpoint folder is complete once it has one.
    write_file_atomically(tmp / "trainer.json", json{{"step", steps_done}, {"tokens_seen", steps_done * tokens_per_step},
                                                     {"data_position", steps_done}, {"run", run_shape}}
                                                    .dump(2) +
                                                    '\n');
    // The previous checkpoint stays until the new one has its name: a kill
    // at any point leaves checkpoint/ or checkpoint.old/ complete.
    fs::remove_all(previous_dir);
    if (fs::exists(checkpoint_dir)) fs::rename(checkpoint_dir, previous_dir);
    fs::rename(tmp, checkpoint_dir);
    sync_path(o.out);
    fs::remove_all(previous_dir);
  };

  TrainResult result;
  const auto t_start = std::chrono::steady_clock::now();
  std::int64_t step = start;
  for (; step < o.steps; ++step) {
    const auto t_step = std::chrono::steady_clock::now();
    if (stop && stop->load()) {
      result.interrupted = true;
      break;
    }
    double loss = 0;
    for (std::int64_t m = 0; m < o.grad_accum; ++m) {
      const torch::Tensor batch = training_batch(train, o, step, m).to(device);  // (B, T + 1)
      loss += trainer.forward_backward(batch.narrow(1, 0, o.seq_len), batch.narrow(1, 1, o.seq_len),
                                       1.0 / static_cast<double>(o.grad_accum));
    }
    loss /= static_cast<double>(o.grad_accum);
    const double grad_norm = trainer.optimizer_step(step);
    result.losses.push_back(loss);
    result.last_loss = loss;

    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    const auto done = step + 1 - start;
    result.tokens_per_second = static_cast<double>(done * tokens_per_step) / elapsed;
    const double eta = elapsed / static_cast<double>(done) * static_cast<double>(o.steps - step - 1);
    char line[256];
    std::snprintf(line, sizeof line, "step %lld/%lld | loss %.4f | lr %.2e | grad norm %.3f | %.0f tok/s | eta %s",
                  static_cast<long long>(step + 1), static_cast<long long>(o.steps), loss, learning_rate(step, o),
                  grad_norm, result.tokens_per_second, format_duration(eta).c_str());
    if (progress) progress(line);
    log << json{{"step", step + 1}, {"loss", loss}, {"lr", learning_rate(step, o)}, {"grad_norm", std::isfinite(grad_norm) ? json(grad_norm) : json(nullptr)},
                {"tokens_per_second", result.tokens_per_second},
                {"step_seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t_step).count()},
                {"peak_rss_bytes", peak_rss_bytes()}}
               .dump()
        << std::endl;

    if (o.eval_every > 0 && (step + 1) % o.eval_every == 0 && step + 1 < o.steps) {
      const double v = evaluate();
      result.val_loss = v;
      log << json{{"step", step + 1}, {"val_loss", v}, {"val_perplexity", std::exp(v)}}.dump() << std::endl;
      if (progress) {
        std::snprintf(line, sizeof line, "step %lld | val loss %.4f | val perplexity %.2f", static_cast<long long>(step + 1), v, std::exp(v));
        progress(line);
      }
    }
    if (o.save_every > 0 && (step + 1) % o.save_every == 0 && step + 1 < o.steps) save(step + 1);
  }
  result.steps_done = step;
  save(step);
  result.val_loss = evaluate();
  log << json{{"step", step}, {"val_loss", result.val_loss}, {"val_perplexity", std::exp(result.val_loss)}, {"final", true}}.dump()
      << std::endl;
  result.model_dir = o.out / "model";
  export_model(*model, tokenizer_dir, result.model_dir, o.export_dtype);
  result.peak_rss_bytes = peak_rss_bytes();
  return result;
}

}  // namespace inkstream::training
