// `inkstream train`: fine-tune a checkpoint or train from scratch.
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>

#include "commands.h"
#include "inkstream/model_runtime/device.h"
#include "inkstream/training/trainer.h"

namespace inkstream::cli {
namespace {

// Set by SIGINT/SIGTERM; a signal handler can only reach a static object.
// The trainer reads it at each step boundary and stops with a checkpoint.
std::atomic<bool> stop_requested{false};

extern "C" void request_stop(int) { stop_requested.store(true); }

struct TrainArgs {
  training::TrainOptions o;
  std::string data, out, init, tokenizer;
  std::int64_t n_layer = 6, n_head = 8, n_embd = 256, n_positions = 256;
};

}  // namespace

void add_train_command(CLI::App& root, int& exit_code) {
  auto a = std::make_shared<TrainArgs>();
  auto& o = a->o;
  CLI::App* cmd = root.add_subcommand("train", "Fine-tune a GPT-2 checkpoint or train one from scratch on a tokenized dataset");
  cmd->add_option("--data", a->data, "Dataset folder from `inkstream data tokenize`")->required();
  cmd->add_option("--out", a->out, "Run folder: checkpoint/, model/ (the exported model), log.jsonl")->required();
  cmd->add_option("--init", a->init, "Base checkpoint folder to fine-tune (default: train from scratch)");
  cmd->add_option("--tokenizer", a->tokenizer, "Tokenizer files for the export (default: the base model's or the dataset's)");
  add_number(cmd, "--n-layer", a->n_layer, 1, 1024, "From scratch: layers");
  add_number(cmd, "--n-head", a->n_head, 1, 1024, "From scratch: attention heads");
  add_number(cmd, "--n-embd", a->n_embd, 1, 65536, "From scratch: width");
  add_number(cmd, "--n-positions", a->n_positions, 1, 1048576, "From scratch: context length");
  add_number(cmd, "--steps", o.steps, 1, 1000000000.0, "Optimizer steps");
  add_number(cmd, "--batch-size", o.batch_size, 1, 65536, "Sequences per micro-batch");
  add_number(cmd, "--seq-len", o.seq_len, 1, 1048576, "Tokens per sequence");
  add_number(cmd, "--grad-accum", o.grad_accum, 1, 65536, "Micro-batches per optimizer step");
  add_number(cmd, "--lr", o.lr, 0, 10, "Peak learning rate");
  add_number(cmd, "--min-lr-ratio", o.min_lr_ratio, 0, 1, "Final learning rate as a share of --lr (cosine)");
  add_number(cmd, "--warmup", o.warmup_steps, 0, 1000000000.0, "Linear warmup steps");
  add_number(cmd, "--weight-decay", o.weight_decay, 0, 10, "AdamW decoupled weight decay (not on biases/LayerNorm)");
  add_number(cmd, "--beta1", o.beta1, 0, 1, "AdamW beta1");
  add_number(cmd, "--beta2", o.beta2, 0, 1, "AdamW beta2");
  add_number(cmd, "--grad-clip", o.grad_clip, 0, 1000000.0, "Clip the global gradient norm (0 = off)");
  cmd->add_flag("--gradient-checkpointing", o.gradient_checkpointing, "Recompute each block in backward: far less memory, ~1/3 more compute");
  cmd->add_option("--dtype", o.dtype, "fp32 | bf16 (autocast, fp32 master weights) | fp16 (CUDA)")->capture_default_str();
  cmd->add_option("--device", o.device, "cpu | cuda | cuda:N | auto")->capture_default_str();
  add_number(cmd, "--threads", o.threads, 0, 1024, "CPU threads (0 = physical cores)");
  add_number(cmd, "--seed", o.seed, 0, 18446744073709551615.0, "Seed for initialisation and batch sampling");
  add_number(cmd, "--eval-every", o.eval_every, 0, 1000000000.0, "Validation loss every K steps (0 = at the end only)");
  add_number(cmd, "--eval-batches", o.eval_batches, 0, 1000000.0, "Validation batches per evaluation");
  add_number(cmd, "--save-every", o.save_every, 0, 1000000000.0, "Checkpoint every K steps (0 = at the end / on Ctrl-C)");
  cmd->add_flag("--resume", o.resume, "Continue the run in --out from its checkpoint (same options)");
  cmd->add_option("--export-dtype", o.export_dtype, "Dtype of the exported model: fp32 | bf16 | fp16")->capture_default_str();
  cmd->footer("Ctrl-C stops at the next step with a checkpoint and an export; --resume continues exactly.");
  cmd->callback([a, &exit_code] {
    training::TrainOptions opts = a->o;
    opts.data = a->data;
    opts.out = a->out;
    opts.init = a->init;
    opts.tokenizer = a->tokenizer;
    opts.config.n_layer = a->n_layer;
    opts.config.n_head = a->n_head;
    opts.config.n_embd = a->n_embd;
    opts.config.n_positions = a->n_positions;
    std::filesystem::create_directories(opts.out);
    // Process-wide settings, once, here in the executable.
    configure_threads(opts.threads, opts.dtype == "fp32" ? c10::kFloat : c10::kBFloat16, Workload::Training);
    training::keep_training_memory_in_heap();
    std::signal(SIGINT, request_stop);
    std::signal(SIGTERM, request_stop);
    const bool tty = isatty(STDERR_FILENO);
    auto progress = [tty](const std::string& line) {
      if (tty && line.rfind("step ", 0) == 0 && line.find("val loss") == std::string::npos) std::fprintf(stderr, "\r\033[K%s", line.c_str());
      else std::fprintf(stderr, "%s%s\n", tty ? "\r\033[K" : "", line.c_str());
      std::fflush(stderr);
    };
    const auto r = training::run_training(opts, &stop_requested, progress);
    std::fprintf(stderr, "%s%s after %lld steps: train loss %.4f, val loss %.4f (perplexity %.2f), %.0f tok/s, peak memory %.2f GiB\n"
                         "checkpoint: %s/checkpoint   model: %s\n",
                 tty ? "\n" : "", r.interrupted ? "interrupted" : "done", static_cast<long long>(r.steps_done), r.last_loss,
                 r.val_loss, std::exp(r.val_loss), r.tokens_per_second, r.peak_rss_bytes / 1073741824.0, opts.out.c_str(),
                 r.model_dir.c_str());
    if (r.interrupted) std::fprintf(stderr, "resume with the same command plus --resume\n");
    exit_code = r.interrupted ? 130 : kExitOk;
  });
}

}  // namespace inkstream::cli
