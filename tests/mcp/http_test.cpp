// Tests of the MCP streamable HTTP transport (src/mcp/http.cpp) and its SSE parser (sse.cpp).
//
// Owns: the parser's WHATWG rules; the transport against the real server-everything in
// streamableHttp mode (Node 22 from the npm test peers) driven with raw JSON-RPC text; and
// against a scripted fake HTTP server in this file for what the real one does not do on demand
// (cut SSE streams, retry/Last-Event-ID, HTTP 500 and 404, header checks). The transport runs
// from each vantage point: its own connections, a spawned `tether exec-server`'s http/request,
// and a stock codex 0.169 exec-server's; the server sees the executor's connections only.
// Does not own: MCP semantics (client tests). Everything runs on 127.0.0.1 with bounded waits.
#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "../../src/mcp/sse.hpp"
#include "../support/async_test.hpp"
#include "../support/codex_exec_server.hpp"
#include "../support/everything_http.hpp"
#include "../support/exec_server.hpp"
#include <tether/exec/client.hpp>
#include <tether/mcp/http.hpp>

namespace tether::mcp {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;
using testing::run_async;
using namespace std::chrono_literals;

// ---- SSE parser ----------------------------------------------------------------------------

std::vector<sse::Event> parse_all(sse::Parser& parser, const std::vector<std::string>& pieces) {
  std::vector<sse::Event> events;
  for (const auto& piece : pieces) EXPECT_TRUE(parser.feed(piece, events));
  return events;
}

TEST(SseParser, FieldsMultiLineDataCommentsAndDefaults) {
  sse::Parser parser(1024);
  auto events = parse_all(parser, {": keep-alive\n", "event: ping\ndata: a\ndata:b\n\n",
                                   "id: 7\nretry: 50\ndata: {\"x\":1}\n\n", "foo: ignored\n\n"});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, "ping");
  EXPECT_EQ(events[0].data, "a\nb");
  EXPECT_EQ(events[0].id, "");
  EXPECT_EQ(events[1].type, "message");
  EXPECT_EQ(events[1].data, "{\"x\":1}");
  EXPECT_EQ(events[1].id, "7");
  EXPECT_EQ(parser.retry(), 50ms);
}

TEST(SseParser, LineEndsSplitAnywhereAndBom) {
  const std::string stream = "\xEF\xBB\xBFid: one\r\ndata: x\r\rdata: y\n\ndata: z\r\n\r\n";
  // Every split point, byte by byte: the result must not depend on how bytes arrive.
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    sse::Parser parser(1024);
    auto events = parse_all(parser, {stream.substr(0, cut), stream.substr(cut)});
    ASSERT_EQ(events.size(), 3u) << "cut at " << cut;
    EXPECT_EQ(events[0].data, "x");
    EXPECT_EQ(events[0].id, "one");
    EXPECT_EQ(events[1].data, "y");
    EXPECT_EQ(events[2].data, "z");
  }
}

TEST(SseParser, PrimingIdsUnfinishedEventsInvalidRetryAndLimits) {
  sse::Parser parser(16, "old", 10ms);
  auto events =
      parse_all(parser, {"id: p1\ndata\n", "\n", "id\n\n", "retry: 5x\n\n", "data: tail"});
  ASSERT_EQ(events.size(), 1u);  // "data" alone is an empty data line; the tail never ended
  EXPECT_EQ(events[0].data, "");
  EXPECT_EQ(events[0].id, "p1");
  EXPECT_EQ(parser.last_event_id(), "");  // a bare `id` resets it
  EXPECT_EQ(parser.retry(), 10ms);        // `5x` is not all digits

  sse::Parser priming(1024);
  EXPECT_TRUE(parse_all(priming, {"id: e1\ndata:\n\n"}).size() == 1u);
  sse::Parser no_data(1024);
  EXPECT_TRUE(parse_all(no_data, {"id: e1\n\n"}).empty());
  EXPECT_EQ(no_data.last_event_id(), "e1");

  sse::Parser small(8);
  std::vector<sse::Event> out;
  EXPECT_FALSE(small.feed("data: 0123456789\n", out));
}

// ---- where the requests come from ----------------------------------------------------------

enum class Via { local, tether_executor, codex_executor };

