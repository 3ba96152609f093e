#pragma once
// The row loop every product tile shares: blocks of MR rows, then one block
// of the remaining M % MR rows through the same tile code instantiated for
// that many rows (the same per-element operations, so results do not depend
// on where a row falls). Internal linkage, as the tiles.
#include <cstdint>
#include <type_traits>

namespace inkstream::kernels {
namespace {

template <int R, class Tile>
void last_row_block(std::int64_t m, std::int64_t rows, Tile& tile) {
  if constexpr (R > 0) {
    if (rows == R) tile(m, std::integral_constant<int, R>{});
    else last_row_block<R - 1>(m, rows, tile);
  }
}

// Calls tile(first_row, std::integral_constant<int, rows>{}) for each block.
template <int MR, class Tile>
void for_row_blocks(std::int64_t M, Tile&& tile) {
  std::int64_t m = 0;
  for (; m + MR <= M; m += MR) tile(m, std::integral_constant<int, MR>{});
  last_row_block<MR - 1>(m, M - m, tile);
}

}  // namespace
}  // namespace inkstream::kernels
