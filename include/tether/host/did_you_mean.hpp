// "Did you mean" hints: the known name (a server, a config key, a subcommand) that a name the user
// wrote is most likely a typo of.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace tether::host {

// Edits between two words: insertions, deletions, substitutions and swaps of two neighbours
// (optimal string alignment distance).
std::size_t edit_distance(std::string_view a, std::string_view b);

// The nearest of `known` to `wanted`, when it is within a third of `wanted`'s length (at least
// one edit); the first of equally near ones. Nothing when `wanted` itself is known.
template <typename Names>
std::optional<std::string> nearest_name(std::string_view wanted, const Names& known) {
  const std::size_t allowed = wanted.size() / 3 > 1 ? wanted.size() / 3 : 1;
  std::optional<std::string> nearest;
  std::size_t best = allowed + 1;
  for (const auto& candidate : known) {
    const std::size_t distance = edit_distance(wanted, candidate);
    if (distance == 0) return std::nullopt;
    if (distance < best) {
      best = distance;
      nearest = std::string(candidate);
    }
  }
  return nearest;
}

// `; did you mean '<nearest>'?`, or nothing.
template <typename Names>
std::string did_you_mean(std::string_view wanted, const Names& known) {
  auto nearest = nearest_name(wanted, known);
  return nearest ? "; did you mean '" + *nearest + "'?" : std::string();
}

}  // namespace tether::host
