// tether::jsonrpc URL targets — what a client dials and sends for a ws(s):// or http(s):// URL.
//
// Owns: reading a URL (Boost.URL) into the host to resolve, the port (scheme default when
// absent), the Host header and the request target, and whether TLS applies;
// and resolving its host within a time limit. Does not own: connecting (websocket_connect.cpp,
// mcp/http.cpp).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
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

}  // namespace tether::jsonrpc
