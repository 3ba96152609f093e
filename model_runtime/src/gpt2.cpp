#include "inkstream/model_runtime/gpt2.h"
#include <torch/types.h>
#include <sys/mman.h>

#include <functional>
#include <tuple>
#include <utility>

#include "inkstream/model_runtime/checkpoint.h"
#include "inkstream/model_runtime/device.h"
#include "inkstream/model_runtime/errors.h"
#include "kernels/attention.h"
#include "kernels/linear.h"
#include "layers.h"
#include "recompute.h"

namespace inkstream {

c10::ScalarType Gpt2Model::kv_dtype() const {
  if (!device().is_cpu() || compute_ != torch::kFloat32) return compute_;
  if (format_ == WeightFormat::Int8) return torch::kChar;
  if (format_ == WeightFormat::F16) return torch::kBFloat16;
  return compute_;
}

namespace {

// One layer's keys (or values) of a cache, and of its scales (int8 only),
// each 64-byte aligned in the cache's mapping.
std::size_t padded_bytes(std::size_t n) { return (n + 63) / 64 * 64; }
std::size_t tensor_bytes(const ModelConfig& config, std::int64_t batch, std::int64_t capacity, c10::ScalarType dtype) {
  return padded_bytes(static_cast<std::size_t>(batch * config.n_head * capacity * config.head_dim()) * c10::elementSize(dtype));
}
std::size_t scale_bytes(const ModelConfig& config, std::int64_t batch, std::int64_t capacity, c10::ScalarType dtype) {
  return dtype == torch::kChar ? padded_bytes(static_cast<std::size_t>(batch * config.n_head * capacity) * sizeof(float)) : 0;
}

}  // namespace

std::size_t KvCache::bytes_for(const ModelConfig& config, std::int64_t batch, std::int64_t capacity, c10::ScalarType dtype) {
  return 2 * static_cast<std::size_t>(config.n_layer) * (tensor_bytes(config, batch, capacity, dtype) + scale_bytes(config, batch, capacity, dtype));
}

KvCache::KvCache(const ModelConfig& config, std::int64_t batch, std::int64_t capacity, torch::ScalarType dtype,
                 torch::Device device)
    : batch_(batch), capacity_(capacity) {
  const auto opts = torch::TensorOptions().dtype(dtype).device(device);
  const std::vector<std::int64_t> shape = {batch, config.n_head, capacity, config.head_dim()};  // (B, H, cap, D)
  if (!device.is_cpu()) {
    TORCH_CHECK(dtype != torch::kChar, "int8 keys and values are a CPU format");
    for (std::int64_t l = 0; l < config.n_layer; ++l) {
      k.push_back(torch::empty(shape, opts));
      v.push_back(torch::empty(shape, opts));
    }
    return;
  }
  // On the CPU all layers live in one anonymous mapping: its pages become
  // resident only as positions are written (room left for typing costs
  // nothing), and a dropped cache gives its memory back to the system at
  // once. (From the heap, under the allocator settings serving uses, evicted
  // caches stayed resident and fragmented it: peak RSS grew past the
  // kv_cache_mb budget.)
  const std::size_t one = tensor_bytes(config, batch, capacity, dtype), scales = scale_bytes(config, batch, capacity, dtype);
  const std::size_t total = std::max<std::size_t>(1, bytes_for(config, batch, capacity, dtype));
  void* base = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) throw std::bad_alloc();
  const std::shared_ptr<void> region(base, [total](void* p) { munmap(p, total); });
  auto* bytes = static_cast<char*>(base);
  for (std::int64_t l = 0; l < 2 * config.n_layer; ++l) {
    (l % 2 == 0 ? k : v).push_back(torch::from_blob(bytes, shape, [region](void*) {}, opts));
    bytes += one;
    if (scales == 0) continue;
    (l % 2 == 0 ? k_scales : v_scales)
        .push_back(torch::from_blob(bytes, {batch, config.n_head, capacity}, [region](void*) {}, opts.dtype(torch::kFloat32)));
    bytes += scales;
  }
}

