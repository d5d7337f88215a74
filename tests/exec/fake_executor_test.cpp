// The scripted fake executor itself (tests/support/fake_executor.hpp), driven over a raw
// WebSocket: default answers, canned answers, raw frames sent verbatim, the record of what the
// client sent, and cleanup.
#include "fake_executor.hpp"

#include <memory>
#include <string>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "exec_server.hpp"

namespace tether::testing {
namespace {
namespace asio = boost::asio;
namespace json = boost::json;

const std::string kInitialize =
    R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"clientName":"t","resumeSessionId":null}})";
const std::string kInitialized = R"({"jsonrpc":"2.0","method":"initialized","params":{}})";
const std::string kStart =
    R"({"jsonrpc":"2.0","id":2,"method":"process/start","params":{"processId":"p1","argv":["true"],"cwd":"file:///"}})";
const std::string kRead =
    R"({"jsonrpc":"2.0","id":3,"method":"process/read","params":{"processId":"p1"}})";
const std::string kUnknown = R"({"jsonrpc":"2.0","id":4,"method":"no/such","params":{}})";

asio::awaitable<void> write_text(jsonrpc::WebSocket& ws, const std::string& text) {
  ws.text(true);
  co_await ws.async_write(asio::buffer(text), asio::use_awaitable);
}

// The next text frame, or "error: <message>" when the connection failed.
asio::awaitable<std::string> read_text(jsonrpc::WebSocket& ws) {
  boost::beast::flat_buffer buffer;
  boost::system::error_code ec;
  co_await ws.async_read(buffer, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return "error: " + ec.message();
  co_return boost::beast::buffers_to_string(buffer.data());
}

// The parsed response to a request just written.
asio::awaitable<json::object> call(jsonrpc::WebSocket& ws, const std::string& request) {
  co_await write_text(ws, request);
  const std::string text = co_await read_text(ws);
  co_return json::parse(text).as_object();
}

TEST(FakeExecutor, AnswersHandshakeStartAndUnknownMethods) {
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    FakeExecutor fake(executor);
    auto ws = co_await ws_connect(fake.port());
    auto init = co_await call(ws, kInitialize);
    EXPECT_EQ(init.at("id"), 1);
    const auto& result = init.at("result");
    EXPECT_EQ(result.at("sessionId"), "fake-session");
    EXPECT_EQ(result.at("environmentInfo").at("cwd"), "file:///");

    co_await write_text(ws, kInitialized);
    auto start = co_await call(ws, kStart);
    EXPECT_EQ(start.at("result").at("processId"), "p1");
    EXPECT_EQ(start.at("result").at("sandboxType"), "none");
    auto unknown = co_await call(ws, kUnknown);
    EXPECT_EQ(unknown.at("id"), 4);
    EXPECT_EQ(unknown.at("result"), json::object{});

    EXPECT_EQ(fake.connections(), 1u);
    const auto& received = fake.received();
    CO_ASSERT_EQ(received.size(), 4u);
    EXPECT_EQ(received[0], json::parse(kInitialize));
    EXPECT_EQ(received[1], json::parse(kInitialized));
    EXPECT_EQ(received[2], json::parse(kStart));
    EXPECT_EQ(received[3], json::parse(kUnknown));
  });
}

TEST(FakeExecutor, CannedAnswersReplaceTheDefaults) {
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    FakeExecutor fake(executor);
    fake.answer("process/start", json::parse(R"({"processId":"other","sandboxType":"x"})"));
    fake.answer_error("process/read", -32600, "unknown process id p1");
    auto ws = co_await ws_connect(fake.port());
    auto start = co_await call(ws, kStart);
    EXPECT_EQ(start.at("result").at("processId"), "other");
    auto read = co_await call(ws, kRead);
    EXPECT_FALSE(read.contains("result"));
    EXPECT_EQ(read.at("error").at("code"), -32600);
    EXPECT_EQ(read.at("error").at("message"), "unknown process id p1");
  });
}

TEST(FakeExecutor, SendsRawFramesVerbatimInTheGivenOrder) {
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    FakeExecutor fake(executor);
    auto ws = co_await ws_connect(fake.port());
    co_await write_text(ws, kInitialized);
    const bool seen = co_await fake.wait_received("initialized");
    CO_ASSERT_TRUE(seen);
    // Out of seq order and not what Peer would serialize (no "jsonrpc", odd spacing): verbatim.
    const std::string closed = R"({"method":"process/closed","params":{"processId":"p1","seq":4}})";
    const std::string output = R"({ "method" : "process/output", "params": {"seq": 1}})";
    const std::string garbage = "not json at all";
    fake.send(closed);
    fake.send(output);
    fake.send(garbage);
    EXPECT_EQ(co_await read_text(ws), closed);
    EXPECT_EQ(co_await read_text(ws), output);
    EXPECT_EQ(co_await read_text(ws), garbage);
  });
}

TEST(FakeExecutor, WaitReceivedCountsAndTimesOut) {
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    FakeExecutor fake(executor);
    auto ws = co_await ws_connect(fake.port());
    co_await write_text(ws, kInitialized);
    co_await write_text(ws, kInitialized);
    const bool two = co_await fake.wait_received("initialized", 2);
    EXPECT_TRUE(two);
    const bool three = co_await fake.wait_received("initialized", 3, std::chrono::milliseconds(50));
    EXPECT_FALSE(three);
    co_await write_text(ws, "{broken");
    const bool broken =
        co_await eventually([&] { return fake.received().size() == 3; }, std::chrono::seconds(5));
    CO_ASSERT_TRUE(broken);
    EXPECT_EQ(fake.received()[2], json::value("{broken"));
  });
}

TEST(FakeExecutor, SendGoesToTheNewestConnection) {
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    FakeExecutor fake(executor);
    auto first = co_await ws_connect(fake.port());
    co_await write_text(first, kInitialized);
    auto second = co_await ws_connect(fake.port());
    co_await write_text(second, kInitialized);
    const bool both = co_await fake.wait_received("initialized", 2);
    CO_ASSERT_TRUE(both);
    EXPECT_EQ(fake.connections(), 2u);
    fake.send(R"({"method":"x"})");
    EXPECT_EQ(co_await read_text(second), R"({"method":"x"})");
  });
}

TEST(FakeExecutor, DestructorEndsConnections) {
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto fake = std::make_unique<FakeExecutor>(executor);
    auto ws = co_await ws_connect(fake->port());
    co_await write_text(ws, kInitialized);
    const bool seen = co_await fake->wait_received("initialized");
    CO_ASSERT_TRUE(seen);
    fake.reset();
    const std::string after = co_await read_text(ws);
    EXPECT_TRUE(after.starts_with("error: ")) << after;
  });
}

TEST(FakeExecutor, SendWithoutAClientThrows) {
  asio::io_context io;
  FakeExecutor fake(io.get_executor());
  EXPECT_THROW(fake.send("{}"), std::logic_error);
}

}  // namespace
}  // namespace tether::testing
