// The test proxy itself (tests/support/cut_proxy.hpp): echo traffic both ways, cut_all() resets
// connections while the listener stays open, refuse() makes connects fail with
// connection_refused, and a cut WebSocket is *lost* to the real executor (its session resumes).
#include "cut_proxy.hpp"

#include <array>
#include <memory>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "requests.hpp"
#include "test_client.hpp"

namespace tether::testing {
namespace {
namespace asio = boost::asio;
using asio::ip::tcp;

const tcp::endpoint kLoopback(asio::ip::make_address_v4("127.0.0.1"), 0);

tcp::endpoint loopback(unsigned short port) {
  return {kLoopback.address(), port};
}

// Echoes every connection until EOF on the test's io_context; counts sessions that ended with an
// error (a reset), which is how a cut shows on the target side.
struct EchoServer {
  struct Shared {
    explicit Shared(const asio::any_io_executor& executor) : acceptor(executor, kLoopback) {}
    tcp::acceptor acceptor;
    int resets = 0;
  };

  explicit EchoServer(const asio::any_io_executor& executor)
      : shared(std::make_shared<Shared>(executor)) {
    asio::co_spawn(executor, accept_loop(shared), asio::detached);
  }
  ~EchoServer() {
    boost::system::error_code ignored;
    shared->acceptor.close(ignored);
  }
  unsigned short port() const { return shared->acceptor.local_endpoint().port(); }

  static asio::awaitable<void> session(std::shared_ptr<Shared> shared, tcp::socket socket) {
    std::array<char, 16 * 1024> buffer;
    boost::system::error_code ec;
    for (;;) {
      const std::size_t n = co_await socket.async_read_some(
          asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      co_await asio::async_write(socket, asio::buffer(buffer.data(), n),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
    }
    if (ec != asio::error::eof) ++shared->resets;
  }

  static asio::awaitable<void> accept_loop(std::shared_ptr<Shared> shared) {
    for (;;) {
      tcp::socket socket(shared->acceptor.get_executor());
      boost::system::error_code ec;
      co_await shared->acceptor.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      asio::co_spawn(shared->acceptor.get_executor(), session(shared, std::move(socket)),
                     asio::detached);
    }
  }

  std::shared_ptr<Shared> shared;
};

asio::awaitable<boost::system::error_code> connect(tcp::socket& socket, unsigned short port) {
  boost::system::error_code ec;
  co_await socket.async_connect(loopback(port), asio::redirect_error(asio::use_awaitable, ec));
  co_return ec;
}

// Writes `text` and reads the same number of bytes back; returns them, or the error's message.
asio::awaitable<std::string> round_trip(tcp::socket& socket, std::string text) {
  boost::system::error_code ec;
  co_await asio::async_write(socket, asio::buffer(text),
                             asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return "write failed: " + ec.message();
  std::string back(text.size(), '\0');
  co_await asio::async_read(socket, asio::buffer(back),
                            asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return "read failed: " + ec.message();
  co_return back;
}

asio::awaitable<boost::system::error_code> read_error(tcp::socket& socket) {
  std::array<char, 64> buffer;
  boost::system::error_code ec;
  co_await socket.async_read_some(asio::buffer(buffer),
                                  asio::redirect_error(asio::use_awaitable, ec));
  co_return ec;
}

std::string pattern(std::size_t size) {
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 7919) % 251);
  return bytes;
}

TEST(CutProxy, ForwardsBothWaysAndPassesEof) {
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    EchoServer echo(executor);
    CutProxy proxy(echo.port());
    tcp::socket socket(executor);
    const auto connected = co_await connect(socket, proxy.port());
    CO_ASSERT_EQ(connected, boost::system::error_code{});
    const std::string big = pattern(1 << 20);
    const std::string back = co_await round_trip(socket, big);
    EXPECT_TRUE(back == big) << "1 MiB did not come back identical: " << back.substr(0, 80);
    EXPECT_EQ(co_await round_trip(socket, "hello"), "hello");
    const std::uint64_t total = big.size() + 5;
    EXPECT_TRUE(co_await eventually(
        [&] { return proxy.bytes_to_target() == total && proxy.bytes_to_client() == total; },
        std::chrono::seconds(5)))
        << proxy.bytes_to_target() << " / " << proxy.bytes_to_client();
    EXPECT_EQ(proxy.accepted(), 1u);
    EXPECT_EQ(proxy.open_connections(), 1u);
    // Our FIN reaches the echo server, whose FIN comes back as a plain EOF (not a reset).
    boost::system::error_code ec;
    socket.shutdown(tcp::socket::shutdown_send, ec);
    EXPECT_EQ(co_await read_error(socket), asio::error::eof);
    EXPECT_TRUE(co_await eventually([&] { return proxy.open_connections() == 0; },
                                    std::chrono::seconds(5)));
    EXPECT_EQ(echo.shared->resets, 0);
  });
}

TEST(CutProxy, CutAllResetsBothSidesAndTheListenerStaysOpen) {
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    EchoServer echo(executor);
    CutProxy proxy(echo.port());
    tcp::socket first(executor);
    const auto connected = co_await connect(first, proxy.port());
    CO_ASSERT_EQ(connected, boost::system::error_code{});
    EXPECT_EQ(co_await round_trip(first, "before"), "before");

    EXPECT_EQ(proxy.cut_all(), 1u);
    EXPECT_EQ(proxy.open_connections(), 0u);
    EXPECT_EQ(co_await read_error(first), asio::error::connection_reset);
    EXPECT_TRUE(
        co_await eventually([&] { return echo.shared->resets == 1; }, std::chrono::seconds(5)))
        << "the target side saw no reset";

    tcp::socket second(executor);
    const auto reconnected = co_await connect(second, proxy.port());
    CO_ASSERT_EQ(reconnected, boost::system::error_code{});
    EXPECT_EQ(co_await round_trip(second, "after"), "after");
    EXPECT_EQ(proxy.accepted(), 2u);
    EXPECT_EQ(proxy.open_connections(), 1u);
  });
}

