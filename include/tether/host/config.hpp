// tether::host config — the `config.toml` model and its loader (docs/config.md, "Config" and
// "Placement").
//
// Owns: reading a codex-compatible config (`[mcp_servers.*]`, `[environments.*]`,
// `default_environment`), the JSON configs of other hosts (`mcpServers`, `servers`) and codex's
// `environments.toml` into plain structs, with every validation message of the spec naming the
// file, the line and column, the server (or environment) and the field; unknown keys that look
// like typos as warnings, the others ignored with a debug log. Also what "remote" means
// (resolve_remote: TETHER_EXEC_SERVER_URL, else the default environment, else none).
// Does not own: what the servers do (manager), reading tokens (token_env_var / token_file are
// kept as names), whether an `environment = "<id>"` exists (the manager fails that one
// server), or opening environments.
// Data flows: files -> toml++ -> validate -> Config -> manager; Config + env -> resolve_remote.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <tether/jsonrpc/error.hpp>
#include <tether/mcp/stdio.hpp>

namespace tether::host {

using jsonrpc::Expected;

// Where in a file a value came from, for messages (line 0: not from a file).
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
};

struct HttpServerSettings {
  std::string url;
  std::optional<std::string> bearer_token_env_var;
  std::map<std::string, std::string> http_headers;
  std::map<std::string, std::string> env_http_headers;  // header -> variable name
};

struct ServerConfig {
  std::string name;
  SourceLocation location;
  std::variant<mcp::StdioCommand, HttpServerSettings> transport;
  // "local" (also when absent), "remote" or an environment id; from `environment`,
  // `environment_id` or `experimental_environment`.
  std::string environment = "local";
  std::chrono::milliseconds startup_timeout{30'000};
  std::chrono::milliseconds tool_timeout{120'000};
  bool enabled = true;
  bool required = false;
  std::optional<std::vector<std::string>> enabled_tools;
  std::vector<std::string> disabled_tools;
};

struct EnvironmentConfig {
  std::string id;
  SourceLocation location;
  struct Url {
    std::string url;  // ws:// or wss://
    std::optional<std::string> token_env_var;
    std::optional<std::string> token_file;
    std::optional<std::string> token;  // a literal: environments.toml `auth_bearer_token`, or
                                       // TETHER_EXEC_SERVER_TOKEN
  };
  struct Spawn {};
  struct Command {
    std::vector<std::string> argv;
    std::optional<std::map<std::string, std::string>> env;
    std::optional<std::string> cwd;
  };
  std::variant<Url, Spawn, Command> how;
  std::chrono::milliseconds connect_timeout{10'000};
  // url and spawn executors (docs/config.md, "Keepalive and resume"): unset keeps
  // exec::ClientOptions' defaults.
  std::optional<std::chrono::milliseconds> ping_interval;
  std::optional<std::chrono::milliseconds> idle_timeout;
  std::optional<std::chrono::milliseconds> resume_window;
};

// The optional `[gateway]` table: defaults for `tether mcp serve` (its flags win).
struct GatewayConfig {
  std::optional<std::string> listen;
  std::optional<std::string> names;  // checked: prefixed, qualified or raw
  std::optional<std::vector<std::string>> allow_hosts;
  std::optional<std::vector<std::string>> allow_origins;
  std::optional<bool> isolate_sessions;
  std::optional<std::string> token_file;
};

struct Config {
  std::string file;  // the config file read (empty when none existed)
  // config.toml's `default_environment`, else environments.toml's `default`; always a defined
  // environment (`local` and `none` there mean "no default").
  std::optional<std::string> default_environment;
  std::vector<ServerConfig> servers;            // in file order, disabled ones included
  std::vector<EnvironmentConfig> environments;  // config.toml's, then environments.toml's
  GatewayConfig gateway;
  // Keys that look like typos, each `<file>:<line>:<column>: [<table>] unknown key '<key>'; did
  // you mean '<known>'?` (docs/config.md, "Warnings"); the CLI prints them on stderr.
  std::vector<std::string> warnings;
};

const EnvironmentConfig* find_environment(const Config& config, std::string_view id);

// Environment variable lookup, injectable for tests; process_env reads the real environment.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;
std::optional<std::string> process_env(std::string_view name);

// A config file's text and the name messages use for it.
struct ConfigText {
  std::string_view text;
  std::string file;
};

// How a JSON host config's `${...}` references are read: expanded from `env` (loading), or kept as
// written (import, which turns them into variable names rather than copy secrets); VS Code's
// `${userHome}` and `${workspaceFolder}` are paths, expanded either way.
struct ParseOptions {
  EnvLookup env = process_env;
  bool expand_variables = true;
};

// Parses a config.toml, or a JSON host config (`.json`, or text starting with `{`: `mcpServers`
// or VS Code's `servers`), and, optionally, a codex environments.toml. Errors read
// `config.toml:12:1: [mcp_servers.docs] args is not supported for streamable_http` (JSON:
// `mcp.json:5:7: [mcpServers.docs] args must be an array of strings`).
Expected<Config> parse_config(const ConfigText& config,
                              const std::optional<ConfigText>& environments = std::nullopt,
                              const ParseOptions& options = {});

// Reads `config_path` (an absent file is an empty config unless `config_must_exist`) and
// `environments_path` when that file exists.
Expected<Config> load_config(const std::string& config_path, const std::string& environments_path,
                             bool config_must_exist = false);

// `TETHER_HOME`, else `$HOME/.tether`: where config.toml and environments.toml live.
std::string tether_home(const EnvLookup& env);

// What `remote` means for this config (docs/config.md).
struct RemoteEnvironment {
  // The executor; nullopt when there is none (remote servers fail, nothing starts anywhere).
  // From TETHER_EXEC_SERVER_URL it is a Url environment with id "remote" and the token of
  // TETHER_EXEC_SERVER_TOKEN; from the default it is that environment (same id, so servers
  // naming it share its connection).
  std::optional<EnvironmentConfig> environment;
  // Why, for listings and errors: "TETHER_EXEC_SERVER_URL", "TETHER_EXEC_SERVER_URL=none",
  // "default_environment 'box'" or "no TETHER_EXEC_SERVER_URL and no default_environment".
  std::string source;
};
RemoteEnvironment resolve_remote(const Config& config, const EnvLookup& env);

}  // namespace tether::host
