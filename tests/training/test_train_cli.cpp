// The training commands as a user runs them: real process, real files.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <thread>

#include "process.h"
#include "temp_files.h"

namespace fs = std::filesystem;
using inkstream::test::fresh_dir;
using inkstream::test::read_file;
using inkstream::test::run_process;
using inkstream::test::write_file;

namespace {

const std::string kBinary = INKSTREAM_BINARY;
const std::string kTokenizer = std::string(INKSTREAM_SOURCE_DIR) + "/tests/fixtures/tokenizer/gpt2";

void write_corpus(const fs::path& dir) {
  std::string cookies;
  for (int i = 0; i < 50; ++i)
    cookies += "Cookie " + std::string(1, static_cast<char>('a' + i % 26)) + std::string(1, static_cast<char>('a' + i / 26)) + ": the lamp by the window burned late, and she wrote another page of the letter.\n%\n";
  write_file(dir / "cookies", cookies);
  write_file(dir / "story.txt", "Once upon a time\r\nthere was a caf\xC3\x83\xC2\xA9 by the sea.\r\n");
}

std::vector<std::string> train_args(const fs::path& data, const fs::path& out, int steps) {
  return {kBinary, "train", "--data", data.string(), "--out", out.string(), "--n-layer", "2", "--n-embd", "32",
          "--n-head", "2", "--n-positions", "32", "--steps", std::to_string(steps), "--batch-size", "2",
          "--seq-len", "16", "--threads", "1", "--eval-every", "2", "--eval-batches", "1", "--warmup", "1"};
}

}  // namespace

