#pragma once
// Reader for the safetensors format, memory-mapped and fully validated.
//
// Layout: u64 little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
// then the data. Every check the reference implementation makes is made here
// (bounded header, offsets in range, no overlap, every byte covered,
// size = shape x dtype size, no integer overflow); failures throw
// CheckpointError naming the file and tensor.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace inkstream {

enum class StoredDtype { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, F8_E4M3, F8_E5M2 };

const char* dtype_name(StoredDtype d);
std::size_t dtype_size(StoredDtype d);

// A read-only memory mapping of a whole file (copy-on-write, so a stray write
// can never reach the file or fault).
class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  MappedFile() = default;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::filesystem::path path_;
};

struct TensorEntry {
  StoredDtype dtype;
  std::vector<std::int64_t> shape;
  const std::byte* data;  // into the mapping
  std::size_t nbytes;
};

class SafetensorsFile {
 public:
  static constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

  static SafetensorsFile open(const std::filesystem::path& path);

  const std::map<std::string, TensorEntry>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::shared_ptr<MappedFile>& mapping() const { return mapping_; }

 private:
  std::shared_ptr<MappedFile> mapping_;
  std::map<std::string, TensorEntry> tensors_;
  std::map<std::string, std::string> metadata_;
};

// One tensor to write: raw little-endian bytes in row-major order.
struct TensorToWrite {
  std::string name;
  StoredDtype dtype;
  std::vector<std::int64_t> shape;
  const void* data;
  std::size_t nbytes;
};

// Writes a safetensors file (header padded to 8 bytes, data in the given
// order). Throws std::runtime_error on I/O failure or inconsistent sizes.
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace inkstream