std::string via_name(const ::testing::TestParamInfo<Via>& info) {
  switch (info.param) {
    case Via::local:
      return "Local";
    case Via::tether_executor:
      return "TetherExecutor";
    case Via::codex_executor:
      return "CodexExecutor";
  }
  return "Unknown";
}

// The executor (if any) that makes the transport's HTTP requests: a child of the test, reached
// through an ExecClient.
class Vantage {
 public:
  explicit Vantage(Via via) : via_(via) {
    if (via == Via::tether_executor) tether_.emplace();
    if (via == Via::codex_executor) codex_.emplace();
  }

  // The requests' client: null (connect_http's own) for local.
  asio::awaitable<std::shared_ptr<fetch::Client>> client() {
    if (via_ == Via::local) co_return nullptr;
    if (!exec_) {
      exec::WebSocketEndpoint endpoint;
      endpoint.url = tether_ ? tether_->url() : codex_->url();
      auto connected =
          co_await exec::ExecClient::connect(co_await asio::this_coro::executor, endpoint);
      if (!connected) {
        ADD_FAILURE() << "connecting to the executor: " << connected.error().message;
        co_return nullptr;
      }
      exec_ = *connected;
    }
    co_return exec_->http_client("box");
  }

  // The process whose connections the server sees.
  pid_t pid() const {
    if (tether_) return tether_->pid();
    if (codex_) return codex_->pid();
    return ::getpid();
  }
  bool remote() const { return via_ != Via::local; }

  // Before the run's io_context goes: the client's connection lives on it.
  asio::awaitable<void> close() {
    if (exec_) co_await exec_->close();
    exec_.reset();
  }

 private:
  Via via_;
  std::optional<testing::ExecServer> tether_;
  std::optional<testing::CodexExecServer> codex_;
  std::shared_ptr<exec::ExecClient> exec_;
};

// Runs `body` from `vantage` within `limit`.
void run_from(Vantage& vantage, asio::awaitable<void> (*body)(Vantage&), std::chrono::seconds limit,
              const char* what) {
  run_async(
      [&]() -> asio::awaitable<void> {
        co_await body(vantage);
        co_await vantage.close();
      },
      limit, what);
}

// ---- helpers -----------------------------------------------------------------------------

json::object parse_object(const std::string& text) {
  error_code ec;
  auto value = json::parse(text, ec);
  if (ec || !value.is_object()) return {};
  return value.as_object();
}

// Reads until the answer to `id`; everything else read meanwhile goes to `others`. Reads are
// bounded by run_async's deadline.
asio::awaitable<std::optional<json::object>> answer_to(jsonrpc::Transport& transport,
                                                       std::int64_t id,
                                                       std::vector<json::object>& others) {
  for (;;) {
    auto text = co_await transport.read();
    if (!text) {
      ADD_FAILURE() << "read failed waiting for the answer to " << id << ": "
                    << text.error().message();
      co_return std::nullopt;
    }
    auto message = parse_object(*text);
    const auto* got = message.if_contains("id");
    if (got && !message.contains("method") && got->is_int64() && got->as_int64() == id)
      co_return message;
    others.push_back(std::move(message));
  }
}

std::string first_text(const json::object& answer) {
  const auto* result = answer.if_contains("result");
  if (!result || !result->is_object()) return {};
  const auto* content = result->as_object().if_contains("content");
  if (!content || !content->is_array() || content->as_array().empty()) return {};
  const auto& first = content->as_array()[0];
  if (!first.is_object() || !first.as_object().contains("text")) return {};
  return std::string(first.as_object().at("text").as_string());
}

std::string error_message(const json::object& answer) {
  const auto* error = answer.if_contains("error");
  if (!error || !error->is_object() || !error->as_object().contains("message")) return {};
  return std::string(error->as_object().at("message").as_string());
}

// ---- against server-everything (real) ------------------------------------------------------

const char* const kInitialize =
    R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",)"
    R"("capabilities":{},"clientInfo":{"name":"tether-test","version":"0"}}})";
const char* const kInitialized = R"({"jsonrpc":"2.0","method":"notifications/initialized"})";

