#pragma once
// GPT-2 on libtorch: the one model definition, used for serving (with a KV
// cache, under inference mode) and for training (autograd through the same
// code).
//
// Threading contract: a loaded Gpt2Model is immutable. Any number of threads
// may call forward() at once, each with its own KvCache; nothing in the model
// changes after load. (A trainer owns its model and is the only writer.)
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "inkstream/model_runtime/config.h"
#include "inkstream/model_runtime/device.h"
#include "inkstream/model_runtime/tokenizer.h"

namespace inkstream {

struct ModelLoadOptions {
  std::string device = "auto";  // see parse_device
  std::string dtype = "auto";   // weight format: see parse_precision
  bool copy_weights = false;    // see LoadOptions::copy_weights
};

// Keys and values of every layer for a batch of sequences that advance in
// lockstep (the N alternatives of one request). Preallocated to `capacity`
// positions, written in place: no per-step concatenation.
class KvCache {
 public:
  // k[l], v[l] are (B, H, capacity, D) of `dtype`: fp32, bf16, or int8
  // (kChar, CPU only) with k_scales[l], v_scales[l] (B, H, capacity) fp32,
  // one scale per key or value vector (kernels::quantize_kv), else empty.
  KvCache(const ModelConfig& config, std::int64_t batch, std::int64_t capacity, c10::ScalarType dtype, c10::Device device);
  // What such a cache takes (keys, values and scales).
  static std::size_t bytes_for(const ModelConfig& config, std::int64_t batch, std::int64_t capacity, c10::ScalarType dtype);

  std::int64_t batch() const { return batch_; }
  std::int64_t capacity() const { return capacity_; }
  std::int64_t length() const { return length_; }  // positions filled
  void set_length(std::int64_t n) { length_ = n; }
  std::size_t bytes() const;
  bool quantized() const { return !k_scales.empty(); }

  // Keeps only the given rows, in order (finished alternatives stop costing).
  void keep_rows(const std::vector<std::int64_t>& rows);
  // Layer l's keys and values of T positions [at, at + T) of rows [0, B):
  // key, value (B, H, T, D) in any float dtype, stored in the cache's
  // (int8 quantized per vector).
  void write(std::int64_t l, std::int64_t at, const at::Tensor& key, const at::Tensor& value);
  // Layer l's keys (or values) of positions [0, n) of rows [0, rows) as
  // `dtype`: (rows, H, n, D), int8 ones as q · scale in fp32 (the numbers
  // the kernels read) before the cast.
  at::Tensor read(std::int64_t l, bool values, std::int64_t rows, std::int64_t n, c10::ScalarType dtype) const;
  // Positions [0, n) of every layer (keys, values, scales) from `other`
  // (same dtype and batch).
  void copy_prefix_from(const KvCache& other, std::int64_t n);

  std::vector<at::Tensor> k, v, k_scales, v_scales;

 private:
  std::int64_t batch_, capacity_, length_ = 0;
};

// Rows of one request in a batched decoding step (see forward_decode): they
// share the keys/values of its prompt (`prefix`, batch 1, positions
// [0, prefix_len)) and each has its own row of `tail` holding the keys and
// values of the tokens it generated (positions prefix_len + [0, tail->length())).
struct DecodeGroup {
  KvCache* prefix = nullptr;
  std::int64_t prefix_len = 0;
  KvCache* tail = nullptr;  // batch == rows
  std::int64_t rows = 0;
};

// A prompt chunk in a mixed step (see forward_step): the next `rows` tokens
// of the one sequence in `cache` (batch 1), at positions cache->length() +
// [0, rows); their keys/values are written there and its length advances.
struct PromptChunk {
  KvCache* cache = nullptr;
  std::int64_t rows = 0;
  bool logits = false;  // the prompt ends here: return the logits of its last token
};

// Per-layer weights, Conv1D layout (in, out) as in Hugging Face checkpoints.
// A model loaded for serving on the CPU may keep its four matrices in
// another form (see WeightFormat): bf16 packed in k pairs (int32
// (ceil(in/2), out) elements in panels of columns: kernels/linear.h's
// pack_bf16_pairs, the operand layout of its kernels), fp16, or int8 with
// block scales in the *_s tensors
// (fp32 (ceil(in/32), out)); the *_s are undefined otherwise.
struct Gpt2Layer {
  at::Tensor ln_1_w, ln_1_b;
  at::Tensor c_attn_w, c_attn_b;  // (C, 3C), (3C)
  at::Tensor c_proj_w, c_proj_b;  // (C, C), (C)
  at::Tensor ln_2_w, ln_2_b;
  at::Tensor c_fc_w, c_fc_b;        // (C, 4C), (4C)
  at::Tensor mlp_proj_w, mlp_proj_b;  // (4C, C), (C)
  at::Tensor c_attn_s, c_proj_s, c_fc_s, mlp_proj_s;
};

class Gpt2Model {
 public:
  // Loads a Hugging Face folder for serving in the weight format of
  // options.dtype (any stored dtype converts); throws CheckpointError /
  // InvalidRequest. On the CPU a bf16, fp16 or int8 model's matrices are
  // laid out for the kernels (see Gpt2Layer): such a model serves inference
  // only. Quantizing GPT-2 small to int8 takes well under a second.
  static std::shared_ptr<Gpt2Model> load(const std::filesystem::path& dir, const ModelLoadOptions& options = {});

