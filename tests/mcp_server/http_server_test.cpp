// mcp_server::HttpServer's caps, on a real listener on 127.0.0.1 with small limits, behind
// services written here (the fakes: a Service that answers `spam` with N notifications on the
// request's stream, to fill the replay history without an upstream; one whose tool `ask` asks
// the client a question and returns the answer, to park 2026-07-28 requests). Each cap
// docs/gateway.md names for the transport: connections (one more is closed at once), idle
// sessions (ended after the timeout, 404 after), the replay history (the oldest events go, the
// newest stay), the 2026-07-28 requests waiting for the client's next round (in number and in
// time). Body size and the session count are shown end to end in tests/gateway/http_test.cpp.
#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "http_probe.hpp"
#include <tether/mcp_server/http.hpp>

namespace tether::mcp_server {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;
using namespace testing::http_probe;

constexpr auto kWait = 10s;

// What both fakes share: a name, and nothing to do on attach, detach or notifications.
class FakeService : public Service {
 public:
  explicit FakeService(std::string name) : name_(std::move(name)) {}
  json::object describe() override {
    json::object info;
    info["name"] = name_;
    json::object description;
    description["serverInfo"] = std::move(info);
    return description;
  }
  void attach(const std::shared_ptr<Session>& /*session*/) override {}
  void detach(Session& /*session*/) override {}
  void notified(const std::shared_ptr<Session>& /*session*/,
                const jsonrpc::Notification& /*notification*/) override {}

 private:
  std::string name_;
};

class SpamService : public FakeService {
 public:
  SpamService() : FakeService("spam") {}
  asio::awaitable<jsonrpc::Reply> handle(std::shared_ptr<Session> session,
                                         IncomingRequest request) override {
    const auto* count = request.params.if_contains("count");
    const auto n = count && count->is_int64() ? count->get_int64() : 0;
    for (std::int64_t i = 0; i < n; ++i)
      session->notify(request.id, "notifications/message", log_params(i));
    co_return json::value(json::object{});
  }

 private:
  static json::object log_params(std::int64_t i) {
    return json::object{{"level", "info"}, {"data", std::string(100, 'x') + std::to_string(i)}};
  }
};

// `tools/call ask`: asks the client (elicitation/create) and returns the answer; counts the
// questions that ended without one.
class AskService : public FakeService {
 public:
  AskService() : FakeService("ask") {}
  asio::awaitable<jsonrpc::Reply> handle(std::shared_ptr<Session> session,
                                         IncomingRequest request) override {
    auto answer = co_await session->request("elicitation/create", question(), request.id, 60s);
    if (!answer) ++unanswered;
    co_return answer;
  }

  int unanswered = 0;

 private:
  static json::value question() { return json::object{{"message", "Proceed?"}}; }
};

// A 2026-07-28 `tools/call ask`, headers and `_meta` as a client sends them; `extra` goes into
// params (a retry's requestState and inputResponses).
Probe ask_probe(const json::object& extra) {
  json::object params = extra;
  params["name"] = "ask";
  params["_meta"] = json::object{{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
                                 {"io.modelcontextprotocol/clientCapabilities",
                                  json::object{{"elicitation", json::object{}}}}};
  const json::object body{
      {"jsonrpc", "2.0"}, {"id", 7}, {"method", "tools/call"}, {"params", std::move(params)}};
  auto probe = with(with(post_as("", json::serialize(body)), "MCP-Protocol-Version", "2026-07-28"),
                    "Mcp-Method", "tools/call");
  return with(std::move(probe), "Mcp-Name", "ask");
}

json::object retry_params(const std::string& token) {
  return json::object{
      {"requestState", token},
      {"inputResponses", json::object{{"input-1", json::object{{"action", "accept"}}}}}};
}

// The result of an answer's JSON body (null when it is not one).
json::value result_of(const Answer& answer) {
  boost::system::error_code ec;
  auto message = json::parse(answer.body(), ec);
  const auto* result =
      !ec && message.is_object() ? message.get_object().if_contains("result") : nullptr;
  return result ? *result : json::value();
}

std::string initialize_body() {
  return R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})";
}

std::string spam_body(int count) {
  return R"({"jsonrpc":"2.0","id":2,"method":"spam","params":{"count":)" + std::to_string(count) +
         "}}";
}

struct Listening {
  std::shared_ptr<HttpServer> server;
  unsigned short port = 0;
};

Listening listen(const asio::any_io_executor& executor, HttpServerOptions options) {
  options.open_service = [] { return std::make_shared<SpamService>(); };
  auto server = HttpServer::listen(
      executor, asio::ip::tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0),
      std::move(options));
  if (!server) throw std::runtime_error(server.error().message);
  (*server)->start();
  return {*server, (*server)->local_endpoint().port()};
}

