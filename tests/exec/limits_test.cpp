// Per-connection bounds of the executor under abuse (docs/exec-server.md "Limits"): a client that
// pipelines big fs/readFile answers and never reads its socket cannot grow the executor's memory,
// the executor stops reading that client, serves others, forgets it once it is gone, and still
// ends promptly on SIGTERM.
//
// A real executor and a raw WebSocket client on 127.0.0.1; memory is read from /proc as a
// generous ceiling, never as a timing.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "test_client.hpp"

namespace tether::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::size_t kMiB = std::size_t{1} << 20;
// Far above what the executor needs under this load (about 100 MiB), far below what it took
// on the first implementation (GBs).
constexpr std::size_t kRssCeiling = 512 * kMiB;

// A /proc/<pid>/status field such as VmHWM (peak RSS) or VmRSS, in bytes; 0 when unreadable.
std::size_t status_bytes(pid_t pid, const std::string& field) {
  std::istringstream status(read_text_file("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1)) * 1024;
  }
  return 0;
}

class TempFile {
 public:
  explicit TempFile(std::size_t size) {
    path_ = fs::temp_directory_path() /
            ("tether-limits-test-" + std::to_string(::getpid()) + "-" + std::to_string(size));
    std::ofstream out(path_, std::ios::binary);
    std::string block(kMiB, '\0');
    for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>((i * 131) >> 3);
    for (std::size_t written = 0; written < size; written += block.size())
      out.write(block.data(), static_cast<std::streamsize>(std::min(block.size(), size - written)));
  }
  ~TempFile() {
    std::error_code ignored;
    fs::remove(path_, ignored);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

// Built outside coroutines: GCC 12 miscompiles braced JSON inside them. The padding makes each
// request 64 KiB, so that a pipeline the executor stops reading fills the socket buffers.
std::string read_file_request(int id, const std::string& path) {
  json::object request{
      {"jsonrpc", "2.0"},
      {"id", id},
      {"method", "fs/readFile"},
      {"params", json::object{{"path", path}, {"padding", std::string(64 << 10, 'p')}}}};
  return json::serialize(request);
}

std::string initialize_request() {
  json::object request{{"jsonrpc", "2.0"},
                       {"id", 0},
                       {"method", "initialize"},
                       {"params", json::object{{"clientName", "flood"}}}};
  return json::serialize(request);
}

std::string initialized_notification() {
  return json::serialize(json::object{{"jsonrpc", "2.0"}, {"method", "initialized"}});
}

json::object path_params(const std::string& path) {
  return json::object{{"path", path}};
}

struct Flood {
  explicit Flood(jsonrpc::WebSocket socket) : ws(std::move(socket)) {}
  jsonrpc::WebSocket ws;
  int written = 0;
  bool done = false;
};

// Writes `count` requests, one after the other, never reading; stops at the first error (the
// socket closed by the test).
asio::awaitable<void> pipeline(std::shared_ptr<Flood> flood, int count, std::string path) {
  for (int i = 1; i <= count; ++i) {
    const std::string text = read_file_request(i, path);
    boost::system::error_code ec;
    co_await flood->ws.async_write(asio::buffer(text),
                                   asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    ++flood->written;
  }
  flood->done = true;
}

TEST(ExecLimits, PipelinedReadFilesThatAreNeverReadKeepTheExecutorBounded) {
  constexpr int kRequests = 1000;
  TempFile file(4 * kMiB);
  ExecServer server;
  std::size_t peak = 0;
  run_async(
      [&]() -> asio::awaitable<void> {
        auto flood = std::make_shared<Flood>(co_await ws_connect(server.port()));
        flood->ws.text(true);
        co_await flood->ws.async_write(asio::buffer(initialize_request()), asio::use_awaitable);
        beast::flat_buffer answer;
        co_await flood->ws.async_read(answer, asio::use_awaitable);
        co_await flood->ws.async_write(asio::buffer(initialized_notification()),
                                       asio::use_awaitable);
        const auto executor = co_await asio::this_coro::executor;
        asio::co_spawn(executor, pipeline(flood, kRequests, file.path()), asio::detached);

        // The attack runs for a fixed while (the bound is on memory, not on time); it is cut
        // short once the ceiling is passed, so a regression does not exhaust the machine.
        const auto end = std::chrono::steady_clock::now() + 6s;
        while (std::chrono::steady_clock::now() < end && peak <= kRssCeiling) {
          peak = std::max(peak, status_bytes(server.pid(), "VmHWM"));
          co_await sleep_for(50ms);
        }
        std::cout << "peak executor RSS under the flood: " << peak / kMiB << " MiB ("
                  << flood->written << " of " << kRequests << " requests written)\n";
        EXPECT_LE(peak, kRssCeiling) << "peak executor RSS " << peak / kMiB << " MiB";
        EXPECT_LT(flood->written, kRequests)
            << "the executor kept reading a client that reads none of its answers";

        // The client aborts; the executor forgets it and serves a new client.
        boost::system::error_code ignored;
        beast::get_lowest_layer(flood->ws).socket().close(ignored);
        const std::function<bool()> writer_done = [flood] { return flood->done; };
        CO_ASSERT_TRUE(co_await eventually(writer_done, 10s));
        auto client = co_await TestClient::connect(server.port());
        co_await client->initialize();
        auto metadata = co_await client->call("fs/getMetadata", path_params(file.path()), 30s);
        CO_ASSERT_TRUE(metadata.has_value());
        EXPECT_EQ(metadata->at("size").as_int64(), static_cast<std::int64_t>(4 * kMiB));
        client->close();
        co_await client->wait_disconnected();
        peak = std::max(peak, status_bytes(server.pid(), "VmHWM"));
        EXPECT_LE(peak, kRssCeiling) << "peak executor RSS after the client left";
      },
      90s, "the readFile flood");

  server.signal(SIGTERM);
  const auto status = server.wait_exit(20s);
  EXPECT_TRUE(status.has_value()) << "the executor did not exit within 20 s of SIGTERM after "
                                     "the flood; its log:\n"
                                  << server.log().substr(0, 20'000);
}

}  // namespace
}  // namespace tether::testing
