// tether::mcp_server PeerSession — one MCP session over one jsonrpc connection (stdio).
//
// Owns: joining a Session to a jsonrpc::Peer: requests and notifications in, answers,
// notifications and server-to-client requests out (a single stream, so "related" needs no
// routing), and the Peer's caps on requests in flight and queued bytes (reading stops while
// they are reached).
// Does not own: MCP semantics (session.hpp) or framing (jsonrpc transports).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <tether/jsonrpc/peer.hpp>
#include <tether/jsonrpc/transport.hpp>
#include <tether/mcp_server/session.hpp>

namespace tether::mcp_server {

struct PeerSessionOptions {
  std::size_t max_in_flight_requests = 256;
  std::size_t send_high_water = std::size_t{16} << 20;
  // 2026-07-28 requests waiting for the client's next round (exchange.hpp).
  std::size_t max_parked = 256;
  std::chrono::milliseconds parked_lifetime{600'000};
};

class PeerSession {
 public:
  PeerSession(const boost::asio::any_io_executor& executor, std::shared_ptr<Service> service,
              std::unique_ptr<jsonrpc::Transport> transport, PeerSessionOptions options = {});
  ~PeerSession();
  PeerSession(const PeerSession&) = delete;
  PeerSession& operator=(const PeerSession&) = delete;

  // Serves until the client ends the connection (stdin EOF) or close(); the session has ended
  // when this returns.
  boost::asio::awaitable<void> run();
  // Sends what is queued, then ends the connection.
  void close();

  const std::shared_ptr<Session>& session() const { return session_; }

 private:
  std::shared_ptr<jsonrpc::Peer> peer_;
  std::shared_ptr<Session> session_;
};

}  // namespace tether::mcp_server
