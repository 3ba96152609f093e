#pragma once
// `inkstream train`: GPT-2 training with libtorch autograd on the runtime's
// own model code (Gpt2Model::forward_train): AdamW with decoupled weight
// decay (none on biases and LayerNorm), warmup + cosine learning rate,
// gradient accumulation and clipping, optional gradient checkpointing,
// mixed precision, exact checkpoint/resume, and export to a Hugging Face
// folder the runtime (and transformers) loads as-is.
#include <ATen/core/Tensor.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "inkstream/model_runtime/config.h"
#include "inkstream/model_runtime/gpt2.h"

namespace inkstream::training {

struct TrainOptions {
  std::filesystem::path data;  // tokenized dataset (token_dataset.h)
  std::filesystem::path out;   // run folder: checkpoint/, model/, log.jsonl
  std::filesystem::path init;  // base checkpoint folder to fine-tune; empty = from scratch with `config`
  ModelConfig config;          // shape for training from scratch
  std::filesystem::path tokenizer;  // tokenizer files for the export; default: the base checkpoint or the dataset's

  std::int64_t steps = 1000;       // optimizer steps
  std::int64_t batch_size = 8;     // sequences per micro-batch
  std::int64_t seq_len = 256;      // tokens per sequence
  std::int64_t grad_accum = 1;     // micro-batches per optimizer step
  double lr = 3e-4;
  double min_lr_ratio = 0.1;       // the cosine ends at lr * min_lr_ratio
  std::int64_t warmup_steps = 100;
  double weight_decay = 0.1;
  double beta1 = 0.9, beta2 = 0.95, adam_eps = 1e-8;
  double grad_clip = 1.0;          // max global gradient norm; 0 = off
  bool gradient_checkpointing = false;
  std::string dtype = "fp32";      // fp32 | bf16 (autocast; fp32 master weights) | fp16 (CUDA, loss scaling)
  std::string device = "cpu";
  int threads = 0;                 // 0 = physical cores
  std::uint64_t seed = 1337;
  std::int64_t eval_every = 100;   // 0 = only at the end
  std::int64_t eval_batches = 10;
  std::int64_t save_every = 500;   // 0 = only at the end / on interrupt
  bool resume = false;             // continue from OUT/checkpoint
  std::string export_dtype = "fp32";  // fp32 | bf16 | fp16
};

// Learning rate of optimizer step `step` (0-based): linear warmup to `lr`
// over warmup_steps, then cosine decay to lr * min_lr_ratio at `steps`.
double learning_rate(std::int64_t step, const TrainOptions& options);

// Fresh GPT-2 weights as Hugging Face initialises them: N(0, 0.02), the two
// residual projections N(0, 0.02 / sqrt(2 * n_layer)), zero biases, unit
// LayerNorm. Canonical names (see Checkpoint::weights), fp32, CPU.
std::map<std::string, at::Tensor> initial_weights(const ModelConfig& config, std::uint64_t seed);

// The optimisation core, usable without files (the golden tests drive it).
class Trainer {
 public:
  // The model's weights must be fp32 leaf tensors owned by this trainer
  // (load with copy_weights); they become trainable and are updated in place.
  Trainer(std::shared_ptr<Gpt2Model> model, const TrainOptions& options);
  ~Trainer();

  // One micro-batch: inputs and targets are (B, T) int64. Adds the
  // gradients of loss * grad_scale to the parameters; returns the
  // (unscaled) mean cross-entropy.
  double forward_backward(const at::Tensor& inputs, const at::Tensor& targets, double grad_scale = 1.0);
  // Mean cross-entropy without gradients.
  double evaluate(const at::Tensor& inputs, const at::Tensor& targets);
  // Clips, sets the learning rate of `step`, updates, zeroes the gradients.
  // Returns the gradient norm before clipping (NaN when fp16 loss scaling
  // skipped the step).
  double optimizer_step(std::int64_t step);

  // Canonical name -> trainable tensor (lm_head omitted when tied).
  const std::map<std::string, at::Tensor>& parameters() const { return params_; }
  Gpt2Model& model() { return *model_; }

  void save_optimizer(const std::filesystem::path& file) const;
  void load_optimizer(const std::filesystem::path& file);
  double loss_scale() const { return loss_scale_; }

 private:
  struct Optimizer;
  std::shared_ptr<Gpt2Model> model_;
  TrainOptions options_;
  std::map<std::string, at::Tensor> params_;
  std::unique_ptr<Optimizer> optimizer_;
  double loss_scale_ = 1.0;  // fp16 only
  std::int64_t good_steps_ = 0;
};

// Writes a Hugging Face GPT-2 folder: config.json, model.safetensors (keys
// and Conv1D layout of the original GPT-2, lm_head tied), and the tokenizer
// files found in tokenizer_dir.
void export_model(const Gpt2Model& model, const std::filesystem::path& tokenizer_dir, const std::filesystem::path& out,
                  const std::string& dtype = "fp32");

struct TrainResult {
  std::int64_t steps_done = 0;
  double last_loss = 0, val_loss = 0;
  bool interrupted = false;
  std::filesystem::path model_dir;
  std::vector<double> losses;  // per optimizer step, this run
  double tokens_per_second = 0;
  std::int64_t peak_rss_bytes = 0;
};

// The whole run: data, schedule, evaluation, checkpoints, progress, export.
// `stop` (e.g. set by SIGINT) ends the run at the next step boundary with a
// checkpoint. `progress` receives one human-readable line per step.
// Process-wide memory policy for training (glibc keeps every block in the
// heap: fresh mmap()ed buffers for the (B, T, V) logits made steps ~3x
// slower). Called once by the executable before run_training, as is
// configure_threads(threads, dtype, Workload::Training).
void keep_training_memory_in_heap();

TrainResult run_training(const TrainOptions& options, const std::atomic<bool>* stop,
                         const std::function<void(const std::string&)>& progress);

}  // namespace inkstream::training
