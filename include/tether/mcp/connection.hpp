// tether::mcp connection — the seam between the MCP client and "where the server runs".
//
// Owns: what every launcher hands the client: a message transport (one JSON-RPC message per
// read/write; close ends the server, abort kills it) and the diagnostics only the launcher can
// know (why the server went away, the last lines of its stderr).
// Does not own: launching (stdio.hpp, http.hpp) or MCP semantics (client.hpp). The client never
// learns which launcher made a connection.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include <tether/jsonrpc/error.hpp>
#include <tether/jsonrpc/transport.hpp>

namespace tether::mcp {

namespace json = boost::json;
using jsonrpc::Error;
using jsonrpc::Expected;

// Written by the transport, read by the client when it reports a failure.
class ServerDiagnostics {
 public:
  explicit ServerDiagnostics(std::size_t tail_lines = 20) : tail_lines_(tail_lines) {}

  void add_stderr_line(std::string line);
  // The last stderr lines, oldest first, joined with '\n' (empty when there were none).
  std::string stderr_tail() const;

  // Why the server ended, in words (e.g. `MCP server process exited with code 1`); the first
  // reason recorded wins.
  void set_end_reason(std::string reason);
  const std::optional<std::string>& end_reason() const { return end_reason_; }

 private:
  std::size_t tail_lines_;
  std::deque<std::string> tail_;
  std::optional<std::string> end_reason_;
};

// Transport contract for MCP servers (on top of jsonrpc::Transport's):
// - read() yields one message text; it fails once the server is gone (diagnostics say why);
// - close() is the orderly end: the server is shut down and, for a process, gone (bounded by
//   the kill grace) when it returns;
// - abort() and destroying the transport end the server without waiting (a process group is
//   killed, an executor process terminated in the background): never an orphan.
struct ServerConnection {
  std::unique_ptr<jsonrpc::Transport> transport;
  std::shared_ptr<ServerDiagnostics> diagnostics;  // never null
  // Where the server runs, for logs: `local process 'node' (pid 4242)`, `executor process
  // mcp-stdio-3`, `http://127.0.0.1:3001/mcp`.
  std::string description;
};

}  // namespace tether::mcp
