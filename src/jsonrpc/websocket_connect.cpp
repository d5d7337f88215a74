// Client side of the WebSocket transport: URL parsing (Boost.URL), resolve, TCP connect, TLS
// for wss:// (url_target.hpp), and the upgrade, all under one deadline (beast::tcp_stream's
// expiry covers every step).
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <tether/jsonrpc/transport.hpp>
#include <tether/jsonrpc/url_target.hpp>

namespace tether::jsonrpc {
namespace asio = boost::asio;
namespace beast = boost::beast;
using boost::system::error_code;
using Result = boost::system::result<std::unique_ptr<Transport>, ConnectError>;

namespace {

using Target = UrlTarget;

ConnectError failure(error_code ec) {
  return ConnectError{ec, ec.message()};
}

template <class Stream>
asio::awaitable<std::optional<ConnectError>> upgrade(Stream& ws, const Target& target,
                                                     const ConnectOptions& options) {
  ws.set_option(beast::websocket::stream_base::decorator(
      [headers = options.headers](beast::websocket::request_type& request) {
        for (const auto& [name, value] : headers) request.set(name, value);
      }));
  error_code ec;
  beast::websocket::response_type response;
  co_await ws.async_handshake(response, target.host_header, target.resource,
                              asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) {
    beast::get_lowest_layer(ws).expires_never();
    co_return std::nullopt;
  }
  if (ec != beast::websocket::error::upgrade_declined) co_return failure(ec);
  // The server said why (401 and its auth message, 403 for Origin or Host): pass that on.
  std::string message = "HTTP " + std::to_string(response.result_int());
  if (!response.reason().empty()) message += " " + std::string(response.reason());
  if (!response.body().empty()) message += ": " + response.body();
  co_return ConnectError{ec, std::move(message)};
}

}  // namespace

asio::awaitable<Result> connect_websocket(std::string_view url, const ConnectOptions& options) {
  auto target = parse_url_target(url, "ws", "wss");
  if (!target) co_return failure(target.error());
  if (target->tls && !options.tls)
    co_return ConnectError{make_error_code(boost::system::errc::invalid_argument),
                           "wss:// needs a TLS context"};

  auto executor = co_await asio::this_coro::executor;
  auto endpoints = co_await resolve(*target, options.timeout);
  if (!endpoints) co_return failure(endpoints.error());

  beast::tcp_stream tcp(executor);
  tcp.expires_after(options.timeout);
  error_code ec = co_await connect_tcp(tcp, *endpoints);
  if (ec) co_return failure(ec);

  if (!target->tls) {
    WebSocket ws(std::move(tcp));
    if (auto refused = co_await upgrade(ws, *target, options)) co_return std::move(*refused);
    co_return make_websocket_transport(std::move(ws), options.limits);
  }
  SecureWebSocket ws(std::move(tcp), *options.tls);
  ec = co_await tls_handshake(ws.next_layer(), target->host);
  if (ec) co_return failure(ec);
  if (auto refused = co_await upgrade(ws, *target, options)) co_return std::move(*refused);
  co_return make_websocket_transport(std::move(ws), options.limits);
}

}  // namespace tether::jsonrpc