TEST(CutProxy, RefuseMakesConnectsFailUntilLifted) {
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    EchoServer echo(executor);
    CutProxy proxy(echo.port());
    tcp::socket kept(executor);
    const auto connected = co_await connect(kept, proxy.port());
    CO_ASSERT_EQ(connected, boost::system::error_code{});

    proxy.refuse(true);
    tcp::socket refused(executor);
    EXPECT_EQ(co_await connect(refused, proxy.port()), asio::error::connection_refused);
    // A connection made before stays usable.
    EXPECT_EQ(co_await round_trip(kept, "kept"), "kept");

    const auto port = proxy.port();
    proxy.refuse(false);
    EXPECT_EQ(proxy.port(), port);
    tcp::socket again(executor);
    const auto reconnected = co_await connect(again, proxy.port());
    CO_ASSERT_EQ(reconnected, boost::system::error_code{});
    EXPECT_EQ(co_await round_trip(again, "again"), "again");
    EXPECT_EQ(proxy.accepted(), 2u);
  });
}

TEST(CutProxy, DestructorResetsOpenConnections) {
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    EchoServer echo(executor);
    auto proxy = std::make_unique<CutProxy>(echo.port());
    tcp::socket socket(executor);
    const auto connected = co_await connect(socket, proxy->port());
    CO_ASSERT_EQ(connected, boost::system::error_code{});
    EXPECT_EQ(co_await round_trip(socket, "x"), "x");
    proxy.reset();
    EXPECT_EQ(co_await read_error(socket), asio::error::connection_reset);
  });
}

// What scenario 39 needs from the proxy: the executor takes a cut for a lost connection (no
// close frame), so its session and processes survive and the session resumes.
TEST(CutProxy, CutWebSocketIsLostNotClosedForTheExecutor) {
  ExecServer server;
  CutProxy proxy(server.port());
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await TestClient::connect(proxy.port());
    auto init = co_await client->initialize();
    const std::string session(init.at("sessionId").as_string());
    co_await client->call_ok("process/start", start_sleep("p", "301.4712"));

    EXPECT_EQ(proxy.cut_all(), 1u);
    EXPECT_TRUE(co_await client->wait_disconnected());
    EXPECT_FALSE(client->peer().remote_close_code().has_value()) << "a close frame got through";

    auto again = co_await TestClient::connect(proxy.port());
    auto resumed = co_await again->initialize(session);
    EXPECT_EQ(resumed.at("sessionId").as_string(), session);
    auto read = co_await again->call_ok("process/read", read_params("p", {}, {}, 0));
    EXPECT_EQ(read.at("closed"), false);
    co_await again->call_ok("process/terminate", id_params("p"));
    again->close();
  });
  EXPECT_EQ(proxy.accepted(), 2u);
}

}  // namespace
}  // namespace tether::testing
