// The executor's gate (http_gate.hpp); the token and Host rules are jsonrpc/http_auth.hpp's.
#include "http_gate.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

namespace tether::exec {
namespace http = boost::beast::http;
namespace {

GateAnswer answer(http::status status, std::string body) {
  return {status, std::move(body)};
}

}  // namespace

std::optional<GateAnswer> judge_request(const http::request<http::empty_body>& request,
                                        const GateConfig& config) {
  if (request.find(http::field::origin) != request.end())
    return answer(http::status::forbidden, "browser Origin websocket requests are not allowed");
  const auto host = request.find(http::field::host);
  if (host == request.end()) return answer(http::status::bad_request, "missing Host header");
  if (!jsonrpc::host_allowed(host->value(), config.allowed_hosts))
    return answer(http::status::forbidden, "Host header is not allowed");

  const std::string_view target = request.target();
  const std::string_view path = target.substr(0, target.find('?'));
  if (path == "/readyz") {
    if (request.method() != http::verb::get) return answer(http::status::method_not_allowed, "");
    return answer(http::status::ok, "ok");
  }
  if (!boost::beast::websocket::is_upgrade(request)) return answer(http::status::not_found, "");

  if (!config.token_digest) return std::nullopt;
  const auto auth = request.find(http::field::authorization);
  std::optional<std::string_view> presented;
  if (auth != request.end()) presented = auth->value();
  switch (jsonrpc::check_bearer(presented, *config.token_digest)) {
    case jsonrpc::BearerCheck::ok:
      return std::nullopt;
    case jsonrpc::BearerCheck::missing:
      return answer(http::status::unauthorized, "missing websocket bearer token");
    case jsonrpc::BearerCheck::malformed:
      return answer(http::status::unauthorized, "invalid authorization header");
    case jsonrpc::BearerCheck::wrong:
      break;
  }
  return answer(http::status::unauthorized, "invalid websocket bearer token");
}

}  // namespace tether::exec
