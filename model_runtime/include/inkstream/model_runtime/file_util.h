#pragma once
// The one way inkstream reads a whole file: a failure is an Error (the
// loaders pass CheckpointError) whose message names the path.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace inkstream {

template <class Error = std::runtime_error>
std::string read_whole_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(path.string() + ": read error");
  return ss.str();
}

}  // namespace inkstream