std::size_t KvCache::bytes() const {
  std::size_t total = 0;
  for (const auto* list : {&k, &v, &k_scales, &v_scales})
    for (const auto& t : *list) total += t.nbytes();
  return total;
}

void KvCache::keep_rows(const std::vector<std::int64_t>& rows) {
  if (static_cast<std::int64_t>(rows.size()) == batch_) return;
  const torch::Tensor index = torch::tensor(rows, torch::TensorOptions().dtype(torch::kLong)).to(k.front().device());
  for (auto* list : {&k, &v, &k_scales, &v_scales})
    for (auto& t : *list) t = t.index_select(0, index);  // (rows, H, cap, D) or (rows, H, cap)
  batch_ = static_cast<std::int64_t>(rows.size());
}

void KvCache::write(std::int64_t l, std::int64_t at, const torch::Tensor& key, const torch::Tensor& value) {
  // key, value are (B, H, T, D)
  // Checked here for every format: the int8 path below writes through raw
  // pointers, where a narrow() would have refused positions past the end.
  TORCH_CHECK(key.dim() == 4 && key.sizes() == value.sizes() && key.size(0) <= batch_ && key.size(1) == k[l].size(1) &&
                  key.size(3) == k[l].size(3),
              "KvCache::write: keys/values of shape ", key.sizes(), " do not fit a cache of shape ", k[l].sizes());
  const std::int64_t T = key.size(2);
  TORCH_CHECK(at >= 0 && at + T <= capacity_, "KvCache::write: positions [", at, ", ", at + T, ") outside the cache's ", capacity_);
  if (!quantized()) {
    k[l].narrow(2, at, T).copy_(key);
    v[l].narrow(2, at, T).copy_(value);
    return;
  }
  const std::int64_t B = key.size(0), H = key.size(1), D = key.size(3), cap = capacity_;
  for (const auto& [source, q, s] : {std::tuple{&key, &k[l], &k_scales[l]}, std::tuple{&value, &v[l], &v_scales[l]}}) {
    const torch::Tensor x = source->to(torch::kFloat32).contiguous();  // (B, H, T, D)
    TORCH_CHECK(q->is_contiguous() && s->is_contiguous(), "KV caches must be contiguous");
    for (std::int64_t bh = 0; bh < B * H; ++bh)
      kernels::quantize_kv(x.data_ptr<float>() + bh * T * D, T, D, q->data_ptr<std::int8_t>() + (bh * cap + at) * D,
                           s->data_ptr<float>() + bh * cap + at);
  }
}

torch::Tensor KvCache::read(std::int64_t l, bool values, std::int64_t rows, std::int64_t n, c10::ScalarType dtype) const {
  const torch::Tensor stored = (values ? v : k)[l].narrow(0, 0, rows).narrow(2, 0, n);  // (rows, H, n, D)
  if (!quantized()) return stored.to(dtype);
  const torch::Tensor scales = (values ? v_scales : k_scales)[l].narrow(0, 0, rows).narrow(2, 0, n).unsqueeze(-1);  // (rows, H, n, 1)
  return (stored.to(torch::kFloat32) * scales).to(dtype);
}

void KvCache::copy_prefix_from(const KvCache& other, std::int64_t n) {
  for (std::size_t l = 0; l < k.size(); ++l) {
    k[l].narrow(2, 0, n).copy_(other.k[l].narrow(2, 0, n));
    v[l].narrow(2, 0, n).copy_(other.v[l].narrow(2, 0, n));
    if (!quantized()) continue;
    k_scales[l].narrow(2, 0, n).copy_(other.k_scales[l].narrow(2, 0, n));
    v_scales[l].narrow(2, 0, n).copy_(other.v_scales[l].narrow(2, 0, n));
  }
}

