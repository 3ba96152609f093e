// `inkstream inspect DIR`: what a checkpoint folder holds, or why it is unusable.
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "inkstream/model_runtime/checkpoint.h"
#include "inkstream/model_runtime/errors.h"

namespace inkstream::cli {
namespace {

struct InspectOptions {
  std::string dir;
  bool json = false;
};

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int run(const InspectOptions& o) {
  Checkpoint ck;
  try {
    ck = load_checkpoint(o.dir);  // stored dtype: nothing is converted or copied
  } catch (const CheckpointError& e) {
    if (o.json) {
      std::cout << nlohmann::json{{"ok", false}, {"error", e.what()}}.dump() << "\n";
    } else {
      std::cerr << "error: " << e.what() << "\n";
    }
    return kExitBadCheckpoint;
  }
  const ModelConfig& c = ck.config;
  if (o.json) {
    nlohmann::json tensors = nlohmann::json::array();
    for (const auto& t : ck.table) tensors.push_back({{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}, {"file", t.file}});
    nlohmann::json out = {{"ok", true},
                          {"dir", ck.dir.string()},
                          {"config", nlohmann::json::parse(c.to_json())},
                          {"weights_format", ck.weights_format},
                          {"dtype", ck.stored_dtype},
                          {"parameters", ck.parameter_count},
                          {"tokenizer_vocab_size", ck.tokenizer->vocab_size()},
                          {"tensors", tensors}};
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  std::printf("model folder   %s\n", ck.dir.c_str());
  std::printf("weights        %s, %s\n", ck.weights_format.c_str(), ck.stored_dtype.c_str());
  std::printf("parameters     %lld (%.1f M)\n", static_cast<long long>(ck.parameter_count), ck.parameter_count / 1e6);
  std::printf("layers         %lld   heads %lld   width %lld   context %lld   vocab %lld\n",
              static_cast<long long>(c.n_layer), static_cast<long long>(c.n_head), static_cast<long long>(c.n_embd),
              static_cast<long long>(c.n_positions), static_cast<long long>(c.vocab_size));
  std::printf("activation     %s   layer_norm_epsilon %g   scale_attn_by_inverse_layer_idx %s\n",
              c.activation == Activation::GeluNew ? "gelu_new" : "gelu", c.layer_norm_epsilon,
              c.scale_attn_by_inverse_layer_idx ? "true" : "false");
  std::printf("tokenizer      %d tokens, end-of-text id %d\n", ck.tokenizer->vocab_size(), ck.tokenizer->end_of_text_id());
  std::printf("\n%-44s %-6s %-18s %s\n", "tensor", "dtype", "shape", "file");
  for (const auto& t : ck.table)
    std::printf("%-44s %-6s %-18s %s\n", t.name.c_str(), t.dtype.c_str(), shape_text(t.shape).c_str(), t.file.c_str());
  return kExitOk;
}

}  // namespace

void add_inspect_command(CLI::App& root, int& exit_code) {
  auto opts = std::make_shared<InspectOptions>();
  CLI::App* cmd = root.add_subcommand("inspect", "Show a model folder's config, dtype, parameter count and tensors");
  cmd->add_option("dir", opts->dir, "Hugging Face GPT-2 checkpoint folder")->required();
  cmd->add_flag("--json", opts->json, "Machine-readable output");
  cmd->footer("Exit codes: 0 ok, 2 the checkpoint is invalid (the message names the file and tensor), 1 other failures.");
  cmd->callback([opts, &exit_code] { exit_code = run(*opts); });
}

}  // namespace inkstream::cli
