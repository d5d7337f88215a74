// tether::mcp stdio launchers — an MCP stdio server run here or on an executor.
//
// Owns: turning a server command {program, args, env, env_vars, cwd} into a running process
// and a ServerConnection speaking newline-delimited JSON with it, in both placements, with the
// environment, UTF-8, framing, stderr and cleanup rules of docs/mcp.md ("Launching a stdio
// server").
// Does not own: MCP (client.hpp), choosing the placement (host), or the process API backends
// (exec::LocalProcesses is not used here: the local launcher owns its child directly, so
// closing stdin is possible and the hot path is two pipes).
// Data flows: local: transport.write -> child stdin; child stdout -> LineSplitter -> read();
// child stderr -> log + tail. Executor: write -> process/write (+ '\n'); process events ->
// stdout bytes -> LineSplitter -> read(); stderr events -> log + tail; closed/failed -> end.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <tether/exec/process_api.hpp>
#include <tether/mcp/connection.hpp>

namespace tether::mcp {

struct StdioCommand {
  std::string program;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;  // literal variables; win over everything
  std::vector<std::string> env_vars;       // names copied from tether's own environment
  std::optional<std::string> cwd;          // absent: tether's cwd (local) / the executor's default
};

struct StdioOptions {
  std::size_t max_line_bytes = std::size_t{64} << 20;
  std::size_t stderr_tail_lines = 20;
  // Cleanup: SIGTERM to the group, SIGKILL after this (local); bound on waiting for `closed`
  // after process/terminate (executor).
  std::chrono::milliseconds kill_grace{2000};
};

// The variables copied from tether's own environment for a local child (before env_vars).
inline constexpr const char* kLocalCoreVariables[] = {"HOME", "LOGNAME", "PATH", "SHELL",  "USER",
                                                      "LANG", "LC_ALL",  "TERM", "TMPDIR", "TZ"};

// Starts `command` as a child of this process (own process group, pipes for stdin, stdout and
// stderr). The program is resolved against the child's PATH. Spawn failures carry the OS
// reason (`failed to start 'nope': No such file or directory (os error 2)`). The first call
// sets SIGPIPE to ignored when it is at its default, so a server dying mid-write is an error,
// not the end of this process.
Expected<ServerConnection> launch_local(const boost::asio::any_io_executor& executor,
                                        const StdioCommand& command,
                                        const StdioOptions& options = {});

// Starts `command` through an executor's process API (`mcp-stdio-<N>`, tty false, stdin piped,
// envPolicy inherit core), after checking every string is valid UTF-8
// (`command must be valid Unicode for remote MCP stdio`, ...).
boost::asio::awaitable<Expected<ServerConnection>> launch_on_executor(
    std::shared_ptr<exec::ProcessStarter> starter, StdioCommand command, StdioOptions options);

}  // namespace tether::mcp
