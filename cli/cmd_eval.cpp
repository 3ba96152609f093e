// `inkstream eval`: validation loss and perplexity of a model on a tokenized
// dataset, in any weight format (to compare formats, or a fine-tune with its
// base, on one's own text).
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "default_model.h"
#include "inkstream/model_runtime/device.h"
#include "inkstream/model_runtime/errors.h"
#include "inkstream/training/evaluation.h"

namespace inkstream::cli {
namespace {

struct EvalArgs {
  std::string model, data, split = "val", device = "auto", dtype = "auto";
  training::EvaluationOptions o;
  int threads = 0;
  bool json = false;
};

int run(const EvalArgs& a) {
  const std::filesystem::path dir = a.model.empty() ? default_model_dir() : std::filesystem::path(a.model);
  if (dir.empty()) throw InvalidRequest("no model: pass --model DIR (the bundled default model was not found)");
  keep_freed_memory_for_inference();  // process-wide, once, by the executable
  allow_matrix_tiles();
  const auto model = Gpt2Model::load(dir, {a.device, a.dtype, /*copy_weights=*/true});
  configure_threads(a.threads, model->dtype());
  const training::TokenStream split = training::TokenStream::open(a.data, a.split);
  const training::Evaluation e = training::evaluate(*model, split, a.o);
  if (a.json) {
    std::cout << nlohmann::json{{"model", dir.string()}, {"dtype", format_label(model->weight_format())}, {"split", a.split},
                                {"windows", e.windows}, {"tokens", e.tokens}, {"loss", e.loss}, {"perplexity", e.perplexity}}
                     .dump()
              << "\n";
  } else {
    std::printf("%s (%s), %s split: loss %.4f, perplexity %.2f over %lld tokens (%lld windows)\n", dir.filename().c_str(),
                format_label(model->weight_format()).c_str(), a.split.c_str(), e.loss, e.perplexity, static_cast<long long>(e.tokens),
                static_cast<long long>(e.windows));
  }
  return kExitOk;
}

}  // namespace

void add_eval_command(CLI::App& root, int& exit_code) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* cmd = root.add_subcommand("eval", "Validation loss and perplexity of a model on a tokenized dataset (any --dtype)");
  cmd->add_option("--model", a->model, "Model folder (default: the bundled model)");
  cmd->add_option("--data", a->data, "Dataset folder from `inkstream data tokenize`")->required();
  cmd->add_option("--split", a->split, "val or train")->check(CLI::IsMember({"val", "train"}))->capture_default_str();
  cmd->add_option("--device", a->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--dtype", a->dtype, "auto, fp32, bf16, fp16 or int8 (CPU)")->capture_default_str();
  cmd->add_option("--seq-len", a->o.seq_len, "Tokens predicted per window")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  cmd->add_option("--windows", a->o.windows, "Windows spread evenly over the split (the trainer's: 20 batches x 8)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--threads", a->threads, "CPU threads (0 = physical cores)")->check(CLI::Range(0, 1024));
  cmd->add_flag("--json", a->json, "One JSON object on stdout");
  cmd->callback([a, &exit_code] { exit_code = run(*a); });
}

}  // namespace inkstream::cli
