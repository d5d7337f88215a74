// The executor's basic request/notification flow over a real WebSocket and over stdio.
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "requests.hpp"
#include "test_client.hpp"

namespace tether::testing {
namespace {

TEST(ExecSmoke, EventsArriveInSeqOrderOverWebSocket) {
  ExecServer server;
  run_async([&]() -> boost::asio::awaitable<void> {
    auto client = co_await TestClient::connect(server.port());
    auto init = co_await client->initialize();
    EXPECT_TRUE(init.contains("sessionId"));
    co_await client->call_ok(
        "process/start",
        start_sh("proc-1",
                     "printf 'event output\\n'; sleep .1; printf 'event err\\n' >&2; "
                     "sleep .1; exit 7"));
    EXPECT_TRUE(co_await client->wait_closed("proc-1"));
    auto events = client->events("proc-1");
    CO_ASSERT_EQ(events.size(), 4u);
    EXPECT_EQ(events[0].at("method"), "process/output");
    EXPECT_EQ(events[0].at("seq"), 1);
    EXPECT_EQ(unb64(events[0].at("chunk").as_string()), "event output\n");
    EXPECT_EQ(events[1].at("stream"), "stderr");
    EXPECT_EQ(events[2].at("method"), "process/exited");
    EXPECT_EQ(events[2].at("exitCode"), 7);
    EXPECT_EQ(events[3].at("method"), "process/closed");
    EXPECT_EQ(events[3].at("seq"), 4);
    client->close();
  });
}

TEST(ExecSmoke, StdioListenServesOneSession) {
  run_async([&]() -> boost::asio::awaitable<void> {
    auto executor = co_await boost::asio::this_coro::executor;
    auto child = spawn_stdio_server(executor);
    auto client = TestClient::over(executor, stdio_transport(*child));
    co_await client->initialize();
    co_await client->call_ok("process/start", start_sh("p", "cat", piped_stdin()));
    json::object write{{"processId", "p"}, {"chunk", b64("hello\n")}};
    co_await client->call_ok("process/write", std::move(write));
    const std::string expected = "hello\n";
    EXPECT_TRUE(co_await client->wait_output("p", expected));
    client->close();  // closes the executor's stdin: it ends the session and exits
    auto status = co_await child->wait();
    EXPECT_EQ(status.code, 0);
  });
}

}  // namespace
}  // namespace tether::testing
