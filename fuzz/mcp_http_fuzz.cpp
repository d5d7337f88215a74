// libFuzzer target for the response side of the MCP streamable HTTP transport (src/mcp/http.cpp):
// status line and headers (Beast's parser, then the transport's reading of the status, the
// Content-Type media type and `Mcp-Session-Id`), JSON bodies (single and batch), SSE bodies
// (sse.cpp, event selection, answered-request tracking, the early stop), error bodies and the
// messages built from them.
//
// The parsing in http.cpp is private and reached only through a socket, so each iteration is a
// real exchange on 127.0.0.1: the input is the raw bytes a server answers the client's
// `initialize` POST with (then the server closes its side). When that yields an answer to the
// initialize, the client POSTs a second request and the server checks it: it must be a well-formed
// HTTP request carrying exactly the expected headers, `Mcp-Session-Id` as the first answer's
// header said and `MCP-Protocol-Version` as the initialize result said (a response must not be
// able to inject headers or break the next request). Every message read() yields must be JSON.
// A POST whose SSE stream ended unanswered would be resumed after the server's retry delay: the
// iteration aborts the transport at that point instead (resuming is covered by tests/mcp).
//
// FAKE: the server is this file's, since its answer is the fuzz input. Nothing but loopback.
#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <tether/mcp/http.hpp>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using asio::ip::tcp;
using boost::system::error_code;
using namespace tether;

constexpr auto kIterationBound = std::chrono::seconds(10);
constexpr std::string_view kInitialize =
    R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}})";
constexpr std::string_view kPing = R"({"jsonrpc":"2.0","id":2,"method":"ping"})";
constexpr std::string_view kPingAnswer =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 36\r\n\r\n"
    R"({"jsonrpc":"2.0","id":2,"result":{}})";
constexpr std::string_view kNotFound = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_mcp_http: %s\n", what);
  std::abort();
}

asio::io_context& io() {
  static asio::io_context context(1);
  return context;
}

