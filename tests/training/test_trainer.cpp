// The trainer against the float64 reference (golden/reference_training.py,
// llm.c's pattern), gradient checkpointing, the schedule, weight-decay
// groups, and whole runs: exact resume after an interrupt, export.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <c10/core/InferenceMode.h>

#include <atomic>
#include <cmath>

#include "inkstream/model_runtime/checkpoint.h"
#include "inkstream/model_runtime/device.h"
#include "inkstream/model_runtime/errors.h"
#include "inkstream/model_runtime/gpt2.h"
#include "inkstream/training/evaluation.h"
#include "inkstream/training/token_dataset.h"
#include "inkstream/training/trainer.h"
#include "temp_files.h"

namespace fs = std::filesystem;
using namespace inkstream;
using namespace inkstream::training;
using nlohmann::json;

namespace {

const fs::path kFixtures = INKSTREAM_FIXTURE_DIR;
const fs::path kSource = INKSTREAM_SOURCE_DIR;

json golden() { return json::parse(test::read_file(kSource / "tests/training/golden/training_reference.json")); }

std::shared_ptr<Gpt2Model> load_fp32(const std::string& name) {
  Checkpoint ck = load_checkpoint(kFixtures / name, {torch::kFloat32, torch::kCPU, /*copy_weights=*/true});
  return std::make_shared<Gpt2Model>(ck.config, ck.weights, ck.tokenizer, name);
}

torch::Tensor ids_tensor(const json& rows) {
  std::vector<std::int64_t> flat;
  for (const auto& r : rows)
    for (const auto& v : r) flat.push_back(v.get<std::int64_t>());
  return torch::tensor(flat, torch::kLong).view({static_cast<std::int64_t>(rows.size()), -1});  // (B, T)
}

TrainOptions golden_options(const json& g) {
  TrainOptions o;
  const json& a = g["adamw"];
  o.lr = a["lr"];
  o.beta1 = a["beta1"];
  o.beta2 = a["beta2"];
  o.adam_eps = a["eps"];
  o.weight_decay = a["weight_decay"];
  o.grad_clip = a["grad_clip"];
  o.steps = a["steps"];
  o.warmup_steps = 0;
  o.min_lr_ratio = 1.0;  // constant learning rate, as the reference
  o.dtype = "fp32";
  return o;
}

// max |ours - reference| over the sampled values, relative to the tensor's max |g|.
double gradient_error(const torch::Tensor& grad, const json& ref) {
  const torch::Tensor flat = grad.reshape(-1).to(torch::kDouble).contiguous();
  const double* p = flat.data_ptr<double>();
  double worst = 0;
  for (std::size_t i = 0; i < ref["index"].size(); ++i)
    worst = std::max(worst, std::abs(p[ref["index"][i].get<std::int64_t>()] - ref["values"][i].get<double>()));
  return worst / std::max(ref["max_abs"].get<double>(), 1e-30);
}

}  // namespace

TEST(Trainer, LossAndEveryGradientMatchTheFloat64Reference) {
  const json g = golden();
  Trainer trainer(load_fp32(g["model"]), golden_options(g));
  const double loss = trainer.forward_backward(ids_tensor(g["inputs"]), ids_tensor(g["targets"]));
  EXPECT_LE(std::abs(loss - g["loss"].get<double>()) / g["loss"].get<double>(), 1e-4) << loss;
  ASSERT_EQ(trainer.parameters().size(), g["grads"].size());
  for (const auto& [name, p] : trainer.parameters()) {
    ASSERT_TRUE(g["grads"].contains(name)) << name;
    ASSERT_TRUE(p.grad().defined()) << name;
    const json& ref = g["grads"][name];
    EXPECT_LE(gradient_error(p.grad(), ref), 1e-3) << name;
    EXPECT_NEAR(p.grad().norm().item<double>(), ref["norm"].get<double>(), 1e-3 * ref["norm"].get<double>()) << name;
  }
}

