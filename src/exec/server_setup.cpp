// The exec-server's startup checks (server_setup.hpp).
#include "server_setup.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <unistd.h>

#include <boost/url.hpp>
#include <fmt/format.h>

#include <tether/exec/token.hpp>

namespace tether::exec {
namespace asio = boost::asio;

namespace {

jsonrpc::Error startup_error(std::string message) {
  return jsonrpc::make_error(jsonrpc::code::kServerError, std::move(message));
}

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

std::optional<Sha256> parse_hex_digest(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  Sha256 digest{};
  for (std::size_t i = 0; i < digest.size(); ++i) {
    unsigned value = 0;
    for (char c : hex.substr(i * 2, 2)) {
      value <<= 4;
      if (c >= '0' && c <= '9')
        value |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f')
        value |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        value |= static_cast<unsigned>(c - 'A' + 10);
      else
        return std::nullopt;
    }
    digest[i] = static_cast<unsigned char>(value);
  }
  return digest;
}

// A random 256-bit token in a fresh 0700 directory, file mode 0600. Returns the directory.
Expected<std::string> generate_token_file(Sha256& digest) {
  auto token = random_token();
  if (!token) return startup_error("cannot generate a random token");
  const char* tmp = std::getenv("TMPDIR");
  std::string dir_template = std::string(tmp && *tmp ? tmp : "/tmp") + "/tether-exec-server-XXXXXX";
  if (!::mkdtemp(dir_template.data()))
    return startup_error(fmt::format("cannot create a token directory: {}", std::strerror(errno)));
  const std::string path = dir_template + "/token";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || ::write(fd, token->data(), token->size()) != static_cast<ssize_t>(token->size())) {
    if (fd >= 0) ::close(fd);
    return startup_error(
        fmt::format("cannot write the token file {}: {}", path, std::strerror(errno)));
  }
  ::close(fd);
  digest = sha256(*token);
  return {boost::system::in_place_value, dir_template};
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
  Auth auth;
  if (options.insecure_no_auth) return auth;
  if (options.token_file) {
    std::ifstream in(*options.token_file);
    if (!in) return startup_error(fmt::format("cannot read token file {}", *options.token_file));
    std::string token = trim(std::string(std::istreambuf_iterator<char>(in), {}));
    if (token.empty())
      return startup_error(fmt::format("token file {} is empty", *options.token_file));
    auth.digest = sha256(token);
    return auth;
  }
  if (options.token_sha256_hex) {
    auth.digest = parse_hex_digest(*options.token_sha256_hex);
    if (!auth.digest) return startup_error("--ws-token-sha256 must be 64 hex digits");
    return auth;
  }
  if (const char* env = std::getenv("TETHER_EXEC_SERVER_TOKEN"); env && *trim(env).c_str()) {
    auth.digest = sha256(trim(env));
    return auth;
  }
  Sha256 digest{};
  auto dir = generate_token_file(digest);
  if (!dir) return dir.error();
  auth.digest = digest;
  auth.generated_dir = *dir;
  // Printed whatever the log level: without it nobody could connect.
  fmt::print(stderr, "tether exec-server: generated a bearer token; it is in {}/token\n", *dir);
  return auth;
}

}  // namespace tether::exec