std::shared_ptr<Gpt2Model> Gpt2Model::load(const std::filesystem::path& dir, const ModelLoadOptions& options) {
  const torch::Device device = parse_device(options.device);
  const Precision precision = parse_precision(options.dtype, device);
  // fp16, int8 and bf16 CPU weights are converted tensor by tensor from the
  // stored ones, mapped (where the file allows) and released as each is
  // done: only the converted weights (and small fp32 copies) stay. bf16
  // converted whole at load held the fp32 file's pages beside the bf16 copy
  // (883 MB peak for GPT-2 small), and a bf16 file's mapped pages stayed
  // beside the packed copies of its matrices.
  const bool converted = device.is_cpu() && precision.weights != WeightFormat::F32;
  Checkpoint ck = converted ? load_checkpoint(dir, {std::nullopt, device, false})
                            : load_checkpoint(dir, {precision.compute, device, options.copy_weights});
  auto model = std::make_shared<Gpt2Model>(ck.config, ck.weights, ck.tokenizer, dir.filename().string());
  ck.weights.clear();  // the relaid tensors replace these, not sit beside them
  if (converted) model->store_weights_as(precision.weights, [&ck](const torch::Tensor& t) { release_mapped_pages(ck, t); });
  model->lay_out_for_cpu_kernels();
  return model;
}

void Gpt2Model::store_weights_as(WeightFormat format, const std::function<void(const torch::Tensor&)>& release) {
  // The five large matrices change form (each old one released as soon as
  // it is replaced); everything else becomes a private copy in the compute
  // type (fp32; bf16's own) so that no tensor keeps the checkpoint's file
  // mapping alive.
  const bool tied = lm_head_.is_same(wte_);
  const torch::ScalarType compute = format == WeightFormat::BF16 ? torch::kBFloat16 : torch::kFloat32;
  auto replace = [&](torch::Tensor& m, torch::Tensor converted) {
    const torch::Tensor old = std::exchange(m, std::move(converted));
    release(old);
  };
  auto own = [&](torch::Tensor& t) { replace(t, t.to(compute, /*non_blocking=*/false, /*copy=*/true)); };
  if (format == WeightFormat::BF16) {
    // Private copies (lay_out_for_cpu_kernels then packs the matrices in place).
    own(wte_);
    if (tied) lm_head_ = wte_;
    else own(lm_head_);
    for (Gpt2Layer& w : layers_)
      for (torch::Tensor* m : {&w.c_attn_w, &w.c_proj_w, &w.c_fc_w, &w.mlp_proj_w}) own(*m);
  } else if (format == WeightFormat::F16) {
    auto half = [](const torch::Tensor& t) { return t.to(torch::kHalf, /*non_blocking=*/false, /*copy=*/true); };
    if (!tied) replace(lm_head_, half(lm_head_));
    replace(wte_, half(wte_));
    if (tied) lm_head_ = wte_;
    for (Gpt2Layer& w : layers_)
      for (torch::Tensor* m : {&w.c_attn_w, &w.c_proj_w, &w.c_fc_w, &w.mlp_proj_w}) replace(*m, layers::pack_f16_panels(*m));
  } else {
    // The (V, C) embedding and lm_head in the kernels' Conv1D form (C, V).
    if (!tied) {
      layers::Quantized h = layers::quantize_q8(lm_head_, /*transposed=*/true);
      replace(lm_head_, h.quads);
      lm_head_s_ = h.scales;
    }
    layers::Quantized e = layers::quantize_q8(wte_, /*transposed=*/true);
    replace(wte_, e.quads);
    wte_s_ = e.scales;
    if (tied) {
      lm_head_ = wte_;
      lm_head_s_ = wte_s_;
    }
    for (Gpt2Layer& w : layers_) {
      const std::pair<torch::Tensor*, torch::Tensor*> matrices[] = {
          {&w.c_attn_w, &w.c_attn_s}, {&w.c_proj_w, &w.c_proj_s}, {&w.c_fc_w, &w.c_fc_s}, {&w.mlp_proj_w, &w.mlp_proj_s}};
      for (auto [m, s] : matrices) {
        layers::Quantized q = layers::quantize_q8(*m);
        replace(*m, q.quads);
        *s = q.scales;
      }
    }
  }
  for (torch::Tensor* t : {&wpe_, &ln_f_w_, &ln_f_b_}) own(*t);
  for (Gpt2Layer& w : layers_)
    for (torch::Tensor* t : {&w.ln_1_w, &w.ln_1_b, &w.c_attn_b, &w.c_proj_b, &w.ln_2_w, &w.ln_2_b, &w.c_fc_b, &w.mlp_proj_b}) own(*t);
  compute_ = compute;
  format_ = format;
}

