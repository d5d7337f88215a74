// The manager's words for users: the failure texts docs/config.md quotes (a failed start, a
// startup timeout, required servers that failed, a crash loop, a death with the server's last
// stderr lines) and what a listing shows of a server's command line or URL.
// Does not own: when any of them is said (manager.cpp), or how a listing is laid out (cli).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <tether/host/config.hpp>
#include <tether/host/describe.hpp>
#include <tether/host/manager.hpp>
#include <tether/jsonrpc/error.hpp>

namespace tether::host {

// `MCP client for '<server>' failed to start: <error>`; for a startup timeout, which setting to
// change: `MCP client for '<server>' timed out after <N> seconds. Add or adjust ...`.
std::string startup_failure_text(const ServerConfig& server, const jsonrpc::Error& error);

// `required MCP servers failed to initialize: <server>: <error>[; ...]`.
std::string required_failures_text(const std::vector<StartupSummary::Failure>& failures);

// A tool call that timed out, and which setting to raise: `<error>; raise tool_timeout_sec of
// MCP server '<server>' if the tool needs longer`.
jsonrpc::Error tool_timeout_error(jsonrpc::Error error, std::string_view server);

// `MCP server '<server>' is crash-looping: <last error>`.
std::string crash_loop_text(std::string_view server, std::string_view last_error);

// Why a ready server stopped: `reason`, then its last stderr lines when it left any.
std::string death_text(std::string reason, std::string_view stderr_tail);

// What a stdio server runs (its command line) or where an HTTP server is (its URL).
std::string server_target(const ServerConfig& server);

}  // namespace tether::host
