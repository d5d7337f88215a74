// ExecClient against a silent executor: the executor process is stopped with SIGSTOP, so its
// kernel keeps the TCP connection up (no FIN, no RST) but nothing answers. The client's
// keepalive must notice within its idle bound, try to resume (the reconnect reaches the kernel
// backlog but no handshake ever comes back), give up at the end of the resume window, and
// latch the disconnect: pending calls fail, subscribers get `failed`. Real executor, real
// sockets; the executor is continued and stopped at the end.
#include <csignal>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "exec_server.hpp"
#include <tether/exec/client.hpp>

namespace tether::exec {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::eventually;
using testing::run_async;

ClientOptions quick_keepalive() {
  ClientOptions options;
  options.client_name = "keepalive-test";
  options.ping_interval = 100ms;
  options.idle_timeout = 500ms;
  options.connect_timeout = 300ms;
  options.initialize_timeout = 300ms;
  options.resume_window = 1500ms;
  return options;
}

StartParams sleeper() {
  StartParams params;
  params.process_id = "quiet";
  params.argv = {"sleep", "306.2001"};
  params.env = {{"PATH", "/usr/bin:/bin"}};
  return params;
}

// The executor is continued before it is stopped for good, whatever the test did.
struct Continue {
  testing::ExecServer& server;
  ~Continue() { server.signal(SIGCONT); }
};

asio::awaitable<void> pending_read(std::shared_ptr<Process> process,
                                   std::shared_ptr<std::optional<Expected<ReadResult>>> into) {
  *into = co_await process->read(0, std::nullopt, 60s);
}

TEST(ExecClientKeepalive, SilentExecutorIsDetectedAndLatched) {
  testing::ExecServer server;
  Continue resume_server{server};
  run_async(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        Endpoint endpoint = WebSocketEndpoint{server.url(), {}, nullptr};
        auto client = co_await ExecClient::connect(ex, std::move(endpoint), quick_keepalive());
        CO_ASSERT_TRUE(client.has_value());
        auto process = co_await (*client)->start(sleeper());
        CO_ASSERT_TRUE(process.has_value());
        auto events = (*process)->subscribe();
        auto read = std::make_shared<std::optional<Expected<ReadResult>>>();
        asio::co_spawn(ex, pending_read(*process, read), asio::detached);

        server.signal(SIGSTOP);
        const bool detected =
            co_await eventually([&] { return (*client)->disconnected().has_value(); }, 20s);
        EXPECT_TRUE(detected) << "a silent executor was never detected";
        CO_ASSERT_TRUE(detected);
        EXPECT_EQ((*client)->disconnected()->rfind(std::string(kDisconnected), 0), 0u)
            << *(*client)->disconnected();

        std::optional<ProcessEvent> last;
        for (auto event = co_await events->next(); event; event = co_await events->next())
          last = event;
        CO_ASSERT_TRUE(last.has_value());
        EXPECT_TRUE(std::holds_alternative<FailedEvent>(*last));

        const bool resolved = co_await eventually([&] { return read->has_value(); }, 10s);
        EXPECT_TRUE(resolved) << "the pending read never resolved";
        CO_ASSERT_TRUE(resolved);
        // A read that was pending resolves with the latched failure (or its error).
        const auto& result = **read;
        if (result) {
          EXPECT_TRUE(result->closed);
          EXPECT_TRUE(result->failure.has_value());
        } else {
          EXPECT_EQ(result.error().message.rfind(std::string(kDisconnected), 0), 0u)
              << result.error().message;
        }
        auto write = co_await (*process)->write("late\n");
        EXPECT_FALSE(write.has_value()) << "a write after the latch was sent";
      },
      60s, "silent executor");
}

}  // namespace
}  // namespace tether::exec