TEST(Trainer, TenAdamWStepsMatchTheReference) {
  const json g = golden();
  const TrainOptions o = golden_options(g);
  Trainer trainer(load_fp32(g["model"]), o);
  const torch::Tensor x = ids_tensor(g["inputs"]), y = ids_tensor(g["targets"]);
  for (std::int64_t step = 0; step < o.steps; ++step) {
    const double loss = trainer.forward_backward(x, y);
    const double want = g["adamw_losses"][static_cast<std::size_t>(step)];
    EXPECT_LE(std::abs(loss - want) / want, 1e-4) << "step " << step << ": " << loss << " vs " << want;
    trainer.optimizer_step(step);
  }
}

TEST(Trainer, GradientCheckpointingGivesTheSameGradients) {
  const json g = golden();
  TrainOptions o = golden_options(g);
  Trainer plain(load_fp32("deep-scaled"), o);
  o.gradient_checkpointing = true;
  Trainer recomputed(load_fp32("deep-scaled"), o);
  const torch::Tensor x = ids_tensor(g["inputs"]), y = ids_tensor(g["targets"]);
  EXPECT_DOUBLE_EQ(plain.forward_backward(x, y), recomputed.forward_backward(x, y));
  for (const auto& [name, p] : plain.parameters()) {
    const torch::Tensor& q = recomputed.parameters().at(name);
    ASSERT_TRUE(q.grad().defined()) << name;
    EXPECT_TRUE(torch::allclose(p.grad(), q.grad(), 1e-5, 1e-7)) << name;
  }
}

TEST(Trainer, Bf16AutocastStaysCloseToFp32) {
  const json g = golden();
  TrainOptions o = golden_options(g);
  Trainer fp32(load_fp32(g["model"]), o);
  o.dtype = "bf16";
  Trainer bf16(load_fp32(g["model"]), o);
  const torch::Tensor x = ids_tensor(g["inputs"]), y = ids_tensor(g["targets"]);
  const double a = fp32.forward_backward(x, y), b = bf16.forward_backward(x, y);
  EXPECT_LE(std::abs(a - b) / a, 2e-2) << a << " vs " << b;
  // Master weights stay fp32.
  for (const auto& [name, p] : bf16.parameters()) EXPECT_EQ(p.grad().scalar_type(), torch::kFloat32) << name;
}

TEST(Trainer, WeightDecayReachesMatricesOnly) {
  TrainOptions o;
  o.lr = 0.1;
  o.weight_decay = 0.5;
  o.warmup_steps = 0;
  o.min_lr_ratio = 1.0;
  o.grad_clip = 0;
  Trainer trainer(load_fp32("tiny"), o);
  std::map<std::string, torch::Tensor> before;
  for (const auto& [name, p] : trainer.parameters()) before[name] = p.detach().clone();
  // A zero loss: zero gradients, so only the decay moves anything.
  const json g = golden();
  trainer.forward_backward(ids_tensor(g["inputs"]), ids_tensor(g["targets"]), 0.0);
  trainer.optimizer_step(0);
  for (const auto& [name, p] : trainer.parameters()) {
    const double factor = p.dim() >= 2 ? 1.0 - 0.1 * 0.5 : 1.0;
    EXPECT_TRUE(torch::allclose(p.detach(), before[name] * factor, 1e-6, 1e-9)) << name;
  }
}

TEST(Trainer, LearningRateWarmsUpThenFollowsACosineToTheFloor) {
  TrainOptions o;
  o.lr = 1e-3;
  o.warmup_steps = 10;
  o.steps = 110;
  o.min_lr_ratio = 0.1;
  EXPECT_DOUBLE_EQ(learning_rate(0, o), 1e-4);
  EXPECT_DOUBLE_EQ(learning_rate(9, o), 1e-3);
  EXPECT_DOUBLE_EQ(learning_rate(10, o), 1e-3);
  EXPECT_NEAR(learning_rate(60, o), 0.55e-3, 1e-12);  // half-way down the cosine
  EXPECT_NEAR(learning_rate(110, o), 1e-4, 1e-12);
  for (std::int64_t s = 11; s < 110; ++s) EXPECT_LT(learning_rate(s, o), learning_rate(s - 1, o));
}