asio::awaitable<void> server_everything_body(Vantage& vantage) {
  auto executor = co_await asio::this_coro::executor;
  testing::EverythingHttp server;
  const auto port = std::to_string(server.port());

  HttpServerConfig config;
  config.url = "http://127.0.0.1:" + port + "/mcp";
  config.client = co_await vantage.client();
  auto connection = connect_http(executor, config);
  CO_ASSERT_TRUE(connection.has_value());
  EXPECT_EQ(connection->description, vantage.remote() ? config.url + " via box" : config.url);
  auto& transport = *connection->transport;
  std::vector<json::object> others;

  auto ec = co_await transport.write(kInitialize);
  CO_ASSERT_TRUE(!ec);
  auto initialized = co_await answer_to(transport, 1, others);
  CO_ASSERT_TRUE(initialized.has_value());
  const auto* result = initialized->if_contains("result");
  CO_ASSERT_TRUE(result && result->is_object());
  EXPECT_TRUE(result->as_object().contains("serverInfo"));
  ec = co_await transport.write(kInitialized);
  CO_ASSERT_TRUE(!ec);

  ec = co_await transport.write(R"({"jsonrpc":"2.0","id":2,"method":"tools/list"})");
  CO_ASSERT_TRUE(!ec);
  auto tools = co_await answer_to(transport, 2, others);
  CO_ASSERT_TRUE(tools.has_value());
  const auto listed = json::serialize(*tools);
  EXPECT_NE(listed.find("\"echo\""), std::string::npos) << listed.substr(0, 300);
  EXPECT_NE(listed.find("trigger-long-running-operation"), std::string::npos);

  ec = co_await transport.write(
      R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo",)"
      R"("arguments":{"message":"over http"}}})");
  CO_ASSERT_TRUE(!ec);
  auto echoed = co_await answer_to(transport, 3, others);
  CO_ASSERT_TRUE(echoed.has_value());
  EXPECT_EQ(first_text(*echoed), "Echo: over http");

  // Progress notifications then the result, all on the POST's SSE stream.
  others.clear();
  ec = co_await transport.write(
      R"({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":)"
      R"("trigger-long-running-operation","arguments":{"duration":0.3,"steps":3},)"
      R"("_meta":{"progressToken":"p-4"}}})");
  CO_ASSERT_TRUE(!ec);
  auto long_running = co_await answer_to(transport, 4, others);
  CO_ASSERT_TRUE(long_running.has_value());
  EXPECT_NE(first_text(*long_running).find("completed"), std::string::npos)
      << json::serialize(*long_running);
  int progress = 0;
  for (const auto& message : others)
    if (json::serialize(message).find("\"p-4\"") != std::string::npos) ++progress;
  EXPECT_EQ(progress, 3);

  // After notifications/initialized the transport opened the standalone GET stream.
  const auto streaming = [&server] { return server.logged("Establishing new SSE stream"); };
  const bool get_opened = co_await testing::eventually(streaming, 10s);
  EXPECT_TRUE(get_opened) << "the server saw no GET stream";
  // The GET stream is open: its connection is the executor's, none is this process's.
  std::vector<pid_t> candidates{::getpid()};
  if (vantage.remote()) candidates.push_back(vantage.pid());
  const auto clients =
      testing::tcp_clients_of(static_cast<unsigned short>(std::stoi(port)), candidates);
  EXPECT_EQ(clients, std::vector<pid_t>{vantage.pid()});

  co_await transport.close(jsonrpc::close_code::kNormal);
  const auto deleted = [&server] { return server.logged("Received session termination request"); };
  const bool session_ended = co_await testing::eventually(deleted, 10s);
  EXPECT_TRUE(session_ended) << "the server saw no DELETE of the session";
  auto after = co_await transport.read();
  EXPECT_FALSE(after.has_value());
  EXPECT_EQ(connection->diagnostics->end_reason(), "MCP HTTP connection closed");
}

class McpHttpVia : public ::testing::TestWithParam<Via> {};

TEST_P(McpHttpVia, ServerEverythingOverStreamableHttp) {
  Vantage vantage(GetParam());
  run_from(vantage, server_everything_body, 60s, "the server-everything HTTP session");
}

// ---- against a scripted fake server --------------------------------------------------------

