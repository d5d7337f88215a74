// Private to the stdio launchers (stdio_local.cpp, stdio_executor.cpp): what both placements
// share.
//
// Owns: the errors read() ends with (their messages are the end reasons, so Peer's "why the
// connection ended" says the same as ServerDiagnostics), the stderr line logger + tail, the
// UTF-8 check, reading variables from tether's own environment, and a bounded wait on an
// AsyncSignal.
// Does not own: processes, framing of stdout (jsonrpc::LineSplitter) or the transports.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <tether/jsonrpc/async_signal.hpp>
#include <tether/jsonrpc/transport.hpp>
#include <tether/mcp/connection.hpp>

namespace tether::mcp::stdio {

// `MCP server process exited with code <code>` / `MCP server process killed by signal <n>`.
std::string exit_reason(int code, std::optional<int> signal);
// The error read() fails with once the process ended; its message() is exit_reason(...).
boost::system::error_code exit_error(int code, std::optional<int> signal);
// Output ended without a known exit status (`MCP server closed its output`).
boost::system::error_code output_closed_error();
// The process can no longer be observed (`MCP server process was lost`); the diagnostics say why.
boost::system::error_code lost_error();

// `MCP server sent a line longer than <max> bytes`.
std::string overlong_reason(std::size_t max_line_bytes);

// Splits a server's stderr into lines: each one is logged as
// `MCP server stderr (<program>): <line>` and kept in the diagnostics tail.
class StderrLog {
 public:
  StderrLog(std::string program, std::shared_ptr<ServerDiagnostics> diagnostics)
      : program_(std::move(program)), diagnostics_(std::move(diagnostics)) {}
  void append(std::string_view bytes);
  // The unterminated last line, if any.
  void finish();

 private:
  void emit(std::string_view line);
  std::string program_;
  std::shared_ptr<ServerDiagnostics> diagnostics_;
  std::string pending_;
};

// NAME -> value for each of `names` set in tether's own environment (values as they are).
std::map<std::string, std::string> own_variables(const std::vector<std::string>& names);

// Waits for the next notify_all() or until `deadline`, whichever comes first.
boost::asio::awaitable<void> wait_until(jsonrpc::AsyncSignal& signal,
                                        std::chrono::steady_clock::time_point deadline);

// What both stdio transports share: a pipe has no pings or keepalive, and the end is told by
// read()'s error and the diagnostics, not as a remote close.
class PipeTransport : public jsonrpc::Transport {
 public:
  boost::asio::awaitable<boost::system::error_code> ping(std::string) override {
    co_return boost::system::error_code{};
  }
  void on_pong(std::function<void(std::string_view)>) override {}
  std::optional<std::uint16_t> remote_close_code() const override { return std::nullopt; }
  bool has_keepalive() const override { return false; }
  bool idle_expired() const override { return false; }
};

}  // namespace tether::mcp::stdio