TEST(Trainer, InitialWeightsFollowHuggingFaceInitialisation) {
  ModelConfig c;
  c.n_layer = 4;
  c.n_embd = 64;
  c.n_head = 4;
  c.n_positions = 32;
  const auto w = initial_weights(c, 1);
  EXPECT_NEAR(w.at("wte.weight").std().item<double>(), 0.02, 1e-3);
  EXPECT_NEAR(w.at("h.0.attn.c_proj.weight").std().item<double>(), 0.02 / std::sqrt(8.0), 1e-3);
  EXPECT_EQ(w.at("h.1.ln_1.weight").min().item<double>(), 1.0);
  EXPECT_EQ(w.at("h.1.mlp.c_fc.bias").abs().max().item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(w.at("wte.weight"), initial_weights(c, 1).at("wte.weight")));
}

namespace {

// A small tokenized dataset of varied sentences.
fs::path make_dataset(const fs::path& root) {
  std::string jsonl;
  const char* words[] = {"the", "quiet", "river", "ran", "past", "old", "mill", "and", "a", "fox", "watched", "it", "go"};
  for (int d = 0; d < 60; ++d) {
    std::string text;
    for (int w = 0; w < 40; ++w) text += std::string(w ? " " : "") + words[(d * 7 + w * w + w) % 13];
    jsonl += json{{"text", text + "."}}.dump() + "\n";
  }
  test::write_file(root / "clean/documents.jsonl", jsonl);
  TokenizeOptions t;
  t.val_fraction = 0.1;
  tokenize_dataset(root / "clean", kSource / "tests/fixtures/tokenizer/gpt2", root / "ds", t);
  return root / "ds";
}

TrainOptions small_run(const fs::path& data, const fs::path& out) {
  TrainOptions o;
  o.data = data;
  o.out = out;
  o.config.n_layer = 2;
  o.config.n_embd = 32;
  o.config.n_head = 2;
  o.config.n_positions = 32;
  o.steps = 8;
  o.batch_size = 2;
  o.seq_len = 16;
  o.grad_accum = 2;
  o.lr = 3e-3;
  o.warmup_steps = 2;
  o.eval_every = 4;
  o.eval_batches = 2;
  o.save_every = 0;
  o.threads = 1;
  return o;
}

}  // namespace

TEST(Training, ResumeAfterAnInterruptGivesTheLossesOfAnUninterruptedRun) {
  const fs::path root = test::fresh_dir("train-resume");
  const fs::path data = make_dataset(root);
  const TrainResult whole = run_training(small_run(data, root / "whole"), nullptr, nullptr);
  ASSERT_EQ(whole.losses.size(), 8u);
  EXPECT_FALSE(whole.interrupted);
  EXPECT_LT(whole.losses.back(), whole.losses.front());

  // Interrupt after 3 steps (as Ctrl-C does), then resume.
  std::atomic<bool> stop{false};
  int steps_seen = 0;
  const TrainResult first = run_training(small_run(data, root / "split"), &stop, [&](const std::string& line) {
    if (line.rfind("step ", 0) == 0 && line.find("val") == std::string::npos && ++steps_seen == 3) stop = true;
  });
  EXPECT_TRUE(first.interrupted);
  EXPECT_EQ(first.steps_done, 3);
  EXPECT_TRUE(fs::exists(root / "split/checkpoint/optimizer.pt"));
  TrainOptions again = small_run(data, root / "split");
  again.resume = true;
  const TrainResult rest = run_training(again, nullptr, nullptr);
  ASSERT_EQ(rest.losses.size(), 5u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_DOUBLE_EQ(first.losses[i], whole.losses[i]) << i;
  for (std::size_t i = 0; i < 5; ++i) EXPECT_DOUBLE_EQ(rest.losses[i], whole.losses[i + 3]) << i + 3;
  EXPECT_DOUBLE_EQ(rest.val_loss, whole.val_loss);

  // Resuming with other options is refused, naming them.
  again.batch_size = 3;
  try {
    run_training(again, nullptr, nullptr);
    ADD_FAILURE() << "resumed with another batch size";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("batch_size"), std::string::npos) << e.what();
  }
  fs::remove_all(root);
}

