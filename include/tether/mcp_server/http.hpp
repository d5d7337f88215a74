// tether::mcp_server HttpServer — MCP over streamable HTTP, the session revisions' transport
// (2025-11-25) and 2026-07-28's, side by side.
//
// Owns: the listener and its connections (capped), the gate before anything is served (Origin,
// Host, bearer token, body size; docs/gateway.md "HTTP security"), `/readyz` and `/metrics`,
// and the MCP endpoint: POST answered with JSON or an SSE stream, `Mcp-Session-Id` issued on
// initialize and required after, `MCP-Protocol-Version` checked, GET for the session's own
// stream, DELETE to end a session, event ids and replay after `Last-Event-ID` (a bounded
// history per session), capped sessions that expire when idle. A POST without a session that
// claims 2026-07-28 (its MCP-Protocol-Version, or its `_meta`) is served on its own: the
// MCP-Protocol-Version, Mcp-Method and Mcp-Name headers checked against the body (400, -32020),
// then the `_meta` rules (400), a Session of its own whose answer is that POST's JSON or SSE
// stream (404 for an unknown method, 400 for a missing capability), no resumption.
// Does not own: what requests mean (Service) or the session rules (session.hpp).
// Threading: one executor; every call runs on it.
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
#include <boost/asio/ip/tcp.hpp>

#include <tether/jsonrpc/http_auth.hpp>
#include <tether/mcp_server/session.hpp>

namespace tether::mcp_server {

struct HttpServerOptions {
  std::string path = "/mcp";
  std::optional<jsonrpc::Sha256> token_digest;  // nullopt: no auth (loopback only)
  std::vector<std::string> allowed_hosts;       // besides IP literals and localhost
  std::vector<std::string> allowed_origins;     // a request with another Origin gets 403
  std::size_t max_body_bytes = std::size_t{16} << 20;
  std::size_t max_sessions = 64;
  std::size_t max_connections = 256;
  std::chrono::milliseconds session_idle_timeout{30 * 60 * 1000};
  // SSE events a session keeps for replay after Last-Event-ID, in bytes; the oldest go first.
  std::size_t replay_bytes = std::size_t{4} << 20;
  // An SSE comment on a quiet stream this often, so a client that went away is noticed.
  std::chrono::milliseconds stream_keepalive{15'000};
  // The service of a new session (at its initialize), and its end (DELETE, expiry, stop()).
  std::function<std::shared_ptr<Service>()> open_service;
  std::function<void(std::shared_ptr<Service>)> close_service;
  // The service of 2026-07-28 requests, which have no session: null (or unset) refuses them
  // (a server whose sessions each have a service of their own cannot serve them).
  std::function<std::shared_ptr<Service>()> stateless_service;
  // 2026-07-28 requests waiting for the client's next round (exchange.hpp).
  std::size_t max_parked = 256;
  std::chrono::milliseconds parked_lifetime{600'000};
  std::function<bool()> ready;           // GET /readyz: 200 when true, else 503
  std::function<std::string()> metrics;  // GET /metrics: Prometheus text
};

class HttpServer {
 public:
  // Binds `endpoint` (port 0 picks one). Error: `cannot listen on <endpoint>: <reason>`.
  static Expected<std::shared_ptr<HttpServer>> listen(
      const boost::asio::any_io_executor& executor, const boost::asio::ip::tcp::endpoint& endpoint,
      HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  boost::asio::ip::tcp::endpoint local_endpoint() const;
  // Accepts and serves until stop().
  void start();
  // Stops accepting, ends every session (their services closed) and every connection.
  void stop();
  std::size_t sessions() const;
  // Called after a session opened or ended.
  void on_sessions_changed(std::function<void()> callback);

  struct State;

 private:
  explicit HttpServer(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace tether::mcp_server
