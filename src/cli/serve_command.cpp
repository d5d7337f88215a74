// `tether mcp serve`: every configured server as one MCP server (docs/gateway.md).
//
// Owns: the serve command's options and its run: the config loaded, the gateway started, and
// MCP served on stdin/stdout (one session) or on streamable HTTP (the endpoint URL is the first
// stdout line); the HTTP rules checked before listening (loopback unless allowed, auth on unless
// loopback and refused on purpose, the token's source); and the end: stdin EOF (stdio), SIGTERM,
// SIGINT or the death of the parent process end every server (both placements, whole process
// groups) before exit 0.
// The config's optional [gateway] table gives defaults for the options not given.
// Exit codes: 0 after an orderly end, 2 usage or config error, 3 a required server failed.
// Does not own: aggregation (gateway), sessions and transports (mcp_server), server life cycles
// (host).
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <sys/prctl.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "output.hpp"
#include <tether/gateway/gateway.hpp>
#include <tether/jsonrpc/async_signal.hpp>
#include <tether/jsonrpc/http_auth.hpp>
#include <tether/mcp_server/http.hpp>
#include <tether/mcp_server/peer_session.hpp>

namespace tether::cli {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr int kOk = 0;
constexpr int kUsage = 2;
constexpr int kServerFailed = 3;
// The largest message a client may send on stdin.
constexpr std::size_t kMaxMessageBytes = std::size_t{64} << 20;

struct ServeArgs {
  std::string listen = "stdio";
  std::string names = "prefixed";
  std::optional<std::string> token_file;
  bool insecure_no_auth = false;
  bool allow_non_loopback = false;
  std::vector<std::string> allowed_hosts;
  std::vector<std::string> allowed_origins;
  bool isolate_sessions = false;
  std::size_t max_sessions = 64;
};

jsonrpc::Error usage(std::string message) {
  return jsonrpc::make_error(jsonrpc::code::kInvalidParams, std::move(message));
}

// `http://IP:PORT` (an IP literal; port 0 picks one), the path empty or `/mcp`.
jsonrpc::Expected<tcp::endpoint> parse_http_listen(const std::string& text) {
  auto bad = usage(fmt::format(
      "unsupported --listen '{}'; expected stdio or http://IP:PORT (e.g. http://127.0.0.1:0)",
      text));
  auto url = boost::urls::parse_uri(text);
  if (!url || url->scheme() != "http" || !url->has_port()) return bad;
  if (!url->encoded_path().empty() && url->encoded_path() != "/" && url->encoded_path() != "/mcp")
    return bad;
  if (url->host_type() == boost::urls::host_type::ipv4)
    return tcp::endpoint(asio::ip::make_address_v4(url->host_ipv4_address().to_bytes()),
                         url->port_number());
  if (url->host_type() == boost::urls::host_type::ipv6)
    return tcp::endpoint(asio::ip::make_address_v6(url->host_ipv6_address().to_bytes()),
                         url->port_number());
  return bad;
}

// Non-loopback only when allowed and never without auth; the token from --token-file, else
// TETHER_GATEWAY_TOKEN, else a generated one whose file's path goes to stderr.
jsonrpc::Expected<jsonrpc::BearerAuth> http_auth(const ServeArgs& args,
                                                 const tcp::endpoint& endpoint) {
  const bool loopback = endpoint.address().is_loopback();
  if (!loopback && !args.allow_non_loopback)
    return usage(
        fmt::format("refusing to listen on non-loopback address {} without --allow-non-loopback",
                    endpoint.address().to_string()));
  if (args.insecure_no_auth && !loopback)
    return usage("--insecure-no-auth is only allowed on a loopback address");
  if (args.insecure_no_auth) return jsonrpc::BearerAuth{};
  jsonrpc::TokenSources sources;
  sources.file = args.token_file;
  sources.env_var = "TETHER_GATEWAY_TOKEN";
  sources.program = "tether mcp serve";
  sources.generated_prefix = "tether-gateway";
  return jsonrpc::resolve_bearer(sources);
}

// One run of the gateway: serves until stop() (a signal, the parent's death, or stdin EOF for
// stdio), then ends every server before io.run() returns.
class GatewayRun {
 public:
  GatewayRun(asio::io_context& io, host::Config config, gateway::GatewayOptions options)
      : io_(io),
        config_(std::move(config)),
        options_(std::move(options)),
        stopping_(io.get_executor()),
        ended_(io.get_executor()) {}

  void stop() {
    stop_requested_ = true;
    stopping_.notify_all();
  }
  int exit_code() const { return exit_code_; }

  // stdio: one session on stdin/stdout, with the shared gateway.
  static asio::awaitable<void> serve_stdio(GatewayRun* self) {
    auto executor = self->io_.get_executor();
    auto gateway = self->open_gateway(true);
    auto transport = jsonrpc::make_line_transport(
        asio::posix::stream_descriptor(executor, ::dup(STDIN_FILENO)),
        asio::posix::stream_descriptor(executor, ::dup(STDOUT_FILENO)), kMaxMessageBytes);
    self->stdio_.emplace(executor, gateway, std::move(transport));
    asio::co_spawn(executor, read_stdin(self), asio::detached);
    co_await self->wait_stop();
    self->stdio_->close();
    co_await self->end_gateways();
  }

