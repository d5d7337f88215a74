// http/request on the wire (docs/exec-protocol.md "HTTP"): the real `tether exec-server` makes
// requests to http_peer.mjs on loopback for a TestClient.
//
// Shows: buffered answers carry the status, the headers (values that are not UTF-8 left out) and
// the body byte for byte, with the request's repeated headers kept in order, in both dialects;
// a streamed body comes as bodyDelta notifications seq 1..n after a result with an
// empty body, the last one done (with the error when it failed); the limits (a buffered body over
// --max-http-body-bytes, --max-http-requests calls open at once), timeouts, refused ports,
// redirects followed or stopped, https trusting SSL_CERT_FILE; http/request/cancel, a client that
// goes away and a client that stops reading leave no connection open at the server and do not
// let the executor read more than its queues hold; invalid params are -32602.
// Every wait is bounded; no test asserts on wall time; only loopback traffic.
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/algorithm/string/predicate.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "codex_exec_server.hpp"
#include "exec_server.hpp"
#include "http_peer.hpp"
#include "test_certificates.hpp"
#include "test_client.hpp"
#include <tether/jsonrpc/error.hpp>

namespace tether::testing {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace code = jsonrpc::code;

// Named: a duration converted inside a co_await expression would be a class temporary there.
constexpr std::chrono::milliseconds kCallTimeout{30'000};
constexpr std::chrono::milliseconds kSettle{10'000};
constexpr std::chrono::milliseconds kStream{60'000};
constexpr std::chrono::milliseconds kPoll{100};
constexpr std::size_t kMiB = std::size_t{1} << 20;

// --- params, built outside coroutines (GCC 12 miscompiles braced JSON inside them) ------------

json::array header_array(const HeaderPairs& headers) {
  json::array out;
  for (const auto& [name, value] : headers)
    out.push_back(json::object{{"name", name}, {"value", value}});
  return out;
}

json::object http_params(std::string method, std::string url, const HeaderPairs& headers = {}) {
  return json::object{
      {"method", std::move(method)}, {"url", std::move(url)}, {"headers", header_array(headers)}};
}

json::object get_params(std::string url) {
  return http_params("GET", std::move(url));
}

json::object streamed(json::object params, std::string request_id) {
  params["requestId"] = std::move(request_id);
  params["streamResponse"] = true;
  return params;
}

json::object with(json::object params, std::string_view name, json::value value) {
  params[name] = std::move(value);
  return params;
}

json::object cancel_params(std::string request_id) {
  return json::object{{"requestId", std::move(request_id)}};
}

ExecServer::Options server_args(std::vector<std::string> extra) {
  ExecServer::Options options;
  options.args.insert(options.args.end(), extra.begin(), extra.end());
  return options;
}

// --- calls -------------------------------------------------------------------------------------

asio::awaitable<jsonrpc::Reply> call_method(TestClient& client, const char* name,
                                            json::object params) {
  const std::string method = name;
  const json::value value = std::move(params);
  co_return co_await client.call(method, value, kCallTimeout);
}

asio::awaitable<jsonrpc::Reply> http_call(TestClient& client, json::object params) {
  co_return co_await call_method(client, "http/request", std::move(params));
}

asio::awaitable<jsonrpc::Reply> cancel_call(TestClient& client, std::string request_id) {
  auto params = cancel_params(std::move(request_id));
  co_return co_await call_method(client, "http/request/cancel", std::move(params));
}

// TestClient's connect and initialize with every argument named: GCC 12 builds a default
// argument of class type wrongly when the call is inside a co_await expression.
asio::awaitable<std::shared_ptr<TestClient>> connect_only(unsigned short port) {
  const Headers none;
  co_return co_await TestClient::connect(port, none);
}

asio::awaitable<std::shared_ptr<TestClient>> connect_initialized(unsigned short port) {
  auto client = co_await connect_only(port);
  const std::optional<std::string> fresh;
  co_await client->initialize(fresh);
  co_return client;
}

asio::awaitable<jsonrpc::Response> raw(TestClient& client, json::object request) {
  co_return co_await client.raw_call(std::move(request), kCallTimeout);
}

// An http/request left running in the background; `reply` is set once it is answered.
struct Pending {
  std::optional<jsonrpc::Reply> reply;
};

asio::awaitable<void> call_in_background(std::shared_ptr<TestClient> client, json::object params,
                                         std::shared_ptr<Pending> pending) {
  pending->reply = co_await http_call(*client, std::move(params));
}

bool answered(const jsonrpc::Reply& reply, std::string_view what) {
  if (reply) return true;
  ADD_FAILURE() << what << " failed (" << reply.error().code << "): " << reply.error().message;
  return false;
}

// An error with `code` whose message contains `needle`.
::testing::AssertionResult fails_with(const jsonrpc::Reply& reply, int code,
                                      std::string_view needle) {
  if (reply) return ::testing::AssertionFailure() << "succeeded: " << json::serialize(*reply);
  if (reply.error().code != code || reply.error().message.find(needle) == std::string::npos)
    return ::testing::AssertionFailure()
           << "failed with (" << reply.error().code << ") '" << reply.error().message
           << "', expected (" << code << ") with '" << needle << "'";
  return ::testing::AssertionSuccess();
}

// --- answers -----------------------------------------------------------------------------------

struct Answer {
  std::int64_t status = 0;
  HeaderPairs headers;
  std::string body;
  std::string header(std::string_view name) const {
    for (const auto& [n, v] : headers)
      if (boost::algorithm::iequals(n, name)) return v;
    return {};
  }
};

Answer answer_of(const json::value& result) {
  Answer answer;
  const auto& object = result.as_object();
  answer.status = object.at("status").as_int64();
  for (const auto& header : object.at("headers").as_array())
    answer.headers.emplace_back(json::value_to<std::string>(header.at("name")),
                                json::value_to<std::string>(header.at("value")));
  answer.body = unb64(object.at("bodyBase64").as_string());
  return answer;
}

// The bodyDelta notifications for `request_id`, in arrival order (TestClient files
// notifications without a processId under "").
std::vector<json::object> deltas_of(const TestClient& client, const std::string& request_id) {
  std::vector<json::object> found;
  for (auto& event : client.events("")) {
    if (event.at("method") != "http/request/bodyDelta") continue;
    if (event.at("requestId") != request_id.c_str()) continue;
    found.push_back(std::move(event));
  }
  return found;
}

bool has_done(const std::vector<json::object>& deltas) {
  for (const auto& delta : deltas)
    if (delta.at("done").as_bool()) return true;
  return false;
}

// Polls every 100 ms (copying the notifications is not free) until the stream's last delta came.
asio::awaitable<std::vector<json::object>> wait_stream_end(const TestClient& client,
                                                           const std::string& request_id,
                                                           std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    auto deltas = deltas_of(client, request_id);
    if (has_done(deltas) || std::chrono::steady_clock::now() >= end) co_return deltas;
    co_await sleep_for(kPoll);
  }
}

// Seqs 1..n in order, only the last one done; the bytes concatenated.
std::string checked_body(const std::vector<json::object>& deltas) {
  std::string body;
  for (std::size_t i = 0; i < deltas.size(); ++i) {
    EXPECT_EQ(deltas[i].at("seq").as_int64(), static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(deltas[i].at("done").as_bool(), i + 1 == deltas.size()) << "delta " << i + 1;
    body += unb64(deltas[i].at("deltaBase64").as_string());
  }
  return body;
}

// --- buffered ----------------------------------------------------------------------------------

TEST(HttpRequest, BufferedGetKeepsRepeatedHeadersInOrder) {
  ExecServer server;
  HttpPeer peer;
  const auto params = http_params("GET", peer.url("/echo?q=1"), interleaved_headers());
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await connect_initialized(server.port());
    auto reply = co_await http_call(*client, params);
    CO_ASSERT_TRUE(answered(reply, "GET /echo"));
    const auto answer = answer_of(*reply);
    EXPECT_EQ(answer.status, 200);
    EXPECT_EQ(answer.header("content-type"), "application/json");
    const auto echo = parse_echo(answer.body);
    EXPECT_EQ(echo.method, "GET");
    EXPECT_EQ(echo.url, "/echo?q=1");
    EXPECT_TRUE(saw_interleaved_headers(echo));
    client->close();
  });
}

TEST(HttpRequest, BufferedBodiesAreBytesBothWays) {
  ExecServer server;
  HttpPeer peer;
  auto post = http_params("POST", peer.url("/echo"), interleaved_headers());
  post["bodyBase64"] = b64(all_bytes());
  const auto bytes = get_params(peer.url("/bytes?n=1000"));
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await connect_initialized(server.port());
    auto posted = co_await http_call(*client, post);
    CO_ASSERT_TRUE(answered(posted, "POST /echo"));
    const auto echo = parse_echo(answer_of(*posted).body);
    EXPECT_EQ(echo.method, "POST");
    EXPECT_TRUE(echo.body == all_bytes()) << "the request body changed on the way";
    EXPECT_EQ(echo.values("content-length"), just("256"));
    EXPECT_TRUE(saw_interleaved_headers(echo));

    // Bytes 0x80..0xfa: not UTF-8, so only base64 carries them.
    auto got = co_await http_call(*client, bytes);
    CO_ASSERT_TRUE(answered(got, "GET /bytes"));
    EXPECT_TRUE(answer_of(*got).body == peer_bytes(1000)) << "the response body changed";
    client->close();
  });
}

