// The request and response vocabulary (see include/tether/fetch/fetch.hpp).
#include <algorithm>

#include <boost/algorithm/string/predicate.hpp>
#include <fmt/format.h>

#include <tether/fetch/fetch.hpp>
#include <tether/jsonrpc/url_target.hpp>

namespace tether::fetch {
namespace {

// RFC 9110 `tchar`.
bool is_tchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), is_tchar);
}

// Beast writes field values as they are: CR or LF would inject header lines.
bool is_field_value(std::string_view text) {
  return text.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

}  // namespace

std::optional<std::string_view> find_header(const Headers& headers, std::string_view name) {
  for (const auto& header : headers)
    if (boost::algorithm::iequals(header.name, name)) return header.value;
  return std::nullopt;
}

void set_header(Headers& headers, std::string_view name, std::string value) {
  std::erase_if(headers,
                [name](const Header& h) { return boost::algorithm::iequals(h.name, name); });
  headers.push_back(Header{std::string(name), std::move(value)});
}

Expected<void> check_request(const Request& request) {
  if (!is_token(request.method))
    return jsonrpc::make_error(jsonrpc::code::kInvalidParams,
                               fmt::format("invalid HTTP method '{}'", request.method));
  if (!jsonrpc::parse_url_target(request.url, "http", "https"))
    return jsonrpc::make_error(
        jsonrpc::code::kInvalidParams,
        fmt::format("invalid URL '{}': expected http:// or https:// with a host", request.url));
  for (const auto& header : request.headers) {
    if (!is_token(header.name))
      return jsonrpc::make_error(jsonrpc::code::kInvalidParams,
                                 fmt::format("invalid HTTP header name '{}'", header.name));
    if (!is_field_value(header.value))
      return jsonrpc::make_error(
          jsonrpc::code::kInvalidParams,
          fmt::format("the value of HTTP header '{}' contains CR, LF or NUL", header.name));
  }
  return {};
}

boost::asio::awaitable<Expected<std::string>> read_all(Exchange& exchange, std::size_t limit) {
  std::string body;
  for (;;) {
    auto piece = co_await exchange.read();
    if (!piece) co_return piece.error();
    if (piece->empty()) co_return body;
    if (piece->size() > limit - body.size()) {
      exchange.cancel();
      co_return jsonrpc::make_error(
          jsonrpc::code::kInternalError,
          "the response body exceeds " + std::to_string(limit) + " bytes");
    }
    body += *piece;
  }
}

}  // namespace tether::fetch
