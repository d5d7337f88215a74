// jsonrpc::Peer over real byte streams: two Peers joined by a pair of pipes through
// make_line_transport (and, for the WebSocket-only rules, a real WebSocket pair on 127.0.0.1).
// Covers: responses in any order, concurrent calls, call timeouts (-32090) and the late response
// going to on_unmatched_response, the end of the transport failing every pending call
// (-32091), calls after the end, malformed input (-32700, id null, connection kept), invalid
// requests (-32600), requests without a handler (-32601), a cancelled reply left unanswered,
// handler ordering of notifications
// relative to requests, send queue accounting (queued_bytes, wait_writable against a reader
// that does not read), the read loop pausing at max_in_flight_requests, close() flushing the
// queue first, and over WebSocket: a binary frame
// closes with 1003, a message over read_message_max closes with 1009, and delivery confirmation
// (on_delivered only after the remote read the message and answered the ping behind it).
#include <algorithm>
#include <array>
#include <fcntl.h>
#include <memory>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "exec_server.hpp"
#include <tether/jsonrpc/async_signal.hpp>
#include <tether/jsonrpc/peer.hpp>
#include <tether/jsonrpc/transport.hpp>

namespace tether::jsonrpc {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using testing::eventually;
using testing::run_async;
using testing::sleep_for;
using namespace std::chrono_literals;

constexpr auto kWait = 10s;  // bound of every eventually() below

struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
};

Pipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  return Pipe{fds[0], fds[1]};
}

// Owns a raw descriptor the test holds itself (the far end of a Peer's pipe).
struct FdGuard {
  int fd = -1;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

std::unique_ptr<Transport> line_transport(const asio::any_io_executor& ex, int input, int output,
                                          std::size_t max_message_bytes = 1 << 20) {
  return make_line_transport(asio::posix::stream_descriptor(ex, input),
                             asio::posix::stream_descriptor(ex, output), max_message_bytes);
}

// Runs peer->run() in its own coroutine; the flag turns true once run() returned.
std::shared_ptr<bool> start(const std::shared_ptr<Peer>& peer) {
  auto ended = std::make_shared<bool>(false);
  asio::co_spawn(
      peer->get_executor(),
      [peer, ended]() -> asio::awaitable<void> {
        co_await peer->run();
        *ended = true;
      },
      asio::detached);
  return ended;
}

// Two peers joined by two pipes (client -> server, server -> client), not started yet so that
// handlers can be installed first.
struct PeerPair {
  std::shared_ptr<Peer> client;
  std::shared_ptr<Peer> server;
  std::shared_ptr<bool> client_ended;
  std::shared_ptr<bool> server_ended;