// As codex's own client sends them: no "jsonrpc" member, integer ids from 1.
json::object codex_initialize() {
  return json::object{
      {"id", 1},
      {"method", "initialize"},
      {"params", json::object{{"clientName", "codex-dialect"}, {"resumeSessionId", nullptr}}}};
}

json::object codex_request(int id, json::object params) {
  return json::object{{"id", id}, {"method", "http/request"}, {"params", std::move(params)}};
}

constexpr std::string_view kCodexInitialized = R"({"method":"initialized","params":{}})";

// A buffered call as codex sends it: every one with requestId "buffered-request".
json::object codex_buffered_echo(const HttpPeer& peer) {
  auto params = http_params("GET", peer.url("/echo"), interleaved_headers());
  params["requestId"] = "buffered-request";
  params["streamResponse"] = false;
  params["timeoutMs"] = nullptr;
  return params;
}

// Two buffered calls sharing the requestId, in the codex dialect, against either executor.
asio::awaitable<void> codex_dialect_echoes(unsigned short port, const HttpPeer& peer) {
  auto client = co_await connect_only(port);
  auto initialize = codex_initialize();
  auto init = co_await raw(*client, std::move(initialize));
  CO_ASSERT_TRUE(init.reply.has_value());
  client->send_text(std::string(kCodexInitialized));
  auto first = codex_request(2, codex_buffered_echo(peer));
  auto one = co_await raw(*client, std::move(first));
  CO_ASSERT_TRUE(answered(one.reply, "codex-dialect http/request"));
  const auto answer = answer_of(*one.reply);
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.header("content-type"), "application/json");
  EXPECT_TRUE(saw_interleaved_headers(parse_echo(answer.body)));
  auto second = codex_request(3, codex_buffered_echo(peer));
  auto two = co_await raw(*client, std::move(second));
  CO_ASSERT_TRUE(answered(two.reply, "the second one with the same requestId"));
  EXPECT_EQ(answer_of(*two.reply).status, 200);
  client->close();
}