Probe session_probe(std::string session, std::string body) {
  return with(post_as("", std::move(body)), "Mcp-Session-Id", std::move(session));
}

// A connection past the cap is closed before anything is read from it.
asio::awaitable<bool> closed_at_once(unsigned short port) {
  asio::ip::tcp::socket socket(co_await asio::this_coro::executor);
  boost::system::error_code ec;
  co_await socket.async_connect({asio::ip::make_address_v4("127.0.0.1"), port},
                                asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return true;
  char byte = 0;
  co_await asio::async_read(socket, asio::buffer(&byte, 1),
                            asio::redirect_error(asio::use_awaitable, ec));
  co_return ec == asio::error::eof || ec == asio::error::connection_reset;
}

// A connection that got one answer to a keep-alive GET /readyz and stays open; null on failure.
asio::awaitable<std::unique_ptr<boost::beast::tcp_stream>> held_connection(unsigned short port) {
  namespace http = boost::beast::http;
  auto stream = std::make_unique<boost::beast::tcp_stream>(co_await asio::this_coro::executor);
  stream->expires_after(kWait);
  boost::system::error_code ec;
  co_await stream->async_connect({asio::ip::make_address_v4("127.0.0.1"), port},
                                 asio::redirect_error(asio::use_awaitable, ec));
  http::request<http::empty_body> request{http::verb::get, "/readyz", 11};
  request.set(http::field::host, "127.0.0.1");
  request.keep_alive(true);
  if (!ec)
    co_await http::async_write(*stream, request, asio::redirect_error(asio::use_awaitable, ec));
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> response;
  if (!ec)
    co_await http::async_read(*stream, buffer, response,
                              asio::redirect_error(asio::use_awaitable, ec));
  if (ec || response.result_int() != 200) co_return nullptr;
  stream->expires_never();
  co_return stream;
}

TEST(HttpServerCaps, AConnectionPastTheCapIsClosed) {
  testing::run_async([]() -> asio::awaitable<void> {
    HttpServerOptions options;
    options.max_connections = 2;
    auto listening = listen(co_await asio::this_coro::executor, std::move(options));
    // Two kept-alive connections, each answered once (so the server holds both), take the two
    // places.
    auto first = co_await held_connection(listening.port);
    auto second = co_await held_connection(listening.port);
    CO_ASSERT_TRUE(first && second);
    EXPECT_TRUE(co_await closed_at_once(listening.port));
    first->close();
    second->close();
    // Once they are gone a new one is served.
    auto answer = co_await poll(
        listening.port, plain(boost::beast::http::verb::get, "/readyz"),
        [](const Answer& a) { return a.status == 200; }, 10s);
    EXPECT_EQ(answer.status, 200U) << answer;
    listening.server->stop();
  });
}

TEST(HttpServerCaps, AnIdleSessionEnds) {
  testing::run_async([]() -> asio::awaitable<void> {
    HttpServerOptions options;
    options.session_idle_timeout = 200ms;
    auto listening = listen(co_await asio::this_coro::executor, std::move(options));
    auto opened = co_await exchange(listening.port, post_as("", initialize_body()));
    CO_ASSERT_EQ(opened.status, 200U);
    const auto session = opened.header("Mcp-Session-Id");
    CO_ASSERT_TRUE(!session.empty());
    EXPECT_EQ(listening.server->sessions(), 1U);
    CO_ASSERT_TRUE(
        co_await testing::eventually([&] { return listening.server->sessions() == 0; }, kWait));
    auto after = co_await exchange(listening.port, session_probe(session, spam_body(0)));
    EXPECT_EQ(after.status, 404U) << after;
    listening.server->stop();
  });
}

TEST(HttpServerCaps, TheReplayHistoryKeepsTheNewestEventsWithinItsBytes) {
  testing::run_async([]() -> asio::awaitable<void> {
    HttpServerOptions options;
    // About 50 of the 160-byte events; a reader may fall four times that far behind.
    options.replay_bytes = 8192;
    auto listening = listen(co_await asio::this_coro::executor, std::move(options));
    auto opened = co_await exchange(listening.port, post_as("", initialize_body()));
    const auto session = opened.header("Mcp-Session-Id");
    CO_ASSERT_TRUE(!session.empty());
    auto spammed = co_await exchange(listening.port, session_probe(session, spam_body(100)));
    CO_ASSERT_EQ(spammed.status, 200U);
    // (Stream 1 was initialize's.) Every notification and the response reached the client that
    // was reading...
    const auto& body = spammed.body();
    for (int seq = 1; seq <= 101; ++seq)
      EXPECT_NE(body.find("id: 2-" + std::to_string(seq) + "\n"), std::string::npos) << seq;
    // ... but a resume can only go back as far as the history holds.
    auto probe_from = [&](const std::string& event) {
      return with(with(plain(boost::beast::http::verb::get, "/mcp"), "Mcp-Session-Id", session),
                  "Last-Event-ID", event);
    };
    auto too_old =
        co_await exchange(listening.port, with(probe_from("2-1"), "Accept", "text/event-stream"));
    EXPECT_EQ(too_old.status, 400U) << too_old;
    auto recent =
        co_await exchange(listening.port, with(probe_from("2-99"), "Accept", "text/event-stream"));
    EXPECT_EQ(recent.status, 200U) << recent;
    EXPECT_NE(recent.body().find("id: 2-101\n"), std::string::npos) << recent;
    EXPECT_EQ(recent.body().find("id: 2-99\ndata: {"), std::string::npos) << "from after the id";
    // Every stream starts with a priming event: the id to resume from, and the retry delay.
    EXPECT_TRUE(recent.body().starts_with("id: 2-99\nretry: 1000\ndata: \n\n")) << recent;
    listening.server->stop();
  });
}

struct AskListening {
  std::shared_ptr<AskService> service = std::make_shared<AskService>();
  Listening listening;
};

AskListening listen_asking(const asio::any_io_executor& executor, HttpServerOptions options) {
  AskListening out;
  options.stateless_service = [service = out.service] { return service; };
  out.listening = listen(executor, std::move(options));
  return out;
}

TEST(HttpServerStateless, AnAnswerComesBackInTheNextRound) {
  testing::run_async([]() -> asio::awaitable<void> {
    // A named options object: GCC 12 mishandles a temporary in a co_await expression.
    auto executor = co_await asio::this_coro::executor;
    HttpServerOptions defaults;
    auto asking = listen_asking(executor, std::move(defaults));
    const auto port = asking.listening.port;
    auto first = co_await exchange(port, ask_probe(json::object()));
    CO_ASSERT_EQ(first.status, 200U);
    const auto asked = result_of(first);
    CO_ASSERT_TRUE(asked.is_object());
    EXPECT_EQ(asked.at("resultType"), "input_required") << first;
    EXPECT_EQ(asked.at("inputRequests").at("input-1").at("method"), "elicitation/create");
    const std::string token(asked.at("requestState").as_string());
    auto second = co_await exchange(port, ask_probe(retry_params(token)));
    EXPECT_EQ(second.status, 200U) << second;
    const auto done = result_of(second);
    CO_ASSERT_TRUE(done.is_object());
    EXPECT_EQ(done.at("action"), "accept") << second;
    EXPECT_EQ(done.at("resultType"), "complete");
    // A token is used once.
    auto again = co_await exchange(port, ask_probe(retry_params(token)));
    EXPECT_NE(json::serialize(result_of(again)).find("input_required"), std::string::npos)
        << "a used token started a new call" << again;
    asking.listening.server->stop();
  });
}

TEST(HttpServerCaps, RequestsWaitingForTheNextRoundAreCappedInNumberAndTime) {
  testing::run_async([]() -> asio::awaitable<void> {
    HttpServerOptions options;
    options.max_parked = 1;
    options.parked_lifetime = 300ms;
    auto asking = listen_asking(co_await asio::this_coro::executor, std::move(options));
    const auto port = asking.listening.port;
    auto first = co_await exchange(port, ask_probe(json::object()));
    EXPECT_EQ(result_of(first).at("resultType"), "input_required") << first;
    // The one place is taken: the next request that asks fails, and its question ends.
    auto second = co_await exchange(port, ask_probe(json::object()));
    EXPECT_NE(second.body().find("too many requests are waiting"), std::string::npos) << second;
    // The parked one is abandoned once its lifetime is over: its question ends unanswered.
    const bool expired =
        co_await testing::eventually([&] { return asking.service->unanswered == 2; }, kWait);
    EXPECT_TRUE(expired) << "unanswered questions: " << asking.service->unanswered;
    const std::string token(result_of(first).at("requestState").as_string());
    auto late = co_await exchange(port, ask_probe(retry_params(token)));
    EXPECT_NE(json::serialize(result_of(late)).find("input_required"), std::string::npos)
        << "an expired token was taken" << late;
    asking.listening.server->stop();
  });
}

}  // namespace
}  // namespace tether::mcp_server
