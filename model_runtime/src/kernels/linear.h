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
#include <limits>

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

// fp16 weights for fp32 activations (a CPU model's fp16 format), in the
// layout of the fp32 calls (raw IEEE half bits): the products widen them to
// fp32 in registers (exact) and run as the fp32 kernels do, with the same
// batch invariance; the fp32 reference on the widened matrix is exact for
// them.
// `panels` (nn only, N a multiple of kF16Panel): the (K, N) matrix is kept
// as N / kF16Panel panels of (K, kF16Panel), each contiguous, element
// (k, n) at f16_panel_index(k, n, K). A decoding step streams each panel;
// row-major, each k row of a 64-column block was a jump of N halves (a new
// page every row or two).
// 32 columns: one AVX2 tile (4 vectors of 8), two AVX-512 vectors. In
// 64-column panels an AVX2 tile read 64 bytes of every 128 per k row (two
// passes over each panel): fp16 decoding read 13.5 of 26.5 GB/s.
constexpr std::int64_t kF16Panel = 32;
struct F16Matrix {
  const std::uint16_t* bits;
  bool panels = false;
};
inline std::int64_t f16_panel_index(std::int64_t k, std::int64_t n, std::int64_t K) {
  return (n / kF16Panel * K + k) * kF16Panel + n % kF16Panel;
}
void linear_nn_f16(const float* x, F16Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N);
void linear_nt_f16(const float* x, F16Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N);

// int8 weights (a CPU model's int8 format) for y = x · w + b, w (K, N) in
// Conv1D form (the tied lm_head is kept in this form too, as wteᵀ): blocks
// of kQ8Block consecutive k of a column share one fp32 scale (value =
// q · scale, scale = max |block| / 127, q in [-127, 127]). Stored for
// integer dot products in panels of kQ8Panel columns, each panel contiguous
// (a product streams it; row-major quads strided by N cost the lm_head a
// TLB miss per row): `quads` of q8_quads_size(K, N), quad (p, n) at
// q8_quad_index(p, n, K) holding q[4p + i][n] + 128 in byte i (k past K and
// columns past N hold 128, i.e. 0); `scales`, ceil(K/32) · N floats, the
// scale of block b of column n at q8_scale_index(b, n, K, N): panel by
// panel, each panel's (blocks, width) contiguous (width kQ8Panel, the last
// one what is left), so that a product streams them too (row-major, a tile
// of the lm_head read each block's scales a page apart: 24 TLB and cache
// misses per tile; AVX2 int8 decoding 77 -> 85 tok/s when they moved).
// Each row of x is quantized by blocks the same way, each block's products
// are summed exactly in int32, then scaled and summed in fp32 (llama.cpp's
// Q8_0 · Q8_0, with fp32 scales). Every instruction set computes the same
// operations: results agree bit for bit between them and do not depend on
// the batch.
constexpr std::int64_t kQ8Block = 32;
// A (rows, N) matrix kept column panel by column panel, each panel's
// (rows, width) contiguous, width `panel` (the last one what is left): the
// int8 scales and the bf16 pairs below. Element (r, n) at
// panel_major_index; panel_width is the row stride of n's panel.
inline std::int64_t panel_width(std::int64_t n, std::int64_t N, std::int64_t panel) {
  const std::int64_t first = n / panel * panel;
  return N - first < panel ? N - first : panel;
}
inline std::int64_t panel_major_index(std::int64_t r, std::int64_t n, std::int64_t rows, std::int64_t N, std::int64_t panel) {
  const std::int64_t first = n / panel * panel;
  return first * rows + r * panel_width(n, N, panel) + (n - first);
}
// 16 columns: one AVX2 tile (2 vectors of 8) or one AVX-512 vector, so a
// tile reads its quads as one or two sequential streams (in 64-column
// panels an AVX2 tile read 64 bytes of every 256: decoding read 16.5 of the
// machine's 26.5 GB/s).
constexpr std::int64_t kQ8Panel = 16;
struct Q8Matrix {
  const std::uint32_t* quads;
  const float* scales;
};
inline std::int64_t q8_blocks(std::int64_t K) { return (K + kQ8Block - 1) / kQ8Block; }
// Whether a block whose largest |v| has the bits `top` (and inv = 127 /
// that) quantizes by the plain rule: a maximum neither zero nor infinite
// nor NaN, and 127 / it finite. The others take quantize_block's general
// loop (zeros, and a 0, infinite or NaN scale).
inline bool q8_block_usable(std::uint32_t top, float inv) {
  return top > 0 && top < 0x7f800000u && inv <= std::numeric_limits<float>::max();
}
inline std::int64_t q8_quads(std::int64_t K) { return (K + 3) / 4; }
inline std::int64_t q8_panels(std::int64_t N) { return (N + kQ8Panel - 1) / kQ8Panel; }
inline std::int64_t q8_quads_size(std::int64_t K, std::int64_t N) { return q8_panels(N) * q8_quads(K) * kQ8Panel; }
inline std::int64_t q8_quad_index(std::int64_t p, std::int64_t n, std::int64_t K) {
  return (n / kQ8Panel * q8_quads(K) + p) * kQ8Panel + n % kQ8Panel;
}
inline std::int64_t q8_scale_index(std::int64_t b, std::int64_t n, std::int64_t K, std::int64_t N) {
  return panel_major_index(b, n, q8_blocks(K), N, kQ8Panel);
}
void linear_q8(const float* x, Q8Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N);

