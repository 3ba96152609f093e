#include "inkstream/model_runtime/checkpoint.h"
#include <torch/serialize.h>
#include <torch/types.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "inkstream/model_runtime/errors.h"
#include "test_support.h"

namespace inkstream {
namespace {

nlohmann::json manifest() {
  return nlohmann::json::parse(test::read_file(test::fixture_dir() / "MANIFEST.json"));
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

TEST(Checkpoint, EveryGoodFixtureLoadsInEveryComputeDtype) {
  const auto m = manifest();
  ASSERT_GE(m["good"].size(), 7u);
  const Checkpoint reference = load_checkpoint(test::fixture_dir() / "tiny", {torch::kFloat32});
  for (const auto& [name, entry] : m["good"].items()) {
    for (const auto dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat16}) {
      SCOPED_TRACE(name + " as " + std::string(c10::toString(dtype)));
      const Checkpoint ck = load_checkpoint(test::fixture_dir() / entry["path"].get<std::string>(), {dtype});
      EXPECT_EQ(ck.weights.size(), expected_gpt2_tensors(ck.config).size() + 1);  // + lm_head
      for (const auto& [tname, t] : ck.weights) EXPECT_EQ(t.scalar_type(), dtype) << tname;
      EXPECT_TRUE(ck.weights.at("lm_head.weight").is_same(ck.weights.at("wte.weight")));
      if (name.starts_with("tiny")) {
        // Same master weights in every dtype and key style.
        const double tol = name == "tiny-bf16" || dtype == torch::kBFloat16 ? 1e-2 : name == "tiny-f16" || dtype == torch::kFloat16 ? 1e-3 : 0;
        for (const auto& [tname, t] : reference.weights)
          EXPECT_TRUE(torch::allclose(ck.weights.at(tname).to(torch::kFloat32), t, tol, tol)) << tname;
      }
    }
  }
}

TEST(Checkpoint, KeysWithPrefixAndBuffersAreHandled) {
  const Checkpoint ck = load_checkpoint(test::fixture_dir() / "tiny-prefixed");
  EXPECT_EQ(ck.config.n_layer, 2);
  // The stored head equals wte, so parameters are counted once.
  const Checkpoint plain = load_checkpoint(test::fixture_dir() / "tiny");
  EXPECT_EQ(ck.parameter_count, plain.parameter_count);
  bool saw_buffer = false;
  for (const auto& t : ck.table) saw_buffer |= t.name.ends_with("attn.masked_bias");
  EXPECT_TRUE(saw_buffer);
}

// True when `p` lies in this process's memory mapping of a file named `file`.
bool in_file_mapping(const void* p, const std::string& file) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  while (std::getline(maps, line)) {
    std::uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) != 2) continue;
    if (addr >= lo && addr < hi) return line.size() >= file.size() && line.ends_with(file);
  }
  return false;
}

