// run_server: option checks, the token, the listener (or the one stdio connection), and the
// shutdown sequence. Everything runs on one I/O thread; fs/* work is the only thing sent to
// other threads (ServerContext::blocking_pool).
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/url.hpp>
#include <fmt/format.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include "connection.hpp"
#include "http_gate.hpp"
#include <tether/exec/server.hpp>
#include <tether/process/containment.hpp>

namespace tether::exec {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace asio::experimental::awaitable_operators;

std::optional<std::string> random_token() {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return std::nullopt;
  std::string token;
  for (unsigned char b : raw) token += fmt::format("{:02x}", b);
  return token;
}

namespace {

constexpr auto kHttpRequestTimeout = std::chrono::seconds(10);
constexpr auto kAcceptBackoffFirst = std::chrono::milliseconds(10);
constexpr auto kAcceptBackoffMax = std::chrono::milliseconds(1000);
constexpr std::size_t kMaxLoggedTargetBytes = 200;
constexpr std::size_t kMaxHeaderBytes = std::size_t{16} << 10;

struct StdioListen {};
struct SocketListen {
  asio::ip::tcp::endpoint endpoint;
  bool tls = false;
};
using Listen = std::variant<StdioListen, SocketListen>;

struct StartupError {
  std::string message;
};

boost::system::result<Listen, StartupError> parse_listen(const std::string& text) {
  if (text == "stdio") return Listen{StdioListen{}};
  const StartupError bad{fmt::format(
      "unsupported --listen URL '{}'; expected ws://IP:PORT, wss://IP:PORT or stdio", text)};
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
boost::system::result<std::string, StartupError> generate_token_file(Sha256& digest) {
  auto token = random_token();
  if (!token) return StartupError{"cannot generate a random token"};
  const char* tmp = std::getenv("TMPDIR");
  std::string dir_template = std::string(tmp && *tmp ? tmp : "/tmp") + "/tether-exec-server-XXXXXX";
  if (!::mkdtemp(dir_template.data()))
    return StartupError{fmt::format("cannot create a token directory: {}", std::strerror(errno))};
  const std::string path = dir_template + "/token";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || ::write(fd, token->data(), token->size()) != static_cast<ssize_t>(token->size())) {
    if (fd >= 0) ::close(fd);
    return StartupError{
        fmt::format("cannot write the token file {}: {}", path, std::strerror(errno))};
  }
  ::close(fd);
  digest = sha256(*token);
  return {boost::system::in_place_value, dir_template};
}

struct Auth {
  std::optional<Sha256> digest;
  std::string generated_dir;  // removed at exit
};

boost::system::result<Auth, StartupError> load_auth(const ServerOptions& options) {
  Auth auth;
  if (options.insecure_no_auth) return auth;
  if (options.token_file) {
    std::ifstream in(*options.token_file);
    if (!in) return StartupError{fmt::format("cannot read token file {}", *options.token_file)};
    std::string token = trim(std::string(std::istreambuf_iterator<char>(in), {}));
    if (token.empty())
      return StartupError{fmt::format("token file {} is empty", *options.token_file)};
    auth.digest = sha256(token);
    return auth;
  }
  if (options.token_sha256_hex) {
    auth.digest = parse_hex_digest(*options.token_sha256_hex);
    if (!auth.digest) return StartupError{"--ws-token-sha256 must be 64 hex digits"};
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

// A request target as logs show it: the query is dropped, since clients put tokens there.
std::string loggable_target(std::string_view target) {
  const auto query = target.find('?');
  std::string shown(target.substr(0, std::min(query, kMaxLoggedTargetBytes)));
  if (query != std::string_view::npos) shown += "?<redacted>";
  return shown;
}

// A connection's place among those that have not completed the upgrade; given back once the
// upgrade is done, or when the connection ends before that.
class PendingSlot {
 public:
  explicit PendingSlot(std::shared_ptr<ServerContext> context) : context_(std::move(context)) {
    ++context_->pending_connections;
  }
  PendingSlot(PendingSlot&& other) noexcept : context_(std::move(other.context_)) {}
  PendingSlot& operator=(PendingSlot&&) = delete;
  ~PendingSlot() { release(); }
  void release() {
    if (context_) --context_->pending_connections;
    context_.reset();
  }

 private:
  std::shared_ptr<ServerContext> context_;
};

template <class Stream>
asio::awaitable<void> send_answer(Stream& stream, unsigned version, const GateAnswer& answer) {
  http::response<http::string_body> response{answer.status, version};
  response.set(http::field::server, "tether-exec-server");
  response.set(http::field::content_type, "text/plain; charset=utf-8");
  response.keep_alive(false);
  response.body() = answer.body;
  response.prepare_payload();
  boost::system::error_code ec;
  co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
  beast::get_lowest_layer(stream).socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
}

// The HTTP request, the gate, then the upgrade. `Stream` is a tcp_stream, or for wss:// an
// ssl_stream whose TLS handshake is done.
template <class Stream>
asio::awaitable<void> serve_http(std::shared_ptr<ServerContext> context, const GateConfig& gate,
                                 PendingSlot& slot, Stream stream) {
  boost::system::error_code ec;
  beast::flat_buffer buffer;
  http::request_parser<http::empty_body> parser;
  parser.header_limit(kMaxHeaderBytes);
  co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    spdlog::debug("exec: bad HTTP request: {}", ec.message());
    co_return;
  }
  auto request = parser.release();
  auto verdict = judge_request(request, gate);
  if (!verdict && context->shutting_down)
    verdict = GateAnswer{http::status::service_unavailable, "server is shutting down"};
  if (!verdict && context->connections.size() >= context->options.max_connections)
    verdict = GateAnswer{http::status::service_unavailable, "too many connections"};
  if (verdict) {
    if (verdict->status != http::status::ok)
      context->refusals.log(fmt::format("exec: refused {} {}: {} {}", request.method_string(),
                                        loggable_target(request.target()),
                                        static_cast<unsigned>(verdict->status), verdict->body));
    co_await send_answer(stream, request.version(), *verdict);
    co_return;
  }

  beast::websocket::stream<Stream> ws(std::move(stream));
  ws.set_option(beast::websocket::stream_base::decorator([](beast::websocket::response_type& res) {
    res.set(http::field::server, "tether-exec-server");
  }));
  ws.read_message_max(context->options.max_message_bytes);
  co_await ws.async_accept(request, asio::redirect_error(asio::use_awaitable, ec));
  slot.release();
  if (ec) {
    spdlog::debug("exec: WebSocket handshake failed: {}", ec.message());
    co_return;
  }
  jsonrpc::WebSocketLimits limits;
  limits.max_message_bytes = context->options.max_message_bytes;
  limits.idle_timeout = context->options.idle_timeout;
  auto connection = std::make_shared<Connection>(
      context, jsonrpc::make_websocket_transport(std::move(ws), limits));
  co_await connection->run();
}

asio::awaitable<void> serve_socket(std::shared_ptr<ServerContext> context, const GateConfig& gate,
                                   asio::ssl::context* tls, asio::ip::tcp::socket socket,
                                   PendingSlot slot) {
  boost::system::error_code ec;
  socket.set_option(asio::ip::tcp::no_delay(true), ec);  // latency over batching: one frame each
  beast::tcp_stream tcp(std::move(socket));
  tcp.expires_after(kHttpRequestTimeout);  // covers the TLS handshake and the request
  if (!tls) {
    co_await serve_http(std::move(context), gate, slot, std::move(tcp));
    co_return;
  }
  beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp), *tls);
  co_await stream.async_handshake(asio::ssl::stream_base::server,
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    spdlog::debug("exec: TLS handshake failed: {}", ec.message());
    co_return;
  }
  co_await serve_http(std::move(context), gate, slot, std::move(stream));
}

asio::awaitable<void> accept_loop(std::shared_ptr<ServerContext> context, const GateConfig& gate,
                                  asio::ssl::context* tls, asio::ip::tcp::acceptor& acceptor) {
  asio::steady_timer backoff_timer(context->executor);
  auto backoff = kAcceptBackoffFirst;
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // At the descriptor limit (EMFILE, ENFILE) the connection stays queued and accept fails
      // again at once: wait, longer each time, for descriptors to be freed instead of spinning.
      context->accept_failures.log(fmt::format("exec: accept failed: {}", ec.message()));
      backoff_timer.expires_after(backoff);
      co_await backoff_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      backoff = std::min(backoff * 2, kAcceptBackoffMax);
      continue;
    }
    backoff = kAcceptBackoffFirst;
    if (context->pending_connections >= context->options.max_pending_connections) {
      context->refusals.log(fmt::format(
          "exec: closed a new connection: {} connections have not completed the upgrade yet",
          context->pending_connections));
      continue;  // the socket closes here
    }
    // The slot is taken now, not when the coroutine starts, so a burst cannot overshoot.
    asio::co_spawn(context->executor,
                   serve_socket(context, gate, tls, std::move(socket), PendingSlot(context)),
                   asio::detached);
  }
}

