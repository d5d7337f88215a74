// ExecClient's HTTP (include/tether/exec/client.hpp): http_request answered whole, and
// http_client(origin), a fetch::Client whose exchanges the executor makes and streams back, against
// the real `tether exec-server` and a stock codex 0.169 exec-server, fetching from http_peer.mjs
// on loopback.
//
// Shows: a buffered echo keeps the headers' order and repeats; a streamed body is read in order;
// cancel() ends an exchange and the executor's connection to the server (tether), or is answered
// -32601 and breaks nothing (codex, whose stream runs to its end); an executor killed mid-stream
// fails the pending read() with the disconnect message instead of hanging; a reader too far
// behind loses its stream, not the connection; a lost connection fails its streams even when the
// session resumes.
#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "client_scenarios.hpp"
#include "codex_exec_server.hpp"
#include "cut_proxy.hpp"
#include "exec_server.hpp"
#include "http_peer.hpp"
#include <tether/exec/client.hpp>

namespace tether::testing {
namespace {
namespace asio = boost::asio;
namespace code = jsonrpc::code;
using exec::ExecClient;

// Named: a duration converted inside a co_await expression would be a class temporary there.
constexpr std::chrono::milliseconds kSettle{10'000};
constexpr std::chrono::milliseconds kKilled{20'000};
constexpr std::chrono::milliseconds kCodexIdle{30'000};

exec::HttpRequestParams echo_params(const HttpPeer& peer) {
  exec::HttpRequestParams params;
  params.method = "GET";
  params.url = peer.url("/echo");
  params.headers = interleaved_fetch_headers();
  return params;
}

fetch::Request get(std::string url) {
  fetch::Request request;
  request.url = std::move(url);
  return request;
}

// Resume gives up quickly: a killed executor is not coming back.
exec::ClientOptions quick_to_give_up() {
  exec::ClientOptions options;
  options.resume_window = std::chrono::milliseconds(300);
  return options;
}

const char* const kSlowBody = "piece-0\npiece-1\npiece-2\npiece-3\npiece-4\n";

// The buffered echo and a streamed /slow read in order: the same for both executors.
asio::awaitable<void> buffered_echo(ExecClient& client, const HttpPeer& peer) {
  auto params = echo_params(peer);
  auto answered = co_await client.http_request(std::move(params));
  CO_ASSERT_TRUE(succeeded(answered, "http_request GET /echo"));
  EXPECT_EQ(answered->status, 200u);
  const auto echo = parse_echo(answered->body);
  EXPECT_EQ(echo.method, "GET");
  EXPECT_TRUE(saw_interleaved_headers(echo));
}

asio::awaitable<void> streamed_slow(ExecClient& client, const HttpPeer& peer, std::string origin) {
  auto http = client.http_client(origin);
  EXPECT_EQ(http->origin(), origin);
  auto exchange = http->start(get(peer.url("/slow?pieces=5&ms=20")));
  auto head = co_await exchange->head();
  CO_ASSERT_TRUE(succeeded(head, "GET /slow through http_client"));
  EXPECT_EQ(head->status, 200u);
  std::string body;
  for (;;) {
    auto piece = co_await exchange->read();
    CO_ASSERT_TRUE(succeeded(piece, "read() of /slow"));
    if (piece->empty()) break;
    body += *piece;
  }
  EXPECT_EQ(body, kSlowBody);
}

// A buffered and a streamed request through the executor at `url`.
void buffered_and_streamed(const std::string& url, const std::string& origin_name) {
  HttpPeer peer;
  run_async([&]() -> asio::awaitable<void> {
    auto endpoint = ws_endpoint(url);
    auto client = co_await connect_client(std::move(endpoint));
    CO_ASSERT_TRUE(client != nullptr);
    std::string origin = origin_name;
    co_await buffered_echo(*client, peer);
    co_await streamed_slow(*client, peer, std::move(origin));
    co_await client->close();
  });
}

TEST(ExecClientHttp, BufferedAndStreamedRequests) {
  ExecServer server;
  buffered_and_streamed(server.url(), "box");
}

// Checked by the client before anything is sent; the executor's errors come back as its
// -32603 with the reason.
TEST(ExecClientHttp, InvalidAndFailingRequests) {
  ExecServer server;
  HttpPeer peer;
  auto injected = get(peer.url("/echo"));
  injected.headers = {{"X-Tether", "a\r\nX-Injected: 1"}};
  const auto hanging = [&] {
    auto request = get(peer.url("/hang"));
    request.timeout = std::chrono::milliseconds(200);
    return request;
  }();
  run_async([&]() -> asio::awaitable<void> {
    auto endpoint = ws_endpoint(server.url());
    auto client = co_await connect_client(std::move(endpoint));
    CO_ASSERT_TRUE(client != nullptr);
    auto http = client->http_client("box");
    auto invalid = http->start(injected);
    auto refused = co_await invalid->head();
    CO_ASSERT_TRUE(!refused);
    EXPECT_EQ(refused.error().code, code::kInvalidParams) << refused.error().message;

    auto slow = http->start(hanging);
    auto timed_out = co_await slow->head();
    CO_ASSERT_TRUE(!timed_out);
    EXPECT_EQ(timed_out.error().code, code::kInternalError) << timed_out.error().message;
    EXPECT_NE(timed_out.error().message.find("timed out"), std::string::npos)
        << timed_out.error().message;
    co_await client->close();
  });
  EXPECT_EQ(peer.stats().served, 1u) << "only the /hang request reached the server";
}

TEST(ExecClientHttp, CancelEndsTheExchange) {
  ExecServer server;
  HttpPeer peer;
  const auto request = get(peer.url("/forever"));
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto endpoint = ws_endpoint(server.url());
    auto client = co_await connect_client(std::move(endpoint));
    CO_ASSERT_TRUE(client != nullptr);
    auto http = client->http_client("box");
    auto exchange = http->start(request);
    auto head = co_await exchange->head();
    CO_ASSERT_TRUE(succeeded(head, "GET /forever through http_client"));
    auto log = read_in_background(executor, exchange);
    const bool read_twice = co_await has_read(log, 2, kSettle);
    CO_ASSERT_TRUE(read_twice);

    exchange->cancel();
    const auto error = co_await ended_with(log, kSettle);
    CO_ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->code, code::kRequestCancelled) << error->message;
    EXPECT_TRUE(log->body().starts_with("tick-0\ntick-1\n")) << log->body();
    const bool idle = co_await wait_idle(peer, kSettle);
    EXPECT_TRUE(idle) << "the executor kept the cancelled exchange's connection open";

    // The connection is still good for the next one.
    auto params = echo_params(peer);
    auto answered = co_await client->http_request(std::move(params));
    EXPECT_TRUE(succeeded(answered, "http_request after a cancel"));
    co_await client->close();
  });
}

TEST(ExecClientHttp, KilledExecutorFailsThePendingRead) {
  ExecServer server;
  HttpPeer peer;
  const auto request = get(peer.url("/forever"));
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto endpoint = ws_endpoint(server.url());
    auto options = quick_to_give_up();
    auto connected = co_await ExecClient::connect(executor, std::move(endpoint), options);
    CO_ASSERT_TRUE(succeeded(connected, "connect"));
    auto client = *connected;
    auto http = client->http_client("box");
    auto exchange = http->start(request);
    auto head = co_await exchange->head();
    CO_ASSERT_TRUE(succeeded(head, "GET /forever through http_client"));
    auto log = read_in_background(executor, exchange);
    const bool started = co_await has_read(log, 1, kSettle);
    CO_ASSERT_TRUE(started);

    server.signal(SIGKILL);
    const auto error = co_await ended_with(log, kKilled);
    CO_ASSERT_TRUE(error.has_value());
    EXPECT_TRUE(error->message.starts_with(exec::kDisconnected)) << error->message;
    auto later = co_await exchange->read();
    EXPECT_FALSE(later.has_value()) << "a read after the failure must fail too";
    const bool idle = co_await wait_idle(peer, kSettle);
    EXPECT_TRUE(idle) << "the killed executor's connection to the server stayed open";
    co_await client->close();
  });
}

