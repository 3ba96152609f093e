#pragma once
// Where and in which precision a model runs.
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace inkstream {

// "auto" | "cpu" | "cuda" | "cuda:N". auto = the first CUDA device when
// libtorch has CUDA and one is present, else the CPU. Throws InvalidRequest
// for a malformed name or an unavailable device.
c10::Device parse_device(const std::string& name);

// "auto" | "fp32" | "bf16" | "fp16" (also float32/bfloat16/float16). auto =
// bf16 on CPUs with native bf16 (AVX-512 BF16 / AMX, via oneDNN) and on CUDA
// devices that support it, fp16 on older GPUs, fp32 otherwise. fp16 on the
// CPU is refused (libtorch has no fast CPU kernels for it).
c10::ScalarType parse_dtype(const std::string& name, const c10::Device& device);

std::string dtype_label(c10::ScalarType t);  // "fp32", "bf16", "fp16"

// Physical cores (not hyper-threads) of this machine, at least 1.
int physical_core_count();

// Sets the CPU thread counts for computing in `dtype` (0 = physical cores).
// Explicit, because the defaults oversubscribe small machines:
//  - bf16 matmuls run in oneDNN on libtorch's OpenMP pool: that pool gets N,
//    OpenBLAS 1 (its idle threads spin as well: 55 -> 40 tok/s otherwise).
//  - fp32 matmuls run in OpenBLAS, whose own pthreads contend with libgomp's
//    spinning workers (measured here: N=4 decoding 19 -> 70 tok/s when fixed),
//    so OpenBLAS gets N threads and libtorch's pool 1.
// Returns the intra-op thread count it set.
int configure_threads(int threads, c10::ScalarType dtype = c10::kBFloat16);

// True when the CPU has native bf16 dot products (avx512_bf16 or amx_bf16).
bool cpu_has_native_bf16();

}  // namespace inkstream