  // HTTP: the endpoint URL on stdout, then sessions until stop().
  static asio::awaitable<void> serve_http(GatewayRun* self,
                                          std::shared_ptr<mcp_server::HttpServer> server,
                                          std::string url) {
    std::fputs((url + "\n").c_str(), stdout);
    std::fflush(stdout);
    spdlog::info("gateway: serving MCP on {}", url);
    server->start();
    co_await self->wait_stop();
    server->stop();
    co_await self->end_gateways();
  }

  // The gateway a session gets: the shared one, or with --isolate-sessions its own.
  std::shared_ptr<gateway::Gateway> open_gateway(bool shared) {
    if (shared && shared_) return shared_;
    auto gateway = gateway::Gateway::create(io_.get_executor(), config_, options_);
    if (shared) shared_ = gateway;
    ++gateways_;
    asio::co_spawn(io_.get_executor(), start(this, gateway, shared), asio::detached);
    return gateway;
  }

  void close_gateway(std::shared_ptr<gateway::Gateway> gateway) {
    asio::co_spawn(io_.get_executor(), end(this, std::move(gateway)), asio::detached);
  }

  // /readyz: every required server of the shared gateway is ready (isolated sessions start
  // theirs on demand: nothing to wait for).
  bool ready() const {
    if (!shared_) return true;
    if (!started_) return false;
    for (const auto& server : shared_->servers())
      if (server.required && server.state != host::ServerState::ready) return false;
    return true;
  }

 private:
  static asio::awaitable<void> read_stdin(GatewayRun* self) {
    co_await self->stdio_->run();
    spdlog::info("gateway: the MCP client closed stdin; shutting down");
    self->stop();
  }

  static asio::awaitable<void> start(GatewayRun* self, std::shared_ptr<gateway::Gateway> gateway,
                                     bool shared) {
    auto started = co_await gateway->start();
    if (shared) self->started_ = true;
    if (started || self->stop_requested_) co_return;
    print_error(started.error().message);
    if (!shared) co_return;  // an isolated session lists what did start
    self->exit_code_ = kServerFailed;
    self->stop();
  }

  static asio::awaitable<void> end(GatewayRun* self, std::shared_ptr<gateway::Gateway> gateway) {
    co_await gateway->shutdown();
    --self->gateways_;
    self->ended_.notify_all();
  }

  asio::awaitable<void> wait_stop() {
    while (!stop_requested_) co_await stopping_.wait();
  }

  asio::awaitable<void> end_gateways() {
    if (auto shared = std::move(shared_)) close_gateway(std::move(shared));
    while (gateways_ > 0) co_await ended_.wait();
    io_.stop();
  }

  asio::io_context& io_;
  host::Config config_;
  gateway::GatewayOptions options_;
  std::shared_ptr<gateway::Gateway> shared_;
  std::optional<mcp_server::PeerSession> stdio_;
  int gateways_ = 0;  // created and not yet shut down
  bool started_ = false;
  jsonrpc::AsyncSignal stopping_;
  jsonrpc::AsyncSignal ended_;
  bool stop_requested_ = false;
  int exit_code_ = kOk;
};

int fail(int code, const jsonrpc::Error& error) {
  print_error(error.message);
  return code;
}

// The options given on the command line; the config's [gateway] table fills the others.
struct Given {
  CLI::Option* listen;
  CLI::Option* names;
  CLI::Option* token_file;
  CLI::Option* allowed_hosts;
  CLI::Option* allowed_origins;
  CLI::Option* isolate_sessions;
};

void apply_config(const host::GatewayConfig& config, const Given& given, ServeArgs& args) {
  auto fill = [](CLI::Option* option, auto& value, const auto& from_config) {
    if (option->count() == 0 && from_config) value = *from_config;
  };
  fill(given.listen, args.listen, config.listen);
  fill(given.names, args.names, config.names);
  fill(given.allowed_hosts, args.allowed_hosts, config.allow_hosts);
  fill(given.allowed_origins, args.allowed_origins, config.allow_origins);
  fill(given.isolate_sessions, args.isolate_sessions, config.isolate_sessions);
  if (given.token_file->count() == 0 && config.token_file) args.token_file = config.token_file;
}

int run_serve(ServeArgs args, const Given& given, const std::string& config_option) {
  auto config = load_mcp_config(config_option);
  if (!config) return fail(kUsage, config.error());
  apply_config(config->gateway, given, args);
  auto names = gateway::parse_names(args.names);
  if (!names) return fail(kUsage, names.error());
  std::optional<tcp::endpoint> endpoint;
  if (args.listen != "stdio") {
    auto parsed = parse_http_listen(args.listen);
    if (!parsed) return fail(kUsage, parsed.error());
    endpoint = *parsed;
  } else if (args.isolate_sessions) {
    return fail(kUsage, usage("--isolate-sessions needs --listen http://..."));
  }
  jsonrpc::BearerAuth auth;
  if (endpoint) {
    auto checked = http_auth(args, *endpoint);
    if (!checked) return fail(kUsage, checked.error());
    auth = std::move(*checked);
  }
  struct RemoveGenerated {
    std::string dir;
    ~RemoveGenerated() {
      std::error_code ignored;
      if (!dir.empty()) std::filesystem::remove_all(dir, ignored);
    }
  } remove_generated{auth.generated_dir};

  // The parent's death ends the gateway like SIGTERM; a parent already gone ends it now.
  const pid_t parent = ::getppid();
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) return kOk;

