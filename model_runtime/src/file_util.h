#pragma once
// Small file helpers for loaders; failures become CheckpointError naming the path.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "inkstream/model_runtime/errors.h"

namespace inkstream::detail {

inline std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CheckpointError(path.string() + ": cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw CheckpointError(path.string() + ": read error");
  return ss.str();
}

}  // namespace inkstream::detail
