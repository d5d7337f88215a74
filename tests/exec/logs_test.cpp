// The executor's log (docs/exec-server.md "Logs"): the real `tether exec-server` at info level
// writes one line per lifecycle event (connections accepted, refused and closed; sessions
// started, detached, resumed, expired and ended; processes started and ended) and nothing else
// while it serves, and at debug level one line per http/request naming its method and origin.
// Neither level shows a secret: the token, an environment value, an argument, stdin or output
// bytes, a URL's userinfo, path or query, a header value or a body.
//
// Commands carry markers unique to this file (`sleep 303.71NN`, `...-7151`); every wait is
// bounded and no test asserts on wall time.
#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "exec_server.hpp"
#include "mcp_fixtures.hpp"
#include "requests.hpp"
#include "test_client.hpp"

namespace tether::testing {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kLogged{10s};
constexpr std::chrono::milliseconds kGone{10s};

// What the log must never show.
const std::string kToken = "token-secret-7151";
const std::string kEnvValue = "env-secret-7151";
const std::string kArgument = "arg-secret-7151";
const std::string kStdin = "stdin-secret-7151";

// Waits until the server's log contains `line`; a failure shows the line and the whole log.
// `line` by value: callers build it outside the co_await expression or pass a literal.
asio::awaitable<void> expect_logged(const ExecServer& server, std::string line) {
  const bool found =
      co_await eventually([&] { return server.log().find(line) != std::string::npos; }, kLogged);
  EXPECT_TRUE(found) << "the log has no line containing\n  " << line << "\nlog:\n" << server.log();
}

// The lines one session's story writes, built before the coroutine awaits them (a string
// concatenated inside a co_await expression would be a class temporary there).
struct SessionLines {
  std::string session;
  std::string started, echo_started, echo_exited, detached, resumed, detached_again, expired,
      sleeper_killed;
};

SessionLines session_lines(const std::string& session) {
  const std::string s = "exec: session " + session;
  const std::string client = " by client \"tether-test\"";
  return SessionLines{
      session,
      s + " started on connection 1" + client,
      "exec: process \"echo\" started in session " + session + ": \"/bin/sh\" (pid ",
      "exec: process \"echo\" of session " + session + " exited with code 0 after ",
      s + " detached: connection 1 lost; kept 2s for resume with 1 running process\n",
      s + " resumed on connection 2 (was on connection 1)" + client,
      s + " detached: connection 2 lost",
      s + " expired: not resumed within 2s; 1 running process terminated",
      "exec: process \"sleeper\" of session " + session + " killed by signal 15 after "};
}

void expect_no_secret(const std::string& log, const std::vector<std::string>& secrets) {
  for (const auto& secret : secrets)
    EXPECT_EQ(log.find(secret), std::string::npos) << "the log shows " << secret << ":\n" << log;
}

// A shell that echoes its stdin line and an environment value, with a secret argument ($0).
json::object echo_secrets_params() {
  StartOptions options = piped_stdin();
  options.env["LOGS_TEST_SECRET"] = kEnvValue;
  json::array argv{"/bin/sh", "-c", R"(read line; echo "$line $LOGS_TEST_SECRET")", kArgument};
  return start_argv("echo", std::move(argv), std::move(options));
}

// A POST whose userinfo, path, query, header value and body are all secrets, to a port nothing
// listens on (the request fails; its log line is written before it is sent).
json::object secret_http_params(unsigned short port) {
  json::array headers{json::object{{"name", "Authorization"}, {"value", "Bearer header-7152"}}};
  return json::object{{"method", "POST"},
                      {"url", "http://user:userinfo-7152@127.0.0.1:" + std::to_string(port) +
                                  "/path-7152?q=query-7152"},
                      {"headers", std::move(headers)},
                      {"bodyBase64", b64("body-7152")}};
}

// Every info line while serving is one of these (after the timestamp and level).
void expect_only_lifecycle_lines(const std::string& log) {
  const std::vector<std::string> allowed{"exec-server: listening on ",
                                         "exec-server: processes get ",
                                         "exec: connection ",
                                         "exec: refused ",
                                         "exec: session ",
                                         "exec: process "};
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    const auto level = line.find(" info ");
    const auto text = level == std::string::npos ? line : line.substr(level + 6);
    const bool known = std::any_of(allowed.begin(), allowed.end(),
                                   [&](const std::string& p) { return text.starts_with(p); });
    EXPECT_TRUE(known) << "not a lifecycle line at info: " << line;
  }
}

