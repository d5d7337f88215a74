// parse_url_target: Boost.URL does the parsing; this picks out what a client connection needs.
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/url/parse.hpp>

#include <tether/jsonrpc/url_target.hpp>

namespace tether::jsonrpc {

boost::system::result<UrlTarget> parse_url_target(std::string_view url, std::string_view plain,
                                                  std::string_view secure) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return parsed.error();
  UrlTarget t;
  if (parsed->scheme() == secure) {
    t.tls = true;
  } else if (parsed->scheme() != plain) {
    return make_error_code(boost::system::errc::protocol_not_supported);
  }
  if (parsed->encoded_host().empty()) return make_error_code(boost::system::errc::invalid_argument);
  t.host = parsed->host_type() == boost::urls::host_type::ipv6
               ? parsed->host_ipv6_address().to_string()
               : std::string(parsed->encoded_host());
  t.port = parsed->has_port() ? std::string(parsed->port()) : (t.tls ? "443" : "80");
  t.host_header = parsed->encoded_host_and_port();
  t.resource = parsed->encoded_resource();
  if (t.resource.empty()) t.resource = "/";
  return t;
}

boost::asio::awaitable<boost::system::result<boost::asio::ip::tcp::resolver::results_type>> resolve(
    const UrlTarget& target, std::chrono::milliseconds timeout) {
  namespace asio = boost::asio;
  using namespace asio::experimental::awaitable_operators;
  auto executor = co_await asio::this_coro::executor;
  asio::ip::tcp::resolver resolver(executor);
  asio::steady_timer timer(executor, timeout);
  boost::system::error_code ec;
  boost::system::error_code timer_ec;
  auto lookup = resolver.async_resolve(target.host, target.port,
                                       asio::redirect_error(asio::use_awaitable, ec));
  auto limit = timer.async_wait(asio::redirect_error(asio::use_awaitable, timer_ec));
  auto which = co_await (std::move(lookup) || std::move(limit));
  if (which.index() == 1) co_return make_error_code(asio::error::timed_out);
  if (ec) co_return ec;
  co_return std::get<0>(std::move(which));
}

boost::asio::awaitable<boost::system::error_code> connect_tcp(
    boost::beast::tcp_stream& tcp, const boost::asio::ip::tcp::resolver::results_type& endpoints) {
  namespace asio = boost::asio;
  boost::system::error_code ec;
  co_await tcp.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return ec;
  boost::system::error_code ignored;  // a socket that refuses it still works, with Nagle
  tcp.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
  co_return ec;
}

boost::asio::awaitable<boost::system::error_code> tls_handshake(
    boost::beast::ssl_stream<boost::beast::tcp_stream>& stream, const std::string& host) {
  namespace asio = boost::asio;
  boost::system::error_code not_ip;
  asio::ip::make_address(host, not_ip);
  if (not_ip && !SSL_set_tlsext_host_name(stream.native_handle(), host.c_str()))
    co_return boost::system::error_code(static_cast<int>(::ERR_get_error()),
                                        asio::error::get_ssl_category());
  stream.set_verify_callback(asio::ssl::host_name_verification(host));
  boost::system::error_code ec;
  co_await stream.async_handshake(asio::ssl::stream_base::client,
                                  asio::redirect_error(asio::use_awaitable, ec));
  co_return ec;
}

}  // namespace tether::jsonrpc
