// The executor before the WebSocket upgrade (docs/exec-server.md "Limits"): connections that
// never send a request count against --max-pending-connections (the excess is closed at once),
// and at the descriptor limit the accept loop backs off and logs a bounded number of lines
// instead of spinning; in both cases a legitimate client is served once the flood is gone.
//
// A real executor and raw TCP connections on 127.0.0.1; the descriptor limit is lowered on the
// running executor with prlimit(2).
#include <dirent.h>
#include <functional>
#include <memory>
#include <string>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "test_client.hpp"

namespace tether::testing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// The executor's open descriptors, all of them or its sockets only.
int descriptor_count(pid_t pid, bool sockets_only) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return 0;
  int count = 0;
  while (const dirent* entry = ::readdir(d)) {
    if (entry->d_name[0] == '.') continue;
    if (!sockets_only) {
      ++count;
      continue;
    }
    char target[64] = {};
    const std::string link = dir + "/" + entry->d_name;
    if (::readlink(link.c_str(), target, sizeof target - 1) > 0 &&
        std::string_view(target).starts_with("socket:"))
      ++count;
  }
  ::closedir(d);
  return count;
}

int lines_containing(const std::string& text, std::string_view needle) {
  int count = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1))
    ++count;
  return count;
}

// TCP connections that send nothing, closed with the object; closed() counts those the executor
// closed. Live inside the test body, on its io_context.
class IdleConnections {
 public:
  IdleConnections() = default;
  ~IdleConnections() { close_all(); }
  IdleConnections(const IdleConnections&) = delete;
  IdleConnections& operator=(const IdleConnections&) = delete;

  int closed() const { return *closed_; }

  asio::awaitable<void> open(unsigned short port, int count) {
    const auto executor = co_await asio::this_coro::executor;
    const asio::ip::tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
    for (int i = 0; i < count; ++i) {
      auto connection = std::make_shared<Connection>(executor);
      boost::system::error_code ec;
      co_await connection->socket.async_connect(endpoint,
                                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        ++*closed_;
        continue;
      }
      // The handler owns what it touches: it may run after this object is gone.
      connection->socket.async_read_some(
          asio::buffer(&connection->byte, 1),
          [closed = closed_, connection](boost::system::error_code, std::size_t) { ++*closed; });
      connections_.push_back(std::move(connection));
    }
  }
  void close_all() {
    for (auto& connection : connections_) {
      boost::system::error_code ignored;
      connection->socket.close(ignored);
    }
  }

 private:
  struct Connection {
    explicit Connection(const asio::any_io_executor& executor) : socket(executor) {}
    asio::ip::tcp::socket socket;
    char byte = 0;
  };
  std::vector<std::shared_ptr<Connection>> connections_;
  std::shared_ptr<int> closed_ = std::make_shared<int>(0);
};

// A client that connects and completes initialize, retried until `deadline` (the executor
// frees a slot or a descriptor once it has seen a close).
asio::awaitable<bool> client_served(unsigned short port, std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    std::shared_ptr<TestClient> client;
    try {
      client = co_await TestClient::connect(port);
    } catch (const std::exception&) {
    }
    if (client) {
      auto init = co_await client->initialize();
      client->close();
      co_await client->wait_disconnected();
      co_return init.contains("sessionId");
    }
    co_await sleep_for(100ms);
  }
  co_return false;
}

asio::awaitable<bool> client_refused(unsigned short port) {
  try {
    auto client = co_await TestClient::connect(port);
    client->close();
  } catch (const std::exception&) {
    co_return true;
  }
  co_return false;
}

TEST(ExecAccept, ConnectionsThatNeverUpgradeAreCappedAndTheExcessClosed) {
  constexpr int kIdle = 200;
  constexpr int kPendingLimit = 64;  // the default --max-pending-connections
  ExecServer server;
  run_async([&]() -> asio::awaitable<void> {
    const pid_t pid = server.pid();
    const int baseline = descriptor_count(pid, true);
    IdleConnections idle;
    co_await idle.open(server.port(), kIdle);
    // Every connection is either held by the executor or closed by it.
    const std::function<bool()> settled = [&] {
      return idle.closed() + descriptor_count(pid, true) - baseline >= kIdle;
    };
    CO_ASSERT_TRUE(co_await eventually(settled, 20s));
    const int held = descriptor_count(pid, true) - baseline;
    EXPECT_LE(held, kPendingLimit) << "connections held before the upgrade";
    EXPECT_GE(idle.closed(), kIdle - kPendingLimit) << "excess connections closed";
    EXPECT_TRUE(co_await client_refused(server.port()))
        << "a client was served while every pre-upgrade slot was taken";

    idle.close_all();
    EXPECT_TRUE(co_await client_served(server.port(), 20s))
        << "no client was served after the idle connections closed; log:\n"
        << server.log();
  });
}

TEST(ExecAccept, AtTheDescriptorLimitAcceptBacksOffInsteadOfSpinning) {
  constexpr int kFlood = 100;
  ExecServer server;
  const pid_t pid = server.pid();
  // A few descriptors to spare, so that the flood hits the limit at once.
  const rlim_t limit = static_cast<rlim_t>(descriptor_count(pid, false) + 8);
  const rlimit lowered{limit, limit};
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &lowered, nullptr), 0) << std::strerror(errno);
  run_async([&]() -> asio::awaitable<void> {
    IdleConnections flood;
    co_await flood.open(server.port(), kFlood);
    // The executor stays at its limit for this long (the bound below is on log lines, which a
    // spinning accept loop writes by the hundred thousand in that time).
    co_await sleep_for(1500ms);
    const int during = lines_containing(server.log(), "accept failed");
    EXPECT_GE(during, 1) << "the executor never reached its descriptor limit";
    EXPECT_LE(during, 20) << "accept failures logged while at the descriptor limit";

    flood.close_all();
    EXPECT_TRUE(co_await client_served(server.port(), 30s))
        << "no client was served after the flood closed; log head:\n"
        << server.log().substr(0, 5000);
    EXPECT_LE(lines_containing(server.log(), "accept failed"), 40);
  });
}

}  // namespace
}  // namespace tether::testing
