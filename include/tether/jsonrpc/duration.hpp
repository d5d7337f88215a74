// tether::jsonrpc durations — how a time limit reads in the messages of every component above
// (docs/mcp.md: "Durations in messages read like `500ms`, `10s` or `1.5s`").
#pragma once

#include <chrono>
#include <string>

namespace tether::jsonrpc {

// `250ms` below a second, `10s` for whole seconds, else seconds with up to three decimals.
std::string format_duration(std::chrono::milliseconds duration);

}  // namespace tether::jsonrpc
