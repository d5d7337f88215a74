// `make run` until the MCP host exists: open the embedded default environment (tether spawns a
// private `tether exec-server` on loopback with a fresh token) and drive it through the process
// API the MCP code uses: start a process, stream its events, write to its stdin, terminate it,
// close the environment. Everything it starts is ended before it exits.
#include <csignal>
#include <cstdio>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <tether/host/environment.hpp>

namespace {
namespace asio = boost::asio;
using namespace tether;

void say(std::string_view what) {
  static const bool styled = ::isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR");
  fmt::print(fmt::runtime(styled ? "\033[1m==>\033[0m {}\n" : "==> {}\n"), what);
  std::fflush(stdout);
}

template <class T>
T checked(exec::Expected<T> value, std::string_view what) {
  if (!value) throw std::runtime_error(fmt::format("{}: {}", what, value.error().message));
  return std::move(*value);
}

exec::StartParams demo_process() {
  exec::StartParams params;
  params.process_id = "demo-1";
  params.argv = {"/bin/sh", "-c",
                 "for i in 1 2 3; do echo \"tick $i from pid $$\"; sleep 0.2; done; "
                 "IFS= read -r line; echo \"stdin said: $line\"; exec sleep 300"};
  params.cwd = "/";
  params.env = {{"PATH", "/usr/bin:/bin"}};
  params.pipe_stdin = true;
  return params;
}

// Prints every event until the process closes, then raises `done`.
asio::awaitable<void> print_events(std::shared_ptr<exec::Subscription> events,
                                   std::shared_ptr<asio::steady_timer> done) {
  for (;;) {
    auto event = co_await events->next();
    if (!event) {
      done->cancel();
      co_return;
    }
    if (const auto* output = std::get_if<exec::OutputEvent>(&*event)) {
      fmt::print("    [seq {} {}] {}", output->seq, output->stream, output->bytes);
    } else if (const auto* exited = std::get_if<exec::ExitedEvent>(&*event)) {
      fmt::print("    [seq {}] exited with code {}\n", exited->seq, exited->exit_code);
    } else if (const auto* closed = std::get_if<exec::ClosedEvent>(&*event)) {
      fmt::print("    [seq {}] closed\n", closed->seq);
    } else {
      fmt::print("    failed: {}\n", std::get<exec::FailedEvent>(*event).message);
    }
    std::fflush(stdout);
  }
}

asio::awaitable<void> pause(std::chrono::milliseconds duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(asio::use_awaitable);
}

asio::awaitable<int> demo(std::string executable) {
  auto executor = co_await asio::this_coro::executor;
  say("opening the default environment: a private tether exec-server on ws://127.0.0.1:0");
  host::EnvironmentOptions options;
  options.client.client_name = "tether-demo";
  auto environment = host::Environment::create(executor, "default",
                                               host::SpawnedExecutor{executable, {}}, options);
  auto client = checked(co_await environment->client(), "connecting");
  const auto& info = client->initial_environment_info();
  say(fmt::format("session {} (executor {}, cwd {})", client->session_id(),
                  info.contains("executorVersion")
                      ? std::string(info.at("executorVersion").as_string())
                      : std::string("?"),
                  client->default_cwd()));

  say("start demo-1: a script that ticks, then echoes one line of stdin, then waits");
  auto starter = checked(co_await environment->starter(), "connecting");
  auto process = checked(co_await starter->start(demo_process()), "process/start");
  auto printed = std::make_shared<asio::steady_timer>(executor, std::chrono::seconds(30));
  asio::co_spawn(executor, print_events(process->subscribe(), printed), asio::detached);

  co_await pause(std::chrono::milliseconds(800));
  say("write \"hello from tether\\n\"");
  auto status = checked(co_await process->write("hello from tether\n"), "process/write");
  fmt::print("    write status: {}\n", exec::to_string(status));

  co_await pause(std::chrono::milliseconds(300));
  say("terminate demo-1 (SIGTERM to its process group)");
  const bool running = checked(co_await process->terminate(), "process/terminate");
  fmt::print("    was running: {}\n", running);
  boost::system::error_code ignored;
  co_await printed->async_wait(asio::redirect_error(asio::use_awaitable, ignored));

  say("closing the environment (close 1000, executor stopped)");
  co_await environment->close();
  say("nothing left running");
  co_return 0;
}

std::string tether_executable(const char* argv0) {
  // The demo sits next to the tether binary in the build tree (build/examples, build/src/cli).
  std::string self = argv0;
  const auto slash = self.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : self.substr(0, slash);
  return dir + "/../src/cli/tether";
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  spdlog::set_level(spdlog::level::warn);
  const std::string executable = argc > 1 ? argv[1] : tether_executable(argv[0]);
  asio::io_context io;
  int rc = 1;
  asio::co_spawn(io, demo(executable), [&](std::exception_ptr e, int code) {
    rc = code;
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        fmt::print(stderr, "demo failed: {}\n", ex.what());
        rc = 1;
      }
    }
  });
  io.run();
  return rc;
}