// The connection is shared, so it is never paused for one slow reader: a stream whose reader
// lets more than max_http_buffered_bytes wait fails (after the bytes it kept), and is
// cancelled at the executor, while the connection goes on serving.
TEST(ExecClientHttp, AReaderTooFarBehindLosesItsStream) {
  ExecServer server;
  HttpPeer peer;
  const auto request = get(peer.url("/big-stream?n=268435456"));
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto endpoint = ws_endpoint(server.url());
    exec::ClientOptions options;
    options.max_http_buffered_bytes = 64 * 1024;
    auto connected = co_await ExecClient::connect(executor, std::move(endpoint), options);
    CO_ASSERT_TRUE(succeeded(connected, "connect"));
    auto client = *connected;
    auto http = client->http_client("box");
    auto exchange = http->start(request);
    auto head = co_await exchange->head();
    CO_ASSERT_TRUE(succeeded(head, "GET /big-stream through http_client"));
    // The body is not read here: past 64 KiB waiting the stream fails, and its cancel stops the
    // executor's request, so the server's socket closes long before its 256 MiB are written.
    const std::function<bool()> stopped = [&peer] { return peer.stats().open == 0; };
    const bool cancelled = co_await eventually(stopped, kSettle);
    EXPECT_TRUE(cancelled) << "the lost stream's request stayed open at the executor";
    EXPECT_LT(peer.stats().bytes_written, std::uint64_t{256} << 20);
    auto log = std::make_shared<BodyLog>();
    co_await read_body(exchange, log);
    CO_ASSERT_TRUE(log->error.has_value());
    EXPECT_NE(log->error->message.find("not read fast enough"), std::string::npos)
        << log->error->message;
    EXPECT_LT(log->body().size(), std::size_t{256} << 20);
    auto params = echo_params(peer);
    auto answered = co_await client->http_request(std::move(params));
    EXPECT_TRUE(succeeded(answered, "http_request after the lost stream"));
    co_await client->close();
  });
}

