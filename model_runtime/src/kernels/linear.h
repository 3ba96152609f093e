#pragma once
// fp32 matrix products for the linear layers of inference, the lowest layer
// of the runtime (kernels -> layers -> model -> engine).
//
// Batch invariance: every output y[m, n] is computed by the same sequence of
// floating-point operations whatever M, the other rows, the thread count or
// the tile the row lands in (a zero accumulator, fused multiply-adds in a
// fixed order over k, then + b[n]). So a sequence's numbers do not depend on
// what else shares its decoding step: continuous batching stays
// deterministic. (OpenBLAS's sgemm changes its blocking with M, so its rows
// differ in the last bits between batch sizes.)
//
// The instruction set is chosen once at run time (CPUID): AVX-512F, AVX2 +
// FMA, or portable scalar code. Each path has a plain reference beside it
// (the *_reference functions, double accumulation) that tests compare with.
#include <cstdint>

namespace inkstream::kernels {

// y = x · w + b. x is (M, K), w is (K, N) (Conv1D layout: in, out), b is (N)
// or null, y is (M, N); all row-major and contiguous.
void linear_nn_f32(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N);

// y = x · wᵀ + b. x is (M, K), w is (N, K) (nn.Linear layout: out, in, e.g.
// the tied embedding used as lm_head), b is (N) or null, y is (M, N).
void linear_nt_f32(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N);

// Plain loops accumulating in double: the references for tests.
void linear_nn_f32_reference(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K,
                             std::int64_t N);
void linear_nt_f32_reference(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K,
                             std::int64_t N);

// Compressed weights for fp32 activations (the fp16 and int8 formats of a
// CPU model): the products read the small weights and widen them to fp32 in
// registers, exactly (fp16) or as q · scale rounded once (int8), then run as
// the fp32 kernels do: the same batch invariance, and the fp32 reference on
// the widened matrix is exact for them (dequantize_*).
//
// fp16 (IEEE half, raw bits) in the layout of the fp32 call.
struct F16Matrix {
  const std::uint16_t* bits;
};
// int8 in blocks of kQ8Block consecutive k with one fp32 scale each
// (value = q · scale, scale = max |block| / 127): Conv1D form q (K, N) with
// scales (ceil(K/32), N), the blocks running down each column; x · wᵀ form
// q (N, K) with scales (N, ceil(K/32)), the blocks along each row.
// (llama.cpp's Q8_0 has the same blocks with fp16 scales.)
constexpr std::int64_t kQ8Block = 32;
struct Q8Matrix {
  const std::int8_t* q;
  const float* scales;
};
inline std::int64_t q8_blocks(std::int64_t K) { return (K + kQ8Block - 1) / kQ8Block; }

void linear_nn_f16(const float* x, F16Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N);
void linear_nt_f16(const float* x, F16Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N);
void linear_nn_q8(const float* x, Q8Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N);
void linear_nt_q8(const float* x, Q8Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N);

// w (K, N) -> q (K, N), scales (ceil(K/32), N); w (N, K) -> q (N, K),
// scales (N, ceil(K/32)). Round to nearest, an all-zero block gets scale 0.
void quantize_q8_nn(const float* w, std::int8_t* q, float* scales, std::int64_t K, std::int64_t N);
void quantize_q8_nt(const float* w, std::int8_t* q, float* scales, std::int64_t N, std::int64_t K);
// The fp32 values the kernels compute with: out has w's shape.
void dequantize_q8_nn(Q8Matrix w, float* out, std::int64_t K, std::int64_t N);
void dequantize_q8_nt(Q8Matrix w, float* out, std::int64_t N, std::int64_t K);

// bf16: y = x · wᵀ + b with x (M, K), w (N, K), b (N) or null, y (M, N) all
// bf16 (raw bits); products summed in fp32, y rounded once. Batch-invariant
// like the fp32 kernels. Used for every matrix of a bf16 model on the CPU
// (the Conv1D weights are stored transposed for it at load).
void linear_nt_bf16(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* b, std::uint16_t* y, std::int64_t M,
                    std::int64_t K, std::int64_t N);
void linear_nt_bf16_reference(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* b, std::uint16_t* y,
                              std::int64_t M, std::int64_t K, std::int64_t N);
// bf16 y = x · w + b for a Conv1D weight w (K, N) packed in k pairs by
// pack_bf16_pairs: packed (ceil(K/2), N), element (p, n) = w[2p][n] in the
// low half, w[2p+1][n] (or 0) in the high half — the operand layout of
// AVX-512 BF16's dot products; other instruction sets split the halves.
void linear_nn_bf16(const std::uint16_t* x, const std::uint32_t* w, const std::uint16_t* b, std::uint16_t* y, std::int64_t M,
                    std::int64_t K, std::int64_t N);
void pack_bf16_pairs(const std::uint16_t* w, std::uint32_t* packed, std::int64_t K, std::int64_t N);
// The reference takes the unpacked w (K, N).
void linear_nn_bf16_reference(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* b, std::uint16_t* y,
                              std::int64_t M, std::int64_t K, std::int64_t N);

// "avx512bf16" (the CPU's bf16 dot-product instruction), or the fp32 path's
// name when bf16 is widened to fp32 there.
const char* linear_bf16_isa();

// False when INKSTREAM_KERNELS=off: the model then runs on libtorch's
// operators alone (its weights in checkpoint layout), for comparisons.
bool kernels_enabled();

// The code path in use: "avx512", "avx2" or "scalar". INKSTREAM_KERNELS=
// avx512 / avx2 / scalar in the environment caps the instruction set, for
// tests and benchmarks (avx512 keeps AVX-512F but widens bf16 to fp32).
const char* linear_f32_isa();

}  // namespace inkstream::kernels