// A fake MCP server (not a real one): each connection carries one request, answered with the
// raw bytes `respond` returns, then closed; so SSE streams can be cut anywhere.
struct Seen {
  std::string method;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class FakeServer {
 public:
  using Respond = std::function<std::string(const Seen&)>;

  FakeServer(const asio::any_io_executor& executor, Respond respond)
      : state_(std::make_shared<State>(executor, std::move(respond))) {
    asio::co_spawn(executor, accept_loop(state_), asio::detached);
  }
  ~FakeServer() {
    error_code ignored;
    state_->acceptor.close(ignored);
  }

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(state_->acceptor.local_endpoint().port()) + "/mcp";
  }
  const std::vector<Seen>& seen() const { return state_->seen; }

 private:
  struct State {
    State(const asio::any_io_executor& executor, Respond r)
        : acceptor(executor, {asio::ip::make_address("127.0.0.1"), 0}), respond(std::move(r)) {}
    asio::ip::tcp::acceptor acceptor;
    Respond respond;
    std::vector<Seen> seen;
  };

  static asio::awaitable<void> serve(std::shared_ptr<State> state, asio::ip::tcp::socket socket) {
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    error_code ec;
    co_await http::async_read(socket, buffer, request,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    Seen seen{std::string(request.method_string()), {}, request.body()};
    for (const auto& field : request) {
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      seen.headers[name] = std::string(field.value());
    }
    state->seen.push_back(seen);
    const auto reply = state->respond(seen);
    co_await asio::async_write(socket, asio::buffer(reply),
                               asio::redirect_error(asio::use_awaitable, ec));
    socket.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    socket.close(ec);
  }

  static asio::awaitable<void> accept_loop(std::shared_ptr<State> state) {
    for (;;) {
      error_code ec;
      auto socket =
          co_await state->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      asio::co_spawn(state->acceptor.get_executor(), serve(state, std::move(socket)),
                     asio::detached);
    }
  }

  std::shared_ptr<State> state_;
};

std::string reply(const std::string& status, const std::string& type, const std::string& body,
                  const std::string& extra_headers = {}) {
  return "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n" +
         extra_headers + "\r\n" + body;
}

// An SSE body delimited by the connection's end: the server "cuts" it by closing.
std::string sse_reply(const std::string& events) {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n" + events;
}

std::string scripted(const Seen& request) {
  const auto body = parse_object(request.body);
  const auto method =
      body.contains("method") ? json::value_to<std::string>(body.at("method")) : std::string();
  if (request.method == "POST" && method == "initialize")
    return reply("200 OK", "application/json",
                 R"({"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18",)"
                 R"("capabilities":{},"serverInfo":{"name":"fake","version":"0"}}})",
                 "Mcp-Session-Id: sess-1\r\n");
  if (request.method == "POST" && !body.contains("id"))
    return reply("202 Accepted", "text/plain", "");
  if (request.method == "POST" && method == "tools/call")
    // The progress event, then the stream is cut before the answer.
    return sse_reply(
        ": opened\nretry: 50\nid: ev-1\nevent: message\n"
        R"(data: {"jsonrpc":"2.0","method":"notifications/progress","params":)"
        R"({"progressToken":"t","progress":1}})"
        "\n\n");
  if (request.method == "POST" && method == "boom")
    return reply("500 Internal Server Error", "text/plain", "boom\n");
  if (request.method == "POST" && method == "stale")
    return reply("404 Not Found", "text/plain", "no such session");
  if (request.method == "GET" && request.header("last-event-id") == "ev-1")
    return sse_reply(
        "id: ev-2\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\r\ndata: \"result\":{}}\r\n\r\n");
  if (request.method == "GET" && request.header("last-event-id").empty())
    // The standalone stream: one server message, then cut; its reconnect is told 405.
    return sse_reply(
        "retry: 50\nid: g-1\n"
        R"(data: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info",)"
        R"("data":"from GET"}})"
        "\n\n");
  if (request.method == "GET") return reply("405 Method Not Allowed", "text/plain", "");
  if (request.method == "DELETE") return reply("200 OK", "text/plain", "");
  return reply("400 Bad Request", "text/plain", "unexpected");
}