  void start_both() {
    client_ended = start(client);
    server_ended = start(server);
  }
  void abort_both() {
    client->abort("test finished");
    server->abort("test finished");
  }
};

PeerPair make_peer_pair(const asio::any_io_executor& ex, PeerOptions options = {}) {
  const Pipe to_server = make_pipe();
  const Pipe to_client = make_pipe();
  PeerPair pair;
  pair.client =
      Peer::create(ex, line_transport(ex, to_client.read_fd, to_server.write_fd), options);
  pair.server =
      Peer::create(ex, line_transport(ex, to_server.read_fd, to_client.write_fd), options);
  return pair;
}

// A latch a handler can wait on until the test (or another handler) opens it.
struct Gate {
  explicit Gate(const asio::any_io_executor& ex) : signal(ex) {}
  asio::awaitable<void> wait() {
    while (!open) co_await signal.wait();
  }
  void release() {
    open = true;
    signal.notify_all();
  }
  bool open = false;
  AsyncSignal signal;
};

// State shared by the handlers of one test. Held by shared_ptr in the handlers so that a handler
// still suspended when the test body ends never touches a destroyed object.
struct ServerState {
  explicit ServerState(const asio::any_io_executor& ex) : gate(ex) {}
  Gate gate;
  std::vector<std::string> log;
  int started = 0;
};

// Responses that matched no call, collected on the client.
struct Unmatched {
  std::vector<Response> responses;
};

void collect_unmatched(Peer& peer, const std::shared_ptr<Unmatched>& into) {
  peer.on_unmatched_response([into](Response r) { into->responses.push_back(std::move(r)); });
}

int error_code_of(const Reply& reply) {
  return reply ? 0 : reply.error().code;
}

TEST(Peer, ResponsesInAnyOrder) {
  run_async([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto pair = make_peer_pair(ex);
    auto state = std::make_shared<ServerState>(ex);
    // "first" is answered only after "second" arrived: the responses cross.
    pair.server->on_request([state](Request r) -> asio::awaitable<Reply> {
      ++state->started;
      if (r.method == "first") {
        co_await state->gate.wait();
        state->log.push_back("first answered");
        co_return json::value("first-result");
      }
      state->gate.release();
      state->log.push_back("second answered");
      co_return json::value("second-result");
    });
    pair.start_both();

    auto order = std::make_shared<std::vector<std::string>>();
    auto first = std::make_shared<std::optional<Reply>>();
    auto client = pair.client;
    asio::co_spawn(
        ex,
        [client, first, order]() -> asio::awaitable<void> {
          *first = co_await client->call("first", nullptr);
          order->push_back("first");
        },
        asio::detached);
    // "second" goes out only once the server is inside "first".
    CO_ASSERT_TRUE(co_await eventually([&] { return state->started == 1; }, kWait));
    auto second = co_await client->call("second", nullptr);
    order->push_back("second");
    EXPECT_TRUE(co_await eventually([&] { return first->has_value(); }, kWait))
        << "the first call never completed";
    CO_ASSERT_TRUE(second);
    EXPECT_EQ(*second, json::value("second-result"));
    CO_ASSERT_TRUE(first->has_value() && **first);
    EXPECT_EQ(***first, json::value("first-result"));
    EXPECT_EQ(*order, (std::vector<std::string>{"second", "first"}));
    EXPECT_EQ(state->log, (std::vector<std::string>{"second answered", "first answered"}));
    pair.abort_both();
  });
}

TEST(Peer, ConcurrentCallsEachGetTheirOwnResult) {
  run_async([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto pair = make_peer_pair(ex);
    // Echo after a yield, so many calls are in flight at once.
    pair.server->on_request([](Request r) -> asio::awaitable<Reply> {
      co_await sleep_for(std::chrono::milliseconds(r.params.as_int64() % 7));
      co_return json::value{{"echo", r.params}};
    });
    pair.start_both();

    constexpr int kCalls = 64;
    auto results = std::make_shared<std::vector<std::optional<Reply>>>(kCalls);
    auto client = pair.client;
    for (int i = 0; i < kCalls; ++i) {
      asio::co_spawn(
          ex,
          [client, results, i]() -> asio::awaitable<void> {
            (*results)[static_cast<std::size_t>(i)] = co_await client->call("echo", json::value(i));
          },
          asio::detached);
    }
    const bool all_done = co_await eventually(
        [&] {
          return std::all_of(results->begin(), results->end(),
                             [](const auto& r) { return r.has_value(); });
        },
        kWait);
    CO_ASSERT_TRUE(all_done);
    for (int i = 0; i < kCalls; ++i) {
      const auto& reply = *(*results)[static_cast<std::size_t>(i)];
      CO_ASSERT_TRUE(reply);
      EXPECT_EQ(*reply, (json::value{{"echo", i}})) << "call " << i;
    }
    pair.abort_both();
  });
}

TEST(Peer, CallTimeoutThenLateResponseGoesToUnmatched) {
  run_async([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto pair = make_peer_pair(ex);
    auto state = std::make_shared<ServerState>(ex);
    pair.server->on_request([state](Request r) -> asio::awaitable<Reply> {
      ++state->started;
      if (r.method == "slow") {
        co_await state->gate.wait();
        co_return json::value("late");
      }
      co_return json::value("fast");
    });
    auto unmatched = std::make_shared<Unmatched>();
    collect_unmatched(*pair.client, unmatched);
    pair.start_both();

    auto timed_out = co_await pair.client->call("slow", nullptr, 50ms);
    EXPECT_EQ(error_code_of(timed_out), code::kRequestTimedOut);
    EXPECT_TRUE(co_await eventually([&] { return state->started == 1; }, kWait));

    // The server answers after all; the client no longer waits for id 1.
    state->gate.release();
    const bool got_late = co_await eventually([&] { return !unmatched->responses.empty(); }, kWait);
    CO_ASSERT_TRUE(got_late);
    CO_ASSERT_EQ(unmatched->responses.size(), 1u);
    const auto& late = unmatched->responses.front();
    EXPECT_EQ(late.id, std::optional<Id>(Id{std::int64_t{1}}));
    CO_ASSERT_TRUE(late.reply);
    EXPECT_EQ(*late.reply, json::value("late"));

    // The connection is still fine.
    EXPECT_FALSE(pair.client->is_closed());
    auto fast = co_await pair.client->call("fast", nullptr, 5000ms);
    CO_ASSERT_TRUE(fast);
    EXPECT_EQ(*fast, json::value("fast"));
    pair.abort_both();
  });
}

TEST(Peer, TransportEndFailsEveryPendingCall) {
  run_async([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto pair = make_peer_pair(ex);
    auto state = std::make_shared<ServerState>(ex);
    pair.server->on_request([state](Request) -> asio::awaitable<Reply> {
      ++state->started;
      co_await state->gate.wait();  // never answered before the connection ends
      co_return json::value(nullptr);
    });
    pair.start_both();

    constexpr int kCalls = 3;
    auto results = std::make_shared<std::vector<std::optional<Reply>>>(kCalls);
    auto client = pair.client;
    for (int i = 0; i < kCalls; ++i) {
      asio::co_spawn(
          ex,
          [client, results, i]() -> asio::awaitable<void> {
            (*results)[static_cast<std::size_t>(i)] = co_await client->call("hang", nullptr);
          },
          asio::detached);
    }
    CO_ASSERT_TRUE(co_await eventually([&] { return state->started == kCalls; }, kWait));

    pair.server->abort("server goes away");  // the client sees EOF
    const bool all_failed = co_await eventually(
        [&] {
          return std::all_of(results->begin(), results->end(),
                             [](const auto& r) { return r.has_value(); });
        },
        kWait);
    CO_ASSERT_TRUE(all_failed);
    for (const auto& r : *results) EXPECT_EQ(error_code_of(*r), code::kConnectionClosed);
    EXPECT_TRUE(pair.client->is_closed());
    EXPECT_FALSE(pair.client->end_reason().empty());
    EXPECT_TRUE(co_await eventually([&] { return *pair.client_ended; }, kWait));

    // After the end a call fails without waiting (no timeout given: it would hang otherwise),
    // and sends are dropped.
    auto after = co_await pair.client->call("late", nullptr);
    EXPECT_EQ(error_code_of(after), code::kConnectionClosed);
    pair.client->notify("ignored", nullptr);
    EXPECT_EQ(pair.client->queued_bytes(), 0u);
    state->gate.release();
  });
}

TEST(Peer, LocalAbortFailsPendingCallsAndLaterCalls) {
  run_async([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto pair = make_peer_pair(ex);
    auto state = std::make_shared<ServerState>(ex);
    pair.server->on_request([state](Request) -> asio::awaitable<Reply> {
      ++state->started;
      co_await state->gate.wait();
      co_return json::value(nullptr);
    });
    pair.start_both();
    auto result = std::make_shared<std::optional<Reply>>();
    auto client = pair.client;
    asio::co_spawn(
        ex,
        [client, result]() -> asio::awaitable<void> {
          *result = co_await client->call("hang", nullptr);
        },
        asio::detached);
    CO_ASSERT_TRUE(co_await eventually([&] { return state->started == 1; }, kWait));
    pair.client->abort("given up");
    CO_ASSERT_TRUE(co_await eventually([&] { return result->has_value(); }, kWait));
    EXPECT_EQ(error_code_of(**result), code::kConnectionClosed);
    EXPECT_EQ(pair.client->end_reason(), "given up");
    auto after = co_await pair.client->call("x", nullptr);
    EXPECT_EQ(error_code_of(after), code::kConnectionClosed);
    // The server notices the end too.
    EXPECT_TRUE(co_await eventually([&] { return *pair.server_ended; }, kWait));
    state->gate.release();
  });
}

TEST(Peer, MalformedInputGetsParseErrorWithNullIdAndConnectionStays) {
  run_async([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto pair = make_peer_pair(ex);
    pair.server->on_request([](Request r) -> asio::awaitable<Reply> { co_return r.params; });
    auto unmatched = std::make_shared<Unmatched>();
    collect_unmatched(*pair.client, unmatched);
    pair.start_both();

    pair.client->send("{this is not json");
    pair.client->send("{\"id\":1,\"method\":");
    const bool answered =
        co_await eventually([&] { return unmatched->responses.size() == 2; }, kWait);
    CO_ASSERT_TRUE(answered);
    for (const auto& r : unmatched->responses) {
      EXPECT_FALSE(r.id);  // "id": null
      CO_ASSERT_TRUE(!r.reply);
      EXPECT_EQ(r.reply.error().code, code::kParseError);
    }
    EXPECT_FALSE(pair.server->is_closed());
    auto reply = co_await pair.client->call("echo", json::value("still here"), 5000ms);
    CO_ASSERT_TRUE(reply);
    EXPECT_EQ(*reply, json::value("still here"));
    pair.abort_both();
  });
}

TEST(Peer, InvalidRequestGetsInvalidRequestError) {
  run_async([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto pair = make_peer_pair(ex);
    auto state = std::make_shared<ServerState>(ex);
    pair.server->on_request([state](Request) -> asio::awaitable<Reply> {
      ++state->started;
      co_return json::value(nullptr);
    });
    auto unmatched = std::make_shared<Unmatched>();
    collect_unmatched(*pair.client, unmatched);
    pair.start_both();

    pair.client->send(R"({"jsonrpc":"2.0","id":"bad-method","method":5})");
    pair.client->send(R"({"jsonrpc":"1.0","id":"bad-version","method":"m"})");
    pair.client->send(R"([{"jsonrpc":"2.0","id":"batch","method":"m"}])");
    pair.client->send(R"({"jsonrpc":"2.0","id":1.5,"method":"m"})");
    const bool answered =
        co_await eventually([&] { return unmatched->responses.size() == 4; }, kWait);
    CO_ASSERT_TRUE(answered);
    const std::vector<std::optional<Id>> expected_ids{
        Id{std::string("bad-method")}, Id{std::string("bad-version")}, std::nullopt, std::nullopt};
    for (std::size_t i = 0; i < 4; ++i) {
      const auto& r = unmatched->responses[i];
      EXPECT_EQ(r.id, expected_ids[i]) << "response " << i;
      CO_ASSERT_TRUE(!r.reply);
      EXPECT_EQ(r.reply.error().code, code::kInvalidRequest) << "response " << i;
    }
    EXPECT_EQ(state->started, 0);  // no handler saw any of them
    EXPECT_FALSE(pair.server->is_closed());
    pair.abort_both();
  });
}

TEST(Peer, RequestWithoutHandlerIsMethodNotFound) {
  run_async([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto pair = make_peer_pair(ex);
    pair.start_both();                      // the server has no request handler
    json::value params(json::array{1, 2});  // built outside co_await (GCC 12)
    auto reply = co_await pair.client->call("anything", std::move(params), 5000ms);
    EXPECT_EQ(error_code_of(reply), code::kMethodNotFound);
    // Notifications without a handler are dropped silently, and the connection stays.
    pair.client->notify("nobody/listens", nullptr);
    auto again = co_await pair.client->call("anything", nullptr, 5000ms);
    EXPECT_EQ(error_code_of(again), code::kMethodNotFound);
    pair.abort_both();
  });
}

TEST(Peer, ACancelledReplyIsNotAnswered) {
  run_async([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto pair = make_peer_pair(ex);
    pair.server->on_request([](Request r) -> asio::awaitable<Reply> {
      if (r.method == "cancelled")
        co_return Reply{boost::system::in_place_error,
                        make_error(code::kRequestCancelled, "cancelled by the client")};
      co_return json::value("answered");
    });
    auto unmatched = std::make_shared<Unmatched>();
    collect_unmatched(*pair.client, unmatched);
    pair.start_both();
    pair.client->send(serialize(Request{Id{"c1"}, "cancelled", nullptr}));
    // Answers come in order on one pipe: once the second is in, the first would have been too.
    pair.client->send(serialize(Request{Id{"c2"}, "plain", nullptr}));
    CO_ASSERT_TRUE(co_await eventually([&] { return !unmatched->responses.empty(); }, kWait));
    EXPECT_EQ(unmatched->responses.size(), 1U);
    EXPECT_EQ(to_string(*unmatched->responses.front().id), "c2");
    pair.abort_both();
  });
}

TEST(Peer, NotificationsAndRequestsReachHandlersInArrivalOrder) {
  run_async([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto pair = make_peer_pair(ex);
    auto state = std::make_shared<ServerState>(ex);
    // Each handler records before its first suspension, which the Peer guarantees happens in
    // arrival order.
    pair.server->on_request([state](Request r) -> asio::awaitable<Reply> {
      state->log.push_back("request " + std::to_string(r.params.as_int64()));
      co_await sleep_for(1ms);
      co_return json::value(nullptr);
    });
    pair.server->on_notification([state](Notification n) {
      state->log.push_back("notification " + std::to_string(n.params.as_int64()));
    });
    auto unmatched = std::make_shared<Unmatched>();
    collect_unmatched(*pair.client, unmatched);
    pair.start_both();

    std::vector<std::string> expected;
    for (int i = 0; i < 40; ++i) {
      // Requests carry string ids the client never used, so their answers land in unmatched.
      if (i % 3 == 0) {
        pair.client->notify("note", json::value(i));
        expected.push_back("notification " + std::to_string(i));
      } else {
        pair.client->send(serialize(Request{Id{"r" + std::to_string(i)}, "req", json::value(i)}));
        expected.push_back("request " + std::to_string(i));
      }
    }
    const bool all_seen =
        co_await eventually([&] { return state->log.size() == expected.size(); }, kWait);
    CO_ASSERT_TRUE(all_seen);
    EXPECT_EQ(state->log, expected);
    EXPECT_TRUE(co_await eventually([&] { return unmatched->responses.size() == 26; }, kWait));
    pair.abort_both();
  });
}

TEST(Peer, QueuedBytesAndWaitWritableAgainstASlowReader) {
  run_async([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    const Pipe out = make_pipe();  // the peer writes here; the test reads (or not)
    const Pipe in = make_pipe();   // the peer reads here; nobody writes
    FdGuard in_writer{in.write_fd};
    PeerOptions options;
    options.send_high_water = 16 * 1024;
    auto peer = Peer::create(ex, line_transport(ex, in.read_fd, out.write_fd), options);
    auto ended = start(peer);

    // Accounting is synchronous: the serialized size of each queued message.
    const std::string payload(1000, 'x');
    const std::size_t one = serialize(Notification{"bulk", json::value(payload)}).size();
    EXPECT_EQ(peer->queued_bytes(), 0u);
    peer->notify("bulk", json::value(payload));
    EXPECT_EQ(peer->queued_bytes(), one);
    // Far more than a pipe holds (64 KiB by default) plus the high-water mark.
    constexpr std::size_t kMessages = 400;
    for (std::size_t i = 1; i < kMessages; ++i) peer->notify("bulk", json::value(payload));
    EXPECT_EQ(peer->queued_bytes(), kMessages * one);

    auto writable = std::make_shared<bool>(false);
    auto queued_when_writable = std::make_shared<std::size_t>(0);
    asio::co_spawn(
        ex,
        [peer, writable, queued_when_writable]() -> asio::awaitable<void> {
          co_await peer->wait_writable();
          *queued_when_writable = peer->queued_bytes();
          *writable = true;
        },
        asio::detached);
    // The writer fills the pipe and then blocks; nothing reads, so the queue cannot get under
    // the mark however long we wait here.
    co_await sleep_for(100ms);
    EXPECT_FALSE(*writable) << "wait_writable returned while the reader was not reading";
    EXPECT_GT(peer->queued_bytes(), options.send_high_water);
    EXPECT_LT(peer->queued_bytes(), kMessages * one);  // some was written

    // Now drain the pipe.
    auto lines = std::make_shared<std::size_t>(0);
    auto reader = std::make_shared<asio::posix::stream_descriptor>(ex, out.read_fd);
    asio::co_spawn(
        ex,
        [reader, lines]() -> asio::awaitable<void> {
          std::array<char, 16384> buffer;
          for (;;) {
            boost::system::error_code ec;
            const std::size_t n = co_await reader->async_read_some(
                asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
            if (ec) co_return;
            *lines +=
                static_cast<std::size_t>(std::count(buffer.begin(), buffer.begin() + n, '\n'));
          }
        },
        asio::detached);
    EXPECT_TRUE(co_await eventually([&] { return *writable; }, kWait))
        << "wait_writable did not return after the reader drained the pipe";
    EXPECT_LE(*queued_when_writable, options.send_high_water);
    EXPECT_TRUE(co_await eventually([&] { return *lines == kMessages; }, kWait))
        << "received " << *lines << " of " << kMessages << " lines";
    EXPECT_EQ(peer->queued_bytes(), 0u);

    // Under the mark, wait_writable completes at once.
    co_await peer->wait_writable();
    peer->abort("test finished");
    reader->close();
    EXPECT_TRUE(co_await eventually([&] { return *ended; }, kWait));
  });
}

// With max_in_flight_requests, the read loop reads no further request while that many handlers
// run: a remote that pipelines requests gets them served `cap` at a time, in order, and all of
// them answered in the end.
TEST(Peer, ReadingPausesWhileTheInFlightCapIsReached) {
  run_async([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    PeerOptions options;
    options.max_in_flight_requests = 2;
    auto pair = make_peer_pair(ex, options);
    auto state = std::make_shared<ServerState>(ex);
    auto running = std::make_shared<int>(0);
    auto most = std::make_shared<int>(0);
    pair.server->on_request([state, running, most](Request r) -> asio::awaitable<Reply> {
      ++state->started;
      *most = std::max(*most, ++*running);
      state->log.push_back(r.method);
      // Each handler waits for the gate the test opens once per round.
      co_await state->gate.wait();
      --*running;
      co_return json::value(r.method);
    });
    pair.start_both();

    constexpr int kCalls = 10;
    auto answered = std::make_shared<int>(0);
    auto client = pair.client;
    for (int i = 0; i < kCalls; ++i) {
      asio::co_spawn(
          ex,
          [client, answered, i]() -> asio::awaitable<void> {
            auto reply = co_await client->call("m" + std::to_string(i), nullptr);
            if (reply) ++*answered;
          },
          asio::detached);
    }
    // Round by round: wait until handlers are running, let them finish, close the gate again.
    while (*answered < kCalls) {
      const int before = *answered;
      CO_ASSERT_TRUE(co_await eventually([&] { return *running > 0; }, kWait));
      state->gate.release();
      CO_ASSERT_TRUE(co_await eventually([&] { return *answered > before; }, kWait));
      state->gate.open = false;
    }
    EXPECT_EQ(*most, 2) << "handlers running at once";
    std::vector<std::string> expected;
    for (int i = 0; i < kCalls; ++i) expected.push_back("m" + std::to_string(i));
    EXPECT_EQ(state->log, expected);
    pair.abort_both();
  });
}

TEST(Peer, WaitWritableReturnsWhenTheConnectionEnds) {
  run_async([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    const Pipe out = make_pipe();
    const Pipe in = make_pipe();
    FdGuard out_reader{out.read_fd};  // never read
    FdGuard in_writer{in.write_fd};
    PeerOptions options;
    options.send_high_water = 1024;
    auto peer = Peer::create(ex, line_transport(ex, in.read_fd, out.write_fd), options);
    start(peer);
    const std::string payload(4096, 'y');
    for (int i = 0; i < 64; ++i) peer->notify("bulk", json::value(payload));
    auto writable = std::make_shared<bool>(false);
    asio::co_spawn(
        ex,
        [peer, writable]() -> asio::awaitable<void> {
          co_await peer->wait_writable();
          *writable = true;
        },
        asio::detached);
    co_await sleep_for(50ms);
    EXPECT_FALSE(*writable);
    peer->abort("reader gone");
    EXPECT_TRUE(co_await eventually([&] { return *writable; }, kWait));
    EXPECT_EQ(peer->queued_bytes(), 0u);  // the queue is dropped at the end
  });
}

TEST(Peer, CloseSendsQueuedMessagesBeforeClosing) {
  run_async([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto pair = make_peer_pair(ex);
    auto received = std::make_shared<std::vector<std::int64_t>>();
    pair.server->on_notification([received](Notification n) {
      if (n.method == "n") received->push_back(n.params.as_int64());
    });
    pair.start_both();

    constexpr int kMessages = 300;
    const std::string padding(500, 'p');
    for (int i = 0; i < kMessages; ++i) {
      pair.client->send(serialize(Notification{"n", json::value(i)}));
      pair.client->send(serialize(Notification{"pad", json::value(padding)}));
    }
    EXPECT_GT(pair.client->queued_bytes(), 0u);
    pair.client->close();
    pair.client->notify("n", json::value(-1));  // after close(): dropped
    EXPECT_FALSE(pair.client->is_closed());     // still flushing

    // The server reads everything, then EOF: a clean close on a line transport.
    EXPECT_TRUE(co_await eventually([&] { return *pair.server_ended; }, kWait));
    std::vector<std::int64_t> expected(kMessages);
    for (int i = 0; i < kMessages; ++i) expected[static_cast<std::size_t>(i)] = i;
    EXPECT_EQ(*received, expected);
    EXPECT_EQ(pair.server->remote_close_code(), std::optional<std::uint16_t>(close_code::kNormal));
    EXPECT_TRUE(co_await eventually([&] { return *pair.client_ended; }, kWait));
    EXPECT_TRUE(pair.client->is_closed());
    pair.abort_both();
  });
}

// --- WebSocket ---------------------------------------------------------------------------

// A server Peer on a real WebSocket at 127.0.0.1 (Beast acceptor), accepting one connection.
struct WebSocketServer {
  std::shared_ptr<asio::ip::tcp::acceptor> acceptor;
  std::shared_ptr<std::shared_ptr<Peer>> peer = std::make_shared<std::shared_ptr<Peer>>();
  std::shared_ptr<bool> ended = std::make_shared<bool>(false);
  unsigned short port() const { return acceptor->local_endpoint().port(); }
};

WebSocketServer serve_one(const asio::any_io_executor& ex, std::size_t max_message_bytes) {
  WebSocketServer server;
  server.acceptor = std::make_shared<asio::ip::tcp::acceptor>(
      ex, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  asio::co_spawn(
      ex,
      [acceptor = server.acceptor, peer = server.peer, ended = server.ended,
       max_message_bytes]() -> asio::awaitable<void> {
        auto socket = co_await acceptor->async_accept(asio::use_awaitable);
        WebSocket ws(std::move(socket));
        co_await ws.async_accept(asio::use_awaitable);
        WebSocketLimits limits;
        limits.max_message_bytes = max_message_bytes;
        *peer = Peer::create(co_await asio::this_coro::executor,
                             make_websocket_transport(std::move(ws), limits), {});
        co_await (*peer)->run();
        *ended = true;
      },
      asio::detached);
  return server;
}

// Reads until the remote closes; returns its close code (nullopt if the read failed otherwise).
asio::awaitable<std::optional<std::uint16_t>> read_close_code(WebSocket& ws) {
  beast::flat_buffer buffer;
  for (;;) {
    boost::system::error_code ec;
    co_await ws.async_read(buffer, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == websocket::error::closed) co_return ws.reason().code;
    if (ec) co_return std::nullopt;
    buffer.clear();
  }
}

TEST(PeerWebSocket, BinaryFrameClosesWith1003) {
  run_async(
      []() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto server = serve_one(ex, 1024);
        auto ws = co_await testing::ws_connect(server.port());

        // A text frame is a message: without a handler the server answers -32601.
        ws.text(true);
        const std::string request = R"({"jsonrpc":"2.0","id":1,"method":"m"})";
        co_await ws.async_write(asio::buffer(request), asio::use_awaitable);
        beast::flat_buffer buffer;
        co_await ws.async_read(buffer, asio::use_awaitable);
        EXPECT_TRUE(ws.got_text());
        auto answer = parse(beast::buffers_to_string(buffer.data()));
        CO_ASSERT_TRUE(answer && std::holds_alternative<Response>(*answer));
        EXPECT_EQ(error_code_of(std::get<Response>(*answer).reply), code::kMethodNotFound);

        ws.binary(true);
        const std::string bytes = "\x01\x02\x03";
        co_await ws.async_write(asio::buffer(bytes), asio::use_awaitable);
        auto code = co_await read_close_code(ws);
        EXPECT_EQ(code, std::optional<std::uint16_t>(close_code::kUnsupportedData));
        EXPECT_TRUE(co_await eventually([&] { return *server.ended; }, kWait));
        if (*server.peer) (*server.peer)->abort("test finished");
      },
      30s, "binary frame test");
}

TEST(PeerWebSocket, MessageOverTheLimitClosesWith1009) {
  run_async(
      []() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto server = serve_one(ex, 1024);
        auto ws = co_await testing::ws_connect(server.port());
        ws.text(true);
        // At the limit: still a message (answered -32601 as there is no handler).
        std::string at_limit = R"({"jsonrpc":"2.0","id":1,"method":"m","params":")";
        at_limit += std::string(1024 - at_limit.size() - 2, 'a') + "\"}";
        CO_ASSERT_EQ(at_limit.size(), 1024u);
        co_await ws.async_write(asio::buffer(at_limit), asio::use_awaitable);
        beast::flat_buffer buffer;
        co_await ws.async_read(buffer, asio::use_awaitable);
        auto answer = parse(beast::buffers_to_string(buffer.data()));
        CO_ASSERT_TRUE(answer && std::holds_alternative<Response>(*answer));
        EXPECT_EQ(error_code_of(std::get<Response>(*answer).reply), code::kMethodNotFound);

        const std::string too_big(1025, ' ');
        co_await ws.async_write(asio::buffer(too_big), asio::use_awaitable);
        auto code = co_await read_close_code(ws);
        EXPECT_EQ(code, std::optional<std::uint16_t>(close_code::kTooBig));
        EXPECT_TRUE(co_await eventually([&] { return *server.ended; }, kWait));
        if (*server.peer) (*server.peer)->abort("test finished");
      },
      30s, "oversized message test");
}

