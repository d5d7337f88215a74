// The `tether` subcommands: each registers its options on the app and returns what to run.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace tether::cli {

using Run = std::function<int()>;

// `tether exec-server`: the executor (exec-protocol.md).
Run add_exec_server_command(CLI::App& app);

}  // namespace tether::cli