TEST(Cli, CleanTokenizeTrainThenCompleteWithTheExportedModel) {
  const fs::path root = fresh_dir("cli-train");
  write_corpus(root / "corpus");
  const std::string before = read_file(root / "corpus/story.txt");
  auto r = run_process({kBinary, "data", "clean", (root / "corpus").string(), "--out", (root / "clean").string(),
                        "--delimiter", "\\n%\\n", "--min-chars", "10"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("51 kept"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(root / "corpus/story.txt"), before);
  EXPECT_NE(read_file(root / "clean/documents.jsonl").find("caf\xC3\xA9 by the sea"), std::string::npos);
  EXPECT_TRUE(nlohmann::json::parse(read_file(root / "clean/report.json")).contains("steps"));

  r = run_process({kBinary, "data", "tokenize", (root / "clean").string(), "--model-or-tokenizer", kTokenizer, "--out",
                   (root / "ds").string(), "--val-fraction", "0.1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(root / "ds/train_000.bin"));

  r = run_process(train_args(root / "ds", root / "run", 4), "", std::chrono::seconds(120));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("step 4/4"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("val loss"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tok/s"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(root / "run/log.jsonl"));

  r = run_process({kBinary, "complete", "--model", (root / "run/model").string(), "--prompt", "The lamp",
                   "--max-tokens", "5", "--seed", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());

  // The exported model's validation perplexity, in fp32 and int8.
  for (const char* dtype : {"fp32", "int8"}) {
    r = run_process({kBinary, "eval", "--model", (root / "run/model").string(), "--data", (root / "ds").string(), "--dtype", dtype,
                     "--seq-len", "16", "--windows", "4", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["dtype"], dtype);
    EXPECT_EQ(j["tokens"], 64);
    EXPECT_GT(j["perplexity"].get<double>(), 1.0);
    EXPECT_NEAR(j["perplexity"].get<double>(), std::exp(j["loss"].get<double>()), 1e-6 * j["perplexity"].get<double>());
  }
  r = run_process({kBinary, "eval", "--model", (root / "run/model").string(), "--data", (root / "nowhere").string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("nowhere"), std::string::npos) << r.err;
  fs::remove_all(root);
}

// The corpus cleaned and tokenized into ROOT/ds (as a user would).
static ::testing::AssertionResult make_dataset(const fs::path& root) {
  write_corpus(root / "corpus");
  const auto clean = run_process({kBinary, "data", "clean", (root / "corpus").string(), "--out", (root / "clean").string(),
                                  "--delimiter", "\\n%\\n", "--min-chars", "10"});
  if (clean.exit_code != 0) return ::testing::AssertionFailure() << "data clean: " << clean.err;
  const auto tokenize = run_process({kBinary, "data", "tokenize", (root / "clean").string(), "--model-or-tokenizer", kTokenizer,
                                     "--out", (root / "ds").string()});
  if (tokenize.exit_code != 0) return ::testing::AssertionFailure() << "data tokenize: " << tokenize.err;
  return ::testing::AssertionSuccess();
}

TEST(Cli, CtrlCStopsTrainingWithACheckpointAndResumeFinishes) {
  const fs::path root = fresh_dir("cli-sigint");
  ASSERT_TRUE(make_dataset(root));
  const auto child = inkstream::test::spawn_with_pipes(train_args(root / "ds", root / "run", 100000));
  close(child.in_fd);
  std::string err;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (err.find("step 3/") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{child.err_fd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char buf[4096];
    const ssize_t n = read(child.err_fd, buf, sizeof buf);
    if (n <= 0) break;
    err.append(buf, static_cast<std::size_t>(n));
  }
  ASSERT_NE(err.find("step 3/"), std::string::npos) << err;
  kill(child.pid, SIGINT);
  char buf[4096];
  for (ssize_t n; (n = read(child.err_fd, buf, sizeof buf)) > 0;) err.append(buf, static_cast<std::size_t>(n));
  int status = 0;
  waitpid(child.pid, &status, 0);
  close(child.out_fd);
  close(child.err_fd);
  ASSERT_TRUE(WIFEXITED(status)) << err;
  EXPECT_EQ(WEXITSTATUS(status), 130) << err;
  EXPECT_NE(err.find("--resume"), std::string::npos) << err;
  const auto state = nlohmann::json::parse(read_file(root / "run/checkpoint/trainer.json"));
  EXPECT_GE(state["step"].get<int>(), 3);
  EXPECT_TRUE(fs::exists(root / "run/model/model.safetensors"));

  // Resuming with other options is refused with the reason.
  auto args = train_args(root / "ds", root / "run", 5);
  args.push_back("--resume");
  const auto r = run_process(args);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--resume needs the options of the interrupted run"), std::string::npos) << r.err;
  fs::remove_all(root);
}

// Hardening: kill -9 at random moments, checkpoint writes included (one
// every step); each time, what is on disk under the checkpoint's name loads,
// and --resume goes on from the last complete checkpoint to the end.
TEST(Cli, KilledAtRandomPointsTrainingResumesFromTheLastCompleteCheckpoint) {
  const fs::path root = fresh_dir("cli-kill9");
  ASSERT_TRUE(make_dataset(root));
  auto args = train_args(root / "ds", root / "run", 150);
  args.insert(args.end(), {"--save-every", "1"});
  unsigned seed = 2026;
  int last_step = 0, killed_mid_run = 0;
  for (int round = 0; round < 5; ++round) {
    auto a = args;
    if (round > 0) a.push_back("--resume");
    const auto child = inkstream::test::spawn_with_pipes(a);
    close(child.in_fd);
    seed = seed * 1103515245u + 12345u;
    std::this_thread::sleep_for(std::chrono::milliseconds(400 + seed % 1200));
    kill(child.pid, SIGKILL);
    int status = 0;
    waitpid(child.pid, &status, 0);
    killed_mid_run += WIFSIGNALED(status) ? 1 : 0;
    close(child.out_fd);
    close(child.err_fd);
    const fs::path ckpt = fs::exists(root / "run/checkpoint/trainer.json") ? root / "run/checkpoint" : root / "run/checkpoint.old";
    if (!fs::exists(ckpt / "trainer.json")) continue;  // killed before the first checkpoint
    const int step = nlohmann::json::parse(read_file(ckpt / "trainer.json"))["step"].get<int>();
    EXPECT_GE(step, last_step) << "round " << round << ": a checkpoint went back";
    last_step = step;
    const auto inspect = run_process({kBinary, "inspect", ckpt.string()});
    EXPECT_EQ(inspect.exit_code, 0) << "round " << round << ": the checkpoint on disk does not load: " << inspect.err;
  }
  EXPECT_GT(last_step, 0) << "no round got as far as a checkpoint";
  EXPECT_GE(killed_mid_run, 3) << "the runs ended before they were killed: make them longer";
  args.push_back("--resume");
  const auto done = run_process(args, "", std::chrono::seconds(120));
  ASSERT_EQ(done.exit_code, 0) << done.err;
  EXPECT_NE(done.err.find("done after 150 steps"), std::string::npos) << done.err;
  EXPECT_EQ(run_process({kBinary, "inspect", (root / "run/model").string()}).exit_code, 0);
  fs::remove_all(root);
}

TEST(Cli, TrainingInputErrorsAreClear) {
  const fs::path root = fresh_dir("cli-train-errors");
  auto r = run_process(train_args(root / "nothing", root / "run", 2));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("dataset.json"), std::string::npos) << r.err;
  r = run_process({kBinary, "data", "tokenize", root.string(), "--model-or-tokenizer", (root / "no-tokenizer").string(),
                   "--out", (root / "ds").string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no-tokenizer"), std::string::npos) << r.err;
  r = run_process({kBinary, "data", "clean", (root / "missing").string(), "--out", (root / "out").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("input not found"), std::string::npos) << r.err;
  fs::remove_all(root);
}