TEST(HttpRequest, CodexDialectBufferedRequests) {
  ExecServer server;
  HttpPeer peer;
  run_async([&]() -> asio::awaitable<void> { co_await codex_dialect_echoes(server.port(), peer); });
}

// The stock codex 0.169 executor answers the same shapes, and needs a string requestId even for
// a buffered call: null is refused.
TEST(HttpRequestCodexPeer, AnswersTheSameShapesAndNeedsARequestId) {
  CodexExecServer codex;
  HttpPeer peer;
  auto without_id = codex_buffered_echo(peer);
  without_id["requestId"] = nullptr;
  const auto null_id = codex_request(4, without_id);
  run_async([&]() -> asio::awaitable<void> {
    co_await codex_dialect_echoes(codex.port(), peer);
    auto client = co_await connect_only(codex.port());
    auto initialize = codex_initialize();
    auto init = co_await raw(*client, std::move(initialize));
    CO_ASSERT_TRUE(init.reply.has_value());
    client->send_text(std::string(kCodexInitialized));
    auto refused = co_await raw(*client, null_id);
    EXPECT_TRUE(fails_with(refused.reply, code::kInvalidParams, "expected a string"));
    client->close();
  });
}

TEST(HttpRequest, NonUtf8HeaderValueIsLeftOut) {
  ExecServer server;
  HttpPeer peer;
  const auto params = get_params(peer.url("/bad-header"));
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await connect_initialized(server.port());
    auto reply = co_await http_call(*client, params);
    CO_ASSERT_TRUE(answered(reply, "GET /bad-header"));
    const auto answer = answer_of(*reply);
    EXPECT_EQ(answer.status, 200);
    EXPECT_EQ(answer.header("x-good"), "fine");
    for (const auto& [name, value] : answer.headers) EXPECT_NE(name, "x-bad") << value;
    EXPECT_EQ(answer.body, "bad header");
    client->close();
  });
}

