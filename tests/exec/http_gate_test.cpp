// The HTTP gate's decisions (http_gate.hpp) without a socket: Origin before everything, the
// Host rules, /readyz, 404 for other requests, and the bearer token answers. Constant-time token
// comparison is not observable here: skipped.
#include "../../src/exec/http_gate.hpp"

#include <string>

#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

namespace tether::exec {
namespace {

namespace http = boost::beast::http;

const std::string kToken = "s3cret-token-value";

GateConfig gate_with_token() {
  return GateConfig{sha256(kToken), {}};
}

http::request<http::empty_body> upgrade_request(std::string target = "/",
                                                std::string host = "127.0.0.1:4000") {
  http::request<http::empty_body> request{http::verb::get, target, 11};
  request.set(http::field::host, host);
  request.set(http::field::upgrade, "websocket");
  request.set(http::field::connection, "Upgrade");
  request.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  request.set(http::field::sec_websocket_version, "13");
  return request;
}

http::request<http::empty_body> authorized(std::string target = "/",
                                           std::string host = "127.0.0.1:4000") {
  auto request = upgrade_request(std::move(target), std::move(host));
  request.set(http::field::authorization, "Bearer " + kToken);
  return request;
}

http::request<http::empty_body> plain_get(std::string target, std::string host = "127.0.0.1:4000") {
  http::request<http::empty_body> request{http::verb::get, target, 11};
  request.set(http::field::host, host);
  return request;
}

void expect_answer(const std::optional<GateAnswer>& answer, http::status status,
                   const std::string& body) {
  ASSERT_TRUE(answer) << "expected " << static_cast<unsigned>(status) << ", got an upgrade";
  EXPECT_EQ(answer->status, status);
  EXPECT_EQ(answer->body, body);
}

TEST(HttpGate, Sha256Vector) {
  const Sha256 abc = sha256("abc");
  const unsigned char expected[] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                    0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                    0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  EXPECT_TRUE(std::equal(abc.begin(), abc.end(), std::begin(expected)));
}

TEST(HttpGate, ValidTokenUpgrades) {
  EXPECT_FALSE(judge_request(authorized(), gate_with_token()));
  EXPECT_FALSE(judge_request(authorized("/any/path?x=1"), gate_with_token()));
}

TEST(HttpGate, OriginIsForbiddenEvenWithAValidToken) {
  const char* body = "browser Origin websocket requests are not allowed";
  for (const char* origin : {"http://127.0.0.1:4000", "null", ""}) {
    auto request = authorized();
    request.set(http::field::origin, origin);
    expect_answer(judge_request(request, gate_with_token()), http::status::forbidden, body);
  }
  // Checked before Host and /readyz too.
  auto readyz = plain_get("/readyz", "evil.example");
  readyz.set(http::field::origin, "null");
  expect_answer(judge_request(readyz, gate_with_token()), http::status::forbidden, body);
  // And with auth disabled.
  auto no_auth = upgrade_request();
  no_auth.set(http::field::origin, "http://localhost");
  expect_answer(judge_request(no_auth, GateConfig{}), http::status::forbidden, body);
}

TEST(HttpGate, HostRules) {
  for (const char* host : {"127.0.0.1", "127.0.0.1:4000", "10.1.2.3:80", "[::1]", "[::1]:4000",
                           "[fe80::1]:1", "localhost", "localhost:4000", "LOCALHOST:1"}) {
    EXPECT_FALSE(judge_request(authorized("/", host), gate_with_token())) << host;
  }
  for (const char* host : {"evil.example", "evil.example:4000", "localhost.evil.example",
                           "127.0.0.1.evil.example", "[::1", "[not-an-ip]:80", "", "1.2.3"}) {
    expect_answer(judge_request(authorized("/", host), gate_with_token()), http::status::forbidden,
                  "Host header is not allowed");
  }
  // --allow-host names (case-insensitive, any port).
  GateConfig allowing = gate_with_token();
  allowing.allowed_hosts = {"box.internal"};
  EXPECT_FALSE(judge_request(authorized("/", "Box.Internal:4000"), allowing));
  expect_answer(judge_request(authorized("/", "other.internal"), allowing), http::status::forbidden,
                "Host header is not allowed");
}

TEST(HttpGate, MissingHostIsRefused) {
  auto request = authorized();
  request.erase(http::field::host);
  auto answer = judge_request(request, gate_with_token());
  ASSERT_TRUE(answer);
  EXPECT_GE(static_cast<unsigned>(answer->status), 400u);
  EXPECT_LT(static_cast<unsigned>(answer->status), 500u);
}

TEST(HttpGate, ReadyzNeedsNoAuth) {
  expect_answer(judge_request(plain_get("/readyz"), gate_with_token()), http::status::ok, "ok");
  expect_answer(judge_request(plain_get("/readyz?probe=1"), gate_with_token()), http::status::ok,
                "ok");
  auto post = plain_get("/readyz");
  post.method(http::verb::post);
  auto answer = judge_request(post, gate_with_token());
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, http::status::method_not_allowed);
  // Host rules apply to /readyz as well.
  expect_answer(judge_request(plain_get("/readyz", "evil.example"), gate_with_token()),
                http::status::forbidden, "Host header is not allowed");
}

TEST(HttpGate, OtherNonUpgradeRequestsAre404) {
  for (const char* target : {"/", "/other", "/readyz/x", "/ready"}) {
    auto answer = judge_request(plain_get(target), gate_with_token());
    ASSERT_TRUE(answer) << target;
    EXPECT_EQ(answer->status, http::status::not_found) << target;
    // Even without auth configured.
    auto no_auth = judge_request(plain_get(target), GateConfig{});
    ASSERT_TRUE(no_auth) << target;
    EXPECT_EQ(no_auth->status, http::status::not_found) << target;
  }
}

TEST(HttpGate, AuthAnswers) {
  expect_answer(judge_request(upgrade_request(), gate_with_token()), http::status::unauthorized,
                "missing websocket bearer token");
  for (const std::string& value : std::vector<std::string>{
           "Basic dXNlcjpwYXNz", "Bearer", "Token " + kToken, kToken, "Bearer" + kToken, ""}) {
    auto request = upgrade_request();
    request.set(http::field::authorization, value);
    expect_answer(judge_request(request, gate_with_token()), http::status::unauthorized,
                  "invalid authorization header");
  }
  for (const std::string& value : std::vector<std::string>{
           "Bearer wrong", "Bearer " + kToken + "x", "Bearer " + kToken.substr(1), "Bearer  x",
           "Bearer " + std::string(kToken.rbegin(), kToken.rend())}) {
    auto request = upgrade_request();
    request.set(http::field::authorization, value);
    expect_answer(judge_request(request, gate_with_token()), http::status::unauthorized,
                  "invalid websocket bearer token");
  }
}

TEST(HttpGate, BearerSchemeIsCaseInsensitive) {
  for (const std::string scheme : {"bearer ", "BEARER ", "bEaReR "}) {
    auto request = upgrade_request();
    request.set(http::field::authorization, scheme + kToken);
    EXPECT_FALSE(judge_request(request, gate_with_token())) << scheme;
  }
}

TEST(HttpGate, AuthDisabledUpgradesWithoutToken) {
  EXPECT_FALSE(judge_request(upgrade_request(), GateConfig{}));
  // A token sent anyway is ignored.
  auto request = upgrade_request();
  request.set(http::field::authorization, "Bearer whatever");
  EXPECT_FALSE(judge_request(request, GateConfig{}));
}

}  // namespace
}  // namespace tether::exec
