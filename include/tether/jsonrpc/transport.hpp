// tether::jsonrpc transports — "one JSON-RPC message at a time" over a byte connection.
//
// Owns: message framing for WebSocket text frames (binary frame = close 1003, oversized = 1009,
// pings, idle timeout) and for newline-delimited JSON over a pair of stream descriptors
// (`--listen stdio`, command executors, MCP stdio). Does not own: JSON parsing, request
// correlation or write ordering: a Transport allows one read and one write/ping/close at a time,
// and Peer is the one caller that sequences them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/system/result.hpp>

namespace tether::jsonrpc {

// WebSocket close codes used by tether (RFC 6455).
namespace close_code {
inline constexpr std::uint16_t kNormal = 1000;
inline constexpr std::uint16_t kGoingAway = 1001;
inline constexpr std::uint16_t kUnsupportedData = 1003;
inline constexpr std::uint16_t kTooBig = 1009;
}  // namespace close_code

class Transport {
 public:
  virtual ~Transport() = default;

  // The next message. Fails when the connection ends (see remote_close_code()), on a protocol
  // violation (binary frame, message over the limit) or on an idle timeout.
  virtual boost::asio::awaitable<boost::system::result<std::string>> read() = 0;
  virtual boost::asio::awaitable<boost::system::error_code> write(const std::string& message) = 0;
  // A ping carrying `payload` where the transport has them; a no-op otherwise.
  virtual boost::asio::awaitable<boost::system::error_code> ping(std::string payload) = 0;
  // Called with the payload of each pong received (only while a read() is in progress: control
  // frames are processed by the read).
  virtual void on_pong(std::function<void(std::string_view payload)> handler) = 0;
  // Ends the connection cleanly (a close frame with `code`, or closing the output side).
  virtual boost::asio::awaitable<void> close(std::uint16_t code) = 0;
  // Ends the connection now; pending operations complete with errors.
  virtual void abort() = 0;
  // Set once the remote ended the connection on purpose: its WebSocket close code, or
  // close_code::kNormal for EOF on a line transport (a pipe has no other way to say goodbye).
  virtual std::optional<std::uint16_t> remote_close_code() const = 0;
  virtual bool has_keepalive() const = 0;
  // True once nothing at all (message, ping, pong) came from the remote for the idle timeout.
  virtual bool idle_expired() const = 0;
};

struct WebSocketLimits {
  std::size_t max_message_bytes = std::size_t{64} << 20;
  // Outgoing messages are sent as frames of at most this size (codex's client limit is 16 MiB).
  std::size_t max_frame_bytes = std::size_t{16} << 20;
  // Nothing received for this long (pongs count) makes the connection lost (Peer checks it at
  // each keepalive ping).
  std::chrono::milliseconds idle_timeout{30'000};
};

using WebSocket = boost::beast::websocket::stream<boost::beast::tcp_stream>;
using SecureWebSocket =
    boost::beast::websocket::stream<boost::beast::ssl_stream<boost::beast::tcp_stream>>;

// Wraps a WebSocket whose handshake is complete.
std::unique_ptr<Transport> make_websocket_transport(WebSocket ws, const WebSocketLimits& limits);
std::unique_ptr<Transport> make_websocket_transport(SecureWebSocket ws,
                                                    const WebSocketLimits& limits);

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct ConnectOptions {
  HttpHeaders headers;                        // sent on the upgrade request (e.g. Authorization)
  std::chrono::milliseconds timeout{10'000};  // TCP connect, TLS and WebSocket handshakes
  WebSocketLimits limits;
  // Needed for wss://: the trust roots and verification mode (the peer's certificate is checked
  // against the URL's host). Not owned; must outlive the connection.
  boost::asio::ssl::context* tls = nullptr;
};

// Why a connection could not be opened: the Asio/Beast/OpenSSL error, and a message that says
// it for people (for a refused upgrade, the server's HTTP status and body, e.g. `HTTP 401
// Unauthorized: invalid websocket bearer token`).
struct ConnectError {
  boost::system::error_code code;
  std::string message;
};

// Opens a ws:// or wss:// URL and returns its transport.
boost::asio::awaitable<boost::system::result<std::unique_ptr<Transport>, ConnectError>>
connect_websocket(std::string_view url, const ConnectOptions& options);

// Newline-delimited JSON over two descriptors (they may be the same kind of pipe, a socket, or
// stdin/stdout). Empty lines are skipped.
std::unique_ptr<Transport> make_line_transport(boost::asio::posix::stream_descriptor input,
                                               boost::asio::posix::stream_descriptor output,
                                               std::size_t max_message_bytes);

}  // namespace tether::jsonrpc
