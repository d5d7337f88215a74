// The listener (listener.hpp): one coroutine per accepted socket, errors handled where they
// arise, nothing shared but the ServerContext.
#include "listener.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace tether::exec {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr auto kHttpRequestTimeout = std::chrono::seconds(10);
constexpr auto kAcceptBackoffFirst = std::chrono::milliseconds(10);
constexpr auto kAcceptBackoffMax = std::chrono::milliseconds(1000);
constexpr std::size_t kMaxLoggedTargetBytes = 200;
constexpr std::size_t kMaxHeaderBytes = std::size_t{16} << 10;

// A request target as logs show it: the query is dropped, since clients put tokens there.
std::string loggable_target(std::string_view target) {
  const auto query = target.find('?');
  std::string shown(target.substr(0, std::min(query, kMaxLoggedTargetBytes)));
  if (query != std::string_view::npos) shown += "?<redacted>";
  return shown;
}

// A client's address as logs show it: `ip:port` ([ip]:port for IPv6), or the IP alone.
std::string loggable_address(const asio::ip::tcp::socket& socket, bool with_port) {
  boost::system::error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  if (ec) return "an unknown address";
  const auto ip = endpoint.address().to_string();
  const auto host = endpoint.address().is_v6() ? "[" + ip + "]" : ip;
  return with_port ? fmt::format("{}:{}", host, endpoint.port()) : ip;
}

// A connection's place among those that have not completed the upgrade; given back once the
// upgrade is done, or when the connection ends before that.
class PendingSlot {
 public:
  explicit PendingSlot(std::shared_ptr<ServerContext> context) : context_(std::move(context)) {
    ++context_->pending_connections;
  }
  PendingSlot(PendingSlot&& other) noexcept : context_(std::move(other.context_)) {}
  PendingSlot& operator=(PendingSlot&&) = delete;
  ~PendingSlot() { release(); }
  void release() {
    if (context_) --context_->pending_connections;
    context_.reset();
  }

 private:
  std::shared_ptr<ServerContext> context_;
};

template <class Stream>
asio::awaitable<void> send_answer(Stream& stream, unsigned version, const GateAnswer& answer) {
  http::response<http::string_body> response{answer.status, version};
  response.set(http::field::server, "tether-exec-server");
  response.set(http::field::content_type, "text/plain; charset=utf-8");
  response.keep_alive(false);
  response.body() = answer.body;
  response.prepare_payload();
  boost::system::error_code ec;
  co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
  beast::get_lowest_layer(stream).socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
}

// The HTTP request, the gate, then the upgrade. `Stream` is a tcp_stream, or for wss:// an
// ssl_stream whose TLS handshake is done.
template <class Stream>
asio::awaitable<void> serve_http(std::shared_ptr<ServerContext> context, const GateConfig& gate,
                                 PendingSlot& slot, Stream stream) {
  const auto& socket = beast::get_lowest_layer(stream).socket();
  // Without the port, so that a flood from one address repeats one line (RepeatedLog).
  const auto client_ip = loggable_address(socket, false);
  auto client = loggable_address(socket, true);
  boost::system::error_code ec;
  beast::flat_buffer buffer;
  http::request_parser<http::empty_body> parser;
  parser.header_limit(kMaxHeaderBytes);
  co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    spdlog::debug("exec: bad HTTP request: {}", ec.message());
    co_return;
  }
  auto request = parser.release();
  auto verdict = judge_request(request, gate);
  if (!verdict && context->shutting_down)
    verdict = GateAnswer{http::status::service_unavailable, "server is shutting down"};
  if (!verdict && context->connections.size() >= context->options.max_connections)
    verdict = GateAnswer{http::status::service_unavailable, "too many connections"};
  if (verdict) {
    if (verdict->status != http::status::ok)
      context->refusals.log(fmt::format("exec: refused {} {} from {}: {} {}",
                                        request.method_string(), loggable_target(request.target()),
                                        client_ip, static_cast<unsigned>(verdict->status),
                                        verdict->body));
    co_await send_answer(stream, request.version(), *verdict);
    co_return;
  }

  beast::websocket::stream<Stream> ws(std::move(stream));
  ws.set_option(beast::websocket::stream_base::decorator([](beast::websocket::response_type& res) {
    res.set(http::field::server, "tether-exec-server");
  }));
  ws.read_message_max(context->options.max_message_bytes);
  co_await ws.async_accept(request, asio::redirect_error(asio::use_awaitable, ec));
  slot.release();
  if (ec) {
    spdlog::debug("exec: WebSocket handshake failed: {}", ec.message());
    co_return;
  }
  jsonrpc::WebSocketLimits limits;
  limits.max_message_bytes = context->options.max_message_bytes;
  limits.idle_timeout = context->options.idle_timeout;
  auto connection = std::make_shared<Connection>(
      context, jsonrpc::make_websocket_transport(std::move(ws), limits), std::move(client));
  co_await connection->run();
}

asio::awaitable<void> serve_socket(std::shared_ptr<ServerContext> context, const GateConfig& gate,
                                   asio::ssl::context* tls, asio::ip::tcp::socket socket,
                                   PendingSlot slot) {
  boost::system::error_code ec;
  socket.set_option(asio::ip::tcp::no_delay(true), ec);  // latency over batching: one frame each
  beast::tcp_stream tcp(std::move(socket));
  tcp.expires_after(kHttpRequestTimeout);  // covers the TLS handshake and the request
  if (!tls) {
    co_await serve_http(std::move(context), gate, slot, std::move(tcp));
    co_return;
  }
  beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp), *tls);
  co_await stream.async_handshake(asio::ssl::stream_base::server,
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    spdlog::debug("exec: TLS handshake failed: {}", ec.message());
    co_return;
  }
  co_await serve_http(std::move(context), gate, slot, std::move(stream));
}

}  // namespace

asio::awaitable<void> accept_loop(std::shared_ptr<ServerContext> context, const GateConfig& gate,
                                  asio::ssl::context* tls, asio::ip::tcp::acceptor& acceptor) {
  asio::steady_timer backoff_timer(context->executor);
  auto backoff = kAcceptBackoffFirst;
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // At the descriptor limit (EMFILE, ENFILE) the connection stays queued and accept fails
      // again at once: wait, longer each time, for descriptors to be freed instead of spinning.
      context->accept_failures.log(fmt::format("exec: accept failed: {}", ec.message()));
      backoff_timer.expires_after(backoff);
      co_await backoff_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      backoff = std::min(backoff * 2, kAcceptBackoffMax);
      continue;
    }
    backoff = kAcceptBackoffFirst;
    if (context->pending_connections >= context->options.max_pending_connections) {
      context->refusals.log(fmt::format(
          "exec: closed a new connection from {}: {} connections have not completed the upgrade "
          "yet",
          loggable_address(socket, false), context->pending_connections));
      continue;  // the socket closes here
    }
    // The slot is taken now, not when the coroutine starts, so a burst cannot overshoot.
    asio::co_spawn(context->executor,
                   serve_socket(context, gate, tls, std::move(socket), PendingSlot(context)),
                   asio::detached);
  }
}

}  // namespace tether::exec