int count(const std::vector<Seen>& seen, const std::function<bool(const Seen&)>& match) {
  return static_cast<int>(std::count_if(seen.begin(), seen.end(), match));
}

asio::awaitable<void> scripted_body(Vantage& vantage) {
  auto executor = co_await asio::this_coro::executor;
  FakeServer server(executor, scripted);
  HttpServerConfig config;
  config.url = server.url();
  config.client = co_await vantage.client();
  config.bearer_token = "tok-123";
  config.headers = {{"X-Extra", "yes"}};
  auto connection = connect_http(executor, config);
  CO_ASSERT_TRUE(connection.has_value());
  auto& transport = *connection->transport;
  std::vector<json::object> others;

  auto ec = co_await transport.write(kInitialize);
  CO_ASSERT_TRUE(!ec);
  auto initialized = co_await answer_to(transport, 1, others);
  CO_ASSERT_TRUE(initialized.has_value());
  ec = co_await transport.write(kInitialized);
  CO_ASSERT_TRUE(!ec);

  // The answer to 2 comes only through the resumed stream, exactly once: the next message
  // after it is the answer to 3.
  ec = co_await transport.write(
      R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"slow"}})");
  CO_ASSERT_TRUE(!ec);
  auto resumed = co_await answer_to(transport, 2, others);
  CO_ASSERT_TRUE(resumed.has_value());
  EXPECT_TRUE(resumed->contains("result"));
  const auto is_progress = [](const json::object& m) {
    return json::serialize(m).find("notifications/progress") != std::string::npos;
  };
  EXPECT_EQ(std::count_if(others.begin(), others.end(), is_progress), 1);

  ec = co_await transport.write(R"({"jsonrpc":"2.0","id":3,"method":"boom"})");
  CO_ASSERT_TRUE(!ec);
  auto text = co_await transport.read();
  CO_ASSERT_TRUE(text.has_value());
  while (json::serialize(parse_object(*text)).find("from GET") != std::string::npos) {
    text = co_await transport.read();  // the standalone stream's message may come first
    CO_ASSERT_TRUE(text.has_value());
  }
  auto failed = parse_object(*text);
  EXPECT_EQ(json::serialize(failed.at("id")), "3") << *text;
  EXPECT_EQ(error_message(failed), "HTTP 500 Internal Server Error: boom");
  EXPECT_EQ(json::serialize(failed.at("error").at("code")), "-32000");

  // The standalone GET stream delivered its message and was resumed with its last event id.
  const auto get_resumed = [&server] {
    return count(server.seen(), [](const Seen& s) {
             return s.method == "GET" && s.header("last-event-id") == "g-1";
           }) == 1;
  };
  const bool resumed_get = co_await testing::eventually(get_resumed, 10s);
  EXPECT_TRUE(resumed_get);

  co_await transport.close(jsonrpc::close_code::kNormal);
  auto after = co_await transport.read();
  EXPECT_FALSE(after.has_value());

  const auto& seen = server.seen();
  for (const auto& request : seen) {
    EXPECT_EQ(request.header("authorization"), "Bearer tok-123") << request.method;
    EXPECT_EQ(request.header("x-extra"), "yes") << request.method;
    if (parse_object(request.body).contains("method") &&
        json::serialize(parse_object(request.body).at("method")) == "\"initialize\"") {
      EXPECT_EQ(request.header("mcp-session-id"), "");
      EXPECT_EQ(request.header("mcp-protocol-version"), "");
      EXPECT_EQ(request.header("accept"), "application/json, text/event-stream");
      EXPECT_EQ(request.header("content-type"), "application/json");
    } else {
      EXPECT_EQ(request.header("mcp-session-id"), "sess-1") << request.method << request.body;
      EXPECT_EQ(request.header("mcp-protocol-version"), "2025-06-18") << request.method;
    }
  }
  EXPECT_EQ(count(seen, [](const Seen& s) { return s.method == "POST"; }), 4);
  EXPECT_EQ(
      count(seen,
            [](const Seen& s) { return s.method == "GET" && s.header("last-event-id") == "ev-1"; }),
      1);
  EXPECT_EQ(count(seen, [](const Seen& s) { return s.method == "DELETE"; }), 1);
  EXPECT_EQ(seen.back().method, "DELETE");
}