// What the server saw, shared by its connection handlers and the client driver. A listening
// socket per iteration: a connection still in the backlog at the end of one iteration (a resume
// racing the abort) is refused, not served as the next iteration's first.
struct Exchange {
  explicit Exchange(std::string_view answer)
      : answer(answer),
        acceptor(io(), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        changed(io()) {}
  std::string_view answer;
  tcp::acceptor acceptor;
  bool first_finished = false;  // the client closed the first exchange
  bool second_arrived = false;  // the request after the answer, well-formed or not
  std::optional<http::request<http::string_body>> second;
  bool second_malformed = false;

  // Single-threaded: a waiter checks its condition before waiting, so a wake-up is never lost.
  asio::awaitable<void> wait_until(const bool& condition) {
    while (!condition) {
      changed.expires_at(asio::steady_timer::time_point::max());
      error_code ignored;
      co_await changed.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
  }
  void notify() { changed.cancel(); }

 private:
  asio::steady_timer changed;
};

asio::awaitable<void> drain(tcp::socket& socket) {
  std::array<char, 4096> sink;
  error_code ec;
  while (!ec)
    co_await socket.async_read_some(asio::buffer(sink),
                                    asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<void> handle(std::shared_ptr<Exchange> exchange, tcp::socket socket, bool first) {
  beast::flat_buffer buffer;
  http::request_parser<http::string_body> parser;
  error_code ec;
  co_await http::async_read(socket, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
  if (first) {
    if (ec) fail("the server could not read the initialize POST");
    co_await asio::async_write(socket, asio::buffer(exchange->answer),
                               asio::redirect_error(asio::use_awaitable, ec));
    socket.shutdown(tcp::socket::shutdown_send, ec);
    co_await drain(socket);  // until the client is done with this exchange
    exchange->first_finished = true;
    exchange->notify();
    co_return;
  }
  const bool is_post = !ec && parser.get().method() == http::verb::post;
  if (ec || is_post) {
    exchange->second_malformed = static_cast<bool>(ec);
    if (!ec) exchange->second = parser.release();
    exchange->second_arrived = true;
    exchange->notify();
    co_await asio::async_write(socket, asio::buffer(kPingAnswer),
                               asio::redirect_error(asio::use_awaitable, ec));
  } else {  // the GET resuming an unanswered SSE stream
    co_await asio::async_write(socket, asio::buffer(kNotFound),
                               asio::redirect_error(asio::use_awaitable, ec));
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
  co_await drain(socket);
}

asio::awaitable<void> serve(std::shared_ptr<Exchange> exchange) {
  for (bool first = true;; first = false) {
    error_code ec;
    auto socket =
        co_await exchange->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;  // cancelled at the end of the iteration
    asio::co_spawn(io(), handle(exchange, std::move(socket), first), asio::detached);
  }
}

std::optional<json::value> as_json(std::string_view text) {
  error_code ec;
  auto value = json::parse(text, ec);
  if (ec) return std::nullopt;
  return value;
}

const json::value* id_of(const json::value& message) {
  const auto* object = message.if_object();
  return object ? object->if_contains("id") : nullptr;
}

// The header fields the client's first answer carried, parsed as the client parses them.
std::optional<std::string> session_id_in(std::string_view answer) {
  http::response_parser<http::empty_body> parser;
  error_code ec;
  parser.eager(false);
  parser.put(asio::buffer(answer.data(), answer.size()), ec);
  if (!parser.is_header_done()) return std::nullopt;
  const auto& head = parser.get();
  auto it = head.find("Mcp-Session-Id");
  if (it == head.end()) return std::nullopt;
  return std::string(it->value());
}

// The version the client must send from now on: the first initialize answer's
// result.protocolVersion, when it is a string of visible ASCII (anything else cannot be a header
// value; it is not sent).
std::optional<std::string> negotiated_version(const std::vector<json::value>& messages) {
  for (const auto& message : messages) {
    const auto* id = id_of(message);
    if (!id || json::serialize(*id) != "1") continue;
    const auto* result = message.as_object().if_contains("result");
    const auto* version = result && result->is_object()
                              ? result->as_object().if_contains("protocolVersion")
                              : nullptr;
    if (!version || !version->is_string()) return std::nullopt;
    const std::string text(version->as_string());
    const bool visible = !text.empty() && std::all_of(text.begin(), text.end(),
                                                      [](char c) { return c > 0x20 && c < 0x7f; });
    if (!visible) return std::nullopt;
    return text;
  }
  return std::nullopt;
}

bool answered(const std::vector<json::value>& messages) {
  for (const auto& message : messages) {
    const auto* id = id_of(message);
    if (id && json::serialize(*id) == "1" && !message.as_object().contains("method")) return true;
  }
  return false;
}

void check_second(const Exchange& exchange, std::string_view answer,
                  const std::vector<json::value>& messages) {
  if (exchange.second_malformed) fail("the request after this answer is not well-formed HTTP");
  const auto& request = *exchange.second;
  if (request.target() != "/mcp" || request.body() != kPing)
    fail("the request after this answer has another target or body");
  static const std::set<std::string, std::less<>> allowed = {
      "host",           "user-agent", "content-type",   "accept",
      "content-length", "connection", "mcp-session-id", "mcp-protocol-version"};
  std::set<std::string, std::less<>> seen;
  for (const auto& field : request) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!allowed.contains(name)) fail("the request after this answer has an injected header");
    if (!seen.insert(name).second) fail("the request after this answer repeats a header");
  }
  auto value = [&](std::string_view name) -> std::optional<std::string> {
    auto it = request.find(name);
    if (it == request.end()) return std::nullopt;
    return std::string(it->value());
  };
  if (value("Mcp-Session-Id") != session_id_in(answer))
    fail("Mcp-Session-Id is not the one the server assigned");
  if (value("MCP-Protocol-Version") != negotiated_version(messages))
    fail("MCP-Protocol-Version is not the negotiated version");
}

asio::awaitable<void> drive(std::shared_ptr<Exchange> exchange, bool& done) {
  auto executor = co_await asio::this_coro::executor;
  mcp::HttpServerConfig config;
  config.url =
      "http://127.0.0.1:" + std::to_string(exchange->acceptor.local_endpoint().port()) + "/mcp";
  config.max_message_bytes = 1 << 20;
  auto connection = mcp::connect_http(executor, config);
  if (!connection) fail("connect_http refused a valid URL");
  auto transport = std::move(connection->transport);

  std::vector<json::value> messages;
  bool reader_done = false;
  asio::co_spawn(
      executor,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          auto message = co_await transport->read();
          if (!message) break;
          auto value = as_json(*message);
          if (!value) fail("read() yielded a message that is not JSON");
          messages.push_back(std::move(*value));
        }
        reader_done = true;
      },
      asio::detached);

  if (co_await transport->write(std::string(kInitialize)))
    fail("the initialize POST could not be sent");
  co_await exchange->wait_until(exchange->first_finished);
  // The client delivered everything before closing; let the reader take it.
  for (int i = 0; i < 8; ++i) co_await asio::post(executor, asio::use_awaitable);

  if (answered(messages)) {
    if (co_await transport->write(std::string(kPing))) fail("the second POST could not be sent");
    co_await exchange->wait_until(exchange->second_arrived);
    check_second(*exchange, exchange->answer, messages);
  }
  transport->abort();
  while (!reader_done) co_await asio::post(executor, asio::use_awaitable);
  done = true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  std::signal(SIGPIPE, SIG_IGN);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  io().restart();
  auto exchange =
      std::make_shared<Exchange>(std::string_view(reinterpret_cast<const char*>(data), size));
  exchange->acceptor.listen();
  bool done = false;
  asio::co_spawn(io(), serve(exchange), asio::detached);
  asio::co_spawn(io(), drive(exchange, done), asio::detached);
  const auto deadline = std::chrono::steady_clock::now() + kIterationBound;
  while (!done && std::chrono::steady_clock::now() < deadline)
    io().run_one_for(std::chrono::milliseconds(100));
  if (!done) fail("the exchange did not end");
  exchange->acceptor.close();
  while (!io().stopped() && std::chrono::steady_clock::now() < deadline)
    io().run_one_for(std::chrono::milliseconds(100));
  if (!io().stopped()) fail("the client or the server left work behind");
  return 0;
}
