// What a checkpoint folder's files say about themselves: config.json (parsed
// and validated) and a safetensors header with its offsets (the input is
// written to a file: SafetensorsFile maps files). Every defect is a
// CheckpointError naming the file and field, never a crash or a read
// outside the mapping.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "inkstream/model_runtime/config.h"
#include "inkstream/model_runtime/errors.h"
#include "inkstream/model_runtime/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    try {
      const auto c = inkstream::ModelConfig::parse(body, "config.json");
      c.validate("config.json");
    } catch (const inkstream::CheckpointError&) {
    }
    return 0;
  }
  struct TempFile {
    std::string path =
        (std::filesystem::temp_directory_path() / ("inkstream-fuzz-" + std::to_string(::getpid()) + ".safetensors")).string();
    ~TempFile() { std::remove(path.c_str()); }
  };
  static const TempFile file;
  const std::string& path = file.path;
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(body.data(), static_cast<std::streamsize>(body.size()));
  }
  try {
    const auto f = inkstream::SafetensorsFile::open(path);
    std::size_t total = 0;
    for (const auto& [name, t] : f.tensors()) {
      // Touch the first and last byte of each tensor: ASan catches a range
      // outside the mapping.
      if (t.nbytes) total += static_cast<unsigned char>(t.data[0]) + static_cast<unsigned char>(t.data[t.nbytes - 1]);
    }
    (void)total;
  } catch (const inkstream::CheckpointError&) {
  }
  return 0;
}
