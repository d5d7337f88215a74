// tether::fetch direct client — HTTP requests made by this process.
//
// Owns: one HTTP/1.1 connection per exchange (plain, or TLS verified against the trust roots:
// the system store unless told otherwise), the connect bound, redirects (301, 302, 303, 307 and
// 308, at most max_redirects; credentials are not carried to another origin), the request's
// timeout over the whole exchange, and reading the body piece by piece as it arrives.
// Does not own: what the bytes mean (the MCP transport, the executor's http/request).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>

#include <tether/fetch/fetch.hpp>

namespace tether::fetch {

struct DirectOptions {
  // Resolving, connecting, the TLS handshake and sending the request, per connection.
  std::chrono::milliseconds connect_timeout{30'000};
  int max_redirects = 10;
  std::size_t max_head_bytes = std::size_t{64} << 10;
  std::size_t read_piece = std::size_t{64} << 10;  // the most one read() returns
  // Trust roots for https://. Not owned; null: the system store (OpenSSL's default paths, which
  // SSL_CERT_FILE and SSL_CERT_DIR override).
  boost::asio::ssl::context* tls = nullptr;
};

std::shared_ptr<Client> direct_client(boost::asio::any_io_executor executor, DirectOptions options);

}  // namespace tether::fetch
