// The HTTP gate in front of the executor's WebSocket: every request is judged here before any
// upgrade. Order matters: Origin (browsers are never clients), then Host (DNS rebinding), then
// /readyz, then the bearer token. Pure decisions, no I/O.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>

#include <tether/jsonrpc/http_auth.hpp>

namespace tether::exec {

using jsonrpc::Sha256;
using jsonrpc::sha256;

struct GateConfig {
  std::optional<Sha256> token_digest;  // nullopt: auth disabled (--insecure-no-auth)
  std::vector<std::string> allowed_hosts;
};

struct GateAnswer {
  boost::beast::http::status status;
  std::string body;
};

// nullopt: upgrade to WebSocket; otherwise answer with this and close.
std::optional<GateAnswer> judge_request(
    const boost::beast::http::request<boost::beast::http::empty_body>& request,
    const GateConfig& config);

}  // namespace tether::exec