TEST(Checkpoint, StoredDtypeAliasesTheMappingWithoutCopy) {
  const auto file = (test::fixture_dir() / "tiny" / "model.safetensors").string();
  const Checkpoint mapped = load_checkpoint(test::fixture_dir() / "tiny", {torch::kFloat32});
  EXPECT_EQ(mapped.stored_dtype, "F32");
  EXPECT_EQ(mapped.weights_format, "safetensors");
  for (const auto& [name, t] : mapped.weights) EXPECT_TRUE(in_file_mapping(t.data_ptr(), file)) << name << " was copied";
  // A dtype conversion, or copy_weights, puts the weights in process memory.
  const Checkpoint converted = load_checkpoint(test::fixture_dir() / "tiny", {torch::kBFloat16});
  EXPECT_FALSE(in_file_mapping(converted.weights.at("wte.weight").data_ptr(), file));
  const Checkpoint copied = load_checkpoint(test::fixture_dir() / "tiny", {torch::kFloat32, torch::kCPU, true});
  EXPECT_FALSE(in_file_mapping(copied.weights.at("wte.weight").data_ptr(), file));
  EXPECT_TRUE(torch::equal(copied.weights.at("wte.weight"), mapped.weights.at("wte.weight")));
  const Checkpoint bf = load_checkpoint(test::fixture_dir() / "tiny-bf16");
  EXPECT_EQ(bf.stored_dtype, "BF16");
  EXPECT_EQ(bf.weights.at("wte.weight").scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(in_file_mapping(bf.weights.at("wte.weight").data_ptr(), (test::fixture_dir() / "tiny-bf16" / "model.safetensors").string()));
  const Checkpoint sharded = load_checkpoint(test::fixture_dir() / "tiny-sharded");
  EXPECT_EQ(sharded.weights_format, "safetensors (sharded, 2 files)");
}

TEST(Checkpoint, EveryCorruptionGivesItsSpecificError) {
  const auto m = manifest();
  ASSERT_GE(m["corrupt"].size(), 20u);
  for (const auto& [name, entry] : m["corrupt"].items()) {
    SCOPED_TRACE(name);
    try {
      load_checkpoint(test::fixture_dir() / entry["path"].get<std::string>());
      ADD_FAILURE() << name << " loaded without error";
    } catch (const CheckpointError& e) {
      EXPECT_NE(lower(e.what()).find(lower(entry["expect"].get<std::string>())), std::string::npos)
          << name << ": '" << e.what() << "' lacks '" << entry["expect"] << "'";
    }
  }
}

TEST(Checkpoint, PytorchBinIsLoadedOrExplained) {
  // A torch.save zip made by libtorch's own pickler, as a state dict.
  const auto dir = test::temp_dir("bin");
  for (const char* f : {"config.json", "vocab.json", "merges.txt"})
    std::filesystem::copy_file(test::fixture_dir() / "tiny" / f, dir / f);
  const Checkpoint src = load_checkpoint(test::fixture_dir() / "tiny");
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& [name, t] : src.weights)
    if (name != "lm_head.weight") dict.insert(name, t.clone());
  const std::vector<char> bytes = torch::pickle_save(dict);
  test::write_file(dir / "pytorch_model.bin", std::string(bytes.begin(), bytes.end()));
  const Checkpoint bin = load_checkpoint(dir);
  EXPECT_EQ(bin.weights_format, "pytorch_model.bin");
  EXPECT_TRUE(torch::equal(bin.weights.at("h.1.mlp.c_fc.weight"), src.weights.at("h.1.mlp.c_fc.weight")));
  // Garbage is explained, with the conversion hint.
  test::write_file(dir / "pytorch_model.bin", "not a zip file");
  try {
    load_checkpoint(dir);
    ADD_FAILURE() << "garbage pytorch_model.bin loaded";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("safetensors"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(Checkpoint, ConfigValidation) {
  EXPECT_THROW(ModelConfig::parse(R"({"n_embd": 32, "n_head": 2, "n_layer": 1})", "c"), CheckpointError);  // no vocab_size
  EXPECT_THROW(ModelConfig::parse(R"({"n_embd": "32", "n_head": 2, "n_layer": 1, "vocab_size": 10})", "c"), CheckpointError);
  // Found by the fuzzer: a number JSON cannot hold is a CheckpointError too (was an escaping out_of_range).
  EXPECT_THROW(ModelConfig::parse(R"({"n_embd": 32, "n_head": 2, "n_layer": 1, "vocab_size": 10, "layer_norm_epsilon": 1e505})", "c"),
               CheckpointError);
  EXPECT_THROW(ModelConfig::parse(R"({"n_embd": 18446744073709551615, "n_head": 2, "n_layer": 1, "vocab_size": 10})", "c"), CheckpointError);
  EXPECT_THROW(ModelConfig::parse(R"({"n_embd": 32, "n_head": 2, "n_layer": 1, "vocab_size": 10, "activation_function": "swish"})", "c"),
               CheckpointError);
  const ModelConfig c = ModelConfig::parse(
      R"({"n_embd": 32, "n_head": 2, "n_layer": 1, "vocab_size": 10, "n_ctx": 77, "eos_token_id": 9, "bos_token_id": 9})", "c");
  EXPECT_EQ(c.n_positions, 77);
  EXPECT_EQ(c.head_dim(), 16);
  const ModelConfig back = ModelConfig::parse(c.to_json(), "roundtrip");
  EXPECT_EQ(back.n_positions, 77);
}

}  // namespace
}  // namespace inkstream
