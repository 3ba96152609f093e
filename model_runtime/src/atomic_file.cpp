#include "inkstream/model_runtime/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace inkstream {

void sync_path(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(path.string() + ": cannot open to sync: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw std::runtime_error(path.string() + ": sync failed: " + std::strerror(err));
}

AtomicFile::AtomicFile(std::filesystem::path target, std::ios::openmode mode)
    : target_(std::move(target)), temp_(target_.string() + ".tmp-" + std::to_string(::getpid())) {
  out_.open(temp_, mode | std::ios::out | std::ios::trunc);
  if (!out_) throw std::runtime_error(target_.string() + ": cannot open " + temp_.string() + " for writing");
}

AtomicFile::~AtomicFile() {
  if (committed_) return;
  out_.close();
  std::error_code ec;
  std::filesystem::remove(temp_, ec);
}

void AtomicFile::commit() {
  out_.flush();
  const bool written = static_cast<bool>(out_);
  out_.close();
  if (!written || out_.fail()) throw std::runtime_error(target_.string() + ": write failed (is the disk full?)");
  sync_path(temp_);
  std::error_code ec;
  std::filesystem::rename(temp_, target_, ec);
  if (ec) throw std::runtime_error(target_.string() + ": cannot rename " + temp_.string() + ": " + ec.message());
  committed_ = true;
  sync_path(target_.has_parent_path() ? target_.parent_path() : std::filesystem::path("."));
}

void write_file_atomically(const std::filesystem::path& target, std::string_view bytes) {
  AtomicFile f(target);
  f.stream().write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.commit();
}

void copy_file_atomically(const std::filesystem::path& source, const std::filesystem::path& target) {
  std::ifstream in(source, std::ios::binary);
  if (!in) throw std::runtime_error(target.string() + ": cannot read " + source.string());
  AtomicFile f(target);
  f.stream() << in.rdbuf();
  if (in.bad()) throw std::runtime_error(target.string() + ": cannot read " + source.string());
  f.commit();
}

}  // namespace inkstream
