#pragma once
// A CPU allocator that fails allocations of at least `threshold` bytes while
// armed, like a machine out of memory; installed for a scope (process-wide:
// only while no other test runs in this process).
#include <c10/core/CPUAllocator.h>

#include <atomic>
#include <cstddef>

namespace inkstream::test {

class FailingAllocator final : public c10::Allocator {
 public:
  explicit FailingAllocator(c10::Allocator* inner) : inner_(inner) {}
  c10::DataPtr allocate(std::size_t n) const override {
    if (armed && n >= threshold) TORCH_CHECK(false, "DefaultCPUAllocator: not enough memory: you tried to allocate ", n, " bytes.");
    return inner_->allocate(n);
  }
  c10::DeleterFnPtr raw_deleter() const override { return inner_->raw_deleter(); }
  std::atomic<bool> armed{false};
  std::atomic<std::size_t> threshold{1u << 20};

 private:
  c10::Allocator* inner_;
};

// Installs a FailingAllocator (disarmed) for its lifetime.
class FailingAllocatorScope {
 public:
  FailingAllocatorScope() : original_(c10::GetCPUAllocator()), failing_(original_) {
    c10::SetCPUAllocator(&failing_, /*priority=*/255);
  }
  ~FailingAllocatorScope() {
    failing_.armed = false;
    c10::SetCPUAllocator(original_, /*priority=*/255);
  }
  FailingAllocator& allocator() { return failing_; }

 private:
  c10::Allocator* original_;
  FailingAllocator failing_;
};

}  // namespace inkstream::test