void Gpt2Model::lay_out_for_cpu_kernels() {
  if (!wte_.device().is_cpu() || !kernels::kernels_enabled()) return;
  if (wte_.scalar_type() == torch::kBFloat16) {
    for (Gpt2Layer& w : layers_)
      for (torch::Tensor* m : {&w.c_attn_w, &w.c_proj_w, &w.c_fc_w, &w.mlp_proj_w}) *m = layers::pack_bf16_pairs(*m, /*reuse_memory=*/true);
  }
}

Gpt2Model::Gpt2Model(ModelConfig config, const std::map<std::string, torch::Tensor>& weights,
                     std::shared_ptr<const Tokenizer> tokenizer, std::string name)
    : config_(std::move(config)), tokenizer_(std::move(tokenizer)), name_(std::move(name)) {
  auto get = [&](const std::string& key) {
    const auto it = weights.find(key);
    if (it == weights.end()) throw CheckpointError("model weights lack '" + key + "'");
    return it->second;
  };
  wte_ = get("wte.weight");
  wpe_ = get("wpe.weight");
  ln_f_w_ = get("ln_f.weight");
  ln_f_b_ = get("ln_f.bias");
  lm_head_ = weights.count("lm_head.weight") ? get("lm_head.weight") : wte_;
  compute_ = wte_.scalar_type();
  format_ = compute_ == torch::kBFloat16 ? WeightFormat::BF16 : compute_ == torch::kFloat16 ? WeightFormat::F16 : WeightFormat::F32;
  for (std::int64_t i = 0; i < config_.n_layer; ++i) {
    const std::string p = "h." + std::to_string(i) + ".";
    layers_.push_back({get(p + "ln_1.weight"), get(p + "ln_1.bias"), get(p + "attn.c_attn.weight"), get(p + "attn.c_attn.bias"),
                       get(p + "attn.c_proj.weight"), get(p + "attn.c_proj.bias"), get(p + "ln_2.weight"), get(p + "ln_2.bias"),
                       get(p + "mlp.c_fc.weight"), get(p + "mlp.c_fc.bias"), get(p + "mlp.c_proj.weight"),
                       get(p + "mlp.c_proj.bias"), {}, {}, {}, {}});
  }
}

torch::Tensor Gpt2Model::forward_hidden(const torch::Tensor& ids, KvCache* cache) const {
  // ids is (B, T)
  TORCH_CHECK(ids.dim() == 2, "ids must be (B, T)");
  const auto T = ids.size(1);
  const std::int64_t past = cache ? cache->length() : 0;
  if (past + T > config_.n_positions)
    throw InvalidRequest("sequence of " + std::to_string(past + T) + " tokens exceeds the model's context of " +
                         std::to_string(config_.n_positions));
  if (cache && past + T > cache->capacity())
    throw InvalidRequest("KV cache capacity " + std::to_string(cache->capacity()) + " exceeded");
  const torch::Tensor pos = torch::arange(past, past + T, torch::TensorOptions().dtype(torch::kLong).device(ids.device()));
  torch::Tensor x = layers::embedding(wte_, wte_s_, ids.reshape(-1), config_.n_embd, compute_).view({ids.size(0), T, config_.n_embd}) +
                    wpe_.index_select(0, pos).unsqueeze(0);  // (B, T, C)
  for (std::int64_t l = 0; l < config_.n_layer; ++l) x = block(x, l, cache);
  if (cache) cache->set_length(past + T);
  return layers::layer_norm(x, ln_f_w_, ln_f_b_, config_.layer_norm_epsilon);  // (B, T, C)
}