TEST(HttpRequest, BufferedBodyOverTheLimitFails) {
  ExecServer server(server_args({"--max-http-body-bytes", "1000"}));
  HttpPeer peer;
  const auto small = get_params(peer.url("/bytes?n=1000"));
  const auto big = get_params(peer.url("/bytes?n=5000"));
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await connect_initialized(server.port());
    auto fits = co_await http_call(*client, small);
    CO_ASSERT_TRUE(answered(fits, "a body of exactly the limit"));
    auto reply = co_await http_call(*client, big);
    EXPECT_TRUE(fails_with(reply, code::kInternalError, "1000 bytes"));
    const bool idle = co_await wait_idle(peer, kSettle);
    EXPECT_TRUE(idle) << "the refused body's connection stayed open";
    client->close();
  });
}

TEST(HttpRequest, TimeoutWaitingForTheHeadFails) {
  ExecServer server;
  HttpPeer peer;
  const auto params = with(get_params(peer.url("/hang")), "timeoutMs", 200);
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await connect_initialized(server.port());
    auto reply = co_await http_call(*client, params);
    EXPECT_TRUE(fails_with(reply, code::kInternalError, "timed out"));
    const bool idle = co_await wait_idle(peer, kSettle);
    EXPECT_TRUE(idle) << "the timed out connection stayed open";
    client->close();
  });
}

TEST(HttpRequest, RefusedPortFails) {
  ExecServer server;
  const auto params = get_params("http://127.0.0.1:" + std::to_string(free_port()) + "/");
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await connect_initialized(server.port());
    auto reply = co_await http_call(*client, params);
    EXPECT_TRUE(fails_with(reply, code::kInternalError, "http/request failed: could not connect"));
    // tether extension: nothing reached the server.
    CO_ASSERT_TRUE(!reply && reply.error().data && reply.error().data->is_object());
    EXPECT_EQ(json::serialize(*reply.error().data), R"({"unreachable":true})");
    client->close();
  });
}

