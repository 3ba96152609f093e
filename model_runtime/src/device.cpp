#include "inkstream/model_runtime/device.h"
#include <torch/cuda.h>
#include <torch/utils.h>
#include <torch/types.h>

#include <dlfcn.h>
#include <malloc.h>

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "inkstream/model_runtime/errors.h"
#include "kernels/linear.h"

#if INKSTREAM_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

namespace inkstream {

torch::Device parse_device(const std::string& name) {
  if (name == "auto" || name.empty())
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda" || name.starts_with("cuda:")) {
    if (!torch::cuda::is_available())
      throw InvalidRequest("device \"" + name + "\": this build of libtorch has no CUDA or no GPU is visible");
    int index = 0;
    if (name.size() > 5) {
      std::size_t used = 0;
      try {
        index = std::stoi(name.substr(5), &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != name.size() - 5 || index < 0) throw InvalidRequest("device \"" + name + "\": expected cuda:N");
    }
    if (index >= static_cast<int>(torch::cuda::device_count()))
      throw InvalidRequest("device \"" + name + "\": only " + std::to_string(torch::cuda::device_count()) + " CUDA device(s)");
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw InvalidRequest("device \"" + name + "\": expected auto, cpu, cuda or cuda:N");
}

Precision parse_precision(const std::string& name, const torch::Device& device) {
  if (name == "auto" || name.empty()) {
    if (device.is_cuda()) {
#if INKSTREAM_WITH_CUDA
      // bf16 needs Ampere (compute capability 8.0) or newer.
      if (at::cuda::getDeviceProperties(device.has_index() ? device.index() : 0)->major >= 8)
        return {torch::kBFloat16, WeightFormat::BF16};
#endif
      return {torch::kFloat16, WeightFormat::F16};
    }
    // int8 wherever the kernels have a vector int8 path (AVX-512 VNNI or
    // AVX2): the fastest decoding and prefill on every CPU measured
    // (bench/RESULTS.md: GPT-2 small 218 tok/s against 125 bf16 and 68
    // fp32; AVX2 148 against 58 fp32), and within the quality bounds (the
    // bundled model's validation perplexity +0.01%). Else fp32: never a
    // format the CPU could only emulate.
    const bool int8 = kernels::kernels_enabled() && std::strcmp(kernels::linear_q8_isa(), "scalar") != 0;
    return int8 ? Precision{torch::kFloat32, WeightFormat::Int8} : Precision{torch::kFloat32, WeightFormat::F32};
  }
  if (name == "fp32" || name == "float32" || name == "f32") return {torch::kFloat32, WeightFormat::F32};
  if (name == "bf16" || name == "bfloat16") return {torch::kBFloat16, WeightFormat::BF16};
  if (name == "fp16" || name == "float16" || name == "f16")
    return {device.is_cuda() ? torch::kFloat16 : torch::kFloat32, WeightFormat::F16};
  if (name == "int8" || name == "q8_0") {
    if (!device.is_cpu()) throw InvalidRequest("dtype int8 is a CPU format; use fp16 or bf16 on CUDA");
    return {torch::kFloat32, WeightFormat::Int8};
  }
  throw InvalidRequest("dtype \"" + name + "\": expected auto, fp32, bf16, fp16 or int8");
}

std::string format_label(WeightFormat f) {
  switch (f) {
    case WeightFormat::F32: return "fp32";
    case WeightFormat::BF16: return "bf16";
    case WeightFormat::F16: return "fp16";
    case WeightFormat::Int8: return "int8";
  }
  return "?";
}

std::string dtype_label(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return "fp32";
    case torch::kBFloat16: return "bf16";
    case torch::kFloat16: return "fp16";
    default: return std::string(c10::toString(t));
  }
}

int physical_core_count() {
  // Count distinct (physical id, core id) pairs; fall back to logical CPUs.
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, physical = "0";
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
    const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "physical id") physical = value;
    if (key == "core id") cores.emplace(physical, value);
  }
  const int logical = static_cast<int>(std::thread::hardware_concurrency());
  if (cores.empty()) return std::max(1, logical);
  return std::max(1, std::min(static_cast<int>(cores.size()), logical > 0 ? logical : 1 << 20));
}

void keep_freed_memory_for_inference() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest glibc allows; disables its dynamic threshold
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

void release_freed_memory() { malloc_trim(0); }

bool allow_matrix_tiles() { return kernels::request_amx_tile_state(); }

int configure_threads(int threads, torch::ScalarType dtype, Workload workload) {
  const int n = threads > 0 ? threads : physical_core_count();
  // OpenBLAS is found at run time behind libblas.so.3; other BLAS builds
  // (reference BLAS, MKL) have no such symbol and keep libtorch's pool.
  using SetThreads = void (*)(int);
  const auto openblas_set_num_threads = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  // Only one pool may have N threads: idle OpenBLAS threads spin too.
  const bool blas_does_products = workload == Workload::Training && dtype == torch::kFloat32 && openblas_set_num_threads;
  const int intra = blas_does_products ? 1 : n;
  if (openblas_set_num_threads) openblas_set_num_threads(blas_does_products ? n : 1);
  torch::set_num_threads(intra);
  return intra;
}

}  // namespace inkstream
