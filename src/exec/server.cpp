// run_server: the startup checks (server_setup.hpp), then the listener (listener.hpp) or the
// one stdio connection, and the shutdown sequence. Everything runs on one I/O thread; fs/* work
// is the only thing sent to other threads (ServerContext::blocking_pool).
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "connection.hpp"
#include "listener.hpp"
#include "server_setup.hpp"
#include <tether/exec/server.hpp>
#include <tether/process/containment.hpp>

namespace tether::exec {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

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
  auto connection =
      std::make_shared<Connection>(context,
                                   jsonrpc::make_line_transport(std::move(input), std::move(output),
                                                                context->options.max_message_bytes),
                                   "stdio");
  co_await connection->run();
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
