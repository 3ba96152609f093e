#include "inkstream/model_runtime/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "inkstream/model_runtime/atomic_file.h"
#include "inkstream/model_runtime/errors.h"

namespace inkstream {
namespace {

using Json = nlohmann::json;

struct DtypeInfo {
  const char* name;
  StoredDtype dtype;
  std::size_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {"F64", StoredDtype::F64, 8},  {"F32", StoredDtype::F32, 4},    {"F16", StoredDtype::F16, 2},
    {"BF16", StoredDtype::BF16, 2}, {"I64", StoredDtype::I64, 8},    {"I32", StoredDtype::I32, 4},
    {"I16", StoredDtype::I16, 2},  {"I8", StoredDtype::I8, 1},      {"U8", StoredDtype::U8, 1},
    {"BOOL", StoredDtype::BOOL, 1}, {"F8_E4M3", StoredDtype::F8_E4M3, 1}, {"F8_E5M2", StoredDtype::F8_E5M2, 1},
};

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
  throw CheckpointError(path.string() + ": " + what);
}

}  // namespace

const char* dtype_name(StoredDtype d) {
  for (const auto& info : kDtypes)
    if (info.dtype == d) return info.name;
  return "?";
}

std::size_t dtype_size(StoredDtype d) {
  for (const auto& info : kDtypes)
    if (info.dtype == d) return info.size;
  return 0;
}

std::shared_ptr<MappedFile> MappedFile::open(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail(path, std::string("cannot stat: ") + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<std::size_t>(st.st_size);
  if (file->size_ > 0) {
    // Private + writable: copy-on-write pages, so tensors that alias the
    // mapping can never modify the file or fault on a write.
    void* p = ::mmap(nullptr, file->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      fail(path, std::string("cannot map: ") + std::strerror(err));
    }
    file->data_ = static_cast<std::byte*>(p);
  }
  ::close(fd);
  return file;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, size_);
}

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  SafetensorsFile f;
  f.mapping_ = MappedFile::open(path);
  const std::size_t file_size = f.mapping_->size();
  if (file_size < 8) fail(path, "file is too small for a safetensors header (" + std::to_string(file_size) + " bytes)");
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<std::uint8_t>(f.mapping_->data()[i]);
  if (header_len > kMaxHeaderBytes)
    fail(path, "header length " + std::to_string(header_len) + " exceeds the 100 MB limit");
  if (header_len > file_size - 8)
    fail(path, "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                   std::to_string(file_size) + " bytes)");
  const auto* header_begin = reinterpret_cast<const char*>(f.mapping_->data() + 8);
  Json header;
  try {
    header = Json::parse(header_begin, header_begin + header_len);
  } catch (const Json::exception& e) {  // parse_error, or out_of_range for numbers like 1e505
    fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");

  const std::byte* data = f.mapping_->data() + 8 + header_len;
  const std::uint64_t data_size = file_size - 8 - header_len;
  struct Span {
    std::uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Span> spans;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail(path, "__metadata__ is not an object");
      for (const auto& [k, v] : entry.items())
        f.metadata_[k] = v.is_string() ? v.get<std::string>() : v.dump();
      continue;
    }
    const std::string where = "tensor '" + name + "': ";
    if (!entry.is_object()) fail(path, where + "entry is not an object");
    if (!entry.contains("dtype") || !entry["dtype"].is_string()) fail(path, where + "missing dtype");
    if (!entry.contains("shape") || !entry["shape"].is_array()) fail(path, where + "missing shape");
    if (!entry.contains("data_offsets") || !entry["data_offsets"].is_array() || entry["data_offsets"].size() != 2)
      fail(path, where + "data_offsets must be [begin, end]");
    const std::string dtype_str = entry["dtype"].get<std::string>();
    const auto info = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                                   [&](const DtypeInfo& d) { return dtype_str == d.name; });
    if (info == std::end(kDtypes)) fail(path, where + "unknown dtype \"" + dtype_str + "\"");

    TensorEntry t{info->dtype, {}, nullptr, 0};
    std::uint64_t count = 1;
    for (const Json& dim : entry["shape"]) {
      const bool valid_dim = dim.is_number_unsigned() ? dim.get<std::uint64_t>() <= INT64_MAX
                                                      : dim.is_number_integer() && dim.get<std::int64_t>() >= 0;
      if (!valid_dim) fail(path, where + "shape " + entry["shape"].dump() + " has a negative or non-integer dimension");
      const auto d = dim.get<std::uint64_t>();
      if (d != 0 && count > UINT64_MAX / d) fail(path, where + "shape " + entry["shape"].dump() + " overflows");
      count *= d;
      t.shape.push_back(static_cast<std::int64_t>(d));
    }
    if (count > UINT64_MAX / info->size) fail(path, where + "shape " + entry["shape"].dump() + " overflows");
    const Json& offsets = entry["data_offsets"];
    for (const Json& o : offsets)
      if (!o.is_number_unsigned() && !(o.is_number_integer() && o.get<std::int64_t>() >= 0))
        fail(path, where + "data_offsets must be non-negative integers");
    const auto begin = offsets[0].get<std::uint64_t>(), end = offsets[1].get<std::uint64_t>();
    if (begin > end) fail(path, where + "data_offsets begin > end");
    if (end > data_size)
      fail(path, where + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                     "] out of range: the data section is only " + std::to_string(data_size) +
                     " bytes (truncated file?)");
    if (end - begin != count * info->size)
      fail(path, where + "size mismatch: " + std::to_string(end - begin) + " bytes stored, shape " +
                     entry["shape"].dump() + " x " + dtype_str + " needs " + std::to_string(count * info->size));
    t.data = data + begin;
    t.nbytes = end - begin;
    const auto inserted = f.tensors_.emplace(name, std::move(t));
    spans.push_back({begin, end, &inserted.first->first});
  }
  // Offsets must tile the data section exactly: no overlap, no gap.
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t covered = 0;
  for (const Span& s : spans) {
    if (s.begin < covered) fail(path, "tensor '" + *s.name + "' overlaps the previous tensor's data");
    if (s.begin > covered)
      fail(path, "gap in the data section: bytes [" + std::to_string(covered) + ", " + std::to_string(s.begin) +
                     ") before tensor '" + *s.name + "' are not covered by any tensor");
    covered = s.end;
  }
  if (covered != data_size)
    fail(path, "data section has " + std::to_string(data_size - covered) +
                   " trailing bytes not covered by any tensor (truncated or corrupt file?)");
  return f;
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const auto& t : tensors) {
    std::uint64_t count = 1;
    for (const auto d : t.shape) count *= static_cast<std::uint64_t>(d);
    if (count * dtype_size(t.dtype) != t.nbytes)
      throw std::runtime_error("write_safetensors: size of '" + t.name + "' does not match its shape");
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.nbytes}}};
    offset += t.nbytes;
  }
  std::string text = header.dump();
  text.append((8 - (text.size() % 8)) % 8, ' ');
  AtomicFile file(path);  // a kill or a full disk mid-write leaves the old file, never half a new one
  std::ofstream& out = file.stream();
  const std::uint64_t len = text.size();
  char len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<char>((len >> (8 * i)) & 0xFF);
  out.write(len_bytes, 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& t : tensors) out.write(static_cast<const char*>(t.data), static_cast<std::streamsize>(t.nbytes));
  file.commit();
}

}  // namespace inkstream
