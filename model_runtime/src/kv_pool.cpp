#include "kv_pool.h"
#include <torch/types.h>

#include <algorithm>

namespace inkstream {
namespace {

// How many cached tokens past the common prefix a lease may overwrite.
constexpr std::int64_t kOverwritableTokens = 16;

}  // namespace

KvPool::KvPool(const ModelConfig& config, c10::ScalarType dtype, c10::Device device, std::size_t budget_bytes, bool reuse)
    : config_(config), dtype_(dtype), device_(device), budget_(budget_bytes), reuse_(reuse) {}

std::size_t KvPool::bytes_for(std::int64_t rows, std::int64_t positions) const {
  return KvCache::bytes_for(config_, rows, positions, dtype_);
}

// Room for the prompt plus typing ahead (64 positions, ~50 words), in steps
// of 64, so that a writer's next words fit without moving the entry. (Steps
// of 128 held a 203-token prompt in 384 positions: most of a small pool
// went to room nobody typed into.)
std::int64_t KvPool::capacity_for(std::size_t tokens) const {
  const std::int64_t want = (static_cast<std::int64_t>(tokens) + 64 + 63) / 64 * 64;
  return std::min<std::int64_t>(want, config_.n_positions);
}

std::size_t KvPool::worst_case_bytes(std::size_t prompt_tokens, std::size_t extra_bytes) const {
  return bytes_for(1, capacity_for(prompt_tokens)) + extra_bytes;
}

bool KvPool::make_room(std::size_t bytes) {
  while (used_ + bytes > budget_) {
    auto victim = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it)
      if (!(*it)->leased && (victim == entries_.end() || (*it)->last_used < (*victim)->last_used)) victim = it;
    if (victim == entries_.end()) return false;
    used_ -= (*victim)->cache.bytes();
    entries_.erase(victim);
  }
  return true;
}

std::optional<KvPool::Lease> KvPool::lease(std::span<const TokenId> prompt, std::size_t extra_bytes) {
  // The longest common prefix among free entries.
  std::shared_ptr<PrefixEntry> best;
  std::int64_t best_len = 0;
  const std::int64_t limit = static_cast<std::int64_t>(prompt.size()) - 1;
  for (const auto& e : entries_) {
    if (e->leased || !reuse_) continue;
    const auto n = std::min<std::int64_t>(limit, static_cast<std::int64_t>(e->tokens.size()));
    std::int64_t common = 0;
    while (common < n && e->tokens[static_cast<std::size_t>(common)] == prompt[static_cast<std::size_t>(common)]) ++common;
    if (common > best_len) {
      best = e;
      best_len = common;
    }
  }
  const std::int64_t needed = static_cast<std::int64_t>(prompt.size());
  Lease lease;
  if (best) {
    best->leased = true;  // not evicted while making room below
    // In place when the prompt keeps all but the entry's last few tokens
    // (the writer typed on, or retyped the last word). A prompt that
    // diverges earlier (an edit further back, or another document sharing a
    // first word) gets a copy of the common part: leasing in place would
    // overwrite the rest, another document's cached window with it (8
    // documents starting alike destroyed each other's this way).
    // (When the copy does not fit the budget, in place is still better than
    // waiting for memory.)
    const bool may_overwrite = static_cast<std::int64_t>(best->tokens.size()) - best_len <= kOverwritableTokens;
    const bool has_room = best->cache.capacity() >= needed;
    bool leased = false;
    if (!may_overwrite || !has_room) {
      const std::int64_t capacity = capacity_for(prompt.size());
      const std::size_t bytes = bytes_for(1, capacity);
      if (make_room(bytes + extra_bytes)) {
        auto copy = std::make_shared<PrefixEntry>(config_, capacity, dtype_, device_);
        copy->cache.copy_prefix_from(best->cache, best_len);
        used_ += bytes;
        best->leased = false;
        if (may_overwrite) {  // grown: the new entry replaces the old one
          used_ -= best->cache.bytes();
          entries_.remove(best);
        }
        best = copy;
        entries_.push_back(best);
        leased = true;
      }
    }
    if (!leased && has_room && make_room(extra_bytes)) leased = true;  // in place
    if (!leased) {
      best->leased = false;
      best.reset();
    }
    if (best) {
      best->tokens.assign(prompt.begin(), prompt.begin() + best_len);
      best->cache.set_length(best_len);
      lease.entry = best;
      lease.reused = best_len;
    }
  }
  if (!lease.entry) {
    const std::int64_t capacity = capacity_for(prompt.size());
    const std::size_t bytes = bytes_for(1, capacity);
    if (!make_room(bytes + extra_bytes)) return std::nullopt;
    lease.entry = std::make_shared<PrefixEntry>(config_, capacity, dtype_, device_);
    used_ += bytes;
    entries_.push_back(lease.entry);
  }
  lease.entry->leased = true;
  lease.entry->last_used = ++clock_;
  used_ += extra_bytes;
  return lease;
}

void KvPool::release(const std::shared_ptr<PrefixEntry>& entry, std::size_t extra_bytes, bool discard) {
  used_ -= std::min(used_, extra_bytes);
  if (!entry) return;
  entry->leased = false;
  entry->last_used = ++clock_;
  if (discard || entry->tokens.empty()) {
    const auto it = std::find(entries_.begin(), entries_.end(), entry);
    if (it != entries_.end()) {
      used_ -= std::min(used_, entry->cache.bytes());
      entries_.erase(it);
    }
  }
}

}  // namespace inkstream
