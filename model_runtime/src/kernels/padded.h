#pragma once
// The partial vector at a tile's edge: up to W elements copied into a
// zeroed, aligned buffer, so that the full-width load reads only them (the
// kernel templates' loads of bf16, fp16 and packed pairs that have no
// masked form). Internal linkage, as the templates.
#include <algorithm>
#include <cstddef>
#include <cstring>

namespace inkstream::kernels {
namespace {

template <class E, int W>
struct Padded {
  alignas(64) E v[W] = {};
  Padded(const E* p, int n) { std::memcpy(v, p, static_cast<std::size_t>(std::clamp(n, 0, W)) * sizeof(E)); }
};

}  // namespace
}  // namespace inkstream::kernels