// Quantizes w with element (k, n) at w[k * k_stride + n * n_stride]: a
// (K, N) matrix (N, 1) or the transpose of an (N, K) one (1, K). Rounds to
// nearest; an all-zero (or below ~4e-37) block gets scale 0, a block with
// a NaN a NaN scale (activations are quantized by the same rule).
void quantize_q8(const float* w, std::int64_t k_stride, std::int64_t n_stride, std::uint32_t* quads, float* scales, std::int64_t K,
                 std::int64_t N);
// The same from bf16 bits, widened as they are read (a bf16 checkpoint
// needs no fp32 copy of each matrix: the lm_head's was 154 MB at load).
void quantize_q8_bf16(const std::uint16_t* w, std::int64_t k_stride, std::int64_t n_stride, std::uint32_t* quads, float* scales,
                      std::int64_t K, std::int64_t N);
// The same quantization column by column (the reference: quantize_q8 must
// give its bits).
void quantize_q8_reference(const float* w, std::int64_t k_stride, std::int64_t n_stride, std::uint32_t* quads, float* scales,
                           std::int64_t K, std::int64_t N);
// The fp32 values the kernels multiply by: out (K, N); or column n, out (K)
// (an embedding lookup of the tied matrix).
void dequantize_q8(Q8Matrix w, float* out, std::int64_t K, std::int64_t N);
void dequantize_q8_column(Q8Matrix w, std::int64_t n, float* out, std::int64_t K, std::int64_t N);
// x quantized as linear_q8 does, products with the dequantized w (K, N)
// summed in double.
void linear_q8_reference(const float* x, const float* w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N);
// "amx-int8", "avx512vnni", "avx2" or "scalar".
const char* linear_q8_isa();
// Asks Linux for this process's AMX tile state (inkstream::allow_matrix_tiles).
bool request_amx_tile_state();

// bf16: y = x · wᵀ + b with x (M, K), w (N, K), b (N) or null, y (M, N) all
// bf16 (raw bits); products summed in fp32, y rounded once. Batch-invariant
// like the fp32 kernels. A bf16 model's tied lm_head (its Conv1D matrices
// go through linear_nn_bf16 below).
void linear_nt_bf16(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* b, std::uint16_t* y, std::int64_t M,
                    std::int64_t K, std::int64_t N);
void linear_nt_bf16_reference(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* b, std::uint16_t* y,
                              std::int64_t M, std::int64_t K, std::int64_t N);
// bf16 y = x · w + b for a Conv1D weight w (K, N) packed in k pairs by
// pack_bf16_pairs: ceil(K/2) * N pairs, pair (p, n) = w[2p][n] in the low
// half, w[2p+1][n] (or 0) in the high half — the operand layout of AVX-512
// BF16's dot products; other instruction sets split the halves. The pairs
// lie in panels of kBf16Panel columns (panel_major_index over ceil(K/2)
// pair rows): a decoding tile streams its panel, where row-major pair rows
// were N pairs apart (a page or more for GPT-2's matrices), as fp16's
// panels do.
constexpr std::int64_t kBf16Panel = 32;
inline std::int64_t bf16_pair_index(std::int64_t p, std::int64_t n, std::int64_t K, std::int64_t N) {
  return panel_major_index(p, n, (K + 1) / 2, N, kBf16Panel);
}
void linear_nn_bf16(const std::uint16_t* x, const std::uint32_t* w, const std::uint16_t* b, std::uint16_t* y, std::int64_t M,
                    std::int64_t K, std::int64_t N);
void pack_bf16_pairs(const std::uint16_t* w, std::uint32_t* packed, std::int64_t K, std::int64_t N);
// The inverse for an even K: w (K, N) from the packed pairs.
void unpack_bf16_pairs(const std::uint32_t* packed, std::uint16_t* w, std::int64_t K, std::int64_t N);
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
