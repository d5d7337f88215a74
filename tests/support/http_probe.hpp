// Test support: a small HTTP client for probing tether's HTTP listeners (the gateway, the MCP
// HTTP transport): one request per connection, any headers, the whole answer (an SSE answer to
// its end), bounded. Writing and reading run together, so an answer sent before the body was
// read (413) still arrives.
#pragma once

#include <chrono>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http.hpp>

namespace tether::testing::http_probe {

namespace http = boost::beast::http;

using Headers = std::vector<std::pair<std::string, std::string>>;

// One request; a new connection each (Connection: close).
struct Probe {
  http::verb verb = http::verb::post;
  std::string target = "/mcp";
  Headers headers;  // set in order over the defaults; an empty value removes the header
  std::string body;
};

struct Answer {
  unsigned status = 0;  // 0: no HTTP answer; `error` says why
  std::string error;
  http::response<http::string_body> response;

  std::string header(std::string_view name) const {
    const auto it = response.find(name);
    return it == response.end() ? std::string() : std::string(it->value());
  }
  const std::string& body() const { return response.body(); }
};

std::ostream& operator<<(std::ostream& out, const Answer& answer);

Probe with(Probe probe, std::string name, std::string value);
std::string bearer(const std::string& token);
// A POST to /mcp as a streamable HTTP client sends it, with `token` (none when empty).
Probe post_as(const std::string& token, std::string body);
// A request without a token (add one with `with`).
Probe plain(http::verb verb, std::string target);

// Sends `probe` to 127.0.0.1:`port` and reads the whole answer, within 30 s; `headers_seen`
// (when given) is set once the answer's header has arrived.
boost::asio::awaitable<Answer> exchange(unsigned short port, const Probe& probe,
                                        bool* headers_seen);
boost::asio::awaitable<Answer> exchange(unsigned short port, const Probe& probe);
// `probe` again every 50 ms (up to `bound`) until `done` accepts the answer; the last answer.
boost::asio::awaitable<Answer> poll(unsigned short port, const Probe& probe,
                                    const std::function<bool(const Answer&)>& done,
                                    std::chrono::seconds bound);

}  // namespace tether::testing::http_probe