torch::Tensor Gpt2Model::block(const torch::Tensor& x, std::int64_t layer) const { return block(x, layer, nullptr); }

torch::Tensor Gpt2Model::block(const torch::Tensor& x_in, std::int64_t l, KvCache* cache) const {
  // x is (B, T, C)
  const Gpt2Layer& w = layers_[static_cast<std::size_t>(l)];
  torch::Tensor x = x_in + layers::attention(layers::layer_norm(x_in, w.ln_1_w, w.ln_1_b, config_.layer_norm_epsilon), w,
                                             config_, l, cache);
  return x + layers::mlp(layers::layer_norm(x, w.ln_2_w, w.ln_2_b, config_.layer_norm_epsilon), w, config_.activation);
}

std::vector<torch::Tensor> Gpt2Model::layer_parameters(std::int64_t layer) const {
  const Gpt2Layer& w = layers_.at(static_cast<std::size_t>(layer));
  return {w.ln_1_w, w.ln_1_b, w.c_attn_w, w.c_attn_b, w.c_proj_w, w.c_proj_b,
          w.ln_2_w, w.ln_2_b, w.c_fc_w, w.c_fc_b, w.mlp_proj_w, w.mlp_proj_b};
}

torch::Tensor Gpt2Model::forward_train(const torch::Tensor& ids, bool recompute_blocks) const {
  // ids is (B, T)
  TORCH_CHECK(ids.dim() == 2, "ids must be (B, T)");
  if (format_ == WeightFormat::Int8 || (format_ == WeightFormat::F16 && compute_ == torch::kFloat32))
    throw InvalidRequest("a model loaded with " + format_label(format_) + " CPU weights serves inference only; load it as fp32 or bf16 to train");
  const auto B = ids.size(0), T = ids.size(1);
  if (T > config_.n_positions)
    throw InvalidRequest("sequence of " + std::to_string(T) + " tokens exceeds the model's context of " +
                         std::to_string(config_.n_positions));
  const torch::Tensor pos = torch::arange(0, T, torch::TensorOptions().dtype(torch::kLong).device(ids.device()));
  torch::Tensor x = wte_.index_select(0, ids.reshape(-1)).view({B, T, config_.n_embd}) +
                    wpe_.index_select(0, pos).unsqueeze(0);  // (B, T, C)
  for (std::int64_t l = 0; l < config_.n_layer; ++l)
    x = recompute_blocks ? recomputed_block(*this, x, l) : block(x, l);
  x = layers::layer_norm(x, ln_f_w_, ln_f_b_, config_.layer_norm_epsilon);  // (B, T, C)
  return torch::matmul(x, lm_head_.t());                                    // (B, T, V)
}

torch::Tensor Gpt2Model::forward(const torch::Tensor& ids, KvCache* cache) const {
  const torch::Tensor h = forward_hidden(ids, cache);  // (B, T, C)
  return layers::linear_nt(h, lm_head_, lm_head_s_);   // (B, T, V)
}

torch::Tensor Gpt2Model::forward_last(const torch::Tensor& ids, KvCache* cache) const {
  const torch::Tensor h = forward_hidden(ids, cache).select(1, -1);  // (B, C)
  return layers::linear_nt(h, lm_head_, lm_head_s_);                 // (B, V)
}

torch::Tensor Gpt2Model::forward_decode(const torch::Tensor& ids, const std::vector<DecodeGroup>& groups) const {
  return forward_step(ids, groups, {});
}

