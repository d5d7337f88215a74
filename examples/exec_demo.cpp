// `make run` until the MCP host exists: start a private executor on loopback (the embedded
// default: tether spawns `tether exec-server` with a fresh token), then drive it with the
// project's own JSON-RPC client code: start a process, stream its output, write to its stdin,
// terminate it. Everything it starts is ended before it exits.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>
#include <openssl/rand.h>

#include <tether/exec/base64.hpp>
#include <tether/jsonrpc/peer.hpp>
#include <tether/process/child.hpp>

extern char** environ;

namespace {
namespace asio = boost::asio;
namespace json = boost::json;
using namespace tether;

std::string random_token() {
  unsigned char raw[32];
  RAND_bytes(raw, sizeof raw);
  std::string hex;
  for (unsigned char b : raw) hex += fmt::format("{:02x}", b);
  return hex;
}

void say(std::string_view what) {
  static const bool styled = ::isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR");
  fmt::print(fmt::runtime(styled ? "\033[1m==>\033[0m {}\n" : "==> {}\n"), what);
}

// Request params are built outside coroutines: GCC 12 miscompiles braced JSON literals there.
json::value initialize_params() {
  return json::object{{"clientName", "tether-demo"}, {"resumeSessionId", nullptr}};
}

json::value start_params() {
  return json::object{
      {"processId", "demo-1"},
      {"argv", json::array{"/bin/sh", "-c",
                           "for i in 1 2 3; do echo \"tick $i from pid $$\"; sleep 0.2; done; "
                           "IFS= read -r line; echo \"stdin said: $line\"; exec sleep 300"}},
      {"cwd", "/"},
      {"env", json::object{{"PATH", "/usr/bin:/bin"}}},
      {"tty", false},
      {"pipeStdin", true},
      {"arg0", nullptr}};
}

json::value write_params(std::string_view bytes) {
  return json::object{
      {"processId", "demo-1"}, {"chunk", exec::base64_encode(bytes)}, {"writeId", "1"}};
}

json::value process_params() {
  return json::object{{"processId", "demo-1"}};
}

asio::awaitable<json::value> call(jsonrpc::Peer& peer, std::string method, json::value params) {
  auto reply = co_await peer.call(method, std::move(params), std::chrono::seconds(10));
  if (!reply) throw std::runtime_error(method + " failed: " + reply.error().message);
  co_return std::move(*reply);
}

asio::awaitable<int> demo(std::string executable) {
  auto executor = co_await asio::this_coro::executor;
  const std::string token = random_token();

  say("starting a private executor on loopback: tether exec-server --listen ws://127.0.0.1:0");
  process::SpawnOptions spawn;
  spawn.argv = {executable, "--log-level", "warn", "exec-server", "--listen", "ws://127.0.0.1:0"};
  for (char** e = environ; *e; ++e) spawn.env.emplace_back(*e);
  spawn.env.push_back("TETHER_EXEC_SERVER_TOKEN=" + token);
  spawn.stdin_mode = process::StdinMode::closed;
  auto server = process::Child::spawn(executor, spawn);
  if (!server) throw std::runtime_error(server.error().message);
  asio::streambuf line;
  co_await asio::async_read_until(*(*server)->stdout_stream(), line, '\n', asio::use_awaitable);
  std::string url;
  std::getline(std::istream(&line) >> std::ws, url);
  say("executor listening at " + url + " (bearer token required)");

  jsonrpc::ConnectOptions connect;
  connect.headers.emplace_back("Authorization", "Bearer " + token);
  auto transport = co_await jsonrpc::connect_websocket(url, connect);
  if (!transport) throw std::runtime_error("cannot connect: " + transport.error().message());
  auto peer = jsonrpc::Peer::create(executor, std::move(*transport), {});
  asio::steady_timer closed_signal(executor, std::chrono::steady_clock::time_point::max());
  peer->on_notification([&](const jsonrpc::Notification& n) {
    const auto& p = n.params.as_object();
    if (n.method == "process/output") {
      auto bytes = exec::base64_decode(p.at("chunk").as_string()).value_or("");
      fmt::print("    [seq {} {}] {}", p.at("seq").as_int64(),
                 std::string_view(p.at("stream").as_string()), bytes);
    } else if (n.method == "process/exited") {
      fmt::print("    [seq {}] exited with code {}\n", p.at("seq").as_int64(),
                 p.at("exitCode").as_int64());
    } else if (n.method == "process/closed") {
      fmt::print("    [seq {}] closed\n", p.at("seq").as_int64());
      closed_signal.cancel();
    }
    std::fflush(stdout);
  });
  asio::co_spawn(
      executor, [peer]() -> asio::awaitable<void> { co_await peer->run(); }, asio::detached);

  auto init = co_await call(*peer, "initialize", initialize_params());
  peer->notify("initialized", json::object());
  const auto& info = init.at("environmentInfo").as_object();
  say(fmt::format("session {} on {} (executor {}, cwd {})",
                  std::string_view(init.at("sessionId").as_string()),
                  std::string_view(info.at("platformOs").as_string()),
                  std::string_view(info.at("executorVersion").as_string()),
                  std::string_view(info.at("cwd").as_string())));

  say("process/start demo-1: a script that ticks, then echoes one line of stdin, then waits");
  co_await call(*peer, "process/start", start_params());

  asio::steady_timer pause(executor, std::chrono::milliseconds(800));
  co_await pause.async_wait(asio::use_awaitable);
  say("process/write: \"hello from tether\\n\"");
  auto status = co_await call(*peer, "process/write", write_params("hello from tether\n"));
  fmt::print("    write status: {}\n", std::string_view(status.at("status").as_string()));

  pause.expires_after(std::chrono::milliseconds(300));
  co_await pause.async_wait(asio::use_awaitable);
  say("process/terminate demo-1 (SIGTERM to its process group)");
  auto terminated = co_await call(*peer, "process/terminate", process_params());
  fmt::print("    running: {}\n", terminated.at("running").as_bool());
  boost::system::error_code ignored;
  closed_signal.expires_after(std::chrono::seconds(10));
  co_await closed_signal.async_wait(asio::redirect_error(asio::use_awaitable, ignored));

  say("closing the connection (code 1000) and stopping the executor");
  peer->close(jsonrpc::close_code::kNormal);
  (*server)->signal_group(SIGTERM);
  auto exit = co_await (*server)->wait();
  say(fmt::format("executor exited with code {}; nothing left running", exit.code));
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
