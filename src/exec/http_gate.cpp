// Token comparison hashes the presented token and compares digests with CRYPTO_memcmp, so the
// time taken says nothing about the token and the server never needs the token itself.
#include "http_gate.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <openssl/crypto.h>
#include <openssl/sha.h>

namespace tether::exec {
namespace http = boost::beast::http;
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

bool host_allowed(std::string_view host, const std::vector<std::string>& allowed) {
  std::string_view name = host;
  if (name.starts_with('[')) {
    const auto close = name.find(']');
    if (close == std::string_view::npos) return false;
    boost::system::error_code ec;
    boost::asio::ip::make_address_v6(std::string(name.substr(1, close - 1)), ec);
    return !ec;
  }
  if (const auto colon = name.rfind(':'); colon != std::string_view::npos)
    name = name.substr(0, colon);
  boost::system::error_code ec;
  boost::asio::ip::make_address_v4(std::string(name), ec);
  if (!ec || iequals(name, "localhost")) return true;
  return std::any_of(allowed.begin(), allowed.end(),
                     [&](const std::string& a) { return iequals(a, name); });
}

GateAnswer answer(http::status status, std::string body) {
  return {status, std::move(body)};
}

}  // namespace

Sha256 sha256(std::string_view data) {
  Sha256 digest{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
  return digest;
}

std::optional<GateAnswer> judge_request(const http::request<http::empty_body>& request,
                                        const GateConfig& config) {
  if (request.find(http::field::origin) != request.end())
    return answer(http::status::forbidden, "browser Origin websocket requests are not allowed");
  const auto host = request.find(http::field::host);
  if (host == request.end()) return answer(http::status::bad_request, "missing Host header");
  if (!host_allowed(host->value(), config.allowed_hosts))
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
  if (auth == request.end())
    return answer(http::status::unauthorized, "missing websocket bearer token");
  const std::string_view value = auth->value();
  constexpr std::string_view kScheme = "bearer ";
  if (value.size() < kScheme.size() || !iequals(value.substr(0, kScheme.size()), kScheme))
    return answer(http::status::unauthorized, "invalid authorization header");
  std::string_view token = value.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  const Sha256 presented = sha256(token);
  if (CRYPTO_memcmp(presented.data(), config.token_digest->data(), presented.size()) != 0)
    return answer(http::status::unauthorized, "invalid websocket bearer token");
  return std::nullopt;
}

}  // namespace tether::exec
