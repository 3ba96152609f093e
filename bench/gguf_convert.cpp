// Writes a Hugging Face GPT-2 folder as a GGUF file (llama.cpp's format,
// architecture "gpt2") in f16 or q8_0, so that llama.cpp runs the very
// weights inkstream runs (bench/llama_cpp_bench.mjs). Matrices become
// ggml's (out, in) layout (Conv1D weights transposed); norms, biases and the
// position table stay f32; the tied head is written as output.weight.
// q8_0 blocks are llama.cpp's: 32 consecutive inputs, an fp16 scale
// max|x|/127, values round(x / scale).
//
//   gguf_convert --model DIR --out FILE.gguf --type f16|q8_0
#include <CLI/CLI.hpp>
#include <c10/util/Half.h>
#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "inkstream/model_runtime/checkpoint.h"

using namespace inkstream;

namespace {

enum GgufType : std::uint32_t { kU32 = 4, kI32 = 5, kF32 = 6, kString = 8, kArray = 9 };
enum GgmlType : std::uint32_t { kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ8_0 = 8 };
constexpr std::uint64_t kAlignment = 32;

class Writer {
 public:
  template <class T>
  void pod(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void str(const std::string& s) {
    pod<std::uint64_t>(s.size());
    out_ += s;
  }
  void bytes(const void* p, std::size_t n) { out_.append(static_cast<const char*>(p), n); }
  void pad() { out_.resize((out_.size() + kAlignment - 1) / kAlignment * kAlignment, '\0'); }
  std::size_t size() const { return out_.size(); }
  const std::string& data() const { return out_; }

 private:
  std::string out_;
};

struct Tensor {
  std::string name;
  std::vector<std::uint64_t> ne;  // ggml order: ne[0] contiguous
  GgmlType type;
  std::string data;
};

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// t (rows, cols) fp32, row-major -> ggml data of ne = {cols, rows}.
Tensor encode(const std::string& name, const torch::Tensor& t, GgmlType type) {
  const torch::Tensor c = t.to(torch::kFloat32).contiguous();
  Tensor out{name, {}, type, {}};
  const std::int64_t cols = c.dim() == 1 ? c.size(0) : c.size(1), rows = c.dim() == 1 ? 1 : c.size(0);
  out.ne = c.dim() == 1 ? std::vector<std::uint64_t>{static_cast<std::uint64_t>(cols)}
                        : std::vector<std::uint64_t>{static_cast<std::uint64_t>(cols), static_cast<std::uint64_t>(rows)};
  const float* p = c.data_ptr<float>();
  if (!torch::isfinite(c).all().item<bool>()) throw std::runtime_error(name + ": the weights hold NaN or infinite values");
  if (type == kGgmlF32) {
    out.data.assign(reinterpret_cast<const char*>(p), static_cast<std::size_t>(c.numel()) * 4);
  } else if (type == kGgmlF16) {
    for (std::int64_t i = 0; i < c.numel(); ++i) {
      const std::uint16_t h = c10::detail::fp16_ieee_from_fp32_value(p[i]);
      out.data.append(reinterpret_cast<const char*>(&h), 2);
    }
  } else {
    if (cols % 32 != 0) throw std::runtime_error(name + ": q8_0 needs rows of a multiple of 32 values");
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t b = 0; b < cols / 32; ++b) {
        const float* x = p + r * cols + b * 32;
        float amax = 0;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::abs(x[i]));
        const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        const std::uint16_t dh = c10::detail::fp16_ieee_from_fp32_value(d);
        out.data.append(reinterpret_cast<const char*>(&dh), 2);
        for (int i = 0; i < 32; ++i) out.data.push_back(static_cast<char>(static_cast<std::int8_t>(std::lround(x[i] * id))));
      }
  }
  return out;
}

}  // namespace

int convert(const std::string& model_dir, const std::string& out_path, const std::string& type_name);