  // From canonical-name weights (see Checkpoint::weights), already on the
  // target device and dtype.
  Gpt2Model(ModelConfig config, const std::map<std::string, at::Tensor>& weights,
            std::shared_ptr<const Tokenizer> tokenizer, std::string name = "");

  // ids is (B, T) int64. With a cache, positions continue from
  // cache->length(), new keys/values are written into it and its length
  // advances by T; without one, attention covers just these T tokens.
  // Returns the hidden states after ln_f, (B, T, C).
  at::Tensor forward_hidden(const at::Tensor& ids, KvCache* cache = nullptr) const;
  // Logits for every position, (B, T, V).
  at::Tensor forward(const at::Tensor& ids, KvCache* cache = nullptr) const;
  // Logits of the last position only, (B, V): what generation needs.
  at::Tensor forward_last(const at::Tensor& ids, KvCache* cache = nullptr) const;

  // One decoding step of many sequences of different lengths (continuous
  // batching): ids is (R) int64, one token per row, rows grouped as
  // `groups` says (in order, sum of rows == R). Each row's token sits at
  // position prefix_len + tail->length() of its group; its key/value is
  // appended to its tail row and every tail's length advances by one.
  // Returns the logits (R, V). On the CPU in fp32 a row's result does not
  // depend on the other rows (kernels/linear.h).
  at::Tensor forward_decode(const at::Tensor& ids, const std::vector<DecodeGroup>& groups) const;

  // One step of continuous batching with chunked prefill: decoding rows (as
  // forward_decode) and prompt chunks of other sequences in one forward, so
  // the weights are read once for all of them. ids is (R) int64: the
  // decoding rows' tokens, then each chunk's tokens in order. Returns the
  // logits (R', V) of the decoding rows, then of the last token of each
  // chunk with `logits` set. A chunk's numbers are those of forward_last on
  // it alone, the decoding rows' those of forward_decode on them: on the CPU
  // products are batch-invariant (kernels/linear.h; bf16 where libtorch is
  // native runs each chunk's products apart) and attention is per group.
  // Cache lengths advance only when the whole step succeeded.
  // `between_blocks`, when set, runs on the calling thread after each
  // transformer block: a scheduler may run other forwards there, of other
  // sequences (the model is immutable), so that a newcomer does not wait
  // for the whole of a long step; it must not touch this step's caches.
  at::Tensor forward_step(const at::Tensor& ids, const std::vector<DecodeGroup>& decode,
                          const std::vector<PromptChunk>& chunks,
                          const std::function<void()>& between_blocks = {}) const;

  // Training forward: ids is (B, T) int64 -> logits (B, T, V), no cache, with
  // autograd. With `recompute_blocks` (gradient checkpointing) each block
  // keeps only its input for backward and runs again there: activation
  // memory of one block instead of all, for ~1/3 more compute.
  at::Tensor forward_train(const at::Tensor& ids, bool recompute_blocks) const;

  // One transformer block without cache: x is (B, T, C) -> (B, T, C).
  at::Tensor block(const at::Tensor& x, std::int64_t layer) const;
  // The 12 tensors of block `layer`, in Gpt2Layer order.
  std::vector<at::Tensor> layer_parameters(std::int64_t layer) const;

  const ModelConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  std::shared_ptr<const Tokenizer> tokenizer_ptr() const { return tokenizer_; }
  c10::Device device() const { return wte_.device(); }
  // The dtype of activations and KV caches (fp32 for a CPU model with fp16
  // or int8 weights).
  c10::ScalarType dtype() const { return compute_; }
  // The dtype of the engine's KV caches: for a CPU model with fp16 weights
  // bf16, with int8 weights int8 (kChar, a scale per vector: the quantized
  // format throughout), both with fp32 activations: many-request decoding
  // steps are bound by reading the caches — half (a quarter) of fp32's
  // bytes per step and two (nearly four) times the prompts in a
  // kv_cache_mb; else dtype() (fp32 stays exact). Keys and values are
  // rounded once, when written, on every path alike.
  c10::ScalarType kv_dtype() const;
  WeightFormat weight_format() const { return format_; }
  const std::string& name() const { return name_; }
  // Canonical names -> tensors (shared, not copied; packed or int8 matrices
  // come back as Conv1D-layout copies, int8 widened to fp32); lm_head
  // omitted when tied.
  std::map<std::string, at::Tensor> named_weights() const;
  std::int64_t parameter_count() const;
  // Bytes the weights occupy as stored (their format, scales included; a
  // tied lm_head once).
  std::size_t weight_bytes() const;

 private:
  at::Tensor block(const at::Tensor& x, std::int64_t layer, KvCache* cache) const;
  void lay_out_for_cpu_kernels();
  void store_weights_as(WeightFormat format, const std::function<void(const at::Tensor&)>& release);

  ModelConfig config_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::string name_;
  at::Tensor wte_, wpe_, ln_f_w_, ln_f_b_, lm_head_;
  at::Tensor wte_s_, lm_head_s_;  // int8 block scales, else undefined
  std::vector<Gpt2Layer> layers_;
  c10::ScalarType compute_;
  WeightFormat format_;
};

}  // namespace inkstream