TEST(HttpRequest, RedirectsAreFollowedUnlessStopped) {
  ExecServer server;
  HttpPeer peer;
  const auto follow = get_params(peer.url("/redirect?status=302&to=/echo"));
  const auto stop = with(follow, "redirectPolicy", "stop");
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await connect_initialized(server.port());
    auto followed = co_await http_call(*client, follow);
    CO_ASSERT_TRUE(answered(followed, "GET /redirect"));
    EXPECT_EQ(answer_of(*followed).status, 200);
    EXPECT_EQ(parse_echo(answer_of(*followed).body).url, "/echo");
    auto stopped = co_await http_call(*client, stop);
    CO_ASSERT_TRUE(answered(stopped, "GET /redirect with redirectPolicy stop"));
    EXPECT_EQ(answer_of(*stopped).status, 302);
    EXPECT_EQ(answer_of(*stopped).header("location"), "/echo");
    client->close();
  });
  EXPECT_EQ(peer.stats().served, 3u);
}

// The executor verifies against the system store, which SSL_CERT_FILE replaces.
TEST(HttpRequest, HttpsTrustsSslCertFile) {
  TestCertificates certificates;
  HttpPeer trusted(HttpPeer::Options{certificates.server_cert(), certificates.server_key()});
  HttpPeer untrusted(
      HttpPeer::Options{certificates.untrusted_cert(), certificates.untrusted_key()});
  ExecServer::Options options;
  options.extra_env = {"SSL_CERT_FILE=" + certificates.ca_cert()};
  ExecServer server(options);
  const auto good = get_params(trusted.tls_url("/echo"));
  const auto bad = get_params(untrusted.tls_url("/echo"));
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await connect_initialized(server.port());
    auto reply = co_await http_call(*client, good);
    CO_ASSERT_TRUE(answered(reply, "GET https://.../echo (trusted)"));
    EXPECT_EQ(parse_echo(answer_of(*reply).body).method, "GET");
    auto refused = co_await http_call(*client, bad);
    EXPECT_TRUE(fails_with(refused, code::kInternalError, "TLS handshake"));
    client->close();
  });
  EXPECT_EQ(untrusted.stats().served, 0u);
}

TEST(HttpRequest, InvalidParamsAreRefused) {
  ExecServer server;
  HttpPeer peer;
  const auto ftp = get_params("ftp://127.0.0.1/file");
  auto no_id = get_params(peer.url("/echo"));
  no_id["streamResponse"] = true;
  const HeaderPairs spaced{{"Bad Name", "x"}};
  const auto bad_name = http_params("GET", peer.url("/echo"), spaced);
  const HeaderPairs injected{{"X-Tether", "a\r\nX-Injected: 1"}};
  const auto bad_value = http_params("GET", peer.url("/echo"), injected);
  const auto bad_policy = with(get_params(peer.url("/echo")), "redirectPolicy", "sideways");
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await connect_initialized(server.port());
    auto r1 = co_await http_call(*client, ftp);
    EXPECT_TRUE(fails_with(r1, code::kInvalidParams, "ftp://"));
    auto r2 = co_await http_call(*client, no_id);
    EXPECT_TRUE(fails_with(r2, code::kInvalidParams, "requestId"));
    auto r3 = co_await http_call(*client, bad_name);
    EXPECT_TRUE(fails_with(r3, code::kInvalidParams, "Bad Name"));
    auto r4 = co_await http_call(*client, bad_value);
    EXPECT_TRUE(fails_with(r4, code::kInvalidParams, "X-Tether"));
    auto r5 = co_await http_call(*client, bad_policy);
    EXPECT_TRUE(fails_with(r5, code::kInvalidParams, "sideways"));
    client->close();
  });
  EXPECT_EQ(peer.stats().served, 0u) << "nothing invalid reached the server";
}

