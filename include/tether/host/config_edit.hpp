// tether::host config editing — `tether mcp add` / `remove` and `tether mcp environments add` /
// `remove` as edits of config.toml's text (docs/config.md).
//
// Owns: adding a `[mcp_servers.<name>]` table (TOML basic strings, inline `env`; `add` and
// `import` alike), removing one server however it was written (header table and its sub-tables,
// an inline `<name> = { ... }`, dotted `mcp_servers.<name>.x = ...` keys) by whole lines, keeping
// every comment and byte outside what it removes; and writing the file so an edit never leaves a
// broken or half-written config (the result must load with parse_config; temp file + rename,
// permission bits kept; an edit that changes nothing writes nothing).
// Does not own: the config model or its validation (config.hpp: the result is checked with
// parse_config), command-line parsing or messages to the user (cli), or running servers.
// Data flows: file -> text -> add_server / remove_server (toml++ source positions -> line ranges)
// -> text -> parse_config check -> temp file -> rename over the file.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tether/host/config.hpp>

namespace tether::host {

// `value` as a TOML basic string: quoted, with `"`, `\` and control characters escaped (UTF-8
// passes as it is).
std::string toml_basic_string(std::string_view value);

// A server as `tether mcp add NAME [--env K=V] [--environment E] -- CMD ARGS` gives it (stdio), or
// `tether mcp add NAME --url URL [--bearer-token-env-var V] [--header K=V]` (streamable HTTP).
struct NewServer {
  std::string name;
  std::string command;  // stdio
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  std::string url;  // streamable HTTP, when not empty
  std::optional<std::string> bearer_token_env_var;
  std::map<std::string, std::string> http_headers;
  std::optional<std::string> environment;  // written as `environment = "<E>"`
};

// `text` with a `[mcp_servers.<name>]` table appended (after a blank line unless the text is empty
// or already ends with one): `command` with `args` and `env`, or `url` with
// `bearer_token_env_var` and `http_headers`; what is empty or absent is omitted.
// Errors: `Invalid MCP server name '<name>': must match pattern ^[a-zA-Z0-9_-]+$`,
// `MCP server '<name>' already exists in <file>`, a TOML syntax error of `text` (as parse_config
// reports it: `<file>:<line>:<column>: ...`), and `cannot add MCP server '<name>' to <file>:
// mcp_servers is not a table [mcp_servers.<name>] can extend` (e.g. `mcp_servers = { ... }`).
Expected<std::string> add_server(std::string_view text, const std::string& file,
                                 const NewServer& server);

// `text` with `[mcp_servers.<name>]` and the `key = value` lines of `body` appended, placed and
// checked as add_server does (the same errors); add_server and import build their bodies with
// toml_basic_string, toml_string_array and toml_string_table.
Expected<std::string> add_server_table(std::string_view text, const std::string& file,
                                       std::string_view name, const std::vector<std::string>& body);
// `["a", "b"]` and `{ K = "v", "a b" = "w" }` (keys bare when they can be).
std::string toml_string_array(const std::vector<std::string>& items);
std::string toml_string_table(const std::map<std::string, std::string>& entries);

// `text` without server `name`: its header table and `[mcp_servers.<name>.*]` sub-tables, an
// inline `<name> = { ... }` entry, or dotted `mcp_servers.<name>.x = ...` keys, as whole lines.
// Comments and blank lines between a removed table's last value and the next header stay (they
// usually describe the next table), as does every other byte outside the removed lines, except that
// a blank line left doubled (or trailing, or leading) by the removal is dropped.
// Errors: `no MCP server '<name>' in <file>`, a TOML syntax error of `text`, and `cannot remove
// MCP server '<name>' from <file>: it shares lines with other settings` (an inline
// `mcp_servers = { ... }` holding several servers).
Expected<std::string> remove_server(std::string_view text, const std::string& file,
                                    std::string_view name);

// `text` with an `[environments.<id>]` table appended (as add_server places it): `url` with
// `token_env_var` / `token_file`, `spawn = true`, or `command`. Errors: `environment '<id>'
// already exists in <file>`, a TOML syntax error of `text`, and `cannot add environment '<id>' to
// <file>: environments is not a table [environments.<id>] can extend`; the id itself is checked
// when the result is (edit_config_file).
Expected<std::string> add_environment(std::string_view text, const std::string& file,
                                      const EnvironmentConfig& environment);

// `text` without environment `id`, however it was written (as remove_server). Errors: `no
// environment '<id>' in <file>`, a config error of `text`, `cannot remove environment '<id>'
// from <file>: MCP server 'x' runs there; remove it or change its environment first`, and the
// shared-lines error of remove_server.
Expected<std::string> remove_environment(std::string_view text, const std::string& file,
                                         std::string_view id);

// Reads `path` (an absent file is an empty text), applies `edit`, checks the result loads with
// parse_config (if not, that error is returned and nothing is written), then replaces the file
// atomically: a temp file in the same directory (parent directories created), the original
// file's permission bits (0600 for a new file), rename. A symlink is followed: its target is
// replaced, the link stays. `environments_path` is the codex environments.toml load_config would
// read with this file (empty or absent: none); the check needs it when config.toml's
// `default_environment` names an environment defined only there. `dry_run`: everything but the
// write (the edit runs and is checked; the file is left as it is).
Expected<void> edit_config_file(const std::string& path,
                                const std::function<Expected<std::string>(std::string_view)>& edit,
                                const std::string& environments_path = {}, bool dry_run = false);

}  // namespace tether::host
