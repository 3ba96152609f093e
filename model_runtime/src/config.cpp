#include "inkstream/model_runtime/config.h"

#include <nlohmann/json.hpp>

#include "inkstream/model_runtime/file_util.h"
#include "inkstream/model_runtime/errors.h"
#include "inkstream/model_runtime/json_numbers.h"

namespace inkstream {
namespace {

using Json = nlohmann::json;

std::int64_t int_field(const Json& j, const char* key, std::int64_t fallback, const std::string& origin) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  // (as the JSON number: 18446744073709551615 must not pass as -1)
  const std::optional<std::int64_t> n = json_numbers::integer<std::int64_t>(j[key], -(std::int64_t{1} << 40), std::int64_t{1} << 40);
  if (!n) throw CheckpointError(origin + ": \"" + key + "\" must be an integer of at most 2^40 (got " + j[key].dump() + ")");
  return *n;
}

}  // namespace

ModelConfig ModelConfig::parse(const std::string& json_text, const std::string& origin) {
  Json j;
  try {
    j = Json::parse(json_text);
  } catch (const Json::exception& e) {  // parse_error, or out_of_range for numbers like 1e505
    throw CheckpointError(origin + ": invalid JSON: " + e.what());
  }
  if (!j.is_object()) throw CheckpointError(origin + ": expected a JSON object");
  if (j.contains("model_type") && j["model_type"].is_string() && j["model_type"] != "gpt2")
    throw CheckpointError(origin + ": model_type \"" + j["model_type"].get<std::string>() + "\" is not gpt2");
  ModelConfig c;
  for (const char* required : {"n_embd", "n_head", "n_layer", "vocab_size"})
    if (!j.contains(required)) throw CheckpointError(origin + ": missing \"" + std::string(required) + "\"");
  c.n_embd = int_field(j, "n_embd", c.n_embd, origin);
  c.n_head = int_field(j, "n_head", c.n_head, origin);
  c.n_layer = int_field(j, "n_layer", c.n_layer, origin);
  c.vocab_size = int_field(j, "vocab_size", c.vocab_size, origin);
  c.n_positions = int_field(j, "n_positions", int_field(j, "n_ctx", c.n_positions, origin), origin);
  c.bos_token_id = int_field(j, "bos_token_id", c.bos_token_id, origin);
  c.eos_token_id = int_field(j, "eos_token_id", c.eos_token_id, origin);
  if (j.contains("layer_norm_epsilon")) {
    if (!j["layer_norm_epsilon"].is_number()) throw CheckpointError(origin + ": \"layer_norm_epsilon\" must be a number");
    c.layer_norm_epsilon = j["layer_norm_epsilon"].get<double>();
  }
  if (j.contains("scale_attn_by_inverse_layer_idx")) {
    if (!j["scale_attn_by_inverse_layer_idx"].is_boolean())
      throw CheckpointError(origin + ": \"scale_attn_by_inverse_layer_idx\" must be true or false");
    c.scale_attn_by_inverse_layer_idx = j["scale_attn_by_inverse_layer_idx"].get<bool>();
  }
  if (j.contains("activation_function")) {
    if (!j["activation_function"].is_string()) throw CheckpointError(origin + ": \"activation_function\" must be a string");
    const auto act = j["activation_function"].get<std::string>();
    if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") {
      c.activation = Activation::GeluNew;
    } else if (act == "gelu") {
      c.activation = Activation::GeluErf;
    } else {
      throw CheckpointError(origin + ": unsupported activation_function \"" + act + "\" (supported: gelu_new, gelu)");
    }
  }
  c.validate(origin);
  return c;
}

ModelConfig ModelConfig::load(const std::filesystem::path& config_json) {
  if (!std::filesystem::exists(config_json)) throw CheckpointError(config_json.string() + ": missing config.json");
  return parse(read_whole_file<CheckpointError>(config_json), config_json.string());
}

void ModelConfig::validate(const std::string& origin) const {
  auto check = [&](bool ok, const std::string& what) {
    if (!ok) throw CheckpointError(origin + ": " + what);
  };
  check(n_head >= 1 && n_head <= 1024, "n_head must be between 1 and 1024 (got " + std::to_string(n_head) + ")");
  check(n_embd >= 1 && n_embd <= 65536, "n_embd must be between 1 and 65536 (got " + std::to_string(n_embd) + ")");
  check(n_embd % n_head == 0,
        "n_embd (" + std::to_string(n_embd) + ") must be divisible by n_head (" + std::to_string(n_head) + ")");
  check(n_layer >= 1 && n_layer <= 1024, "n_layer must be between 1 and 1024 (got " + std::to_string(n_layer) + ")");
  check(n_positions >= 1 && n_positions <= (1 << 20),
        "n_positions must be between 1 and 1048576 (got " + std::to_string(n_positions) + ")");
  check(vocab_size >= 1 && vocab_size <= 10'000'000, "vocab_size must be between 1 and 10000000 (got " +
                                                         std::to_string(vocab_size) + ")");
  check(layer_norm_epsilon > 0 && layer_norm_epsilon < 1, "layer_norm_epsilon must be in (0, 1)");
  check(eos_token_id >= -1 && eos_token_id < vocab_size, "eos_token_id is outside the vocabulary");
  check(bos_token_id >= -1 && bos_token_id < vocab_size, "bos_token_id is outside the vocabulary");
}

std::string ModelConfig::to_json() const {
  Json j = {{"model_type", "gpt2"},
            {"architectures", {"GPT2LMHeadModel"}},
            {"n_embd", n_embd},
            {"n_head", n_head},
            {"n_layer", n_layer},
            {"n_positions", n_positions},
            {"n_ctx", n_positions},
            {"vocab_size", vocab_size},
            {"layer_norm_epsilon", layer_norm_epsilon},
            {"activation_function", activation == Activation::GeluNew ? "gelu_new" : "gelu"},
            {"scale_attn_by_inverse_layer_idx", scale_attn_by_inverse_layer_idx},
            {"bos_token_id", bos_token_id},
            {"eos_token_id", eos_token_id}};
  return j.dump(2) + "\n";
}

}  // namespace inkstream
