#pragma once
// The per-instruction-set entry points behind linear.h: each computes output
// columns [n_begin, n_end) for all rows (the caller splits columns over
// threads), and the attention kernels. Defined in linear_<isa>.cpp.
#include <cstdint>
#include <vector>

#include "attention.h"
#include "linear.h"

namespace inkstream::kernels {

// WT: const float*, F16Matrix or Q8Matrix (linear.h).
template <class WT>
using LinearColumnsOf = void (*)(const float* x, WT w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N,
                                 std::int64_t n_begin, std::int64_t n_end);
using LinearColumns = LinearColumnsOf<const float*>;

// The same for bf16 x, w, b and y (w is (N, K): linear_nt_bf16).
using LinearColumnsBf16 = void (*)(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* b, std::uint16_t* y,
                                   std::int64_t M, std::int64_t K, std::int64_t N, std::int64_t n_begin, std::int64_t n_end);

// Rows of x quantized for linear_q8: row m's int8 values at q + m * ld
// (ld = its blocks * 32, zero past K), block scales and offsets at
// scales / offsets + m * ld_blocks. A block's offset is 128 x the sum of
// its int8 values: what the +128 of the weight bytes adds to its dot
// products (kept multiplied, so a kernel subtracts it straight from memory).
struct Q8Rows {
  const std::int8_t* q;
  const float* scales;
  const std::int32_t* offsets;
  std::int64_t ld, ld_blocks;
  // The rows from row m on.
  Q8Rows from_row(std::int64_t m) const { return {q + m * ld, scales + m * ld_blocks, offsets + m * ld_blocks, ld, ld_blocks}; }
};
using LinearColumnsQ8 = void (*)(const Q8Rows& x, Q8Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K,
                                 std::int64_t N, std::int64_t n_begin, std::int64_t n_end);
// Whole blocks of one row's activations quantized for Q8Rows, stopping at
// the first block the vector rule leaves to quantize_block (its index is
// returned): quantize_q8_blocks in quantize_rows_tiles.h.
using QuantizeQ8Blocks = std::int64_t (*)(const float* x, std::int64_t blocks, std::int8_t* q, float* scales,
                                          std::int32_t* offsets);

// bf16 x, b, y with w packed in k pairs (pack_bf16_pairs): linear_nn_bf16.
using LinearColumnsBf16Pairs = void (*)(const std::uint16_t* x, const std::uint32_t* w, const std::uint16_t* b, std::uint16_t* y,
                                        std::int64_t M, std::int64_t K, std::int64_t N, std::int64_t n_begin, std::int64_t n_end);

// The keys/values one (group, head) reads: prefix and tail, of element
// type E (float, std::uint16_t holding bf16, or std::int8_t with the
// vectors' fp32 scales, null for the others); see attend_rows.
template <class E>
struct KvStreams {
  const E *kp, *vp, *kt, *vt;
  const float *kps = nullptr, *vps = nullptr, *kts = nullptr, *vts = nullptr;
};

// The attention of one (group, head): attend_rows in attention_tiles.h.
template <class E>
using AttendRows = void (*)(const float* q, float* y, std::int64_t ldq, std::int64_t rows, KvStreams<E> kv, std::int64_t P,
                            bool causal, std::int64_t ldt_row, std::int64_t L, std::int64_t D, float scale, float* scores);

struct LinearIsa {
  const char* name;
  LinearColumns nn, nt;
  int nn_block, nt_block;  // column granularity of a split (nt_block also of the fp16 x · wᵀ; fp16 nn and int8 split at 64 columns)
  LinearColumnsOf<F16Matrix> nn_f16, nt_f16;
  LinearColumnsQ8 q8;  // replaced by linear_q8_avx512vnni() where the CPU has it
  const char* q8_name;
  QuantizeQ8Blocks quantize_q8;  // null: quantize_block alone (scalar)
  LinearColumnsBf16 nt_bf16;       // granularity nt_block
  LinearColumnsBf16Pairs nn_bf16;  // column tiles as wide as nn's: split by nn_block
  const char* bf16_name;
  AttendRows<float> attend_f32;
  AttendRows<std::uint16_t> attend_bf16;
  AttendRows<std::int8_t> attend_q8;
};

// The one in use (CPUID, or INKSTREAM_KERNELS; see linear.h), chosen once.
const LinearIsa& chosen_isa();

LinearIsa linear_isa_avx512();
LinearIsa linear_isa_avx2();
LinearIsa linear_isa_scalar();
// AVX-512 BF16's bf16 products (linear_avx512bf16.cpp), replacing the
// widening ones of linear_isa_avx512() where the CPU has the instruction.
LinearColumnsBf16 linear_nt_bf16_avx512bf16();
LinearColumnsBf16Pairs linear_nn_bf16_avx512bf16();
// linear_q8 through a given instruction set's columns (tests).
void linear_q8_with(LinearColumnsQ8 fn, const float* x, Q8Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K,
                    std::int64_t N);
// Rows of x (M, K) quantized as linear_q8 does, through a given instruction
// set's quantizer (null: quantize_block alone, the reference) into q (M,
// q8_blocks(K) * 32; the padding past K must be zero), scales and offsets
// (M, q8_blocks(K)).
void quantize_q8_rows_with(QuantizeQ8Blocks fn, const float* x, std::int64_t M, std::int64_t K, std::int8_t* q, float* scales,
                           std::int32_t* offsets);

// attention_decode through a given instruction set's attend_* (tests).
void attention_decode_with(const LinearIsa& isa, const std::vector<AttentionGroup>& groups, std::int64_t H, std::int64_t D,
                           float scale, KvType kv);

// AVX-512 VNNI's int8 product (linear_avx512vnni.cpp); AVX-512F CPUs
// without it use the AVX2 one.
LinearColumnsQ8 linear_q8_avx512vnni();
LinearColumnsQ8 linear_q8_avx2();
// AMX-INT8's (the same file): blocks of 16 rows in tiles, the rest as
// linear_q8_avx512vnni(), bit for bit the same results. Only where
// amx_int8_usable().
LinearColumnsQ8 linear_q8_amx();
// The CPU has AMX tiles with int8 products, the kernel enables their state,
// and this process has been given it (inkstream::allow_matrix_tiles, by the
// executable before the first product: Linux hands the 8 KB tile state to a
// process only on request).
bool amx_int8_usable();

}  // namespace inkstream::kernels