// Two calls waiting for their heads fill `--max-http-requests 2`; a third is refused, and
// http/request/cancel frees both (a call still waiting for its head is cancelled too).
TEST(HttpRequest, TooManyOpenRequestsAreRefused) {
  ExecServer server(server_args({"--max-http-requests", "2"}));
  HttpPeer peer;
  const auto hang_1 = with(get_params(peer.url("/hang")), "requestId", "hang-1");
  const auto hang_2 = with(get_params(peer.url("/hang")), "requestId", "hang-2");
  const auto third = get_params(peer.url("/echo"));
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto client = co_await connect_initialized(server.port());
    auto first = std::make_shared<Pending>();
    auto second = std::make_shared<Pending>();
    asio::co_spawn(executor, call_in_background(client, hang_1, first), asio::detached);
    asio::co_spawn(executor, call_in_background(client, hang_2, second), asio::detached);
    const std::function<bool()> both_arrived = [&peer] { return peer.stats().served == 2; };
    const bool arrived = co_await eventually(both_arrived, kSettle);
    CO_ASSERT_TRUE(arrived);

    auto refused = co_await http_call(*client, third);
    EXPECT_TRUE(fails_with(refused, code::kInvalidRequest, "limit 2"));

    auto cancelled_1 = co_await cancel_call(*client, "hang-1");
    EXPECT_TRUE(answered(cancelled_1, "http/request/cancel hang-1"));
    auto cancelled_2 = co_await cancel_call(*client, "hang-2");
    EXPECT_TRUE(answered(cancelled_2, "http/request/cancel hang-2"));
    const std::function<bool()> both_answered = [&] { return first->reply && second->reply; };
    const bool ended = co_await eventually(both_answered, kSettle);
    CO_ASSERT_TRUE(ended);
    EXPECT_TRUE(fails_with(*first->reply, code::kInternalError, "cancelled"));
    EXPECT_TRUE(fails_with(*second->reply, code::kInternalError, "cancelled"));

    auto again = co_await http_call(*client, third);
    EXPECT_TRUE(answered(again, "a call once the others were cancelled"));
    const bool idle = co_await wait_idle(peer, kSettle);
    EXPECT_TRUE(idle) << "a cancelled call's connection stayed open";
    client->close();
  });
}

// --- streamed ----------------------------------------------------------------------------------

TEST(HttpRequest, StreamedBodyComesAsOrderedDeltas) {
  ExecServer server;
  HttpPeer peer;
  const auto params = streamed(get_params(peer.url("/slow?pieces=5&ms=20")), "slow-1");
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await connect_initialized(server.port());
    auto reply = co_await http_call(*client, params);
    CO_ASSERT_TRUE(answered(reply, "GET /slow streamed"));
    EXPECT_EQ(reply->at("bodyBase64"), "");
    EXPECT_EQ(answer_of(*reply).status, 200);
    const auto deltas = co_await wait_stream_end(*client, "slow-1", kStream);
    CO_ASSERT_TRUE(has_done(deltas));
    EXPECT_TRUE(deltas.back().at("error").is_null()) << json::serialize(deltas.back());
    EXPECT_EQ(checked_body(deltas), "piece-0\npiece-1\npiece-2\npiece-3\npiece-4\n");
    client->close();
  });
}

TEST(HttpRequest, LargeStreamedBodyIsIntact) {
  constexpr std::size_t kSize = 16 * kMiB;
  ExecServer server;
  HttpPeer peer;
  const auto params = streamed(get_params(peer.url("/bytes?n=" + std::to_string(kSize))), "big-1");
  run_async(
      [&]() -> asio::awaitable<void> {
        auto client = co_await connect_initialized(server.port());
        auto reply = co_await http_call(*client, params);
        CO_ASSERT_TRUE(answered(reply, "GET /bytes streamed (16 MiB)"));
        const auto deltas = co_await wait_stream_end(*client, "big-1", kStream);
        CO_ASSERT_TRUE(has_done(deltas));
        EXPECT_TRUE(deltas.back().at("error").is_null()) << json::serialize(deltas.back());
        const auto body = checked_body(deltas);
        EXPECT_EQ(body.size(), kSize);
        EXPECT_TRUE(body == peer_bytes(kSize)) << "the streamed 16 MiB body differs";
        client->close();
      },
      std::chrono::seconds(120));
}

