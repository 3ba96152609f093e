#pragma once
// Where and in which precision a model runs.
#include <torch/torch.h>

#include <string>

namespace inkstream {

// "auto" | "cpu" | "cuda" | "cuda:N". auto = the first CUDA device when
// libtorch has CUDA and one is present, else the CPU. Throws InvalidRequest
// for a malformed name or an unavailable device.
torch::Device parse_device(const std::string& name);

// "auto" | "fp32" | "bf16" | "fp16" (also float32/bfloat16/float16). auto =
// bf16 on CPUs with native bf16 (AVX-512 BF16 / AMX, via oneDNN) and on CUDA
// devices that support it, fp16 on older GPUs, fp32 otherwise. fp16 on the
// CPU is refused (libtorch has no fast CPU kernels for it).
torch::ScalarType parse_dtype(const std::string& name, const torch::Device& device);

std::string dtype_label(torch::ScalarType t);  // "fp32", "bf16", "fp16"

// Physical cores (not hyper-threads) of this machine, at least 1.
int physical_core_count();

// Sets libtorch's intra-op thread count (0 = physical cores). Explicit,
// because libtorch's own default oversubscribes small machines.
void configure_threads(int threads);

// True when the CPU has native bf16 dot products (avx512_bf16 or amx_bf16).
bool cpu_has_native_bf16();

}  // namespace inkstream
