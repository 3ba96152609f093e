#pragma once
// Loading a GPT-2-family Hugging Face checkpoint folder: config.json,
// tokenizer files and weights (model.safetensors, sharded safetensors with
// model.safetensors.index.json, or pytorch_model.bin).
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "inkstream/model_runtime/config.h"
#include "inkstream/model_runtime/safetensors.h"
#include "inkstream/model_runtime/tokenizer.h"

namespace inkstream {

struct LoadOptions {
  // Compute dtype; nullopt keeps the stored dtype. When it equals the stored
  // dtype (and the data is aligned) the tensors alias the memory mapping: no copy.
  std::optional<c10::ScalarType> dtype;
  c10::Device device = c10::kCPU;
  // Copy the weights into process memory even when they could alias the
  // file mapping: ~1 s more to load GPT-2 small, ~15% faster decoding here
  // (anonymous memory gets transparent huge pages; the page cache does not).
  // Worth it for a long-running server.
  bool copy_weights = false;
};

struct TensorInfo {
  std::string name;     // as stored in the file (with any prefix)
  std::string dtype;    // as stored
  std::vector<std::int64_t> shape;
  std::string file;     // file name inside the folder
};

struct Checkpoint {
  std::filesystem::path dir;
  ModelConfig config;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::string weights_format;  // "safetensors", "safetensors (sharded, N files)" or "pytorch_model.bin"
  std::string stored_dtype;    // e.g. "F32", or "mixed"
  std::int64_t parameter_count = 0;  // unique parameters (the tied head counted once)
  std::vector<TensorInfo> table;     // every stored tensor, in file order
  // Canonical GPT-2 names without prefix: wte.weight, wpe.weight,
  // h.N.{ln_1,attn.c_attn,attn.c_proj,ln_2,mlp.c_fc,mlp.c_proj}.{weight,bias},
  // ln_f.{weight,bias}, lm_head.weight (the tied wte when absent).
  std::map<std::string, at::Tensor> weights;
  // The safetensors files the uncopied weights are views of.
  std::vector<std::shared_ptr<MappedFile>> mappings;
};

// Drops the resident pages under `t` when it is a view of one of ck's file
// mappings whose values have been copied or converted elsewhere (the
// mapping is private and unmodified: touching them again re-reads the
// file). Converting a checkpoint matrix by matrix so keeps the peak memory
// of a load near the converted size. Does nothing for any other tensor.
void release_mapped_pages(const Checkpoint& ck, const at::Tensor& t);

// Loads and validates everything; throws CheckpointError with a message that
// names the file and tensor for any problem.
Checkpoint load_checkpoint(const std::filesystem::path& dir, const LoadOptions& options = {});

// The canonical tensor names and shapes a config requires (lm_head excluded).
std::vector<std::pair<std::string, std::vector<std::int64_t>>> expected_gpt2_tensors(const ModelConfig& config);

}  // namespace inkstream
