#pragma once
// The prefix cache of one engine: keys and values of earlier prompts, kept
// after their requests end, so that a new prompt that starts with the same
// tokens evaluates only the rest (llama.cpp's cache_prompt, vLLM's
// automatic prefix caching). GPT-2 has absolute positions, so only a true
// prefix is reusable.
//
// An entry is leased by one running request at a time (it appends its
// prompt's new tokens in place, or to a copy of the common part when that
// would overwrite more than a few of the entry's tokens); free entries are evicted least recently
// used first when the byte budget needs room. The budget covers every
// entry and the running requests' decoding rows. Scheduler thread only.
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "inkstream/model_runtime/gpt2.h"

namespace inkstream {

struct PrefixEntry {
  PrefixEntry(const ModelConfig& config, std::int64_t capacity, c10::ScalarType dtype, c10::Device device)
      : cache(config, 1, capacity, dtype, device) {}
  std::vector<TokenId> tokens;  // cache positions [0, tokens.size()) hold these tokens' keys/values
  KvCache cache;                // batch 1; cache.length() == tokens.size() between steps
  bool leased = false;
  std::uint64_t last_used = 0;
};

class KvPool {
 public:
  // With `reuse` false every lease starts from an empty entry (a baseline
  // for measurements); entries are still kept and evicted the same way.
  KvPool(const ModelConfig& config, c10::ScalarType dtype, c10::Device device, std::size_t budget_bytes, bool reuse = true);

  struct Lease {
    std::shared_ptr<PrefixEntry> entry;
    std::int64_t reused = 0;  // prompt tokens already in entry->cache
  };
  // Leases the free entry sharing the longest prefix with `prompt` (at most
  // prompt.size() - 1 tokens: the last one must run to give logits), with
  // room for the whole prompt, or a new one. `extra_bytes` (the decoding
  // rows) must fit too. nullopt when the budget cannot hold it even after
  // evicting every free entry.
  std::optional<Lease> lease(std::span<const TokenId> prompt, std::size_t extra_bytes);
  // The request is over: the entry stays cached (or is dropped when
  // `discard`, e.g. after a failure mid-write).
  void release(const std::shared_ptr<PrefixEntry>& entry, std::size_t extra_bytes, bool discard = false);

  std::size_t used_bytes() const { return used_; }
  std::size_t budget_bytes() const { return budget_; }
  std::size_t entries() const { return entries_.size(); }
  // Bytes of a KV cache of `rows` x `positions`.
  std::size_t bytes_for(std::int64_t rows, std::int64_t positions) const;
  // What a lease of `prompt` would need if nothing could be reused or evicted.
  std::size_t worst_case_bytes(std::size_t prompt_tokens, std::size_t extra_bytes) const;

 private:
  std::int64_t capacity_for(std::size_t tokens) const;
  bool make_room(std::size_t bytes);

  ModelConfig config_;
  c10::ScalarType dtype_;
  c10::Device device_;
  std::size_t budget_, used_ = 0;
  bool reuse_;
  std::uint64_t clock_ = 0;
  std::list<std::shared_ptr<PrefixEntry>> entries_;
};

}  // namespace inkstream
