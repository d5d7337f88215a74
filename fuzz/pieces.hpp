// How the fuzz targets cut a stream into the pieces reads would deliver: sizes from 1 to
// `max_piece` bytes drawn from a small LCG seeded by one input byte, so that each input is
// replayed with the same cuts.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace tether::fuzz {

inline std::vector<std::string_view> pieces_of(std::string_view stream, std::uint8_t seed,
                                               std::size_t max_piece) {
  std::vector<std::string_view> pieces;
  std::uint32_t state = seed * 2654435761u + 1;
  while (!stream.empty()) {
    state = state * 1103515245u + 12345u;
    const std::size_t size = std::min<std::size_t>(1 + (state >> 16) % max_piece, stream.size());
    pieces.push_back(stream.substr(0, size));
    stream.remove_prefix(size);
  }
  return pieces;
}

}  // namespace tether::fuzz
