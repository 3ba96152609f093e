#include "inkstream/model_runtime/checkpoint.h"
#include <torch/types.h>

#include <sys/mman.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <torch/serialize.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "inkstream/model_runtime/file_util.h"
#include "inkstream/model_runtime/errors.h"

namespace inkstream {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string shape_str(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

// "transformer.h.0.ln_1.weight" -> "h.0.ln_1.weight"; buffers -> "".
std::string canonical_name(const std::string& stored) {
  std::string name = stored;
  if (name.starts_with("transformer.")) name = name.substr(12);
  if (name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias")) return "";
  return name;
}

std::optional<torch::ScalarType> torch_dtype(StoredDtype d) {
  switch (d) {
    case StoredDtype::F32: return torch::kFloat32;
    case StoredDtype::F16: return torch::kFloat16;
    case StoredDtype::BF16: return torch::kBFloat16;
    default: return std::nullopt;
  }
}

// Drops the resident pages of a range of a private, unmodified file
// mapping: a later read re-reads the file.
void drop_pages(const void* ptr, std::size_t nbytes) {
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(ptr) / page * page;
  const auto end = (reinterpret_cast<std::uintptr_t>(ptr) + nbytes + page - 1) / page * page;
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

// Wraps mapped bytes as a tensor without copying; the tensor keeps the
// mapping alive. Misaligned data is copied (kernels may assume alignment).
torch::Tensor tensor_from_mapping(const TensorEntry& e, torch::ScalarType dtype, const std::shared_ptr<MappedFile>& mapping,
                                  bool copy) {
  auto* ptr = const_cast<std::byte*>(e.data);
  const auto options = torch::TensorOptions().dtype(dtype);
  if (e.nbytes == 0) return torch::empty(e.shape, options);
  if (copy || reinterpret_cast<std::uintptr_t>(ptr) % torch::elementSize(dtype) != 0) {
    torch::Tensor owned = torch::from_blob(ptr, e.shape, options).clone();
    // The mapped pages just read would stay resident until the whole file is
    // unmapped, doubling the peak memory of a load: drop them now.
    drop_pages(ptr, e.nbytes);
    return owned;
  }
  return torch::from_blob(ptr, e.shape, [mapping](void*) {}, options);
}

std::string stored_dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return "F32";
    case torch::kFloat16: return "F16";
    case torch::kBFloat16: return "BF16";
    default: return "other";
  }
}

struct StoredTensor {
  std::string stored_name;
  std::string file;
  torch::Tensor tensor;  // stored dtype, on CPU
};

// Reads weights from safetensors file(s) into name -> tensor (stored dtype).
void read_safetensors(const fs::path& path, std::vector<StoredTensor>& out, std::vector<TensorInfo>& table, bool copy,
                      std::vector<std::shared_ptr<MappedFile>>& mappings) {
  const SafetensorsFile file = SafetensorsFile::open(path);
  if (!copy) mappings.push_back(file.mapping());
  // File order = data order, which is how a person reading `inspect` expects it.
  std::vector<std::pair<const std::string*, const TensorEntry*>> ordered;
  for (const auto& [name, entry] : file.tensors()) ordered.emplace_back(&name, &entry);
  std::sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) { return a.second->data < b.second->data; });
  for (const auto& [name, entry] : ordered) {
    table.push_back({*name, dtype_name(entry->dtype), entry->shape, path.filename().string()});
    const std::string canon = canonical_name(*name);
    if (canon.empty()) continue;  // mask buffers
    const auto dtype = torch_dtype(entry->dtype);
    if (!dtype)
      throw CheckpointError(path.string() + ": tensor '" + *name + "' has dtype " + dtype_name(entry->dtype) +
                            "; weights must be F32, F16 or BF16");
    out.push_back({*name, path.filename().string(), tensor_from_mapping(*entry, *dtype, file.mapping(), copy)});
  }
}

