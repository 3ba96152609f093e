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

// How a model's large matrices are stored. On the CPU, fp16 and int8
// weights are widened to fp32 inside the kernels (kernels/linear.h) and the
// activations and KV cache are fp32; on CUDA fp16 is also the compute dtype.
enum class WeightFormat { F32, BF16, F16, Int8 };

struct Precision {
  c10::ScalarType compute;  // activations and KV cache
  WeightFormat weights;
};

// "auto" | "fp32" | "bf16" | "fp16" | "int8" (also float32/bfloat16/
// float16/q8_0). auto on the CPU = int8 where the kernels have a vector
// int8 path (AVX-512 VNNI or AVX2: the fastest there, within the quality
// bounds), else fp32 (never a format the CPU would emulate); on CUDA bf16
// on devices that support it, else fp16. int8 is a CPU format. Throws
// InvalidRequest for anything else.
Precision parse_precision(const std::string& name, const c10::Device& device);

std::string format_label(WeightFormat f);  // "fp32", "bf16", "fp16", "int8"
std::string dtype_label(c10::ScalarType t);  // "fp32", "bf16", "fp16"

// Physical cores (not hyper-threads) of this machine, at least 1.
int physical_core_count();

enum class Workload { Inference, Training };

// Sets the CPU thread counts (0 = physical cores). Explicit, because the
// defaults oversubscribe small machines: only one pool may get the N
// threads, idle threads of a second pool spin and steal the cores
// (measured: 55 -> 40 tok/s, and 19 vs 70 tok/s for N=4).
//  - Inference: libtorch's OpenMP pool gets N (fp32 products run there in
//    kernels/linear.h, bf16 ones in oneDNN), OpenBLAS 1 (it keeps fp32's
//    small attention products).
//  - Training in fp32: autograd's products run in OpenBLAS, which gets N,
//    and libtorch's pool 1; training in bf16 is as inference.
// Returns the intra-op thread count it set.
int configure_threads(int threads, c10::ScalarType dtype = c10::kBFloat16, Workload workload = Workload::Inference);

// glibc's malloc hands large blocks back to the kernel (mmap threshold, heap
// trimming) and faults them in again on the next forward pass: a 256-token
// prefill took 430 ms instead of 155 ms here. Inference allocates and frees
// activations every step, so keep such memory in the process. Process-wide:
// called once by an executable at start-up, never by library code.
void keep_freed_memory_for_inference();

// Lets this process use AMX tiles where the CPU has them (Sapphire Rapids
// and later: int8 products of 16 rows and more, prompt chunks and serving
// steps, run in tiles). Linux gives a process the tiles' 8 KB of register
// state only when asked. Process-wide: called once by an executable at
// start-up, before the first model is loaded (the kernels pick their
// instruction set once); returns whether it was granted (false on CPUs or
// kernels without AMX).
bool allow_matrix_tiles();

// Hands the free memory of every malloc arena back to the kernel (after a
// model is unloaded: with the policy above, and one arena per runner
// thread, a server that reloads models for new settings would otherwise
// keep growing). Process-wide: an executable's hook, never library code.
void release_freed_memory();

}  // namespace inkstream