// The timeout bounds the body too: the last delta is done with the error.
TEST(HttpRequest, TimeoutDuringAStreamedBodyEndsItWithAnError) {
  ExecServer server;
  HttpPeer peer;
  const auto params =
      streamed(with(get_params(peer.url("/forever")), "timeoutMs", 1500), "forever-timeout");
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await connect_initialized(server.port());
    auto reply = co_await http_call(*client, params);
    CO_ASSERT_TRUE(answered(reply, "GET /forever streamed"));
    const auto deltas = co_await wait_stream_end(*client, "forever-timeout", kStream);
    CO_ASSERT_TRUE(has_done(deltas));
    const auto& last = deltas.back();
    CO_ASSERT_TRUE(last.at("error").is_string());
    EXPECT_NE(std::string(last.at("error").as_string()).find("timed out"), std::string::npos)
        << json::serialize(last);
    EXPECT_TRUE(checked_body(deltas).starts_with("tick-0\n"));
    const bool idle = co_await wait_idle(peer, kSettle);
    EXPECT_TRUE(idle) << "the timed out stream's connection stayed open";
    client->close();
  });
}

// After the cancel's answer no delta follows (those sent before it arrive before it), and the
// executor's connection to the server is closed. An unknown id is no error.
TEST(HttpRequest, CancelStopsAStreamedBody) {
  ExecServer server;
  HttpPeer peer;
  const auto params = streamed(get_params(peer.url("/forever")), "forever-1");
  const auto probe = get_params(peer.url("/status?code=204"));
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await connect_initialized(server.port());
    auto reply = co_await http_call(*client, params);
    CO_ASSERT_TRUE(answered(reply, "GET /forever streamed"));
    const std::function<bool()> flowing = [&] {
      return deltas_of(*client, "forever-1").size() >= 2;
    };
    const bool started = co_await eventually(flowing, kSettle);
    CO_ASSERT_TRUE(started);

    auto cancelled = co_await cancel_call(*client, "forever-1");
    CO_ASSERT_TRUE(answered(cancelled, "http/request/cancel"));
    const auto before = deltas_of(*client, "forever-1");
    const bool idle = co_await wait_idle(peer, kSettle);
    EXPECT_TRUE(idle) << "the cancelled stream's connection stayed open";
    // A round trip after the server saw the close: a late delta would have come before it.
    auto after = co_await http_call(*client, probe);
    EXPECT_TRUE(answered(after, "a call after the cancel"));
    const auto deltas = deltas_of(*client, "forever-1");
    EXPECT_EQ(deltas.size(), before.size()) << "deltas came after the cancel was answered";
    EXPECT_FALSE(has_done(deltas));

    auto unknown = co_await cancel_call(*client, "no-such-request");
    EXPECT_TRUE(answered(unknown, "http/request/cancel of an unknown id"));
    client->close();
  });
}

// A client that goes away mid-stream (and with a call waiting for its head) leaves nothing open.
TEST(HttpRequest, AbortedClientLeavesNothingOpen) {
  ExecServer server;
  HttpPeer peer;
  const auto stream = streamed(get_params(peer.url("/forever")), "forever-2");
  const auto hang = get_params(peer.url("/hang"));
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto client = co_await connect_initialized(server.port());
    auto reply = co_await http_call(*client, stream);
    CO_ASSERT_TRUE(answered(reply, "GET /forever streamed"));
    auto waiting = std::make_shared<Pending>();
    asio::co_spawn(executor, call_in_background(client, hang, waiting), asio::detached);
    const std::function<bool()> both = [&] {
      return peer.stats().served == 2 && !deltas_of(*client, "forever-2").empty();
    };
    const bool started = co_await eventually(both, kSettle);
    CO_ASSERT_TRUE(started);

    client->abort();
    const std::function<bool()> failed = [&waiting] { return waiting->reply.has_value(); };
    const bool ended = co_await eventually(failed, kSettle);
    EXPECT_TRUE(ended) << "the call in flight was not failed by the abort";
    const bool idle = co_await wait_idle(peer, kSettle);
    EXPECT_TRUE(idle) << "the executor kept a connection of the aborted client open";
  });
}

// --- a client that stops reading -----------------------------------------------------------