// Ends every session (process groups get SIGTERM, then SIGKILL after the grace) and returns once
// every process has closed and every connection is gone, or the grace is over.
asio::awaitable<void> drain(std::shared_ptr<ServerContext> context) {
  context->shutting_down = true;
  for (auto* connection : std::vector(context->connections.begin(), context->connections.end()))
    connection->go_away();
  context->sessions.end_all();
  asio::steady_timer deadline(context->executor,
                              context->options.kill_grace + std::chrono::milliseconds(1500));
  bool expired = false;
  while (!expired && (context->live_processes > 0 || !context->connections.empty())) {
    boost::system::error_code ec;
    auto which = co_await (context->changed.wait() ||
                           deadline.async_wait(asio::redirect_error(asio::use_awaitable, ec)));
    expired = which.index() == 1;
  }
}

asio::awaitable<void> serve_stdio(std::shared_ptr<ServerContext> context) {
  asio::posix::stream_descriptor input(context->executor, ::dup(STDIN_FILENO));
  asio::posix::stream_descriptor output(context->executor, ::dup(STDOUT_FILENO));
  auto connection = std::make_shared<Connection>(
      context, jsonrpc::make_line_transport(std::move(input), std::move(output),
                                            context->options.max_message_bytes));
  co_await connection->run();
}