TEST(Training, TheExportLoadsInTheRuntimeWithTheTrainedWeights) {
  const fs::path root = test::fresh_dir("train-export");
  TrainOptions o = small_run(make_dataset(root), root / "run");
  o.export_dtype = "bf16";
  const TrainResult r = run_training(o, nullptr, nullptr);
  for (const char* f : {"config.json", "model.safetensors", "vocab.json", "merges.txt"}) EXPECT_TRUE(fs::exists(r.model_dir / f)) << f;
  // The exported folder has the original GPT-2 key names (no prefix, no lm_head: tied).
  const SafetensorsFile st = SafetensorsFile::open(r.model_dir / "model.safetensors");
  EXPECT_TRUE(st.tensors().count("h.0.attn.c_attn.weight"));
  EXPECT_TRUE(st.tensors().count("wte.weight"));
  EXPECT_FALSE(st.tensors().count("lm_head.weight"));
  EXPECT_EQ(st.tensors().at("wte.weight").dtype, StoredDtype::BF16);

  // The checkpoint (fp32) and the export (bf16) give the same next-token logits, to bf16 precision.
  const auto exported = Gpt2Model::load(r.model_dir, {"cpu", "fp32"});
  const auto master = Gpt2Model::load(o.out / "checkpoint", {"cpu", "fp32"});
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = torch::tensor({464, 5897, 7850}, torch::kLong).view({1, 3});
  const torch::Tensor a = exported->forward_last(ids), b = master->forward_last(ids);  // (1, V)
  EXPECT_LT((a - b).abs().max().item<double>(), 0.05 * b.abs().max().item<double>());
  EXPECT_EQ(exported->config().n_layer, 2);
  fs::remove_all(root);
}

namespace {

// 12 steps fine-tuning the tiny fixture on make_dataset's sentences.
TrainOptions fine_tune_run(const fs::path& root) {
  TrainOptions o = small_run(make_dataset(root), root / "run");
  o.init = kFixtures / "tiny";
  o.steps = 12;
  o.lr = 1e-2;
  o.eval_every = 0;
  return o;
}

}  // namespace

TEST(Training, FineTuningAFixtureCheckpointLowersValidationLoss) {
  const fs::path root = test::fresh_dir("train-finetune");
  const TrainOptions o = fine_tune_run(root);
  TrainOptions zero = o;
  zero.steps = 1;
  zero.lr = 1e-12;  // effectively the base model's validation loss
  zero.out = root / "zero";
  const double base = run_training(zero, nullptr, nullptr).val_loss;
  const double tuned = run_training(o, nullptr, nullptr).val_loss;
  EXPECT_LT(tuned, base - 0.5) << base << " -> " << tuned;
  fs::remove_all(root);
}