TEST_P(McpHttpVia, ScriptedServerSessionResumeErrorsAndDelete) {
  Vantage vantage(GetParam());
  run_from(vantage, scripted_body, 30s, "the scripted HTTP session");
}

// A transport to `server` whose initialize was answered; nullopt (and a test failure) otherwise.
asio::awaitable<std::optional<ServerConnection>> initialized_connection(const FakeServer& server,
                                                                        Vantage& vantage) {
  HttpServerConfig config;
  config.url = server.url();
  config.client = co_await vantage.client();
  auto connection = connect_http(co_await asio::this_coro::executor, config);
  if (!connection) {
    ADD_FAILURE() << "connect_http: " << connection.error().message;
    co_return std::nullopt;
  }
  if (auto ec = co_await connection->transport->write(kInitialize)) {
    ADD_FAILURE() << "writing initialize: " << ec.message();
    co_return std::nullopt;
  }
  std::vector<json::object> others;
  if (!co_await answer_to(*connection->transport, 1, others)) co_return std::nullopt;
  co_return std::move(*connection);
}

asio::awaitable<void> expired_session_body(Vantage& vantage) {
  auto executor = co_await asio::this_coro::executor;
  FakeServer server(executor, scripted);
  auto connection = co_await initialized_connection(server, vantage);
  CO_ASSERT_TRUE(connection.has_value());
  auto& transport = *connection->transport;
  std::vector<json::object> others;
  auto ec = co_await transport.write(R"({"jsonrpc":"2.0","id":5,"method":"stale"})");
  CO_ASSERT_TRUE(!ec);
  auto failed = co_await answer_to(transport, 5, others);
  CO_ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(error_message(*failed),
            "HTTP 404 Not Found: no such session (the MCP session expired; a new initialize "
            "starts a new one)");
  // The session is gone: so is the connection (a new one starts with a new initialize).
  auto after = co_await transport.read();
  EXPECT_FALSE(after.has_value());
  EXPECT_EQ(connection->diagnostics->end_reason(), error_message(*failed));
}

TEST_P(McpHttpVia, NotFoundOnASessionSaysTheSessionExpired) {
  Vantage vantage(GetParam());
  run_from(vantage, expired_session_body, 30s, "the expired-session exchange");
}

// A 401 says the server wants authorization, with its challenge (tether does no OAuth).
asio::awaitable<void> unauthorized_body(Vantage& vantage) {
  auto executor = co_await asio::this_coro::executor;
  FakeServer server(executor, [](const Seen&) {
    return reply(
        "401 Unauthorized", "text/plain", "no token",
        "WWW-Authenticate: Bearer resource_metadata=\"http://127.0.0.1/.well-known/x\"\r\n");
  });
  HttpServerConfig config;
  config.url = server.url();
  config.client = co_await vantage.client();
  auto connection = connect_http(executor, config);
  CO_ASSERT_TRUE(connection.has_value());
  auto ec = co_await connection->transport->write(kInitialize);
  CO_ASSERT_TRUE(!ec);
  std::vector<json::object> others;
  auto failed = co_await answer_to(*connection->transport, 1, others);
  CO_ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(error_message(*failed),
            "HTTP 401 Unauthorized: no token (the MCP server requires authorization; "
            "WWW-Authenticate: Bearer resource_metadata=\"http://127.0.0.1/.well-known/x\")");
  connection->transport->abort();
}

TEST_P(McpHttpVia, UnauthorizedSaysAuthorizationIsRequired) {
  Vantage vantage(GetParam());
  run_from(vantage, unauthorized_body, 30s, "the unauthorized exchange");
}

// Caught by fuzz_mcp_http's header check: a protocolVersion with CR LF was sent back as is in the
// MCP-Protocol-Version header, injecting a header line into every later request.
std::string injecting(const Seen& request) {
  const auto body = parse_object(request.body);
  if (request.method == "POST" && body.contains("method") &&
      json::serialize(body.at("method")) == "\"initialize\"")
    return reply("200 OK", "application/json",
                 R"({"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18\r\n)"
                 R"(X-Injected: yes","capabilities":{},"serverInfo":{"name":"f","version":"0"}}})",
                 "Mcp-Session-Id: sess-9\r\n");
  if (request.method == "POST")
    return reply("200 OK", "application/json", R"({"jsonrpc":"2.0","id":2,"result":{}})");
  return reply("200 OK", "text/plain", "");
}

