// WebSocket and newline-delimited transports. The WebSocket one relies on Beast's timeout
// option for the idle bound (pongs count as traffic) and leaves ping scheduling to Peer, whose
// writer is the only sequencer of writes, pings and the close.
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <tether/jsonrpc/line_splitter.hpp>
#include <tether/jsonrpc/transport.hpp>

namespace tether::jsonrpc {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using boost::system::error_code;

constexpr auto kCloseHandshakeTimeout = std::chrono::seconds(5);
constexpr std::size_t kReadPiece = std::size_t{1} << 20;

template <class Stream>
class WebSocketTransport final : public Transport {
 public:
  WebSocketTransport(Stream ws, const WebSocketLimits& limits)
      : ws_(std::move(ws)),
        max_frame_(limits.max_frame_bytes),
        max_message_(limits.max_message_bytes),
        idle_timeout_(limits.idle_timeout),
        last_heard_(std::chrono::steady_clock::now()) {
    beast::get_lowest_layer(ws_).expires_never();
    // Beast's own idle timer is off: without its keep-alive pings it fires once, idle_timeout
    // after the handshake, however busy the connection. Liveness is tracked here instead.
    websocket::stream_base::timeout timeout{};
    timeout.handshake_timeout = kCloseHandshakeTimeout;
    timeout.idle_timeout = websocket::stream_base::none();
    timeout.keep_alive_pings = false;
    ws_.set_option(timeout);
    ws_.control_callback([this](websocket::frame_type kind, beast::string_view payload) {
      heard();
      if (kind == websocket::frame_type::pong && on_pong_) on_pong_(payload);
    });
    ws_.read_message_max(0);  // see read()
    ws_.auto_fragment(false);
    // Only used when a message must be split: the fragment size (and the masking buffer).
    ws_.write_buffer_bytes(std::min<std::size_t>(max_frame_, 1 << 20));
    ws_.text(true);
  }

  asio::awaitable<boost::system::result<std::string>> read() override {
    buffer_.clear();
    error_code ec;
    // The size limit is enforced here, not by Beast's read_message_max: Beast's own teardown
    // after its 1009 closes the socket while the remote may still be sending the oversized
    // message, and the reset can discard the close frame before the remote reads it. A close
    // handshake instead drains the rest of the message first.
    while (!ec) {
      co_await ws_.async_read_some(buffer_, kReadPiece,
                                   asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      heard();
      if (buffer_.size() > max_message_) {
        co_await close(close_code::kTooBig);
        co_return make_error_code(websocket::error::message_too_big);
      }
      if (ws_.is_message_done()) break;
    }
    if (ec) {
      if (ec == websocket::error::closed) remote_close_ = ws_.reason().code;
      co_return ec;
    }
    if (!ws_.got_text()) {
      co_await close(close_code::kUnsupportedData);
      co_return make_error_code(boost::system::errc::protocol_error);
    }
    co_return beast::buffers_to_string(buffer_.data());
  }

  asio::awaitable<error_code> write(const std::string& message) override {
    ws_.auto_fragment(message.size() > max_frame_);
    error_code ec;
    co_await ws_.async_write(asio::buffer(message), asio::redirect_error(asio::use_awaitable, ec));
    co_return ec;
  }

  asio::awaitable<error_code> ping(std::string payload) override {
    error_code ec;
    co_await ws_.async_ping(websocket::ping_data(payload.data(), payload.size()),
                            asio::redirect_error(asio::use_awaitable, ec));
    co_return ec;
  }

  void on_pong(std::function<void(std::string_view)> handler) override {
    on_pong_ = std::move(handler);
  }

  asio::awaitable<void> close(std::uint16_t code) override {
    if (!ws_.is_open()) co_return;
    error_code ec;
    co_await ws_.async_close(websocket::close_reason(code),
                             asio::redirect_error(asio::use_awaitable, ec));
  }

  void abort() override {
    error_code ignored;
    auto& socket = beast::get_lowest_layer(ws_).socket();
    socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  std::optional<std::uint16_t> remote_close_code() const override { return remote_close_; }
  bool has_keepalive() const override { return true; }
  bool idle_expired() const override {
    return std::chrono::steady_clock::now() - last_heard_ > idle_timeout_;
  }

 private:
  void heard() { last_heard_ = std::chrono::steady_clock::now(); }

  Stream ws_;
  std::size_t max_frame_;
  std::size_t max_message_;
  std::chrono::milliseconds idle_timeout_;
  std::chrono::steady_clock::time_point last_heard_;
  beast::flat_buffer buffer_;
  std::optional<std::uint16_t> remote_close_;
  std::function<void(std::string_view)> on_pong_;
};

class LineTransport final : public Transport {
 public:
  LineTransport(asio::posix::stream_descriptor input, asio::posix::stream_descriptor output,
                std::size_t max_message_bytes)
      : input_(std::move(input)), output_(std::move(output)), lines_(max_message_bytes) {}

  asio::awaitable<boost::system::result<std::string>> read() override {
    for (;;) {
      auto line = lines_.next_line();
      if (!line) co_return line.error();
      if (*line) {
        if ((*line)->empty()) continue;
        co_return std::move(**line);
      }
      error_code ec;
      const std::size_t n = co_await input_.async_read_some(
          asio::buffer(chunk_), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (ec == asio::error::eof) remote_close_ = close_code::kNormal;
        co_return ec;
      }
      lines_.append(std::string_view(chunk_.data(), n));
    }
  }

  asio::awaitable<error_code> write(const std::string& message) override {
    static constexpr char kNewline = '\n';
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(message),
                                                    asio::buffer(&kNewline, 1)};
    error_code ec;
    co_await asio::async_write(output_, buffers, asio::redirect_error(asio::use_awaitable, ec));
    co_return ec;
  }

  asio::awaitable<error_code> ping(std::string) override { co_return error_code{}; }
  void on_pong(std::function<void(std::string_view)>) override {}

  asio::awaitable<void> close(std::uint16_t) override {
    error_code ignored;
    output_.close(ignored);
    co_return;
  }

  void abort() override {
    error_code ignored;
    input_.close(ignored);
    output_.close(ignored);
  }

  std::optional<std::uint16_t> remote_close_code() const override { return remote_close_; }
  bool has_keepalive() const override { return false; }
  bool idle_expired() const override { return false; }

 private:
  asio::posix::stream_descriptor input_;
  asio::posix::stream_descriptor output_;
  LineSplitter lines_;
  std::array<char, std::size_t{64} << 10> chunk_{};
  std::optional<std::uint16_t> remote_close_;
};

}  // namespace

std::unique_ptr<Transport> make_websocket_transport(WebSocket ws, const WebSocketLimits& limits) {
  return std::make_unique<WebSocketTransport<WebSocket>>(std::move(ws), limits);
}

std::unique_ptr<Transport> make_websocket_transport(SecureWebSocket ws,
                                                    const WebSocketLimits& limits) {
  return std::make_unique<WebSocketTransport<SecureWebSocket>>(std::move(ws), limits);
}

std::unique_ptr<Transport> make_line_transport(asio::posix::stream_descriptor input,
                                               asio::posix::stream_descriptor output,
                                               std::size_t max_message_bytes) {
  return std::make_unique<LineTransport>(std::move(input), std::move(output), max_message_bytes);
}

}  // namespace tether::jsonrpc