torch::Tensor Gpt2Model::forward_step(const torch::Tensor& ids, const std::vector<DecodeGroup>& decode,
                                      const std::vector<PromptChunk>& chunks,
                                      const std::function<void()>& between_blocks) const {
  // ids is (R)
  TORCH_CHECK(ids.dim() == 1, "ids must be (R)");
  const auto R = ids.size(0);
  auto too_long = [&](std::int64_t n) {
    return InvalidRequest("sequence of " + std::to_string(n) + " tokens exceeds the model's context of " +
                          std::to_string(config_.n_positions));
  };
  // Every row's position, and the rows whose logits come back.
  std::vector<std::int64_t> positions, wanted;
  positions.reserve(static_cast<std::size_t>(R));
  for (const DecodeGroup& g : decode) {
    const std::int64_t pos = g.prefix_len + g.tail->length();
    if (pos >= config_.n_positions) throw too_long(pos + 1);
    TORCH_CHECK(g.tail->length() < g.tail->capacity() && g.tail->batch() == g.rows, "decode tail has no room or wrong rows");
    TORCH_CHECK(g.prefix->length() >= g.prefix_len, "decode prefix is shorter than its length");
    for (std::int64_t r = 0; r < g.rows; ++r) wanted.push_back(static_cast<std::int64_t>(positions.size()) + r);
    positions.insert(positions.end(), static_cast<std::size_t>(g.rows), pos);
  }
  for (const PromptChunk& c : chunks) {
    const std::int64_t past = c.cache->length();
    TORCH_CHECK(c.rows >= 1 && c.cache->batch() == 1, "a prompt chunk has rows and one sequence");
    if (past + c.rows > config_.n_positions) throw too_long(past + c.rows);
    if (past + c.rows > c.cache->capacity())
      throw InvalidRequest("KV cache capacity " + std::to_string(c.cache->capacity()) + " exceeded");
    for (std::int64_t t = 0; t < c.rows; ++t) positions.push_back(past + t);
    if (c.logits) wanted.push_back(static_cast<std::int64_t>(positions.size()) - 1);
  }
  TORCH_CHECK(static_cast<std::int64_t>(positions.size()) == R, "decode groups and prompt chunks do not cover the rows");
  const torch::Tensor pos = torch::tensor(positions, torch::TensorOptions().dtype(torch::kLong)).to(ids.device());
  torch::Tensor x = (layers::embedding(wte_, wte_s_, ids, config_.n_embd, compute_) + wpe_.index_select(0, pos)).view({R, 1, config_.n_embd});  // (R, 1, C)
  const layers::RowSegments segments = layers::step_segments(decode, chunks);
  for (std::int64_t l = 0; l < config_.n_layer; ++l) {
    const Gpt2Layer& w = layers_[static_cast<std::size_t>(l)];
    x = x + layers::attention_step(layers::layer_norm(x, w.ln_1_w, w.ln_1_b, config_.layer_norm_epsilon), w, config_, l, decode, chunks);
    x = x + layers::mlp(layers::layer_norm(x, w.ln_2_w, w.ln_2_b, config_.layer_norm_epsilon), w, config_.activation, segments);
    if (between_blocks) between_blocks();
  }
  // Only the rows whose logits are wanted go through ln_f and the lm_head
  // (a chunk's earlier tokens need none): the decoding rows, then one row
  // per chunk that ends its prompt.
  layers::RowSegments out_segments;
  if (!decode.empty()) out_segments.push_back(segments.front());
  for (const PromptChunk& c : chunks)
    if (c.logits) out_segments.push_back(1);
  const bool all = static_cast<std::int64_t>(wanted.size()) == R;
  if (!all) x = x.index_select(0, torch::tensor(wanted, torch::TensorOptions().dtype(torch::kLong)).to(ids.device()));
  x = layers::layer_norm(x, ln_f_w_, ln_f_b_, config_.layer_norm_epsilon).select(1, 0);  // (R', C)
  torch::Tensor logits = layers::linear_nt(x, lm_head_, lm_head_s_, out_segments);         // (R', V)
  // Lengths advance only once everything succeeded: after a failure the
  // caches are as before (their new positions are simply written again).
  for (const DecodeGroup& g : decode) g.tail->set_length(g.tail->length() + 1);
  for (const PromptChunk& c : chunks) c.cache->set_length(c.cache->length() + c.rows);
  return logits;
}