// Waits until `*count` reaches `expected`, then aborts `peer`; returns whether it got there.
asio::awaitable<bool> count_then_abort(std::shared_ptr<int> count, int expected,
                                       std::shared_ptr<Peer> peer) {
  const bool reached = co_await eventually([&] { return *count == expected; }, kWait);
  peer->abort("test finished");
  co_return reached;
}

// A message written to the socket is not delivered until the remote reads it: the callback waits
// for the pong to the ping written after it, which the remote sends only when its reader gets
// there. On a line transport (no pings) written is all there is to know.
TEST(PeerWebSocket, OnDeliveredWaitsForTheRemoteToReadPastTheMessage) {
  run_async(
      []() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto server = serve_one(ex, 1024);
        auto ws = co_await testing::ws_connect(server.port());
        CO_ASSERT_TRUE(co_await eventually([&] { return *server.peer != nullptr; }, kWait));
        auto delivered = std::make_shared<int>(0);
        (*server.peer)->send(R"({"jsonrpc":"2.0","method":"n","params":{}})", [delivered] {
          ++*delivered;
        });
        (*server.peer)->send(R"({"jsonrpc":"2.0","method":"n","params":{}})", [delivered] {
          ++*delivered;
        });
        CO_ASSERT_TRUE(
            co_await eventually([&] { return (*server.peer)->queued_bytes() == 0; }, kWait));
        co_await sleep_for(50ms);  // room for a (wrong) early confirmation to show
        EXPECT_EQ(*delivered, 0) << "confirmed before the remote read anything";

        // Reading the two messages makes Beast answer the ping queued behind them.
        beast::flat_buffer buffer;
        co_await ws.async_read(buffer, asio::use_awaitable);
        co_await ws.async_read(buffer, asio::use_awaitable);
        // Keep reading (the ping is processed by a read) until the server is done.
        using namespace asio::experimental::awaitable_operators;
        auto [close, confirmed] =
            co_await (read_close_code(ws) && count_then_abort(delivered, 2, *server.peer));
        EXPECT_TRUE(confirmed) << "delivered " << *delivered << " of 2";
      },
      30s, "delivery confirmation test");
}

TEST(Peer, OnDeliveredRunsOnceWrittenOnALineTransport) {
  run_async(
      []() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto pair = make_peer_pair(ex);
        pair.start_both();
        bool delivered = false;
        pair.server->send(R"({"jsonrpc":"2.0","method":"n","params":{}})",
                          [&delivered] { delivered = true; });
        EXPECT_TRUE(co_await eventually([&] { return delivered; }, kWait));
        pair.abort_both();
      },
      30s, "line delivery test");
}

}  // namespace
}  // namespace tether::jsonrpc