TEST(ExecLogs, InfoShowsEachLifecycleEventAndNoSecret) {
  MarkerReaper reaper("sleep 303.7151");
  ExecServer::Options options;
  options.args = {"--session-ttl", "2"};
  options.extra_env = {"TETHER_EXEC_SERVER_TOKEN=" + kToken};
  options.log_level = "info";
  ExecServer server(options);
  run_async([&]() -> asio::awaitable<void> {
    const Headers wrong{{"Authorization", "Bearer not-the-token"}};
    auto refused = co_await http_request(server.port(), http::verb::get, "/", wrong, true);
    EXPECT_EQ(refused.result(), http::status::unauthorized);
    co_await expect_logged(
        server, "exec: refused GET / from 127.0.0.1: 401 invalid websocket bearer token");

    const Headers auth{{"Authorization", "Bearer " + kToken}};
    auto first = co_await TestClient::connect(server.port(), auth);
    co_await expect_logged(server, "exec: connection 1 accepted from 127.0.0.1:");
    auto init = co_await first->initialize();
    const auto lines = session_lines(std::string(init.at("sessionId").as_string()));
    co_await expect_logged(server, lines.started);

    // A process that reads stdin and writes output, then ends by itself.
    auto echo = echo_secrets_params();
    co_await first->call_ok("process/start", std::move(echo));
    co_await expect_logged(server, lines.echo_started);
    auto write = write_params("echo", kStdin + "\n");
    co_await first->call_ok("process/write", std::move(write));
    const std::string echoed = kStdin + " " + kEnvValue;
    CO_ASSERT_TRUE(co_await first->wait_output("echo", echoed));
    co_await expect_logged(server, lines.echo_exited);

    // One that outlives two connections, then the session.
    auto sleeper = start_sleep("sleeper", "303.7151");
    co_await first->call_ok("process/start", std::move(sleeper));
    first->abort();
    co_await expect_logged(server, "exec: connection 1 closed after ");
    co_await expect_logged(server, lines.detached);

    auto second = co_await TestClient::connect(server.port(), auth);
    co_await second->initialize(lines.session);
    co_await expect_logged(server, lines.resumed);
    second->abort();
    co_await expect_logged(server, lines.detached_again);
    co_await expect_logged(server, lines.expired);
    co_await expect_logged(server, lines.sleeper_killed);

    // Closed on purpose: the session ends with its connection.
    auto third = co_await TestClient::connect(server.port(), auth);
    auto third_init = co_await third->initialize();
    const std::string ended = "exec: session " +
                              std::string(third_init.at("sessionId").as_string()) +
                              " ended: connection 3 closed by the client; 0 running processes "
                              "terminated";
    third->close();
    co_await expect_logged(server, ended);
    co_await expect_logged(server, "exec: connection 3 closed after ");
  });
  const auto log = server.log();
  expect_only_lifecycle_lines(log);
  expect_no_secret(log, {kToken, kEnvValue, kArgument, kStdin});
  reaper.expect_none_left(kGone);
}

TEST(ExecLogs, DebugNamesAnHttpRequestByItsMethodAndOriginOnly) {
  ExecServer server;  // debug level
  const unsigned short port = free_port();
  const std::string line =
      "exec: connection 1 http/request \"POST\" to http://127.0.0.1:" + std::to_string(port) + "\n";
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await TestClient::connect(server.port());
    co_await client->initialize();
    auto params = secret_http_params(port);
    auto reply = co_await client->call("http/request", std::move(params));
    EXPECT_FALSE(reply) << "nothing listens on port " << port;
    co_await expect_logged(server, line);
  });
  expect_no_secret(server.log(),
                   {"userinfo-7152", "path-7152", "query-7152", "header-7152", "body-7152"});
}

}  // namespace
}  // namespace tether::testing
