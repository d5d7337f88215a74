// tether::jsonrpc URL targets — what a client dials and sends for a ws(s):// or http(s):// URL.
//
// Owns: reading a URL (Boost.URL) into the host to resolve, the port (scheme default when
// absent), the Host header and the request target, and whether TLS applies; resolving its host
// within a time limit; the TCP connect and the client's TLS handshake (SNI, host-name
// verification) that the WebSocket and HTTP clients share.
// Does not own: what runs over the connection (websocket_connect.cpp, mcp/http.cpp).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/system/result.hpp>

namespace tether::jsonrpc {

struct UrlTarget {
  std::string host;  // for DNS and TLS (an IPv6 literal without brackets)
  std::string port;
  std::string host_header;
  std::string resource;  // path and query, "/" when empty
  bool tls = false;
};

// Accepts the schemes `plain` and `secure` (TLS), e.g. "ws"/"wss" or "http"/"https"; errors:
// the URL's parse error, protocol_not_supported for another scheme, invalid_argument for a URL
// without a host.
boost::system::result<UrlTarget> parse_url_target(std::string_view url, std::string_view plain,
                                                  std::string_view secure);

// Resolves the target's host and port; timed_out when the lookup takes longer than `timeout`
// (name resolution runs on Asio's resolver thread and would otherwise be unbounded).
boost::asio::awaitable<boost::system::result<boost::asio::ip::tcp::resolver::results_type>> resolve(
    const UrlTarget& target, std::chrono::milliseconds timeout);

// Connects `tcp` to the first of `endpoints` that accepts, within the deadline already set on
// `tcp`, and turns Nagle off (messages are small and waiting on an answer).
boost::asio::awaitable<boost::system::error_code> connect_tcp(
    boost::beast::tcp_stream& tcp, const boost::asio::ip::tcp::resolver::results_type& endpoints);

// The client's TLS handshake on a connected stream, for `host`: SNI carries names only (RFC 6066),
// and the certificate must match the host (a name, or an IP literal against its IP SANs).
boost::asio::awaitable<boost::system::error_code> tls_handshake(
    boost::beast::ssl_stream<boost::beast::tcp_stream>& stream, const std::string& host);

}  // namespace tether::jsonrpc