// A lost connection fails every open stream even when the session resumes (streams are not
// resumed), and the executor closes the lost connection's requests; the resumed connection serves
// the next request.
TEST(ExecClientHttp, ALostConnectionFailsItsStreamsAndTheResumedOneServes) {
  ExecServer server;
  CutProxy proxy(server.port());
  HttpPeer peer;
  const auto request = get(peer.url("/forever"));
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto endpoint = ws_endpoint("ws://127.0.0.1:" + std::to_string(proxy.port()));
    auto client = co_await connect_client(std::move(endpoint));
    CO_ASSERT_TRUE(client != nullptr);
    auto http = client->http_client("box");
    auto exchange = http->start(request);
    auto head = co_await exchange->head();
    CO_ASSERT_TRUE(succeeded(head, "GET /forever through http_client"));
    auto log = read_in_background(executor, exchange);
    const bool started = co_await has_read(log, 1, kSettle);
    CO_ASSERT_TRUE(started);

    EXPECT_EQ(proxy.cut_all(), 1u);
    const auto error = co_await ended_with(log, kSettle);
    CO_ASSERT_TRUE(error.has_value());
    EXPECT_TRUE(error->message.starts_with(exec::kDisconnected)) << error->message;
    const bool idle = co_await wait_idle(peer, kSettle);
    EXPECT_TRUE(idle) << "the lost connection's request stayed open at the executor";

    auto params = echo_params(peer);
    auto answered = co_await client->http_request(std::move(params));
    EXPECT_TRUE(succeeded(answered, "http_request on the resumed connection"));
    EXPECT_FALSE(client->disconnected().has_value()) << *client->disconnected();
    co_await client->close();
  });
}

// --- a stock codex exec-server ---------------------------------------------------------------

TEST(ExecClientHttpCodex, BufferedAndStreamedRequests) {
  CodexExecServer codex;
  buffered_and_streamed(codex.url(), "codex");
}

// codex has no http/request/cancel (-32601): the exchange still ends for its reader, codex's
// stream runs to the end of the body, and the connection goes on serving.
TEST(ExecClientHttpCodex, CancelIsAnsweredMethodNotFoundAndBreaksNothing) {
  CodexExecServer codex;
  HttpPeer peer;
  const auto request = get(peer.url("/slow?pieces=20&ms=25"));
  run_async([&]() -> asio::awaitable<void> {
    auto endpoint = ws_endpoint(codex.url());
    auto client = co_await connect_client(std::move(endpoint));
    CO_ASSERT_TRUE(client != nullptr);
    auto http = client->http_client("codex");
    auto exchange = http->start(request);
    auto head = co_await exchange->head();
    CO_ASSERT_TRUE(succeeded(head, "GET /slow through codex"));
    auto first = co_await exchange->read();
    CO_ASSERT_TRUE(succeeded(first, "the first read() through codex"));
    EXPECT_TRUE(first->starts_with("piece-0\n")) << *first;

    exchange->cancel();
    auto after = co_await exchange->read();
    CO_ASSERT_TRUE(!after);
    EXPECT_EQ(after.error().code, code::kRequestCancelled) << after.error().message;

    // Once codex's stream ended by itself, the client still works, buffered and streamed. codex
    // keeps its connection to the server for the next request: the server closes it after its
    // keep-alive timeout (5 s).
    const bool idle = co_await wait_idle(peer, kCodexIdle);
    EXPECT_TRUE(idle) << "codex's stream did not end with its body";
    EXPECT_FALSE(client->disconnected().has_value()) << client->disconnected().value_or("");
    std::string origin = "codex";
    co_await buffered_echo(*client, peer);
    co_await streamed_slow(*client, peer, std::move(origin));
    co_await client->close();
  });
}

}  // namespace
}  // namespace tether::testing