void read_sharded(const fs::path& index_path, std::vector<StoredTensor>& out, std::vector<TensorInfo>& table, std::string& format,
                  bool copy, std::vector<std::shared_ptr<MappedFile>>& mappings) {
  Json index;
  try {
    index = Json::parse(read_whole_file<CheckpointError>(index_path));
  } catch (const Json::exception& e) {  // parse_error, or out_of_range for numbers like 1e505
    throw CheckpointError(index_path.string() + ": invalid JSON: " + e.what());
  }
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw CheckpointError(index_path.string() + ": missing \"weight_map\" object");
  std::set<std::string> files;
  for (const auto& [name, file] : index["weight_map"].items()) {
    if (!file.is_string()) throw CheckpointError(index_path.string() + ": weight_map entry for '" + name + "' is not a file name");
    const auto f = file.get<std::string>();
    if (f.find('/') != std::string::npos || f == "." || f == "..")
      throw CheckpointError(index_path.string() + ": shard name '" + f + "' must be a plain file name");
    files.insert(f);
  }
  const fs::path dir = index_path.parent_path();
  for (const auto& f : files) {
    if (!fs::exists(dir / f)) throw CheckpointError(index_path.string() + ": shard " + f + " is missing");
    read_safetensors(dir / f, out, table, copy, mappings);
  }
  for (const auto& [name, file] : index["weight_map"].items()) {
    const auto it = std::find_if(out.begin(), out.end(), [&](const StoredTensor& t) { return t.stored_name == name; });
    const bool is_buffer = canonical_name(name).empty();
    if (!is_buffer && it == out.end())
      throw CheckpointError(index_path.string() + ": tensor '" + name + "' is listed but not in shard " + file.get<std::string>());
  }
  format = "safetensors (sharded, " + std::to_string(files.size()) + " files)";
}

void read_pytorch_bin(const fs::path& path, std::vector<StoredTensor>& out, std::vector<TensorInfo>& table) {
  const std::string hint =
      "; convert it to model.safetensors (for example with Hugging Face's "
      "`safetensors.torch.save_file(torch.load(path), 'model.safetensors')`)";
  torch::IValue value;
  try {
    const std::string bytes = read_whole_file<CheckpointError>(path);
    value = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  } catch (const CheckpointError&) {
    throw;
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (const auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
    throw CheckpointError(path.string() + ": cannot read this torch.save file (" + what + ")" + hint);
  }
  if (!value.isGenericDict()) throw CheckpointError(path.string() + ": not a state dict" + hint);
  for (const auto& item : value.toGenericDict()) {
    if (!item.key().isString() || !item.value().isTensor()) throw CheckpointError(path.string() + ": not a state dict of tensors" + hint);
    const std::string name = item.key().toStringRef();
    torch::Tensor t = item.value().toTensor().contiguous();
    const std::string dt = stored_dtype_name(t.scalar_type());
    table.push_back({name, dt, t.sizes().vec(), path.filename().string()});
    if (canonical_name(name).empty()) continue;
    if (dt == "other")
      throw CheckpointError(path.string() + ": tensor '" + name + "' is not F32, F16 or BF16");
    out.push_back({name, path.filename().string(), t});
  }
}

}  // namespace

std::vector<std::pair<std::string, std::vector<std::int64_t>>> expected_gpt2_tensors(const ModelConfig& c) {
  const std::int64_t C = c.n_embd;
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> out = {
      {"wte.weight", {c.vocab_size, C}}, {"wpe.weight", {c.n_positions, C}}};
  for (std::int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "h." + std::to_string(i) + ".";
    out.push_back({p + "ln_1.weight", {C}});
    out.push_back({p + "ln_1.bias", {C}});
    out.push_back({p + "attn.c_attn.weight", {C, 3 * C}});
    out.push_back({p + "attn.c_attn.bias", {3 * C}});
    out.push_back({p + "attn.c_proj.weight", {C, C}});
    out.push_back({p + "attn.c_proj.bias", {C}});
    out.push_back({p + "ln_2.weight", {C}});
    out.push_back({p + "ln_2.bias", {C}});
    out.push_back({p + "mlp.c_fc.weight", {C, 4 * C}});
    out.push_back({p + "mlp.c_fc.bias", {4 * C}});
    out.push_back({p + "mlp.c_proj.weight", {4 * C, C}});
    out.push_back({p + "mlp.c_proj.bias", {C}});
  }
  out.push_back({"ln_f.weight", {C}});
  out.push_back({"ln_f.bias", {C}});
  return out;
}