boost::system::result<void, StartupError> check_security(const ServerOptions& options,
                                                         const SocketListen& listen) {
  const bool loopback = listen.endpoint.address().is_loopback();
  if (options.insecure_no_auth && !loopback)
    return StartupError{"--insecure-no-auth is only allowed on a loopback address"};
  if (!loopback && !options.allow_non_loopback) {
    return StartupError{
        fmt::format("refusing to listen on non-loopback address {} without --allow-non-loopback",
                    listen.endpoint.address().to_string())};
  }
  if (listen.tls != (options.tls_cert && options.tls_key)) {
    return StartupError{listen.tls ? "wss:// needs --tls-cert and --tls-key"
                                   : "--tls-cert and --tls-key go with a wss:// --listen URL"};
  }
  return {};
}

boost::system::result<std::unique_ptr<asio::ssl::context>, StartupError> make_tls_context(
    const ServerOptions& options) {
  auto tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  tls->use_certificate_chain_file(*options.tls_cert, ec);
  if (ec) {
    return StartupError{
        fmt::format("cannot load --tls-cert {}: {}", *options.tls_cert, ec.message())};
  }
  tls->use_private_key_file(*options.tls_key, asio::ssl::context::pem, ec);
  if (ec) {
    return StartupError{
        fmt::format("cannot load --tls-key {}: {}", *options.tls_key, ec.message())};
  }
  return tls;
}

}  // namespace

int run_server(const ServerOptions& options) {
  std::signal(SIGPIPE, SIG_IGN);
  auto fail = [](const std::string& message) {
    fmt::print(stderr, "tether exec-server: {}\n", message);
    return 2;
  };
  auto listen = parse_listen(options.listen);
  if (!listen) return fail(listen.error().message);

  asio::io_context io(1);
  auto context = std::make_shared<ServerContext>(options, io.get_executor());
  asio::signal_set signals(io, SIGINT, SIGTERM);
  Auth auth;
  std::optional<asio::ip::tcp::acceptor> acceptor;
  std::unique_ptr<asio::ssl::context> tls;
  GateConfig gate;

  if (const auto* socket_listen = std::get_if<SocketListen>(&*listen)) {
    if (auto ok = check_security(options, *socket_listen); !ok) return fail(ok.error().message);
    if (socket_listen->tls) {
      auto made = make_tls_context(options);
      if (!made) return fail(made.error().message);
      tls = std::move(*made);
    }
    auto loaded = load_auth(options);
    if (!loaded) return fail(loaded.error().message);
    auth = std::move(*loaded);
    gate.token_digest = auth.digest;
    gate.allowed_hosts = options.allowed_hosts;
    boost::system::error_code ec;
    acceptor.emplace(io);
    acceptor->open(socket_listen->endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(socket_listen->endpoint, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return fail(fmt::format("cannot listen on {}: {}", options.listen, ec.message()));
    }
    const auto bound = acceptor->local_endpoint();
    const auto host = bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                              : bound.address().to_string();
    const auto url = fmt::format("{}://{}:{}", tls ? "wss" : "ws", host, bound.port());
    fmt::print("{}\n", url);
    std::fflush(stdout);
    spdlog::info("exec-server: listening on {}{}", url, auth.digest ? "" : " (no auth)");
    spdlog::info("exec-server: processes get {}", process::containment());
    asio::co_spawn(io, accept_loop(context, gate, tls.get(), *acceptor), asio::detached);
  } else {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await serve_stdio(context);
          signals.cancel();
          co_await drain(context);
          io.stop();
        },
        asio::detached);
  }

  signals.async_wait([&](boost::system::error_code ec, int signal) {
    if (ec) return;
    spdlog::info("exec-server: signal {} received, shutting down", signal);
    if (acceptor) acceptor->close(ec);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await drain(context);
          io.stop();
        },
        asio::detached);
  });

  io.run();
  if (!auth.generated_dir.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(auth.generated_dir, ignored);
  }
  return 0;
}

}  // namespace tether::exec
