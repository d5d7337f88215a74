// Test support for the MCP client and launcher tests: the two placements a stdio MCP server can
// have (a child of the test, or a process of a `tether exec-server` the test spawns on loopback),
// set up the way the host does it (host::Environments + host::launch_server), and last-resort
// cleanup of the processes a test started.
//
// Owns: one McpSite per test body (its Environments; the spawned executor is closed when the body
// ends, failed or not), unique markers for server command lines, and MarkerReaper.
// Does not own: the MCP client or the launchers under test; the test server's path
// (build_paths.hpp).
// Data flows: test -> McpSite::connect(command) -> host::launch_server(local | remote) ->
// ServerConnection -> mcp::Client::connect -> test.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <gtest/gtest.h>

#include <tether/host/server_launch.hpp>
#include <tether/mcp/client.hpp>

namespace tether::testing {

enum class McpPlacement { local, executor };

// Whether `result` holds a value; a test failure naming the error when not.
template <class T>
bool ok(const jsonrpc::Expected<T>& result) {
  if (!result) ADD_FAILURE() << result.error().message;
  return result.has_value();
}

// "Local" / "Executor", for parameterized test names.
std::string placement_name(const ::testing::TestParamInfo<McpPlacement>& info);
// How gtest prints the parameter (instead of its bytes).
void PrintTo(McpPlacement placement, std::ostream* out);

// A string no other process's command line contains: `<what>-<pid>-<n>`.
std::string unique_marker(std::string_view what);

// SIGKILLs every process whose command line contains one of its markers when destroyed: the
// cleanup of last resort when a test failed before the code under test ended its processes.
class MarkerReaper {
 public:
  MarkerReaper() = default;
  explicit MarkerReaper(std::string marker) { add(std::move(marker)); }
  ~MarkerReaper();
  MarkerReaper(const MarkerReaper&) = delete;
  MarkerReaper& operator=(const MarkerReaper&) = delete;
  void add(std::string marker) { markers_.push_back(std::move(marker)); }
  // The census a test ends with: a failure for each marker a process still carries after
  // `wait` (the code under test must have ended them by itself; the reaper only cleans up).
  void expect_none_left(std::chrono::milliseconds wait) const;

 private:
  std::vector<std::string> markers_;
};

// Where a test's servers run: the host's Environments with, for the executor placement, one
// spawned executor (`tether exec-server` on 127.0.0.1) that `remote` resolves to.
class McpSite {
 public:
  McpSite(boost::asio::any_io_executor executor, McpPlacement placement);
  ~McpSite();
  McpSite(const McpSite&) = delete;
  McpSite& operator=(const McpSite&) = delete;

  McpPlacement placement() const { return placement_; }
  // The placement name a ServerLaunch uses here: "local" or "remote".
  std::string environment_name() const;
  host::Environments& environments() { return environments_; }

  // The server `command` placed here (ServerLaunch named `name`).
  // (Overloads, not default arguments: GCC 12 builds a default argument of class type wrongly
  // when the call is inside a co_await expression.)
  boost::asio::awaitable<jsonrpc::Expected<mcp::ServerConnection>> launch(mcp::StdioCommand command,
                                                                          std::string name);
  boost::asio::awaitable<jsonrpc::Expected<mcp::ServerConnection>> launch(
      mcp::StdioCommand command);
  // launch() followed by the MCP handshake.
  boost::asio::awaitable<jsonrpc::Expected<std::shared_ptr<mcp::Client>>> connect(
      mcp::StdioCommand command, mcp::ClientOptions options);
  boost::asio::awaitable<jsonrpc::Expected<std::shared_ptr<mcp::Client>>> connect(
      mcp::StdioCommand command);

  // Where a server without `cwd` runs: this process's cwd (local), the executor's default cwd.
  boost::asio::awaitable<jsonrpc::Expected<std::string>> default_cwd();
  // Closes the environments (the spawned executor and anything still running there).
  boost::asio::awaitable<void> close();

 private:
  boost::asio::any_io_executor executor_;
  McpPlacement placement_;
  host::Environments environments_;
  std::shared_ptr<host::Environment> remote_;
  bool closed_ = false;
};

// Runs `body` with a fresh McpSite for `placement` (on run_async's io_context, bounded by
// `deadline`) and closes the site afterwards, also when the body left early.
void run_in_site(McpPlacement placement,
                 const std::function<boost::asio::awaitable<void>(McpSite&)>& body,
                 std::chrono::milliseconds deadline = std::chrono::seconds(60));

// `program args...` as a stdio command (absolute program path: both placements run on this
// machine).
mcp::StdioCommand stdio_command(std::string program, std::vector<std::string> args = {});

// The first text content of a tools/call result ("" when there is none).
std::string first_text(const boost::json::object& result);
// The string field `key` of each object in `items` (a listing's names, URIs...).
std::vector<std::string> strings_of(const boost::json::array& items, std::string_view key);

}  // namespace tether::testing