std::map<std::string, torch::Tensor> Gpt2Model::named_weights() const {
  // Packed matrices are given back in their Conv1D layout, int8 widened
  // (copies).
  const std::int64_t C = config_.n_embd;
  auto plain = [](const torch::Tensor& w, const torch::Tensor& s, std::int64_t in) {
    if (layers::is_packed(w)) return layers::unpack_bf16_pairs(w);
    if (layers::is_f16_panels(w)) return layers::unpack_f16_panels(w);
    return layers::is_q8(w) ? layers::dequantize_q8(w, s, in) : w;
  };
  auto plain_nt = [C](const torch::Tensor& w, const torch::Tensor& s) {  // int8 is kept as wᵀ
    return layers::is_q8(w) ? layers::dequantize_q8(w, s, C).t().contiguous() : w;
  };
  std::map<std::string, torch::Tensor> out = {
      {"wte.weight", plain_nt(wte_, wte_s_)}, {"wpe.weight", wpe_}, {"ln_f.weight", ln_f_w_}, {"ln_f.bias", ln_f_b_}};
  if (!lm_head_.is_same(wte_)) out["lm_head.weight"] = plain_nt(lm_head_, lm_head_s_);
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const std::string p = "h." + std::to_string(i) + ".";
    const Gpt2Layer& w = layers_[i];
    out[p + "ln_1.weight"] = w.ln_1_w;
    out[p + "ln_1.bias"] = w.ln_1_b;
    out[p + "attn.c_attn.weight"] = plain(w.c_attn_w, w.c_attn_s, C);
    out[p + "attn.c_attn.bias"] = w.c_attn_b;
    out[p + "attn.c_proj.weight"] = plain(w.c_proj_w, w.c_proj_s, C);
    out[p + "attn.c_proj.bias"] = w.c_proj_b;
    out[p + "ln_2.weight"] = w.ln_2_w;
    out[p + "ln_2.bias"] = w.ln_2_b;
    out[p + "mlp.c_fc.weight"] = plain(w.c_fc_w, w.c_fc_s, C);
    out[p + "mlp.c_fc.bias"] = w.c_fc_b;
    out[p + "mlp.c_proj.weight"] = plain(w.mlp_proj_w, w.mlp_proj_s, 4 * C);
    out[p + "mlp.c_proj.bias"] = w.mlp_proj_b;
  }
  return out;
}

std::size_t Gpt2Model::weight_bytes() const {
  std::size_t n = 0;
  auto add = [&n](const torch::Tensor& t) { n += t.defined() ? t.nbytes() : 0; };
  for (const torch::Tensor* t : {&wte_, &wte_s_, &wpe_, &ln_f_w_, &ln_f_b_}) add(*t);
  if (!lm_head_.is_same(wte_)) {
    add(lm_head_);
    add(lm_head_s_);
  }
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    for (const torch::Tensor& t : layer_parameters(static_cast<std::int64_t>(l))) add(t);
    const Gpt2Layer& w = layers_[l];
    for (const torch::Tensor* t : {&w.c_attn_s, &w.c_proj_s, &w.c_fc_s, &w.mlp_proj_s}) add(*t);
  }
  return n;
}

std::int64_t Gpt2Model::parameter_count() const {
  std::int64_t n = 0;
  for (const auto& [name, t] : named_weights()) n += t.numel();
  return n;
}

}  // namespace inkstream