// `evaluate` is the trainer's validation measure on the serving path: on
// the trainer's own windows it gives the validation loss the run reported;
// the model in fp16 and int8 stays within 0.1% and 1% of its fp32
// perplexity.
TEST(Evaluation, GivesTheTrainersValidationLossAndComparesFormats) {
  const fs::path root = test::fresh_dir("train-eval");
  const TrainOptions o = fine_tune_run(root);
  const TrainResult r = run_training(o, nullptr, nullptr);
  const TokenStream val = TokenStream::open(o.data, "val");
  const EvaluationOptions e{o.seq_len, o.eval_batches * o.batch_size};
  const Evaluation fp32 = evaluate(*Gpt2Model::load(o.out / "checkpoint", {"cpu", "fp32"}), val, e);
  EXPECT_NEAR(fp32.loss, r.val_loss, 1e-4);
  EXPECT_EQ(fp32.tokens, e.windows * o.seq_len);
  for (const auto& [dtype, bound] : {std::pair{"fp16", 1e-3}, std::pair{"int8", 1e-2}}) {
    const Evaluation q = evaluate(*Gpt2Model::load(o.out / "checkpoint", {"cpu", dtype}), val, e);
    EXPECT_LE(std::abs(q.perplexity - fp32.perplexity), bound * fp32.perplexity) << dtype << ": " << q.perplexity << " vs " << fp32.perplexity;
  }
  EXPECT_THROW(evaluate(*Gpt2Model::load(o.out / "checkpoint", {"cpu", "fp32"}), val, {0, 1}), std::invalid_argument);
  // int8 weights are evaluated through the int8 keys and values the engine
  // keeps (Gpt2Model::kv_dtype), not only the weights' rounding: one
  // window's loss is the one through such a cache, which differs from a
  // forward without one.
  {
    c10::InferenceMode guard;
    const auto q8 = Gpt2Model::load(o.out / "checkpoint", {"cpu", "int8"});
    ASSERT_EQ(q8->kv_dtype(), torch::kChar);
    const Evaluation one = evaluate(*q8, val, {o.seq_len, 1});
    const torch::Tensor w = token_windows(val, evaluation_offsets(val.size(), o.seq_len, 1), o.seq_len);  // (1, len + 1)
    auto loss = [&](KvCache* cache) {
      const torch::Tensor logits = q8->forward(w.narrow(1, 0, o.seq_len), cache)[0].to(torch::kFloat32);
      return at::cross_entropy_loss(logits, w[0].narrow(0, 1, o.seq_len)).item<double>();
    };
    KvCache cache(q8->config(), 1, o.seq_len, torch::kChar, torch::kCPU);
    const double through_cache = loss(&cache), without = loss(nullptr);
    EXPECT_EQ(one.loss, through_cache);
    EXPECT_NE(through_cache, without);
  }
  fs::remove_all(root);
}

// int8 holds a model of any width (its k quads are padded, the width given
// where the quads cannot tell it): a width-30 model loads under `auto` and
// as int8, its logits within int8's bound of fp32 and its weights back in
// their shapes; an int8 model refuses training with a clear error. The
// precision rule itself: int8 is a CPU format.
TEST(Training, Int8HoldsAModelOfAnyWidth) {
  const fs::path root = test::fresh_dir("train-width30");
  TrainOptions o = small_run(make_dataset(root), root / "run");
  o.config.n_embd = 30;
  o.config.n_head = 3;
  o.steps = 1;
  o.eval_every = 0;
  const TrainResult r = run_training(o, nullptr, nullptr);
  const auto fp32 = Gpt2Model::load(r.model_dir, {"cpu", "fp32"});
  const auto automatic = Gpt2Model::load(r.model_dir, {"cpu", "auto"});
  EXPECT_EQ(automatic->weight_format(), parse_precision("auto", c10::kCPU).weights);
  const auto int8 = Gpt2Model::load(r.model_dir, {"cpu", "int8"});
  const torch::Tensor ids = torch::tensor({464, 5897, 7850, 11}, torch::kLong).view({1, 4});
  {
    c10::InferenceMode guard;
    const torch::Tensor ref = fp32->forward_last(ids), got = int8->forward_last(ids);  // (1, V)
    EXPECT_LE((got - ref).abs().max().item<double>(), 5e-2 * ref.abs().max().item<double>());
  }
  const auto plain = int8->named_weights(), stored = fp32->named_weights();
  for (const char* name : {"wte.weight", "h.0.attn.c_attn.weight", "h.0.mlp.c_proj.weight"}) {
    EXPECT_EQ(plain.at(name).sizes(), stored.at(name).sizes()) << name;
    EXPECT_LE((plain.at(name) - stored.at(name)).abs().max().item<double>(), stored.at(name).abs().max().item<double>() / 127) << name;
  }
  EXPECT_THROW(int8->forward_train(torch::zeros({1, 4}, torch::kLong), false), InvalidRequest);
  EXPECT_THROW(parse_precision("int8", c10::Device(c10::kCUDA, 0)), InvalidRequest);
  EXPECT_EQ(parse_precision("fp16", c10::Device(c10::kCUDA, 0)).compute, torch::kFloat16);
  EXPECT_EQ(parse_precision("fp16", c10::kCPU).compute, torch::kFloat32);
  EXPECT_THROW(parse_precision("int4", c10::kCPU), InvalidRequest);
  fs::remove_all(root);
}