std::string raw_initialize() {
  return json::serialize(json::object{
      {"jsonrpc", "2.0"},
      {"id", 1},
      {"method", "initialize"},
      {"params", json::object{{"clientName", "stalled"}, {"resumeSessionId", nullptr}}}});
}

std::string raw_initialized() {
  return json::serialize(json::object{{"jsonrpc", "2.0"}, {"method", "initialized"}});
}

std::string raw_http_request(json::object params) {
  return json::serialize(json::object{
      {"jsonrpc", "2.0"}, {"id", 2}, {"method", "http/request"}, {"params", std::move(params)}});
}

// bytesWritten once it stopped changing over 10 samples 100 ms apart (or after `deadline`).
asio::awaitable<std::uint64_t> settled_bytes(const HttpPeer& peer,
                                             std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  std::uint64_t last = peer.stats().bytes_written;
  for (int same = 0; same < 10 && std::chrono::steady_clock::now() < end;) {
    co_await sleep_for(kPoll);
    const auto now = peer.stats().bytes_written;
    same = now == last ? same + 1 : 0;
    last = now;
  }
  co_return last;
}

// The executor reads the server's body only as fast as the client takes the deltas: for a client
// that never reads its socket, what the server wrote stops growing at what the queues and socket
// buffers hold, far below the 256 MiB body: the executor's send queue holds 4 MiB, and the two
// loopback connections' socket buffers (4 MiB for sending, up to 32 MiB for receiving here)
// some 40 MiB more at most.
TEST(HttpRequest, AClientThatStopsReadingHoldsTheBodyBack) {
  constexpr std::uint64_t kTotal = 256 * kMiB;
  constexpr std::uint64_t kCeiling = 96 * kMiB;
  ExecServer server;
  HttpPeer peer;
  const std::string request = raw_http_request(
      streamed(get_params(peer.url("/big-stream?n=" + std::to_string(kTotal))), "stalled-1"));
  const auto probe = get_params(peer.url("/status?code=204"));
  std::uint64_t settled = 0;
  run_async(
      [&]() -> asio::awaitable<void> {
        const Headers none;
        auto ws = co_await ws_connect(server.port(), none);
        ws.text(true);
        const std::string initialize = raw_initialize();
        const auto initialize_buffer = asio::buffer(initialize);
        co_await ws.async_write(initialize_buffer, asio::use_awaitable);
        beast::flat_buffer answer;
        co_await ws.async_read(answer, asio::use_awaitable);  // the last read on this socket
        const std::string initialized = raw_initialized();
        const auto initialized_buffer = asio::buffer(initialized);
        co_await ws.async_write(initialized_buffer, asio::use_awaitable);
        const auto request_buffer = asio::buffer(request);
        co_await ws.async_write(request_buffer, asio::use_awaitable);

        const std::function<bool()> streaming = [&peer] { return peer.stats().bytes_written > 0; };
        const bool started = co_await eventually(streaming, kSettle);
        CO_ASSERT_TRUE(started);
        settled = co_await settled_bytes(peer, kStream);
        EXPECT_LT(settled, kCeiling) << "the executor read " << settled / kMiB
                                     << " MiB of the body for a client that reads nothing";
        EXPECT_EQ(peer.stats().open, 1u) << "the stream was dropped rather than held back";

        // Another client is served meanwhile.
        auto other = co_await connect_initialized(server.port());
        auto served = co_await http_call(*other, probe);
        EXPECT_TRUE(answered(served, "another client's call"));
        other->close();

        boost::system::error_code ignored;
        beast::get_lowest_layer(ws).socket().close(ignored);
        const bool idle = co_await wait_idle(peer, kSettle);
        EXPECT_TRUE(idle) << "the stalled client's stream stayed open after it went away";
      },
      std::chrono::seconds(120));
  std::printf("bytes the server wrote for a client that reads nothing: %.1f MiB\n",
              static_cast<double>(settled) / kMiB);
}

}  // namespace
}  // namespace tether::testing
