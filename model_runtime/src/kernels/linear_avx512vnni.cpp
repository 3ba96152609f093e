// The int8 product of linear.h with AVX-512 VNNI (vpdpbusd: 64 byte
// products summed in fours into 16 int32 lanes, one instruction). It
// multiplies unsigned by signed bytes: the weight bytes carry their +128
// offset, so each block's sum is corrected by 128 · (the block's sum of
// activations). Compiled with -mavx512vnni -mavx512bw (and AMX's flags for
// the tiles below); each path is only called when the CPU has it.
// GCC 12 warns about the deliberately undefined vector inside
// _mm512_cvtepi32_ps (a known false positive, as in linear_avx512.cpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "avx512_vector.h"
#include "linear_isa.h"
#include "linear_q8_tiles.h"

namespace inkstream::kernels {
namespace {

struct Avx512Vnni {
  using F = Avx512;
  using IV = __m512i;
  using WQ = __m512i;
  using XQ = __m512i;
  static IV izero() { return _mm512_setzero_si512(); }
  static WQ load_quads(const std::uint32_t* p) { return _mm512_loadu_si512(p); }
  static WQ load_quads_partial(const std::uint32_t* p, int n) { return _mm512_maskz_loadu_epi32(static_cast<__mmask16>((1u << n) - 1), p); }
  static XQ broadcast_x(const std::int8_t* x4) {
    int v;
    std::memcpy(&v, x4, sizeof v);
    return _mm512_set1_epi32(v);
  }
  static IV dot(IV acc, WQ w, XQ x) { return _mm512_dpbusd_epi32(acc, w, x); }
  static IV finish(IV acc, std::int32_t offset) { return _mm512_sub_epi32(acc, _mm512_set1_epi32(offset)); }
  static __m512 to_float(IV v) { return _mm512_cvtepi32_ps(v); }
};

// Up to 4 rows (a decoding step of one request or two) one vector of 16
// columns per tile, one panel, so one sequential stream of quads; more rows
// two vectors (fewer broadcasts per product, where compute starts to
// count: two were faster at 8 rows). On a 2-core AVX-512 Zen 4, int8
// decoding (generation_bench, binaries alternated) went 132-150 -> 138-169
// tok/s at N=1 and 374-415 -> 401-497 at N=4 (bench/RESULTS.md, twelfth
// session). Both tiles compute every output the same way (exact block
// sums, one fma per block in order), so the switch changes no result.
void q8_columns_by_rows(const Q8Rows& x, Q8Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N,
                        std::int64_t n_begin, std::int64_t n_end) {
  if (M <= 4) return q8_columns<Avx512Vnni, 4, 1>(x, w, b, y, M, K, N, n_begin, n_end);
  q8_columns<Avx512Vnni, 4, 2>(x, w, b, y, M, K, N, n_begin, n_end);
}

// AMX (Intel's matrix tiles, from Sapphire Rapids on): tdpbsud multiplies a
// tile of 16 rows x 32 signed activation bytes by one of 32 x 16 unsigned
// weight bytes into 16 x 16 int32 sums, one block of every row and column
// of a panel in one instruction. A panel's quad rows are 64 bytes, so a
// block of it is a tile as stored (8 rows, 64 bytes apart), and a row
// block of the quantized activations is one too (16 rows, ld apart). The
// sums are exact, and each is then scaled and added exactly as q8_tile
// does (finish, to_float, one fma per block in order): the same results
// bit for bit, so rows may go through either path. Only blocks of 16 whole
// rows take it; the rest, and K not a multiple of 32 (a tile would read
// past the last panel), go through q8_columns_by_rows.

// Tiles 0-3: the int32 sums of four consecutive blocks; 4-5: activations
// (16 rows x 32 bytes); 6-7: weights (8 quad rows x 64 bytes). Loads
// alternate between two tiles each so that one can land while the other
// multiplies. (A constant in memory: ldtilecfg reads 64 bytes.)
struct alignas(64) TileConfig {
  std::uint8_t palette, start_row, reserved[14];
  std::uint16_t colsb[16];
  std::uint8_t rows[16];
};
constexpr std::int64_t kTileRows = 16;
constexpr std::int64_t kSumsBytes = kQ8Panel * 4;  // a row of int32 sums, a quad row of a panel
constexpr std::int64_t kBlockQuads = kQ8Block / 4 * kQ8Panel;  // a block of a panel, in quads
constexpr TileConfig kTileConfig = [] {
  TileConfig c{};
  c.palette = 1;
  for (int t = 0; t < 4; ++t) {
    c.rows[t] = kTileRows;
    c.colsb[t] = kSumsBytes;
  }
  for (int t = 4; t < 6; ++t) {
    c.rows[t] = kTileRows;
    c.colsb[t] = kQ8Block;
  }
  for (int t = 6; t < 8; ++t) {
    c.rows[t] = kQ8Block / 4;
    c.colsb[t] = kSumsBytes;
  }
  return c;
}();

// The block sums of blocks [0, G) from a (16 rows of blocks, lda bytes
// apart) and w (a panel's quads of block 0), left in tiles 0 to G-1. The
// tile numbers are part of each instruction, hence the cases.
template <int G>
void block_sums(const std::int8_t* a, std::int64_t lda, const std::uint32_t* w) {
  static_assert(G == 1 || G == 4);
  _tile_zero(0);
  _tile_loadd(4, a, lda);
  _tile_loadd(6, w, kSumsBytes);
  if constexpr (G == 4) {
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(5, a + kQ8Block, lda);
    _tile_loadd(7, w + kBlockQuads, kSumsBytes);
  }
  _tile_dpbsud(0, 4, 6);
  if constexpr (G == 4) {
    _tile_dpbsud(1, 5, 7);
    _tile_loadd(4, a + 2 * kQ8Block, lda);
    _tile_loadd(6, w + 2 * kBlockQuads, kSumsBytes);
    _tile_dpbsud(2, 4, 6);
    _tile_loadd(5, a + 3 * kQ8Block, lda);
    _tile_loadd(7, w + 3 * kBlockQuads, kSumsBytes);
    _tile_dpbsud(3, 5, 7);
  }
}

// Tiles 0 to G-1 into sums (G blocks of 16 x 16 int32).
template <int G>
void store_block_sums(std::int32_t* sums) {
  _tile_stored(0, sums, kSumsBytes);
  if constexpr (G == 4) {
    _tile_stored(1, sums + kTileRows * kQ8Panel, kSumsBytes);
    _tile_stored(2, sums + 2 * kTileRows * kQ8Panel, kSumsBytes);
    _tile_stored(3, sums + 3 * kTileRows * kQ8Panel, kSumsBytes);
  }
}

// y = x · w + b for rows [0, 16) of x and the panel of columns [c0, c0 +
// cols) (c0 a multiple of kQ8Panel, cols the panel's width).
void amx_tile(const Q8Rows& x, std::int64_t K, const std::uint32_t* quads, const float* scales, const float* b, float* y,
              std::int64_t N, std::int64_t c0, int cols) {
  using F = Avx512;
  using I = Avx512Vnni;  // its F is Avx512 too: the same scaling as q8_tile's
  const bool full = cols == kQ8Panel;
  const std::int64_t blocks = q8_blocks(K);
  const std::uint32_t* wq = quads + q8_quad_index(0, c0, K);
  const float* sw = scales + q8_scale_index(0, c0, K, N);  // block blk's at sw + blk * cols
  // Passes of 4 blocks (1 at the end), double-buffered: the tiles compute
  // the next pass's sums while the vector units scale this one's.
  alignas(64) std::int32_t sums[2][4 * kTileRows * kQ8Panel];
  auto pass_blocks = [&](std::int64_t blk0) { return blocks - blk0 >= 4 ? 4 : 1; };
  auto compute = [&](std::int64_t blk0) {
    if (pass_blocks(blk0) == 4) block_sums<4>(x.q + blk0 * kQ8Block, x.ld, wq + blk0 * kBlockQuads);
    else block_sums<1>(x.q + blk0 * kQ8Block, x.ld, wq + blk0 * kBlockQuads);
  };
  auto store = [&](std::int64_t blk0, std::int32_t* out) {
    if (pass_blocks(blk0) == 4) store_block_sums<4>(out);
    else store_block_sums<1>(out);
  };
  __m512 acc[kTileRows];
  for (auto& a : acc) a = F::zero();
  compute(0);
  store(0, sums[0]);
  // The next pass's products are started before this one's sums are read,
  // and stored only after, so no load of the scaling waits behind a tile
  // store whose products are still running (stored first: 2.77-2.84
  // against 2.69-2.71 ms on 256 x 768 x 2304, one thread).
  for (std::int64_t blk0 = 0, pass = 0; blk0 < blocks; ++pass) {
    const std::int64_t g_n = pass_blocks(blk0);
    const bool more = blk0 + g_n < blocks;
    if (more) compute(blk0 + g_n);
    const std::int32_t* ready = sums[pass % 2];
    for (std::int64_t g = 0; g < g_n; ++g) {
      const std::int64_t blk = blk0 + g;
      const float* swb = sw + blk * cols;
      const __m512 swv = full ? F::load(swb) : F::load_partial(swb, cols);
      const std::int32_t* block = ready + g * kTileRows * kQ8Panel;
      // Unrolled, so the accumulators stay in registers and the scale and
      // offset are broadcast from memory by the instructions that use them
      // (a loop kept them on the stack: 2.69-2.71 -> 2.57-2.59 ms on
      // 256 x 768 x 2304, one thread).
#pragma GCC unroll 16
      for (int r = 0; r < kTileRows; ++r)
        acc[r] = add_scaled_block<I>(acc[r], _mm512_load_si512(block + r * kQ8Panel), swv, x, r * x.ld_blocks + blk);
    }
    if (more) store(blk0 + g_n, sums[(pass + 1) % 2]);
    blk0 += g_n;
  }
  const __m512 bias = b ? (full ? F::load(b + c0) : F::load_partial(b + c0, cols)) : F::zero();
  for (std::int64_t r = 0; r < kTileRows; ++r) {
    const __m512 out = F::add(acc[r], bias);
    if (full) F::store(y + r * N + c0, out);
    else F::store_partial(y + r * N + c0, out, cols);
  }
}

void q8_columns_amx(const Q8Rows& x, Q8Matrix w, const float* b, float* y, std::int64_t M, std::int64_t K, std::int64_t N,
                    std::int64_t n_begin, std::int64_t n_end) {
  const std::int64_t tile_rows = K % kQ8Block == 0 ? M / kTileRows * kTileRows : 0;
  if (tile_rows == 0) return q8_columns_by_rows(x, w, b, y, M, K, N, n_begin, n_end);
  _tile_loadconfig(&kTileConfig);  // per thread: each runs its own columns
  // 64 columns at a time: their weights stay in L2 for every row block and
  // for the rows left over; each block of 16 rows runs through all of them
  // while its activations stay in L1 (panel by panel, each row block's were
  // read from L2 again: the tiles' work took ~25% longer).
  constexpr std::int64_t kColumns = 4 * kQ8Panel;
  for (std::int64_t n0 = n_begin; n0 < n_end; n0 += kColumns) {
    const std::int64_t n1 = std::min(n_end, n0 + kColumns);
    for (std::int64_t m = 0; m < tile_rows; m += kTileRows) {
      const Q8Rows xm = x.from_row(m);
      for (std::int64_t c0 = n0; c0 < n1; c0 += kQ8Panel)
        amx_tile(xm, K, w.quads, w.scales, b, y + m * N, N, c0, static_cast<int>(std::min<std::int64_t>(kQ8Panel, N - c0)));
    }
    if (tile_rows < M) q8_columns_by_rows(x.from_row(tile_rows), w, b, y + tile_rows * N, M - tile_rows, K, N, n0, n1);
  }
  _tile_release();
}

}  // namespace

LinearColumnsQ8 linear_q8_avx512vnni() { return q8_columns_by_rows; }
LinearColumnsQ8 linear_q8_amx() { return q8_columns_amx; }

}  // namespace inkstream::kernels