asio::awaitable<void> injected_version_body() {
  auto executor = co_await asio::this_coro::executor;
  FakeServer server(executor, injecting);
  Vantage local(Via::local);
  auto connection = co_await initialized_connection(server, local);
  CO_ASSERT_TRUE(connection.has_value());
  auto& transport = *connection->transport;
  std::vector<json::object> others;
  auto ec = co_await transport.write(R"({"jsonrpc":"2.0","id":2,"method":"ping"})");
  CO_ASSERT_TRUE(!ec);
  CO_ASSERT_TRUE((co_await answer_to(transport, 2, others)).has_value());
  co_await transport.close(jsonrpc::close_code::kNormal);

  const auto& seen = server.seen();
  CO_ASSERT_EQ(seen.size(), 3u);  // initialize, ping, DELETE
  for (const auto& request : seen) {
    EXPECT_EQ(request.header("x-injected"), "") << request.method << " " << request.body;
    EXPECT_EQ(request.header("mcp-protocol-version"), "") << request.method;
  }
  EXPECT_EQ(seen[1].header("mcp-session-id"), "sess-9");
  EXPECT_EQ(seen[2].method, "DELETE");
}

TEST(McpHttp, AProtocolVersionThatIsNoHeaderValueIsNotSentBack) {
  run_async(injected_version_body, 30s, "the injected-version exchange");
}

// Found by fuzz_mcp_http: an error answer quoting bytes that are not UTF-8 (a reason phrase, a
// body cut inside a character at 1024 bytes) was not JSON, so the request waited for its timeout.
asio::awaitable<void> non_utf8_error_body() {
  auto executor = co_await asio::this_coro::executor;
  const std::string body = std::string(1023, 'x') + "\xC3\xA9 more";  // cut inside the \xC3\xA9
  FakeServer server(executor,
                    [&body](const Seen&) { return reply("500 Bad\xF0Thing", "text/plain", body); });
  HttpServerConfig config;
  config.url = server.url();
  auto connection = connect_http(executor, config);
  CO_ASSERT_TRUE(connection.has_value());
  std::vector<json::object> others;
  auto ec = co_await connection->transport->write(kInitialize);
  CO_ASSERT_TRUE(!ec);
  auto failed = co_await answer_to(*connection->transport, 1, others);
  CO_ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(error_message(*failed),
            "HTTP 500 Bad\uFFFDThing: " + std::string(1023, 'x') + "\uFFFD");
  connection->transport->abort();
}

TEST(McpHttp, ErrorAnswersQuotingNonUtf8BytesAreStillJson) {
  run_async(non_utf8_error_body, 30s, "the non-UTF-8 error exchange");
}

// A fake server (not a real one) that starts an SSE answer for each POST and keeps it open,
// noting when the client closes the connection.
asio::awaitable<void> hold_open(asio::ip::tcp::socket socket, std::shared_ptr<int> closed) {
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  error_code ec;
  co_await http::async_read(socket, buffer, request, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  const std::string head =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
  co_await asio::async_write(socket, asio::buffer(head),
                             asio::redirect_error(asio::use_awaitable, ec));
  std::array<char, 256> sink{};
  while (!ec)
    co_await socket.async_read_some(asio::buffer(sink),
                                    asio::redirect_error(asio::use_awaitable, ec));
  ++*closed;
}

asio::awaitable<void> cancelled_request_body(Vantage& vantage) {
  auto executor = co_await asio::this_coro::executor;
  asio::ip::tcp::acceptor acceptor(executor, {asio::ip::make_address("127.0.0.1"), 0});
  auto closed = std::make_shared<int>(0);
  HttpServerConfig config;
  config.url = "http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()) + "/mcp";
  config.client = co_await vantage.client();
  auto connection = connect_http(executor, config);
  CO_ASSERT_TRUE(connection.has_value());
  auto& transport = *connection->transport;
  auto ec = co_await transport.write(R"({"jsonrpc":"2.0","id":7,"method":"tools/call"})");
  CO_ASSERT_TRUE(!ec);
  auto socket = co_await acceptor.async_accept(asio::use_awaitable);
  asio::co_spawn(executor, hold_open(std::move(socket), closed), asio::detached);
  co_await testing::sleep_for(100ms);
  EXPECT_EQ(*closed, 0) << "the answer's connection stays open while the request is wanted";
  ec = co_await transport.write(
      R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}})");
  CO_ASSERT_TRUE(!ec);
  auto notification = co_await acceptor.async_accept(asio::use_awaitable);
  asio::co_spawn(executor, hold_open(std::move(notification), std::make_shared<int>(0)),
                 asio::detached);
  EXPECT_TRUE(co_await testing::eventually([&] { return *closed == 1; }, 10s))
      << "the cancelled request's connection was not closed";
  transport.abort();
}

