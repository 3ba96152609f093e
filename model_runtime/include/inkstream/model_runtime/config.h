#pragma once
// GPT-2 hyper-parameters from a Hugging Face `config.json`.
#include <cstdint>
#include <filesystem>
#include <string>

namespace inkstream {

enum class Activation { GeluNew, GeluErf };

struct ModelConfig {
  std::int64_t n_embd = 768;
  std::int64_t n_head = 12;
  std::int64_t n_layer = 12;
  std::int64_t n_positions = 1024;  // older configs call it n_ctx
  std::int64_t vocab_size = 50257;
  double layer_norm_epsilon = 1e-5;
  Activation activation = Activation::GeluNew;
  bool scale_attn_by_inverse_layer_idx = false;
  std::int64_t bos_token_id = 50256;
  std::int64_t eos_token_id = 50256;

  std::int64_t head_dim() const { return n_embd / n_head; }

  // Parses and validates config.json text; throws CheckpointError naming
  // `origin` and the offending key.
  static ModelConfig parse(const std::string& json_text, const std::string& origin);
  static ModelConfig load(const std::filesystem::path& config_json);
  // Throws CheckpointError when values are out of range.
  void validate(const std::string& origin) const;
  // Serialises as a Hugging Face GPT2Config.
  std::string to_json() const;
};

}  // namespace inkstream
