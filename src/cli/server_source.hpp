// Where `tether mcp`'s subcommands find their servers: started by this process (a host::Manager,
// ended when the command ends), or behind a running gateway (`--gateway URL`, docs/gateway.md),
// whose servers keep running, and keep their state, between commands.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <tether/host/manager.hpp>

namespace tether::cli {

enum class Listing { resources, templates, prompts };

class ServerSource {
 public:
  virtual ~ServerSource() = default;

  // Starts (or, for a gateway, reaches) the servers named (every enabled one when none).
  virtual boost::asio::awaitable<jsonrpc::Expected<host::StartupSummary>> start(
      std::vector<std::string> names) = 0;
  virtual void cancel_startup() = 0;
  // Ends what this process started; returns once it is gone.
  virtual boost::asio::awaitable<void> shutdown() = 0;

  virtual std::vector<host::ServerInfo> servers() = 0;
  virtual std::vector<host::OfferedTool> tools() = 0;
  virtual boost::asio::awaitable<jsonrpc::Expected<boost::json::object>> call_tool(
      std::string server, std::string tool, boost::json::value arguments) = 0;
  // One ready server's listing, its items as the server lists them (empty when it does not
  // offer that kind).
  virtual boost::asio::awaitable<jsonrpc::Expected<boost::json::array>> list(std::string server,
                                                                             Listing listing) = 0;
  virtual boost::asio::awaitable<jsonrpc::Expected<boost::json::object>> read(std::string server,
                                                                              std::string uri) = 0;
  virtual boost::asio::awaitable<jsonrpc::Expected<boost::json::object>> prompt(
      std::string server, std::string name, boost::json::object arguments) = 0;
};

// The servers of `config`, started here; `on_status` sees each status change.
std::unique_ptr<ServerSource> local_servers(
    const boost::asio::any_io_executor& executor, host::Config config,
    std::function<void(const host::ServerStatus&)> on_status);

// The servers behind the gateway at `url` (`http://.../mcp`), reached with `token` when set.
std::unique_ptr<ServerSource> gateway_servers(const boost::asio::any_io_executor& executor,
                                              std::string url, std::optional<std::string> token);

}  // namespace tether::cli
