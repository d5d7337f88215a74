// Client side of the WebSocket transport: URL parsing (Boost.URL), resolve, connect and the
// upgrade, all under one deadline (beast::tcp_stream's expiry covers connect and handshake).
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/url.hpp>

#include <tether/jsonrpc/transport.hpp>

namespace tether::jsonrpc {
namespace asio = boost::asio;
namespace beast = boost::beast;

namespace {
// WebSocket's variadic constructor makes result<WebSocket>'s implicit error conversion ambiguous.
boost::system::result<WebSocket> failed(boost::system::error_code ec) {
  return {boost::system::in_place_error, ec};
}
}  // namespace

asio::awaitable<boost::system::result<WebSocket>> connect_websocket(
    std::string_view url, const HttpHeaders& headers, std::chrono::milliseconds timeout) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) co_return failed(parsed.error());
  if (parsed->scheme() != "ws")
    co_return failed(make_error_code(boost::system::errc::protocol_not_supported));
  const std::string host(parsed->encoded_host_address());
  const std::string port = parsed->has_port() ? std::string(parsed->port()) : "80";
  std::string target(parsed->encoded_resource());
  if (target.empty()) target = "/";

  auto executor = co_await asio::this_coro::executor;
  asio::ip::tcp::resolver resolver(executor);
  boost::system::error_code ec;
  auto endpoints =
      co_await resolver.async_resolve(host, port, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return failed(ec);

  WebSocket ws(executor);
  beast::get_lowest_layer(ws).expires_after(timeout);
  co_await beast::get_lowest_layer(ws).async_connect(endpoints,
                                                     asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return failed(ec);
  beast::get_lowest_layer(ws).socket().set_option(asio::ip::tcp::no_delay(true), ec);
  ws.set_option(
      beast::websocket::stream_base::decorator([headers](beast::websocket::request_type& request) {
        for (const auto& [name, value] : headers) request.set(name, value);
      }));
  const std::string host_header(parsed->encoded_host_and_port());
  co_await ws.async_handshake(host_header, target, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return failed(ec);
  beast::get_lowest_layer(ws).expires_never();
  co_return boost::system::result<WebSocket>{boost::system::in_place_value, std::move(ws)};
}

}  // namespace tether::jsonrpc