int main(int argc, char** argv) {
  std::string model_dir, out_path, type_name = "f16";
  CLI::App app{"Hugging Face GPT-2 folder -> GGUF (f16 or q8_0) for llama.cpp"};
  app.add_option("--model", model_dir)->required();
  app.add_option("--out", out_path)->required();
  app.add_option("--type", type_name)->check(CLI::IsMember({"f16", "q8_0"}));
  CLI11_PARSE(app, argc, argv);
  try {
    return convert(model_dir, out_path, type_name);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

int convert(const std::string& model_dir, const std::string& out_path, const std::string& type_name) {
  const GgmlType matrix_type = type_name == "f16" ? kGgmlF16 : kGgmlQ8_0;

  const Checkpoint ck = load_checkpoint(model_dir, {torch::kFloat32, torch::kCPU, true});
  const ModelConfig& c = ck.config;
  const auto& w = ck.weights;
  std::vector<Tensor> tensors;
  auto vec = [&](const std::string& gguf, const std::string& hf) { tensors.push_back(encode(gguf, w.at(hf), kGgmlF32)); };
  // Conv1D (in, out) -> (out, in).
  auto conv = [&](const std::string& gguf, const std::string& hf) { tensors.push_back(encode(gguf, w.at(hf).t(), matrix_type)); };
  tensors.push_back(encode("token_embd.weight", w.at("wte.weight"), matrix_type));
  tensors.push_back(encode("position_embd.weight", w.at("wpe.weight"), kGgmlF32));
  for (std::int64_t l = 0; l < c.n_layer; ++l) {
    const std::string h = "h." + std::to_string(l) + ".", b = "blk." + std::to_string(l) + ".";
    vec(b + "attn_norm.weight", h + "ln_1.weight");
    vec(b + "attn_norm.bias", h + "ln_1.bias");
    conv(b + "attn_qkv.weight", h + "attn.c_attn.weight");
    vec(b + "attn_qkv.bias", h + "attn.c_attn.bias");
    conv(b + "attn_output.weight", h + "attn.c_proj.weight");
    vec(b + "attn_output.bias", h + "attn.c_proj.bias");
    vec(b + "ffn_norm.weight", h + "ln_2.weight");
    vec(b + "ffn_norm.bias", h + "ln_2.bias");
    conv(b + "ffn_up.weight", h + "mlp.c_fc.weight");
    vec(b + "ffn_up.bias", h + "mlp.c_fc.bias");
    conv(b + "ffn_down.weight", h + "mlp.c_proj.weight");
    vec(b + "ffn_down.bias", h + "mlp.c_proj.bias");
  }
  vec("output_norm.weight", "ln_f.weight");
  vec("output_norm.bias", "ln_f.bias");
  tensors.push_back(encode("output.weight", w.at("lm_head.weight"), matrix_type));

  // The tokenizer: vocab.json's byte-level strings in id order, merges.txt.
  const auto vocab = nlohmann::json::parse(read_text(std::filesystem::path(model_dir) / "vocab.json"));
  std::vector<std::string> tokens(static_cast<std::size_t>(c.vocab_size));
  for (const auto& [token, id] : vocab.items()) {
    const std::int64_t i = id.get<std::int64_t>();
    if (i < 0 || i >= c.vocab_size) throw std::runtime_error("vocab.json: id " + std::to_string(i) + " of '" + token + "' is outside the vocabulary");
    tokens[static_cast<std::size_t>(i)] = token;
  }
  for (std::size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i].empty()) tokens[i] = "[PAD" + std::to_string(i) + "]";
  std::vector<std::string> merges;
  {
    std::istringstream in(read_text(std::filesystem::path(model_dir) / "merges.txt"));
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && !line.starts_with("#version")) merges.push_back(line);
  }

  Writer f;
  f.pod<std::uint32_t>(0x46554747u);  // "GGUF"
  f.pod<std::uint32_t>(3);
  f.pod<std::uint64_t>(tensors.size());
  std::uint64_t kv_count = 0;
  Writer kv;
  auto kv_str = [&](const std::string& k, const std::string& v) { kv.str(k), kv.pod<std::uint32_t>(kString), kv.str(v), ++kv_count; };
  auto kv_u32 = [&](const std::string& k, std::uint32_t v) { kv.str(k), kv.pod<std::uint32_t>(kU32), kv.pod(v), ++kv_count; };
  auto kv_f32 = [&](const std::string& k, float v) { kv.str(k), kv.pod<std::uint32_t>(kF32), kv.pod(v), ++kv_count; };
  auto kv_strings = [&](const std::string& k, const std::vector<std::string>& v) {
    kv.str(k), kv.pod<std::uint32_t>(kArray), kv.pod<std::uint32_t>(kString), kv.pod<std::uint64_t>(v.size());
    for (const auto& s : v) kv.str(s);
    ++kv_count;
  };
  kv_str("general.architecture", "gpt2");
  kv_str("general.name", std::filesystem::path(model_dir).filename().string());
  kv_u32("general.file_type", matrix_type == kGgmlF16 ? 1 : 7);
  kv_u32("gpt2.context_length", static_cast<std::uint32_t>(c.n_positions));
  kv_u32("gpt2.embedding_length", static_cast<std::uint32_t>(c.n_embd));
  kv_u32("gpt2.feed_forward_length", static_cast<std::uint32_t>(4 * c.n_embd));
  kv_u32("gpt2.block_count", static_cast<std::uint32_t>(c.n_layer));
  kv_u32("gpt2.attention.head_count", static_cast<std::uint32_t>(c.n_head));
  kv_f32("gpt2.attention.layer_norm_epsilon", static_cast<float>(c.layer_norm_epsilon));
  kv_str("tokenizer.ggml.model", "gpt2");
  kv_str("tokenizer.ggml.pre", "gpt-2");
  kv_strings("tokenizer.ggml.tokens", tokens);
  kv.str("tokenizer.ggml.token_type"), kv.pod<std::uint32_t>(kArray), kv.pod<std::uint32_t>(kI32), kv.pod<std::uint64_t>(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) kv.pod<std::int32_t>(static_cast<std::int64_t>(i) == c.eos_token_id ? 3 : 1);  // control : normal
  ++kv_count;
  kv_strings("tokenizer.ggml.merges", merges);
  kv_u32("tokenizer.ggml.bos_token_id", static_cast<std::uint32_t>(c.bos_token_id));
  kv_u32("tokenizer.ggml.eos_token_id", static_cast<std::uint32_t>(c.eos_token_id));
  f.pod<std::uint64_t>(kv_count);
  f.bytes(kv.data().data(), kv.size());
  std::uint64_t offset = 0;
  for (const Tensor& t : tensors) {
    f.str(t.name);
    f.pod<std::uint32_t>(static_cast<std::uint32_t>(t.ne.size()));
    for (const std::uint64_t n : t.ne) f.pod(n);
    f.pod<std::uint32_t>(t.type);
    f.pod(offset);
    offset = (offset + t.data.size() + kAlignment - 1) / kAlignment * kAlignment;
  }
  f.pad();
  std::ofstream out(out_path, std::ios::binary);
  out.write(f.data().data(), static_cast<std::streamsize>(f.size()));
  for (const Tensor& t : tensors) {
    out.write(t.data.data(), static_cast<std::streamsize>(t.data.size()));
    const std::size_t pad = (kAlignment - t.data.size() % kAlignment) % kAlignment;
    out.write(std::string(pad, '\0').data(), static_cast<std::streamsize>(pad));
  }
  if (!out) throw std::runtime_error("cannot write " + out_path);
  std::cerr << out_path << ": " << tensors.size() << " tensors, " << type_name << "\n";
  return 0;
}
