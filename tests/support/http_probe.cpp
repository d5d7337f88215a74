// The HTTP probe client (http_probe.hpp).
#include "http_probe.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>

#include "async_test.hpp"

namespace tether::testing::http_probe {

namespace asio = boost::asio;
namespace beast = boost::beast;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

namespace {
// One HTTP exchange, connect to the end of the answer.
constexpr auto kExchangeBound = 30s;
}  // namespace

std::ostream& operator<<(std::ostream& out, const Answer& answer) {
  if (answer.status == 0) return out << "no HTTP answer: " << answer.error;
  out << "HTTP " << answer.status << "\n";
  for (const auto& field : answer.response)
    out << field.name_string() << ": " << field.value() << "\n";
  const auto& body = answer.body();
  return out << body.substr(0, 2000) << (body.size() > 2000 ? "..." : "");
}

Probe with(Probe probe, std::string name, std::string value) {
  probe.headers.emplace_back(std::move(name), std::move(value));
  return probe;
}

std::string bearer(const std::string& token) {
  return "Bearer " + token;
}

Probe post_as(const std::string& token, std::string body) {
  Probe probe;
  probe.body = std::move(body);
  probe.headers = {{"Authorization", bearer(token)},
                   {"Content-Type", "application/json"},
                   {"Accept", "application/json, text/event-stream"}};
  return probe;
}

Probe plain(http::verb verb, std::string target) {
  Probe probe;
  probe.verb = verb;
  probe.target = std::move(target);
  return probe;
}

http::request<http::string_body> request_of(unsigned short port, const Probe& probe) {
  http::request<http::string_body> request{probe.verb, probe.target, 11};
  request.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  request.keep_alive(false);
  for (const auto& [name, value] : probe.headers) {
    if (value.empty()) {
      request.erase(name);
    } else {
      request.set(name, value);
    }
  }
  request.body() = probe.body;
  request.prepare_payload();
  return request;
}

asio::awaitable<void> write_request(beast::tcp_stream& stream,
                                    const http::request<http::string_body>& request,
                                    boost::system::error_code& ec) {
  co_await http::async_write(stream, request, asio::redirect_error(asio::use_awaitable, ec));
}

// Reads the answer; `headers_seen` (when given) is set once its header has arrived.
asio::awaitable<void> read_response(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                    http::response_parser<http::string_body>& parser,
                                    bool* headers_seen, boost::system::error_code& ec) {
  co_await http::async_read_header(stream, buffer, parser,
                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  if (headers_seen) *headers_seen = true;
  co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
}

// Sends `probe` to 127.0.0.1:`port` and reads the whole answer (an SSE answer to its end).
// Writing and reading run together: a server may answer (413) before it read the body.
asio::awaitable<Answer> exchange(unsigned short port, const Probe& probe, bool* headers_seen) {
  Answer answer;
  const auto request = request_of(port, probe);
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(kExchangeBound);
  boost::system::error_code ec;
  const asio::ip::tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"), port);
  co_await stream.async_connect(endpoint, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    answer.error = "connect: " + ec.message();
    co_return answer;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(std::uint64_t{64} << 20);
  boost::system::error_code write_ec;
  boost::system::error_code read_ec;
  co_await (write_request(stream, request, write_ec) &&
            read_response(stream, buffer, parser, headers_seen, read_ec));
  if (read_ec) {
    answer.error =
        "read: " + read_ec.message() + (write_ec ? "; write: " + write_ec.message() : "");
    co_return answer;
  }
  answer.response = parser.release();
  answer.status = answer.response.result_int();
  co_return answer;
}

asio::awaitable<Answer> exchange(unsigned short port, const Probe& probe) {
  return exchange(port, probe, nullptr);
}

// `probe` again every 50 ms (up to `bound`) until `done` accepts the answer; the last answer.
asio::awaitable<Answer> poll(unsigned short port, const Probe& probe,
                             const std::function<bool(const Answer&)>& done,
                             std::chrono::seconds bound) {
  const auto until = std::chrono::steady_clock::now() + bound;
  for (;;) {
    auto answer = co_await exchange(port, probe);
    if (done(answer) || std::chrono::steady_clock::now() >= until) co_return answer;
    co_await testing::sleep_for(50ms);
  }
}

}  // namespace tether::testing::http_probe
