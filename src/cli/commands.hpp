// The `tether` subcommands: each registers its options on the app and returns what to run.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace tether::cli {

using Run = std::function<int()>;

// `tether exec-server`: the executor (docs/exec-server.md).
Run add_exec_server_command(CLI::App& app);

// `tether mcp ...`: the configured MCP servers (list, tools, call, ..., add, remove).
// `command`: the words after the command line's first `--` (what `add` runs).
Run add_mcp_command(CLI::App& app, std::vector<std::string> command);

}  // namespace tether::cli
