#pragma once
// Paths and shared helpers for the model_runtime tests.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "inkstream/model_runtime/tokenizer.h"

namespace inkstream::test {

inline std::filesystem::path source_dir() { return INKSTREAM_SOURCE_DIR; }
inline std::filesystem::path fixture_dir() { return INKSTREAM_FIXTURE_DIR; }
inline std::filesystem::path gpt2_tokenizer_dir() { return source_dir() / "tests/fixtures/tokenizer/gpt2"; }

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// The real GPT-2 tokenizer, loaded once for the whole test binary.
inline const Tokenizer& gpt2_tokenizer() {
  static const Tokenizer tokenizer = Tokenizer::from_folder(gpt2_tokenizer_dir());
  return tokenizer;
}

// A fresh empty temporary folder for one test.
inline std::filesystem::path temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("inkstream-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace inkstream::test
