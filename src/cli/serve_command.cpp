// `tether mcp serve`: every configured server as one MCP server (docs/gateway.md).
//
// Owns: the serve command's options and its run: the config loaded, the gateway started, one
// MCP session on stdin/stdout, and the end: stdin EOF, SIGTERM, SIGINT or the death of the
// parent process all end every server (both placements, whole process groups) before exit 0.
// Exit codes: 0 after an orderly end, 2 usage or config error, 3 a required server failed.
// Does not own: aggregation (gateway), sessions (mcp_server), server life cycles (host).
#include <csignal>
#include <sys/prctl.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "output.hpp"
#include <tether/gateway/gateway.hpp>
#include <tether/jsonrpc/async_signal.hpp>
#include <tether/mcp_server/peer_session.hpp>

namespace tether::cli {
namespace {

namespace asio = boost::asio;

constexpr int kOk = 0;
constexpr int kUsage = 2;
constexpr int kServerFailed = 3;
// The largest message a client may send on stdin.
constexpr std::size_t kMaxMessageBytes = std::size_t{64} << 20;

struct ServeArgs {
  std::string listen = "stdio";
  std::string names = "prefixed";
};

// One run of the gateway on stdio: ends once stop() was called (or the client left) and every
// server is gone.
class StdioGateway {
 public:
  StdioGateway(asio::io_context& io, std::shared_ptr<gateway::Gateway> gateway)
      : io_(io), gateway_(std::move(gateway)), stopping_(io.get_executor()) {}

  void stop() {
    stop_requested_ = true;
    stopping_.notify_all();
  }
  int exit_code() const { return exit_code_; }

  static asio::awaitable<void> run(StdioGateway* self) {
    auto executor = self->io_.get_executor();
    auto transport = jsonrpc::make_line_transport(
        asio::posix::stream_descriptor(executor, ::dup(STDIN_FILENO)),
        asio::posix::stream_descriptor(executor, ::dup(STDOUT_FILENO)), kMaxMessageBytes);
    self->session_.emplace(executor, self->gateway_, std::move(transport));
    asio::co_spawn(executor, serve(self), asio::detached);
    asio::co_spawn(executor, start(self), asio::detached);
    while (!self->stop_requested_) co_await self->stopping_.wait();
    self->session_->close();
    co_await self->gateway_->shutdown();
    self->io_.stop();
  }

 private:
  static asio::awaitable<void> serve(StdioGateway* self) {
    co_await self->session_->run();
    spdlog::info("gateway: the MCP client closed stdin; shutting down");
    self->stop();
  }

  static asio::awaitable<void> start(StdioGateway* self) {
    auto started = co_await self->gateway_->start();
    if (started || self->stop_requested_) co_return;
    print_error(started.error().message);
    self->exit_code_ = kServerFailed;
    self->stop();
  }

  asio::io_context& io_;
  std::shared_ptr<gateway::Gateway> gateway_;
  std::optional<mcp_server::PeerSession> session_;
  jsonrpc::AsyncSignal stopping_;
  bool stop_requested_ = false;
  int exit_code_ = kOk;
};

int run_serve(const ServeArgs& args, const std::string& config_option) {
  auto names = gateway::parse_names(args.names);
  if (!names) {
    print_error(names.error().message);
    return kUsage;
  }
  if (args.listen != "stdio") {
    print_error(fmt::format("--listen must be stdio, not '{}'", args.listen));
    return kUsage;
  }
  auto config = load_mcp_config(config_option);
  if (!config) {
    print_error(config.error().message);
    return kUsage;
  }

  // The parent's death ends the gateway like SIGTERM; a parent already gone ends it now.
  const pid_t parent = ::getppid();
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) return kOk;

  asio::io_context io(1);
  gateway::GatewayOptions options;
  options.names = *names;
  options.manager.on_status = [](const host::ServerStatus& status) {
    if (status.state == host::ServerState::failed)
      spdlog::warn("MCP server '{}' failed: {}", status.server, status.error);
  };
  auto gateway =
      gateway::Gateway::create(io.get_executor(), std::move(*config), std::move(options));
  StdioGateway run(io, gateway);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&run](boost::system::error_code ec, int signal) {
    if (ec) return;
    spdlog::info("gateway: signal {} received, shutting down", signal);
    run.stop();
  });
  asio::co_spawn(io, StdioGateway::run(&run), asio::detached);
  io.run();
  return run.exit_code();
}

}  // namespace

Run add_serve_command(CLI::App& mcp, const std::string& config_option) {
  auto* serve =
      mcp.add_subcommand("serve", "serve every configured server as one MCP server (stdio)");
  serve->fallthrough();  // mcp's --config and --json after `serve`
  auto args = std::make_shared<ServeArgs>();
  serve->add_option("--listen", args->listen, "stdio (default)");
  serve->add_option("--names", args->names,
                    "tool and prompt names: prefixed (<server>__<tool>, default), qualified "
                    "(mcp__<server>__<tool>) or raw");
  return [args, &config_option] { return run_serve(*args, config_option); };
}

}  // namespace tether::cli
