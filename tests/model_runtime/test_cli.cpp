// The real `inkstream` binary, driven through real pipes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "process.h"
#include "test_support.h"

namespace inkstream {
namespace {

test::ProcessResult inkstream(std::vector<std::string> args, const std::string& input = "") {
  args.insert(args.begin(), INKSTREAM_BINARY);
  return test::run_process(args, input);
}

TEST(Cli, VersionAndHelp) {
  const auto v = inkstream({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.out.find("inkstream"), std::string::npos);
  const auto h = inkstream({"--help"});
  EXPECT_EQ(h.exit_code, 0);
  for (const char* sub : {"tokenize", "inspect"}) EXPECT_NE(h.out.find(sub), std::string::npos) << sub;
  const auto th = inkstream({"tokenize", "--help"});
  EXPECT_EQ(th.exit_code, 0);
  EXPECT_NE(th.out.find("--decode"), std::string::npos);
  EXPECT_NE(inkstream({"no-such-command"}).exit_code, 0);
}

// Hardening: a numeric flag out of its range is a usage error (exit 2)
// naming the flag, never a wrapped value (these once became 1, 2^64-1, a
// different port...).
TEST(Cli, OutOfRangeFlagsExitTwoNamingTheFlag) {
  const std::vector<std::vector<std::string>> cases = {
      {"complete", "--prompt", "x", "--n", "4294967297"},        {"complete", "--prompt", "x", "--seed", "-1"},
      {"complete", "--prompt", "x", "--max-tokens", "-4294967295"}, {"complete", "--prompt", "x", "--threads", "4294967297"},
      {"serve", "--port", "99999"},                               {"serve", "--max-queued", "-1"},
      {"lsp", "--threads", "-1"},                                 {"train", "--data", "x", "--out", "y", "--steps", "0"},
      {"data", "tokenize", "in", "--model-or-tokenizer", "m", "--out", "o", "--seed", "-5"}};
  for (const auto& args : cases) {
    const auto r = inkstream(args);
    EXPECT_EQ(r.exit_code, 2) << args[args.size() - 2] << " " << args.back() << ": " << r.err;
    EXPECT_NE(r.err.find(args[args.size() - 2]), std::string::npos) << r.err;
  }
}

TEST(Cli, TokenizeAndDecode) {
  const std::string model = test::gpt2_tokenizer_dir().string();
  const auto r = inkstream({"tokenize", "--model", model, "Hello", "world"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "15496 995\n");
  const auto stdin_json = inkstream({"tokenize", "--model", model, "--json", "-"}, "\n\n");
  EXPECT_EQ(stdin_json.out, "[628]\n");
  const auto dec = inkstream({"tokenize", "--model", model, "--decode", "15496,995"});
  EXPECT_EQ(dec.out, "Hello world\n");
  const auto bad = inkstream({"tokenize", "--model", model, "--decode", "12", "x"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("not a token id"), std::string::npos);
  const auto missing = inkstream({"tokenize", "--model", "/nonexistent", "hi"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("no tokenizer"), std::string::npos);
}

TEST(Cli, InspectGoodAndCorruptCheckpoints) {
  const auto ok = inkstream({"inspect", (test::fixture_dir() / "tiny").string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("h.1.mlp.c_proj.weight"), std::string::npos);
  EXPECT_NE(ok.out.find("parameters"), std::string::npos);
  const auto js = inkstream({"inspect", "--json", (test::fixture_dir() / "tiny-sharded").string()});
  ASSERT_EQ(js.exit_code, 0) << js.err;
  const auto j = nlohmann::json::parse(js.out);
  EXPECT_EQ(j["config"]["n_layer"], 2);
  EXPECT_EQ(j["dtype"], "F32");
  const auto manifest = nlohmann::json::parse(test::read_file(test::fixture_dir() / "MANIFEST.json"));
  for (const auto& [name, entry] : manifest["corrupt"].items()) {
    const auto bad = inkstream({"inspect", (test::fixture_dir() / entry["path"].get<std::string>()).string()});
    EXPECT_EQ(bad.exit_code, 2) << name << ": " << bad.err;
    EXPECT_NE(bad.err.find("error: "), std::string::npos) << name;
    EXPECT_EQ(bad.out, "") << name;
  }
  EXPECT_EQ(inkstream({"inspect", "/nonexistent"}).exit_code, 2);
}

}  // namespace
}  // namespace inkstream