  asio::io_context io(1);
  gateway::GatewayOptions options;
  options.names = *names;
  options.metrics = std::make_shared<gateway::Metrics>();
  auto metrics = options.metrics;
  options.manager.on_status = [](const host::ServerStatus& status) {
    if (status.state == host::ServerState::failed)
      spdlog::warn("MCP server '{}' failed: {}", status.server, status.error);
  };
  GatewayRun run(io, std::move(*config), std::move(options));
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&run](boost::system::error_code ec, int signal) {
    if (ec) return;
    spdlog::info("gateway: signal {} received, shutting down", signal);
    run.stop();
  });

  if (!endpoint) {
    asio::co_spawn(io, GatewayRun::serve_stdio(&run), asio::detached);
  } else {
    mcp_server::HttpServerOptions http;
    http.token_digest = auth.digest;
    http.allowed_hosts = args.allowed_hosts;
    http.allowed_origins = args.allowed_origins;
    http.max_sessions = args.max_sessions;
    const bool isolated = args.isolate_sessions;
    http.open_service = [&run, isolated] { return run.open_gateway(!isolated); };
    if (isolated)
      http.close_service = [&run](std::shared_ptr<mcp_server::Service> service) {
        run.close_gateway(std::static_pointer_cast<gateway::Gateway>(std::move(service)));
      };
    else
      http.stateless_service = [&run] { return run.open_gateway(true); };
    http.ready = [&run] { return run.ready(); };
    http.metrics = [metrics] { return metrics->render(); };
    auto server = mcp_server::HttpServer::listen(io.get_executor(), *endpoint, std::move(http));
    if (!server) return fail(kUsage, server.error());
    (*server)->on_sessions_changed(
        [metrics, raw = server->get()] { metrics->set_sessions(raw->sessions()); });
    const auto bound = (*server)->local_endpoint();
    const auto host = bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                              : bound.address().to_string();
    if (!isolated) run.open_gateway(true);
    asio::co_spawn(
        io,
        GatewayRun::serve_http(&run, *server, fmt::format("http://{}:{}/mcp", host, bound.port())),
        asio::detached);
  }
  io.run();
  return run.exit_code();
}

}  // namespace

Run add_serve_command(CLI::App& mcp, const std::string& config_option) {
  auto* serve = mcp.add_subcommand("serve", "serve every configured server as one MCP server");
  serve->fallthrough();  // mcp's --config after `serve`
  auto args = std::make_shared<ServeArgs>();
  Given given{};
  given.listen = serve->add_option(
      "--listen", args->listen,
      "stdio (default) or http://IP:PORT (streamable HTTP at /mcp; port 0 picks one)");
  given.names = serve->add_option("--names", args->names,
                                  "tool and prompt names: prefixed (<server>__<tool>, default), "
                                  "qualified (mcp__<server>__<tool>) or raw");
  given.token_file = serve->add_option("--token-file", args->token_file,
                                       "HTTP: file holding the bearer token clients must send "
                                       "(else TETHER_GATEWAY_TOKEN, else a generated one)");
  serve->add_flag("--insecure-no-auth", args->insecure_no_auth,
                  "HTTP: accept clients without a token (loopback addresses only)");
  serve->add_flag("--allow-non-loopback", args->allow_non_loopback,
                  "HTTP: allow a non-loopback listen address (auth stays on)");
  given.allowed_hosts =
      serve
          ->add_option("--allow-host", args->allowed_hosts,
                       "HTTP: a Host header name to accept besides IP literals and localhost")
          ->allow_extra_args(false);
  given.allowed_origins = serve
                              ->add_option("--allow-origin", args->allowed_origins,
                                           "HTTP: a browser Origin to accept (others get 403)")
                              ->allow_extra_args(false);
  given.isolate_sessions =
      serve->add_flag("--isolate-sessions", args->isolate_sessions,
                      "HTTP: each session gets its own servers, ended with the session");
  serve->add_option("--max-sessions", args->max_sessions, "HTTP: open sessions (default 64)")
      ->check(CLI::PositiveNumber);
  return [args, given, &config_option] { return run_serve(*args, given, config_option); };
}

}  // namespace tether::cli
