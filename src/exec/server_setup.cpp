// The exec-server's startup checks (server_setup.hpp).
#include "server_setup.hpp"

#include <boost/url.hpp>
#include <fmt/format.h>

namespace tether::exec {
namespace asio = boost::asio;

namespace {

jsonrpc::Error startup_error(std::string message) {
  return jsonrpc::make_error(jsonrpc::code::kServerError, std::move(message));
}

}  // namespace

Expected<Listen> parse_listen(const std::string& text) {
  if (text == "stdio") return Listen{StdioListen{}};
  const jsonrpc::Error bad = startup_error(fmt::format(
      "unsupported --listen URL '{}'; expected ws://IP:PORT, wss://IP:PORT or stdio", text));
  auto url = boost::urls::parse_uri(text);
  if (!url || !url->has_port() || (url->scheme() != "ws" && url->scheme() != "wss")) return bad;
  if (!url->encoded_path().empty() && url->encoded_path() != "/") return bad;
  asio::ip::address address;
  if (url->host_type() == boost::urls::host_type::ipv4) {
    address = asio::ip::make_address_v4(url->host_ipv4_address().to_bytes());
  } else if (url->host_type() == boost::urls::host_type::ipv6) {
    address = asio::ip::make_address_v6(url->host_ipv6_address().to_bytes());
  } else {
    return bad;
  }
  return Listen{SocketListen{{address, url->port_number()}, url->scheme() == "wss"}};
}

Expected<void> check_security(const ServerOptions& options, const SocketListen& listen) {
  const bool loopback = listen.endpoint.address().is_loopback();
  if (options.insecure_no_auth && !loopback)
    return startup_error("--insecure-no-auth is only allowed on a loopback address");
  if (!loopback && !options.allow_non_loopback) {
    return startup_error(
        fmt::format("refusing to listen on non-loopback address {} without --allow-non-loopback",
                    listen.endpoint.address().to_string()));
  }
  if (listen.tls != (options.tls_cert && options.tls_key)) {
    return startup_error(listen.tls ? "wss:// needs --tls-cert and --tls-key"
                                    : "--tls-cert and --tls-key go with a wss:// --listen URL");
  }
  return {};
}

Expected<std::unique_ptr<asio::ssl::context>> make_tls_context(const ServerOptions& options) {
  auto tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  tls->use_certificate_chain_file(*options.tls_cert, ec);
  if (ec) {
    return startup_error(
        fmt::format("cannot load --tls-cert {}: {}", *options.tls_cert, ec.message()));
  }
  tls->use_private_key_file(*options.tls_key, asio::ssl::context::pem, ec);
  if (ec) {
    return startup_error(
        fmt::format("cannot load --tls-key {}: {}", *options.tls_key, ec.message()));
  }
  return tls;
}

Expected<Auth> load_auth(const ServerOptions& options) {
  if (options.insecure_no_auth) return Auth{};
  jsonrpc::TokenSources sources;
  sources.file = options.token_file;
  if (options.token_sha256_hex) {
    sources.digest = jsonrpc::parse_hex_digest(*options.token_sha256_hex);
    if (!sources.digest) return startup_error("--ws-token-sha256 must be 64 hex digits");
  }
  sources.env_var = "TETHER_EXEC_SERVER_TOKEN";
  sources.program = "tether exec-server";
  sources.generated_prefix = "tether-exec-server";
  return jsonrpc::resolve_bearer(sources);
}

}  // namespace tether::exec
