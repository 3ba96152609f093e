#pragma once
// Files that are either the old version or the complete new one: the bytes
// go to a temporary name beside the target, are flushed to the disk
// (fsync), then renamed over it and the folder is synced. A kill -9 or a
// full disk mid-write never leaves a half-file that loads. One helper for
// every file inkstream writes (models, checkpoints, datasets, reports).
#include <filesystem>
#include <fstream>
#include <string_view>

namespace inkstream {

class AtomicFile {
 public:
  // Opens TARGET.tmp-PID for writing; throws std::runtime_error naming it.
  explicit AtomicFile(std::filesystem::path target, std::ios::openmode mode = std::ios::binary);
  ~AtomicFile();  // not committed: the temporary goes
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  std::ofstream& stream() { return out_; }
  // Flushes, syncs, renames over the target, syncs its folder. Throws
  // std::runtime_error naming the target when any step fails (a full disk):
  // the target is then untouched.
  void commit();

 private:
  std::filesystem::path target_, temp_;
  std::ofstream out_;
  bool committed_ = false;
};

// The whole file at once.
void write_file_atomically(const std::filesystem::path& target, std::string_view bytes);
// A copy of `source`, the same way.
void copy_file_atomically(const std::filesystem::path& source, const std::filesystem::path& target);
// fsync of a file or a folder (after renames inside it); throws on failure.
void sync_path(const std::filesystem::path& path);

}  // namespace inkstream
