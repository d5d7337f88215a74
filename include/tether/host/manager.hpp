// tether::host Manager — every configured MCP server, started where the config places it, as one
// view for the host.
//
// Owns: the servers' life cycle per docs/mcp.md ("The server manager"): concurrent startup with a
// status event per server and one summary, `required` servers, the user-facing failure texts,
// tool filtering at listing and call time, qualified tool names and routing them back, restart
// without replay after a death (backoff, crash-loop guard), and shutting everything down in
// parallel. Also the environments servers are placed on (one shared, lazily opened connection
// each) and describing a server's placement the way a launch resolves it.
// Does not own: reading config (config.hpp), placement rules (server_launch.hpp), MCP itself
// (mcp/client.hpp), or presenting anything (cli).
// Data flows: Config -> Manager::create -> Environments; start()/use -> launch_server ->
// mcp::Client::connect -> tools/list -> ready; a death (the client's on_closed) -> failed ->
// the next use restarts after the backoff; calls -> filter -> Client -> result.
// Threading: one executor; every method runs on it.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <tether/host/config.hpp>
#include <tether/host/environment.hpp>
#include <tether/mcp/client.hpp>
#include <tether/mcp/stdio.hpp>

namespace tether::host {

enum class ServerState {
  disabled,  // `enabled = false`: never started
  idle,      // not started yet
  starting,
  ready,
  failed,     // start failed or the server died; the next use restarts it (after the backoff)
  cancelled,  // its start was cancelled (cancel_startup, shutdown)
};
std::string_view to_string(ServerState state);

struct ServerStatus {
  std::string server;
  ServerState state = ServerState::idle;
  std::string error;  // failed: the user-facing text
  // failed: a later use starts it again (not crash-looping, not a permanent failure).
  bool restartable = false;
};

struct StartupSummary {
  struct Failure {
    std::string server;
    std::string error;
  };
  std::vector<std::string> ready;
  std::vector<Failure> failed;
  std::vector<std::string> cancelled;
};

// One server as a listing shows it.
struct ServerInfo {
  std::string name;
  bool enabled = true;
  bool required = false;
  std::string transport;  // "stdio" or "streamable_http"
  std::string target;     // the command line, or the URL
  // Where it runs, resolved as a launch resolves it: `local`, or the executor environment
  // (`sandbox: spawned on loopback`, `box: ws://10.1.2.3:7700`, ...); the resolution error
  // (e.g. `remote MCP server 'x' requires a remote executor environment`) when it has none.
  std::string placement;
  bool placement_ok = true;
  std::string environment_id;       // the executor environment it resolves to; empty when local
  std::string environment_setting;  // as configured: `local`, `remote` or an environment id
  ServerState state = ServerState::idle;
  std::string error;
  std::optional<std::size_t> tools;  // offered tools (after filtering), once listed
  // While ready and connected: the session's process (`local process 'node' (pid 4242)`, `executor
  // process mcp-stdio-1`) or URL, and the MCP revision it speaks (`2026-07-28`, `2025-11-25`, ...).
  std::string process;
  std::string protocol;
};

// A server as JSON (`tether mcp list --json`, and the gateway's `tether/catalog`): name,
// enabled, required, transport, target, placement, status, environment, environmentSetting,
// tools, error, process and protocol (null when empty). from_json reads it back; a field of the
// wrong type reads as empty.
boost::json::object to_json(const ServerInfo& info);
ServerInfo server_info_from_json(const boost::json::object& object);

// A tool offered to a model: its qualified name, its server, and the server's tool definition
// (the raw name is `tool["name"]`).
struct OfferedTool {
  std::string name;
  std::string server;
  boost::json::object tool;
};

struct ManagerOptions {
  EnvLookup env = process_env;
  // The binary spawned (`spawn = true`) environments run; empty: this executable.
  std::string tether_binary;
  EnvironmentOptions environment;
  mcp::StdioOptions stdio;
  // Host callbacks for one server's session (roots, sampling, elicitation, notifications).
  std::function<mcp::ClientHandlers(const std::string& server)> handlers;
  // Each status change of a server, as it happens.
  std::function<void(const ServerStatus&)> on_status;
  // Restart without replay: the delay before the n-th restart within the window is
  // restart_backoff * 2^(n-1), at most restart_backoff_max; crash_loop_deaths deaths within
  // crash_loop_window leave the server failed until restart().
  std::chrono::milliseconds restart_backoff{1000};
  std::chrono::milliseconds restart_backoff_max{30'000};
  std::size_t crash_loop_deaths = 5;
  std::chrono::milliseconds crash_loop_window{60'000};
};

// `unknown MCP server '<name>'`, with `; did you mean '<known>'?` when one of `known` is a likely
// typo of it (a few edits away).
jsonrpc::Error unknown_server_error(std::string_view name, const std::vector<std::string>& known);

class Manager {
 public:
  static std::shared_ptr<Manager> create(boost::asio::any_io_executor executor, Config config,
                                         ManagerOptions options = {});
  // Ends every server and environment without waiting (shutdown() is the orderly way).
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // Every configured server, in config order.
  std::vector<ServerInfo> servers() const;

  // Starts the enabled servers (or only `names`: an unknown or disabled name is an error)
  // concurrently and waits for each to be ready, failed or cancelled. The error, when a
  // required server failed: `required MCP servers failed to initialize: <server>: <error>[; ...]`.
  boost::asio::awaitable<Expected<StartupSummary>> start(std::vector<std::string> names);
  boost::asio::awaitable<Expected<StartupSummary>> start() { return start({}); }
  // Servers still starting end as cancelled (their processes ended).
  void cancel_startup();

  // The tools of every ready server, filtered, with qualified names.
  std::vector<OfferedTool> tools();
  // One server's tools, filtered (the server started or restarted when needed).
  boost::asio::awaitable<Expected<boost::json::array>> tools(std::string server);
  boost::asio::awaitable<Expected<boost::json::object>> call_tool(std::string server,
                                                                  std::string tool,
                                                                  boost::json::value arguments);
  // By qualified name (as tools() named it).
  boost::asio::awaitable<Expected<boost::json::object>> call_tool(std::string qualified_name,
                                                                  boost::json::value arguments);

  // A ready session with `server`, started or restarted when needed (resources, prompts, ...).
  // Errors: `unknown MCP server '<server>'`, `MCP server '<server>' is disabled`,
  // `MCP server '<server>' is crash-looping: <last error>`, or why its start failed.
  boost::asio::awaitable<Expected<std::shared_ptr<mcp::Client>>> use(std::string server);

  // The user restarts a server: the crash-loop guard and backoff are cleared, the running
  // session (if any) ended, and the server started again.
  boost::asio::awaitable<Expected<void>> restart(std::string server);

  // Ends every server, then every environment, in parallel; returns when all are gone
  // (each bounded by its kill grace). Later uses fail.
  boost::asio::awaitable<void> shutdown();

  struct State;

 private:
  explicit Manager(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace tether::host