// codex's executor has no http/request cancel: a cancelled request's stream runs on there.
class McpHttpCancelVia : public ::testing::TestWithParam<Via> {};

TEST_P(McpHttpCancelVia, CancellingARequestClosesItsAnswersConnection) {
  Vantage vantage(GetParam());
  run_from(vantage, cancelled_request_body, 30s, "the cancelled-request exchange");
}

asio::awaitable<void> unreachable_body() {
  auto executor = co_await asio::this_coro::executor;
  HttpServerConfig config;
  config.url = "http://127.0.0.1:" + std::to_string(testing::free_port()) + "/mcp";
  auto connection = connect_http(executor, config);
  CO_ASSERT_TRUE(connection.has_value());
  auto ec = co_await connection->transport->write(kInitialize);
  EXPECT_TRUE(ec);
  auto after = co_await connection->transport->read();
  EXPECT_FALSE(after.has_value());
  const auto& reason = connection->diagnostics->end_reason();
  CO_ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->find("unreachable"), std::string::npos) << *reason;
}

TEST(McpHttp, UnreachableServerEndsTheConnection) {
  run_async(unreachable_body, 30s, "the unreachable-server write");
}

// Through tether's executor the server's unreachability is the executor's answer (its
// `unreachable` mark): the request fails saying what the executor could not do, and the
// connection ends as when this process cannot reach the server.
asio::awaitable<void> unreachable_via_executor_body(Vantage& vantage) {
  auto executor = co_await asio::this_coro::executor;
  HttpServerConfig config;
  config.url = "http://127.0.0.1:" + std::to_string(testing::free_port()) + "/mcp";
  config.client = co_await vantage.client();
  auto connection = connect_http(executor, config);
  CO_ASSERT_TRUE(connection.has_value());
  auto ec = co_await connection->transport->write(kInitialize);
  CO_ASSERT_TRUE(!ec);
  std::vector<json::object> others;
  auto failed = co_await answer_to(*connection->transport, 1, others);
  CO_ASSERT_TRUE(failed.has_value());
  EXPECT_NE(error_message(*failed).find("http/request failed: could not connect"),
            std::string::npos)
      << error_message(*failed);
  auto after = co_await connection->transport->read();
  EXPECT_FALSE(after.has_value());
  const auto& reason = connection->diagnostics->end_reason();
  CO_ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->find("unreachable"), std::string::npos) << *reason;
}

TEST(McpHttp, UnreachableServerThroughAnExecutorEndsTheConnection) {
  Vantage vantage(Via::tether_executor);
  run_from(vantage, unreachable_via_executor_body, 30s,
           "the unreachable-server request through an executor");
}

TEST(McpHttp, InvalidUrlsAreRejected) {
  asio::io_context io;
  for (const char* url : {"ftp://example.com/mcp", "not a url", "http:///mcp"}) {
    HttpServerConfig config;
    config.url = url;
    auto connection = connect_http(io.get_executor(), config);
    EXPECT_FALSE(connection.has_value()) << url;
  }
}

INSTANTIATE_TEST_SUITE_P(Vantages, McpHttpVia,
                         ::testing::Values(Via::local, Via::tether_executor, Via::codex_executor),
                         via_name);
INSTANTIATE_TEST_SUITE_P(Vantages, McpHttpCancelVia,
                         ::testing::Values(Via::local, Via::tether_executor), via_name);

}  // namespace
}  // namespace tether::mcp
