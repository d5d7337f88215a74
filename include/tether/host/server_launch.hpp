// tether::host server launch — from a server's transport and placement to a ServerConnection.
//
// Owns: the placement rules of docs/mcp.md ("Placement") once config has been read: `local`
// runs the server here; `remote` means the remote executor environment when there is one, and
// the server fails (nothing started anywhere) when there is none, never falling back to local;
// any other name is that environment. Streamable HTTP servers run locally only. The set of
// environments (each opened lazily and shared by all servers placed on it). A configured server's
// launch settings, and reading bearer tokens and headers from environment variables, for executor
// environments and HTTP servers alike.
// Does not own: reading config or the environment variables that define "remote" (config),
// the launchers themselves (mcp/stdio.hpp, mcp/http.hpp), or MCP (mcp/client.hpp).
// Data flows: ServerConfig + env -> launch_of -> ServerLaunch; ServerLaunch + Environments ->
// placement -> Environment::starter() -> mcp::launch_on_executor | mcp::launch_local |
// mcp::connect_http -> ServerConnection.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <tether/host/config.hpp>
#include <tether/host/environment.hpp>
#include <tether/mcp/connection.hpp>
#include <tether/mcp/http.hpp>
#include <tether/mcp/stdio.hpp>

namespace tether::host {

inline constexpr std::string_view kLocalEnvironment = "local";
inline constexpr std::string_view kRemoteEnvironment = "remote";

struct ServerLaunch {
  std::string name;  // the server's config name, for messages
  std::variant<mcp::StdioCommand, mcp::HttpServerConfig> transport;
  // "local", "remote" or an environment id.
  std::string environment = std::string(kLocalEnvironment);
  mcp::StdioOptions stdio;
};

// The bearer token in the variable `name`: nullopt when it is unset or empty (an empty token
// would be sent as `Bearer ` and refused, so it is reported as not set).
std::optional<std::string> token_from_env(const EnvLookup& env, const std::string& name);

// A configured server's launch: its transport, placement name and `stdio` options. An HTTP
// server's settings are read now: the bearer token from `bearer_token_env_var` (unset or empty is
// an error: `bearer_token_env_var <VAR> for MCP server '<server>' is not set`), `http_headers` as
// written, and each `env_http_headers` header from its variable (skipped when that is unset or
// empty).
Expected<ServerLaunch> launch_of(const ServerConfig& server, const EnvLookup& env,
                                 const mcp::StdioOptions& stdio);

// The placement an environment's config describes. A url environment's token is read now:
// `token_env_var` through `env` (unset or empty is an error), `token_file` from disk (trailing
// whitespace trimmed), else the literal token; messages name the environment.
Expected<Placement> placement_of(const EnvironmentConfig& config, const EnvLookup& env);

// The executors servers can be placed on, by id, and which of them "remote" means.
class Environments {
 public:
  void add(std::shared_ptr<Environment> environment);
  // An environment whose config cannot be used (e.g. its token variable is unset): servers
  // placed on it fail with `why`, and nothing is started.
  void add_unavailable(const std::string& id, jsonrpc::Error why);
  // The environment `remote` resolves to; nullopt: there is no remote executor.
  void set_remote(std::optional<std::string> id) { remote_ = std::move(id); }
  const std::optional<std::string>& remote() const { return remote_; }

  // Resolves a placement name: null for local; the environment otherwise. Errors:
  // `remote MCP server '<server>' requires a remote executor environment`,
  // `unknown environment '<env>' for MCP server '<server>'`.
  Expected<std::shared_ptr<Environment>> resolve(const std::string& placement,
                                                 const std::string& server) const;

  // Closes every environment, in parallel.
  boost::asio::awaitable<void> close();

 private:
  std::map<std::string, std::shared_ptr<Environment>> environments_;
  std::map<std::string, jsonrpc::Error> unavailable_;
  std::optional<std::string> remote_;
};

// Where a server with placement `environment` goes: null for this machine, else its executor
// environment. The errors are the placement rules' (`remote MCP server ...`, `unknown environment
// ...`); nothing is started for them. Launching and listing both resolve here.
Expected<std::shared_ptr<Environment>> resolve_placement(const Environments& environments,
                                                         const std::string& server,
                                                         const std::string& environment);

// Starts (stdio) or prepares (HTTP) the server where its placement says. Nothing is started when
// the placement cannot be resolved. A remote HTTP server is reached through its executor's
// http/request: every connection to it comes from the executor's machine, never from here.
// `environments` is only read before the first suspension (the resolved environment is held
// from then on).
boost::asio::awaitable<Expected<mcp::ServerConnection>> launch_server(
    boost::asio::any_io_executor executor, ServerLaunch launch, const Environments& environments);

}  // namespace tether::host