Checkpoint load_checkpoint(const fs::path& dir, const LoadOptions& options) {
  if (!fs::is_directory(dir)) throw CheckpointError(dir.string() + ": not a model folder (no such directory)");
  Checkpoint ck;
  ck.dir = dir;
  ck.config = ModelConfig::load(dir / "config.json");
  ck.tokenizer = std::make_shared<const Tokenizer>(Tokenizer::from_folder(dir));
  if (ck.tokenizer->vocab_size() > ck.config.vocab_size)
    throw CheckpointError(dir.string() + ": tokenizer has " + std::to_string(ck.tokenizer->vocab_size()) +
                          " tokens but config.json vocab_size is " + std::to_string(ck.config.vocab_size));

  std::vector<StoredTensor> stored;
  if (fs::exists(dir / "model.safetensors")) {
    read_safetensors(dir / "model.safetensors", stored, ck.table, options.copy_weights, ck.mappings);
    ck.weights_format = "safetensors";
  } else if (fs::exists(dir / "model.safetensors.index.json")) {
    read_sharded(dir / "model.safetensors.index.json", stored, ck.table, ck.weights_format, options.copy_weights, ck.mappings);
  } else if (fs::exists(dir / "pytorch_model.bin")) {
    read_pytorch_bin(dir / "pytorch_model.bin", stored, ck.table);
    ck.weights_format = "pytorch_model.bin";
  } else {
    throw CheckpointError(dir.string() + ": no weights (expected model.safetensors, model.safetensors.index.json or pytorch_model.bin)");
  }

  std::map<std::string, const StoredTensor*> by_name;
  for (const StoredTensor& t : stored) {
    const std::string canon = canonical_name(t.stored_name);
    if (!by_name.emplace(canon, &t).second)
      throw CheckpointError((dir / t.file).string() + ": tensor '" + canon + "' is stored twice (with and without prefix?)");
  }
  std::set<std::string> dtypes;
  const torch::Tensor wte_stored = by_name.count("wte.weight") ? by_name.at("wte.weight")->tensor : torch::Tensor();
  auto take = [&](const std::string& name, const std::vector<std::int64_t>& shape) {
    const auto it = by_name.find(name);
    if (it == by_name.end())
      throw CheckpointError(dir.string() + ": missing tensor '" + name + "' (shape " + shape_str(shape) + ")");
    const StoredTensor& t = *it->second;
    if (t.tensor.sizes().vec() != shape)
      throw CheckpointError((dir / t.file).string() + ": tensor '" + t.stored_name + "' has shape " +
                            shape_str(t.tensor.sizes().vec()) + " but config.json implies " + shape_str(shape));
    dtypes.insert(stored_dtype_name(t.tensor.scalar_type()));
    torch::Tensor w = t.tensor;
    if (options.dtype && w.scalar_type() != *options.dtype) w = w.to(*options.dtype);
    if (options.device != torch::kCPU) w = w.to(options.device);
    ck.weights[name] = w;
    ck.parameter_count += w.numel();
    by_name.erase(it);
  };
  for (const auto& [name, shape] : expected_gpt2_tensors(ck.config)) take(name, shape);
  if (by_name.count("lm_head.weight")) {
    // A stored head equal to wte is the usual tied head: count it once.
    const torch::Tensor head_stored = by_name.at("lm_head.weight")->tensor;
    const bool tied = wte_stored.defined() && head_stored.sizes() == wte_stored.sizes() &&
                      head_stored.scalar_type() == wte_stored.scalar_type() && torch::equal(head_stored, wte_stored);
    take("lm_head.weight", {ck.config.vocab_size, ck.config.n_embd});
    if (tied) {
      ck.parameter_count -= ck.weights["lm_head.weight"].numel();
      ck.weights["lm_head.weight"] = ck.weights["wte.weight"];  // share one copy
    }
  } else {
    ck.weights["lm_head.weight"] = ck.weights["wte.weight"];
  }
  for (const auto& [name, t] : by_name)
    spdlog::warn("{}: ignoring unexpected tensor '{}'", dir.string(), t->stored_name);
  ck.stored_dtype = dtypes.size() == 1 ? *dtypes.begin() : "mixed";
  return ck;
}

void release_mapped_pages(const Checkpoint& ck, const torch::Tensor& t) {
  if (!t.defined() || !t.device().is_cpu() || t.nbytes() == 0) return;
  const auto* begin = static_cast<const std::byte*>(t.data_ptr());
  for (const auto& m : ck.mappings)
    if (begin >= m->data() && begin + t.nbytes() <= m->data() + m->size()) return drop_pages(begin, t.nbytes());
}

}  // namespace inkstream
