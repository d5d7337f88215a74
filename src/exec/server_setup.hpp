// What `tether exec-server` checks and prepares before it serves (docs/exec-server.md): the
// --listen URL, the rules for where it may listen (loopback unless allowed, TLS files only with
// wss://), the TLS context and the bearer token. Every error is a message for the command line.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <variant>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "http_gate.hpp"
#include <tether/exec/server.hpp>
#include <tether/jsonrpc/error.hpp>

namespace tether::exec {

using jsonrpc::Expected;

struct StdioListen {};
struct SocketListen {
  boost::asio::ip::tcp::endpoint endpoint;
  bool tls = false;
};
using Listen = std::variant<StdioListen, SocketListen>;

// `stdio`, or ws:// or wss:// with an IP literal and a port.
Expected<Listen> parse_listen(const std::string& text);
// Non-loopback only with allow_non_loopback, no auth only on loopback, TLS files with wss://.
Expected<void> check_security(const ServerOptions& options, const SocketListen& listen);
Expected<std::unique_ptr<boost::asio::ssl::context>> make_tls_context(const ServerOptions& options);

using Auth = jsonrpc::BearerAuth;
// The token's digest from the first source there is (ServerOptions says which); with none, a
// generated token in a fresh 0600 file, whose path goes to stderr.
Expected<Auth> load_auth(const ServerOptions& options);

}  // namespace tether::exec
