// tether::host Environment — "where processes run" for the host: this machine or an executor.
//
// Owns: the four placements (local; an executor reached by URL + token; an executor tether
// spawns itself on loopback with a fresh token; a command whose stdin/stdout speak the
// protocol), opening the one executor connection lazily on first use and sharing it, and
// closing on purpose (live processes terminated first, then close 1000, then a spawned
// executor stopped). A spawned executor or a command dies with this process.
// Does not own: the protocol (exec::ExecClient), the local engine (exec::LocalProcesses), or
// which MCP server goes where (config and manager).
// Data flows: caller -> starter() -> [first use: spawn/connect] -> ProcessStarter -> Process.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <tether/exec/client.hpp>
#include <tether/exec/local_processes.hpp>
#include <tether/exec/process_api.hpp>

namespace tether::host {

using jsonrpc::Expected;

struct LocalPlacement {};

struct ExecutorUrl {
  std::string url;
  std::optional<std::string> bearer_token;
};

// `tether exec-server --listen ws://127.0.0.1:0` started as a child with a fresh token.
struct SpawnedExecutor {
  // The tether binary to run; empty = this executable (/proc/self/exe).
  std::string tether_binary;
  // Extra arguments for `exec-server` (e.g. --session-ttl).
  std::vector<std::string> args;
};

struct CommandExecutor {
  std::vector<std::string> argv;
  std::optional<std::map<std::string, std::string>> env;
  std::optional<std::string> cwd;
};

using Placement = std::variant<LocalPlacement, ExecutorUrl, SpawnedExecutor, CommandExecutor>;

struct EnvironmentOptions {
  exec::ClientOptions client;
  exec::LocalProcessOptions local;
  // How long a spawned executor may take to print its URL line.
  std::chrono::milliseconds spawn_timeout{10'000};
};

class Environment {
 public:
  static std::shared_ptr<Environment> create(boost::asio::any_io_executor executor, std::string id,
                                             Placement placement, EnvironmentOptions options = {});
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  const std::string& id() const;
  // True for every placement but local.
  bool is_remote() const;

  // Where processes start. The first call connects (spawning the executor first when needed);
  // concurrent first calls share that one attempt; a failed attempt is retried by the next call.
  boost::asio::awaitable<Expected<std::shared_ptr<exec::ProcessStarter>>> starter();
  // The executor client (fs/*, environment/*): an error for the local placement.
  boost::asio::awaitable<Expected<std::shared_ptr<exec::ExecClient>>> client();

  // Closing on purpose: every live process is terminated, the connection closed with 1000, a
  // spawned executor stopped. Later starter() calls fail.
  boost::asio::awaitable<void> close();

  struct State;

 private:
  explicit Environment(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace tether::host
