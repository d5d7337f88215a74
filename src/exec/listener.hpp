// The exec-server's listener, in the shape of Beast's async server example: accept_loop takes
// connections (backing off while accept fails, closing those past the cap of connections still
// upgrading), and each socket is a session that does the TLS handshake (wss://), reads one HTTP
// request, passes it through the gate (http_gate.hpp) and upgrades it to a Connection.
#pragma once

#include <memory>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "connection.hpp"
#include "http_gate.hpp"

namespace tether::exec {

// Serves `acceptor` until it is closed. `tls` null: ws://.
boost::asio::awaitable<void> accept_loop(std::shared_ptr<ServerContext> context,
                                         const GateConfig& gate, boost::asio::ssl::context* tls,
                                         boost::asio::ip::tcp::acceptor& acceptor);

}  // namespace tether::exec
