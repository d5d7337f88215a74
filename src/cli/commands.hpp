// The `tether` subcommands: each registers its options on the app and returns what to run.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include <tether/host/config.hpp>

namespace tether::cli {

using Run = std::function<int()>;

// `tether exec-server`: the executor (docs/exec-server.md).
Run add_exec_server_command(CLI::App& app);

// `tether mcp ...`: the configured MCP servers (list, tools, call, ..., add, remove).
// `command`: the words after the command line's first `--` (what `add` runs).
Run add_mcp_command(CLI::App& app, std::vector<std::string> command);

// `tether mcp serve`, added to `mcp`: the gateway (docs/gateway.md). `config_option` is mcp's
// --config, read when the command runs.
Run add_serve_command(CLI::App& mcp, const std::string& config_option);

// `tether mcp import`'s options, and the import itself (import_command.cpp): `config_path` is the
// config file written (checked with the codex `environments_path` beside it); a failure is handed
// to `fail`, whose exit code is returned (0: done).
struct ImportArgs {
  std::string from;
  std::vector<std::string> files;
  bool dry_run = false;
};
void add_import_arguments(CLI::App& command, ImportArgs& args);
int run_import(const ImportArgs& args, const std::string& config_path,
               const std::string& environments_path, bool json,
               const std::function<int(std::string_view)>& fail);

// The config `tether mcp` uses: --config (config.toml or a JSON host config), else
// $TETHER_HOME/config.toml (with environments.toml beside it). Its warnings are printed on stderr.
jsonrpc::Expected<host::Config> load_mcp_config(const std::string& config_option);

}  // namespace tether::cli
