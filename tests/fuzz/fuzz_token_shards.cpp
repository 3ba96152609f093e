// Token shard headers and dataset.json, as `train` and `eval` read them:
// the first byte picks the parser, the rest is the file. Every defect is a
// std::runtime_error naming the file, never a read outside the bytes
// (ASan: every token of an accepted shard is read).
#include <cstdint>
#include <stdexcept>
#include <string>

#include "inkstream/training/token_shard.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  using namespace inkstream::training;
  if (data[0] % 2 == 0) {
    try {
      const DatasetMeta m = DatasetMeta::parse(body, "dataset.json");
      if (m.vocab_size < 1 || (m.token_bytes != 2 && m.token_bytes != 4)) __builtin_trap();
      for (const auto* split : {&m.train, &m.val})
        for (const std::string& name : split->shards)
          if (name.empty() || name.find('/') != std::string::npos || name == "..") __builtin_trap();
    } catch (const std::runtime_error&) {
    }
    return 0;
  }
  try {
    const ShardView v = ShardView::parse(data + 1, size - 1, "train_000.bin");
    std::uint64_t sum = 0;
    for (std::uint64_t i = 0; i < v.count; ++i) sum += v[i];
    if (v.count * v.width + kShardHeaderBytes != size - 1) __builtin_trap();
    (void)sum;
  } catch (const std::runtime_error&) {
  }
  return 0;
}
