// host::Environment with real executors: local, URL (a test-started `tether exec-server`),
// spawned (tether starts its own loopback executor) and command (`tether exec-server --listen
// stdio`). Covers lazy shared connection, is_remote, closing on purpose, no process left behind
// by close or destruction, and a host killed with SIGKILL taking a spawned or command executor
// and its children down (the host is tether-test-host, a real separate process).
#include <csignal>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "build_paths.hpp"
#include "exec_server.hpp"
#include <tether/host/environment.hpp>
#include <tether/process/child.hpp>

namespace tether::host {
namespace {

namespace asio = boost::asio;
using testing::eventually;
using testing::processes_matching;
using testing::run_async;
using namespace std::chrono_literals;

constexpr auto kWait = 10s;

exec::StartParams sleeper(const std::string& id, const std::string& marker) {
  exec::StartParams params;
  params.process_id = id;
  params.argv = {"sleep", marker};
  params.env = {{"PATH", "/usr/bin:/bin"}};
  return params;
}

exec::StartParams echo(const std::string& id, const std::string& text) {
  exec::StartParams params;
  params.process_id = id;
  params.argv = {"printf", "%s", text};
  params.env = {{"PATH", "/usr/bin:/bin"}};
  return params;
}

// Collects stdout until closed/failed.
asio::awaitable<std::string> collect(std::shared_ptr<exec::Process> process) {
  auto subscription = process->subscribe();
  std::string out;
  for (;;) {
    auto event = co_await subscription->next();
    if (!event) break;
    if (const auto* output = std::get_if<exec::OutputEvent>(&*event)) out += output->bytes;
  }
  co_return out;
}

EnvironmentOptions spawn_options() {
  EnvironmentOptions options;
  options.client.client_name = "environment-test";
  return options;
}

SpawnedExecutor spawned_tether() {
  return SpawnedExecutor{testing::tether_binary(), {}};
}

TEST(Environment, LocalRunsProcessesHereAndIsNotRemote) {
  run_async([]() -> asio::awaitable<void> {
    // Not inside a call's arguments: GCC 12 mishandles temporaries in co_await expressions.
    auto ex = co_await asio::this_coro::executor;
    auto env = Environment::create(ex, "local", LocalPlacement{});
    EXPECT_FALSE(env->is_remote());
    auto starter = co_await env->starter();
    CO_ASSERT_TRUE(starter.has_value());
    auto process = co_await (*starter)->start(echo("p", "here"));
    CO_ASSERT_TRUE(process.has_value());
    EXPECT_EQ(co_await collect(*process), "here");
    auto client = co_await env->client();
    EXPECT_FALSE(client.has_value()) << "a local environment has no executor client";
    co_await env->close();
  });
}

TEST(Environment, UrlConnectsLazilyOnceAndSharesTheConnection) {
  testing::ExecServer server;
  run_async([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto env =
        Environment::create(ex, "remote", ExecutorUrl{server.url(), std::nullopt}, spawn_options());
    EXPECT_TRUE(env->is_remote());
    auto first = co_await env->client();
    auto second = co_await env->client();
    CO_ASSERT_TRUE(first.has_value());
    CO_ASSERT_TRUE(second.has_value());
    EXPECT_EQ(first->get(), second->get());
    auto starter = co_await env->starter();
    CO_ASSERT_TRUE(starter.has_value());
    auto process = co_await (*starter)->start(echo("p", "there"));
    CO_ASSERT_TRUE(process.has_value());
    EXPECT_EQ(co_await collect(*process), "there");
    co_await env->close();
    auto after = co_await env->starter();
    EXPECT_FALSE(after.has_value()) << "a closed environment starts nothing";
  });
}

TEST(Environment, UnreachableUrlFailsWithTheSpecText) {
  run_async([]() -> asio::awaitable<void> {
    // Not inside a call's arguments: GCC 12 mishandles temporaries in co_await expressions.
    auto ex = co_await asio::this_coro::executor;
    // A port nothing listens on: bind one, then close it.
    asio::ip::tcp::acceptor probe(ex, {asio::ip::make_address("127.0.0.1"), 0});
    const auto port = probe.local_endpoint().port();
    probe.close();
    const std::string url = "ws://127.0.0.1:" + std::to_string(port);
    auto env = Environment::create(ex, "gone", ExecutorUrl{url, std::nullopt}, spawn_options());
    auto starter = co_await env->starter();
    CO_ASSERT_TRUE(!starter.has_value());
    EXPECT_EQ(starter.error().message.rfind(
                  "failed to connect to exec-server websocket '" + url + "': ", 0),
              0u)
        << starter.error().message;
  });
}

// A failed first connection is not remembered: the next use tries again (here, once an executor
// listens on that port).
TEST(Environment, AFailedConnectionIsRetriedByTheNextUse) {
  asio::io_context probe_io;
  asio::ip::tcp::acceptor probe(probe_io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = probe.local_endpoint().port();
  probe.close();
  const std::string url = "ws://127.0.0.1:" + std::to_string(port);
  std::optional<testing::ExecServer> server;
  run_async([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto env = Environment::create(ex, "late", ExecutorUrl{url, std::nullopt}, spawn_options());
    auto first = co_await env->starter();
    EXPECT_FALSE(first.has_value()) << "nothing listens yet";
    server.emplace(testing::ExecServer::Options{{"--insecure-no-auth", "--listen", url}, {}});
    auto second = co_await env->starter();
    EXPECT_TRUE(second.has_value()) << (second ? "" : second.error().message);
    co_await env->close();
  });
}

// Starts `sleep <marker>` in `env` and waits until it runs; null (with a failure) otherwise.
asio::awaitable<std::shared_ptr<exec::Process>> start_sleeper(Environment& env,
                                                              const std::string& marker) {
  auto starter = co_await env.starter();
  if (!starter) {
    ADD_FAILURE() << starter.error().message;
    co_return nullptr;
  }
  auto process = co_await (*starter)->start(sleeper("s", marker));
  if (!process) {
    ADD_FAILURE() << process.error().message;
    co_return nullptr;
  }
  EXPECT_TRUE(co_await eventually([&] { return processes_matching(marker).size() == 1; }, kWait))
      << "the sleeper did not start";
  co_return *process;
}

TEST(Environment, SpawnedExecutorRunsProcessesAndCloseLeavesNothing) {
  const std::string marker = "305.1001";
  run_async([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto env = Environment::create(ex, "spawned", spawned_tether(), spawn_options());
    auto process = co_await start_sleeper(*env, marker);
    CO_ASSERT_TRUE(process != nullptr);
    co_await env->close();
    EXPECT_TRUE(co_await eventually([&] { return processes_matching(marker).empty(); }, kWait))
        << "close left the sleeper running";
  });
}

TEST(Environment, DestroyingASpawnedEnvironmentLeavesNothing) {
  const std::string marker = "305.1002";
  run_async([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    {
      auto env = Environment::create(ex, "spawned", spawned_tether(), spawn_options());
      auto process = co_await start_sleeper(*env, marker);
      CO_ASSERT_TRUE(process != nullptr);
    }
    EXPECT_TRUE(co_await eventually([&] { return processes_matching(marker).empty(); }, kWait))
        << "the spawned executor's child outlived the environment";
  });
}

TEST(Environment, ConcurrentFirstUsesShareOneSpawnedExecutor) {
  run_async([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto env = Environment::create(ex, "spawned", spawned_tether(), spawn_options());
    std::shared_ptr<exec::ExecClient> a;
    std::shared_ptr<exec::ExecClient> b;
    auto get = [](std::shared_ptr<Environment> e,
                  std::shared_ptr<exec::ExecClient>& into) -> asio::awaitable<void> {
      auto client = co_await e->client();
      if (client) into = *client;
    };
    asio::co_spawn(ex, get(env, a), asio::detached);
    asio::co_spawn(ex, get(env, b), asio::detached);
    CO_ASSERT_TRUE(co_await eventually([&] { return a && b; }, kWait));
    EXPECT_EQ(a.get(), b.get()) << "two connections for one environment";
    co_await env->close();
  });
}

// The host is a separate process killed with SIGKILL: its spawned or command executor, and the
// executor's children, must go too (parent-death signal on the executor, then on its children).
void host_killed_takes_everything_down(const std::string& mode, const std::string& marker) {
  // The host's own command line carries the marker too: match the sleeper's.
  const std::string sleeper_line = "sleep " + marker;
  run_async([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    process::SpawnOptions spawn;
    spawn.argv = {testing::test_host(), mode, testing::tether_binary(), marker};
    spawn.env = testing::test_environment();
    spawn.stdin_mode = process::StdinMode::closed;
    spawn.contain = false;  // only the host's own mechanisms may end what it started
    auto host = process::Child::spawn(co_await asio::this_coro::executor, spawn);
    CO_ASSERT_TRUE(host.has_value());
    EXPECT_TRUE(
        co_await eventually([&] { return processes_matching(sleeper_line).size() == 1; }, kWait))
        << "the host never started its sleeper";
    (*host)->signal_group(SIGKILL);
    // Whatever the host started must be gone within 5 s (scenario 40).
    EXPECT_TRUE(co_await eventually([&] { return processes_matching(sleeper_line).empty(); }, 5s))
        << mode << " executor's child outlived the killed host";
  });
  for (pid_t pid : processes_matching(sleeper_line)) ::kill(pid, SIGKILL);
}

TEST(Environment, HostKilledTakesItsSpawnedExecutorAndChildrenDown) {
  host_killed_takes_everything_down("spawned", "305.1003");
}

TEST(Environment, HostKilledTakesItsCommandExecutorAndChildrenDown) {
  host_killed_takes_everything_down("command", "305.1004");
}

}  // namespace
}  // namespace tether::host
