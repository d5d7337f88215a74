// End-to-end tests of `tether mcp serve --listen http://127.0.0.1:0`: the real binary as a child
// of this test, its endpoint URL read from its first stdout line, spoken to over real HTTP on
// loopback by the official TypeScript SDK client (sdk_client.mjs under Node) and by a small Beast
// client in this file for the raw probes. Checked against docs/gateway.md: what a host sees and
// resumption through both placements, every HTTP security rule with its exact status, the
// startup refusals, the generated token, the session cap, isolated sessions (by process census),
// the ways the gateway ends, and the config's [gateway] table.
// Every wait is bounded; every process is ended by the test's end, failed or not (the Child's
// destructor, MarkerReaper, and the subreaper census of gateway_fixture.hpp).
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <ostream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "exec_server.hpp"
#include "gateway_fixture.hpp"
#include "http_probe.hpp"
#include "mcp_fixtures.hpp"

namespace tether::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using namespace fixture;
using namespace testing::http_probe;

// The request body limit docs/gateway.md states.
constexpr std::size_t kBodyLimit = std::size_t{16} << 20;
constexpr const char* kAllowedOrigin = "http://localhost:6274";

// --- JSON-RPC over it (messages built here: GCC 12 miscompiles braced JSON in coroutines) -----

std::string initialize_message() {
  return R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":)"
         R"("2025-11-25","capabilities":{},"clientInfo":{"name":"tether-http-test",)"
         R"("version":"1.0.0"}}})";
}

std::string initialized_message() {
  return R"({"jsonrpc":"2.0","method":"notifications/initialized"})";
}

std::string request_message(int id, const std::string& method) {
  json::object message{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  return json::serialize(message);
}

std::string tool_call_message(int id, const std::string& tool, const json::object& arguments) {
  json::object params{{"name", tool}, {"arguments", arguments}};
  json::object message{
      {"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"}, {"params", params}};
  return json::serialize(message);
}

std::string echo_call(int id, const std::string& tool, const std::string& message) {
  return tool_call_message(id, tool, json::object{{"message", message}});
}

// A sleep that reports progress every 100 ms (so its answer is an SSE stream from the start).
std::string sleep_call(int id, const std::string& tool, int ms) {
  json::object arguments{{"ms", ms}, {"progress_ms", 100}};
  json::object params{{"name", tool},
                      {"arguments", arguments},
                      {"_meta", json::object{{"progressToken", "sleep-" + std::to_string(id)}}}};
  json::object message{
      {"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"}, {"params", params}};
  return json::serialize(message);
}

// A ping whose body is one byte over the limit.
std::string oversized_message() {
  const std::string head = R"({"jsonrpc":"2.0","id":9,"method":"ping","params":{"pad":")";
  const std::string tail = R"("}})";
  return head + std::string(kBodyLimit + 1 - head.size() - tail.size(), 'x') + tail;
}

// The JSON-RPC response an answer carries: its JSON body, or the SSE event with the result or
// error (null when there is none).
json::value rpc_response(const Answer& answer) {
  boost::system::error_code ec;
  if (answer.header("Content-Type").starts_with("application/json")) {
    auto message = json::parse(answer.body(), ec);
    return ec ? json::value() : message;
  }
  json::value found;
  std::istringstream lines(answer.body());
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("data: ")) continue;
    auto message = json::parse(line.substr(6), ec);
    const auto* object = ec ? nullptr : message.if_object();
    if (object && (object->contains("result") || object->contains("error"))) found = message;
  }
  return found;
}

// The result of the response in `answer` (null when it has none).
json::value rpc_result(const Answer& answer) {
  const auto response = rpc_response(answer);
  const auto* object = response.if_object();
  const auto* result = object ? object->if_contains("result") : nullptr;
  return result ? *result : json::value();
}

std::vector<std::string> tool_names(const Answer& answer) {
  const auto result = rpc_result(answer);
  const auto* tools = result.is_object() ? result.as_object().if_contains("tools") : nullptr;
  return tools && tools->is_array() ? names_of(tools->as_array()) : std::vector<std::string>();
}

std::string first_text(const Answer& answer) {
  const auto result = rpc_result(answer);
  return result.is_object() ? testing::first_text(result.as_object()) : std::string();
}

// The echo tool of both placements (a list built outside the coroutines).
std::vector<std::string> echo_tools() {
  return {"local__echo", "remote__echo"};
}

std::set<pid_t> processes_with(const std::string& mark) {
  const auto found = testing::processes_matching(mark);
  return std::set<pid_t>(found.begin(), found.end());
}

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

// The port of the endpoint URL `url` (`http://127.0.0.1:PORT/mcp`); 0 when it is not one.
unsigned short endpoint_port(const std::string& url) {
  static const std::regex pattern(R"(http://127\.0\.0\.1:(\d{1,5})/mcp)");
  std::smatch match;
  if (!std::regex_match(url, match, pattern)) return 0;
  const auto port = std::stoul(match[1].str());
  return port > 0 && port < 65536 ? static_cast<unsigned short>(port) : 0;
}

// The token in the file at `path` after checking that only its owner can read it: a regular
// file of mode 0600, ours, in a directory of mode 0700. "" (a failure) when it cannot be read.
std::string private_token(const fs::path& path) {
  struct stat file {};
  struct stat directory {};
  if (::stat(path.c_str(), &file) != 0 || ::stat(path.parent_path().c_str(), &directory) != 0) {
    ADD_FAILURE() << "cannot stat " << path << " or its directory";
    return {};
  }
  EXPECT_TRUE(S_ISREG(file.st_mode));
  EXPECT_EQ(file.st_mode & 07777, 0600u) << path;
  EXPECT_EQ(directory.st_mode & 07777, 0700u) << path.parent_path();
  EXPECT_EQ(file.st_uid, ::getuid());
  auto token = testing::read_text_file(path.string());
  token.erase(token.find_last_not_of(" \t\r\n") + 1);
  EXPECT_GE(token.size(), 43u) << "a 256-bit token is at least 43 characters";
  return token;
}

std::vector<std::string> sdk_http_transport(const std::string& url, const std::string& token) {
  return {"--url", url, "--token", token};
}

// --- the fixture ------------------------------------------------------------------------------

class GatewayHttp : public GatewayFixture {
 protected:
  void SetUp() override {
    GatewayFixture::SetUp();
    token_ = testing::unique_marker("gateway-http-token");
    token_file_ = (dir_ / "token").string();
    std::ofstream(token_file_) << token_ << "\n";
  }

  // `tether mcp serve` on a port of 127.0.0.1 with the token file, plus `extra`.
  std::vector<std::string> http_serve(const std::string& config,
                                      const std::vector<std::string>& extra = {}) const {
    auto argv = serve(config, {"--listen", "http://127.0.0.1:0", "--token-file", token_file_});
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  Probe post(std::string body) const { return post_as(token_, std::move(body)); }
  Probe post_in(const std::string& session, std::string body) const {
    return with(post(std::move(body)), "Mcp-Session-Id", session);
  }
  Probe delete_session(const std::string& session) const {
    return with(with(plain(http::verb::delete_, "/mcp"), "Authorization", bearer(token_)),
                "Mcp-Session-Id", session);
  }

  // A gateway serving HTTP: the child (or the shell around it) and its endpoint.
  struct Served {
    Running running;
    std::string url;
    unsigned short port = 0;
  };

  // Starts `argv` and waits (bounded) for the endpoint URL on its first stdout line; nullopt
  // (a failure; the child is killed) when none came.
  asio::awaitable<std::optional<Served>> launch(const std::vector<std::string>& argv,
                                                const std::vector<std::string>& env) {
    const auto executor = co_await asio::this_coro::executor;
    auto running = start(executor, argv, env, false);
    if (!running) co_return std::nullopt;
    const auto out = running->out;
    const std::function<bool()> line_or_end = [out] {
      return out->ended || out->text.find('\n') != std::string::npos;
    };
    co_await testing::eventually(line_or_end, 60s);
    Served served;
    served.url = first_line(out->text);
    served.port = endpoint_port(served.url);
    if (served.port == 0) {
      ADD_FAILURE() << "no endpoint URL on the gateway's first stdout line: '" << out->text
                    << "'; stderr:\n"
                    << running->err->text;
      running->child->signal_group(SIGKILL);
      co_await running->child->wait();
      co_return std::nullopt;
    }
    served.running = std::move(*running);
    co_return served;
  }
  asio::awaitable<std::optional<Served>> launch(const std::vector<std::string>& argv) {
    return launch(argv, env_);
  }

  // SIGTERM, then an exit 0 within the bound.
  asio::awaitable<void> end_with_sigterm(Served& served) {
    ::kill(served.running.child->pid(), SIGTERM);
    auto status = co_await exit_of(served.running, 60s, "the gateway after SIGTERM");
    if (!status) co_return;
    EXPECT_EQ(status->code, 0) << served.running.err->text;
    EXPECT_FALSE(status->signal.has_value());
  }

  // initialize (200 with an Mcp-Session-Id) and notifications/initialized (202): the session
  // id, "" (a failure) when there is none.
  asio::awaitable<std::string> open_session(unsigned short port) {
    const Probe initialize = post(initialize_message());
    const auto answer = co_await exchange(port, initialize);
    const auto id = answer.header("Mcp-Session-Id");
    EXPECT_EQ(answer.status, 200u) << answer;
    EXPECT_FALSE(id.empty()) << answer;
    if (answer.status != 200 || id.empty()) co_return std::string();
    const auto result = rpc_result(answer);
    EXPECT_TRUE(result.is_object() && result.at("serverInfo").at("name") == "tether") << answer;
    const Probe initialized = post_in(id, initialized_message());
    const auto noted = co_await exchange(port, initialized);
    EXPECT_EQ(noted.status, 202u) << noted;
    co_return id;
  }

  // The SDK client's report for `scenario` against the gateway serving HTTP with one local
  // server `local` and one on the spawned executor `remote`, both carrying `mark`.
  json::value sdk_over_http(const std::string& scenario, const std::string& mark) {
    const auto argv = http_serve(write_config(local_and_remote({"--stderr-line", mark})));
    json::value report = json::object();
    testing::run_async(
        [&]() -> asio::awaitable<void> {
          auto served = co_await launch(argv);
          CO_ASSERT_TRUE(served.has_value());
          const auto transport = sdk_http_transport(served->url, token_);
          report = co_await sdk_report(scenario, transport);
          co_await end_with_sigterm(*served);
        },
        240s, "sdk_client.mjs " + scenario + " over HTTP");
    return report;
  }

  enum class Ending { sigterm, parent_sigkill };
  void end_gateway(Ending how);

  std::string token_;
  std::string token_file_;
};

const json::object& steps(const json::value& report) {
  static const json::object none;
  const auto* object = report.if_object();
  const auto* found = object ? object->if_contains("steps") : nullptr;
  return found && found->is_object() ? found->get_object() : none;
}

// --- the official SDK client over HTTP ----------------------------------------------------------

TEST_F(GatewayHttp, SdkClientListsEveryServersOffers) {
  const auto mark = testing::unique_marker("gw-http-list");
  testing::MarkerReaper reaper(mark);
  expect_list_report(sdk_over_http("list", mark));
  reaper.expect_none_left(15s);
}

TEST_F(GatewayHttp, SdkClientTourThroughBothPlacements) {
  const auto mark = testing::unique_marker("gw-http-tour");
  testing::MarkerReaper reaper(mark);
  expect_tour_report(sdk_over_http("tour", mark));
  reaper.expect_none_left(15s);
}

// The call's SSE stream is dropped after its first progress; a second client resumes it with
// Last-Event-ID and gets the rest, result included (sdk_client.mjs checks the progress seen
// before and after has no gap and no repeat).
TEST_F(GatewayHttp, SdkClientResumesADroppedCallStream) {
  const auto mark = testing::unique_marker("gw-http-resume");
  testing::MarkerReaper reaper(mark);
  const auto report = sdk_over_http("resume", mark);
  const auto& step = steps(report);
  ASSERT_TRUE(step.contains("drop") && step.contains("resume")) << json::serialize(report);
  EXPECT_TRUE(step.at("drop").at("token").is_string()) << step.at("drop");
  EXPECT_EQ(step.at("resume").at("text"), "slept 1500");
  EXPECT_GE(step.at("resume").at("progressAfter").to_number<int>(), 1);
  reaper.expect_none_left(15s);
}

TEST_F(GatewayHttp, SdkClientEndsItsSession) {
  const auto mark = testing::unique_marker("gw-http-end");
  testing::MarkerReaper reaper(mark);
  const auto report = sdk_over_http("session_end", mark);
  const auto& step = steps(report);
  ASSERT_TRUE(step.contains("terminate") && step.contains("stale_session"))
      << json::serialize(report);
  EXPECT_EQ(step.at("terminate").at("status"), 200);
  EXPECT_EQ(step.at("stale_session").at("status"), 404);
  reaper.expect_none_left(15s);
}

// --- HTTP security ------------------------------------------------------------------------------

TEST_F(GatewayHttp, RequestsWithoutTheRightTokenGet401) {
  const auto mark = testing::unique_marker("gw-http-token");
  testing::MarkerReaper reaper(mark);
  const auto argv = http_serve(write_config(server_entry("local", false, {"--stderr-line", mark})));
  testing::run_async(
      [&]() -> asio::awaitable<void> {
        auto served = co_await launch(argv);
        CO_ASSERT_TRUE(served.has_value());
        const auto port = served->port;

        const Probe anonymous = with(post(initialize_message()), "Authorization", "");
        const auto missing = co_await exchange(port, anonymous);
        EXPECT_EQ(missing.status, 401u) << missing;
        EXPECT_EQ(missing.header("WWW-Authenticate"), "Bearer") << missing;
        EXPECT_EQ(missing.header("Mcp-Session-Id"), "") << missing;

        const Probe wrong_token =
            with(post(initialize_message()), "Authorization", bearer("not-" + token_));
        const auto wrong = co_await exchange(port, wrong_token);
        EXPECT_EQ(wrong.status, 401u) << wrong;
        EXPECT_TRUE(wrong.header("WWW-Authenticate").starts_with("Bearer")) << wrong;
        EXPECT_EQ(wrong.header("Mcp-Session-Id"), "") << wrong;

        const Probe other_scheme =
            with(post(initialize_message()), "Authorization", "Basic " + token_);
        const auto basic = co_await exchange(port, other_scheme);
        EXPECT_EQ(basic.status, 401u) << basic;

        // The right token opens a session; a later request without it is refused all the same.
        const auto session = co_await open_session(port);
        CO_ASSERT_TRUE(!session.empty());
        const Probe anonymous_ping =
            with(post_in(session, request_message(2, "ping")), "Authorization", "");
        const auto refused_ping = co_await exchange(port, anonymous_ping);
        EXPECT_EQ(refused_ping.status, 401u) << refused_ping;

        co_await end_with_sigterm(*served);
      },
      120s, "token probes");
  reaper.expect_none_left(15s);
}

TEST_F(GatewayHttp, OriginsAndHostsOutsideTheAllowListsGet403) {
  const auto mark = testing::unique_marker("gw-http-origin");
  testing::MarkerReaper reaper(mark);
  const auto argv = http_serve(write_config(server_entry("local", false, {"--stderr-line", mark})),
                               {"--allow-origin", kAllowedOrigin, "--allow-host", "gw.internal"});
  testing::run_async(
      [&]() -> asio::awaitable<void> {
        auto served = co_await launch(argv);
        CO_ASSERT_TRUE(served.has_value());
        const auto port = served->port;

        const Probe foreign = with(post(initialize_message()), "Origin", "http://evil.example");
        const auto foreign_answer = co_await exchange(port, foreign);
        EXPECT_EQ(foreign_answer.status, 403u) << foreign_answer;
        EXPECT_EQ(foreign_answer.header("Mcp-Session-Id"), "") << foreign_answer;

        const Probe allowed = with(post(initialize_message()), "Origin", kAllowedOrigin);
        const auto allowed_answer = co_await exchange(port, allowed);
        EXPECT_EQ(allowed_answer.status, 200u) << allowed_answer;
        EXPECT_EQ(allowed_answer.header("Access-Control-Allow-Origin"), kAllowedOrigin)
            << allowed_answer;
        EXPECT_NE(allowed_answer.header("Access-Control-Expose-Headers").find("Mcp-Session-Id"),
                  std::string::npos)
            << allowed_answer;
        EXPECT_NE(allowed_answer.header("Mcp-Session-Id"), "") << allowed_answer;

        // A browser's preflight (no token) for the allowed origin, and for another.
        const Probe preflight =
            with(with(plain(http::verb::options, "/mcp"), "Origin", kAllowedOrigin),
                 "Access-Control-Request-Method", "POST");
        const auto preflight_answer = co_await exchange(port, preflight);
        EXPECT_EQ(preflight_answer.status, 204u) << preflight_answer;
        EXPECT_EQ(preflight_answer.header("Access-Control-Allow-Origin"), kAllowedOrigin)
            << preflight_answer;
        EXPECT_NE(preflight_answer.header("Access-Control-Allow-Methods").find("POST"),
                  std::string::npos)
            << preflight_answer;
        const Probe foreign_preflight = with(preflight, "Origin", "http://evil.example");
        const auto foreign_preflight_answer = co_await exchange(port, foreign_preflight);
        EXPECT_EQ(foreign_preflight_answer.status, 403u) << foreign_preflight_answer;

        // DNS rebinding: a name that is neither an IP literal, localhost nor allowed.
        const Probe rebinding = with(post(initialize_message()), "Host", "evil.example");
        const auto rebinding_answer = co_await exchange(port, rebinding);
        EXPECT_EQ(rebinding_answer.status, 403u) << rebinding_answer;
        const Probe rebinding_port =
            with(post(initialize_message()), "Host", "evil.example:" + std::to_string(port));
        const auto rebinding_port_answer = co_await exchange(port, rebinding_port);
        EXPECT_EQ(rebinding_port_answer.status, 403u) << rebinding_port_answer;
        const Probe rebinding_readyz =
            with(plain(http::verb::get, "/readyz"), "Host", "evil.example");
        const auto rebinding_readyz_answer = co_await exchange(port, rebinding_readyz);
        EXPECT_EQ(rebinding_readyz_answer.status, 403u) << rebinding_readyz_answer;

        const Probe allowed_host =
            with(post(initialize_message()), "Host", "gw.internal:" + std::to_string(port));
        const auto allowed_host_answer = co_await exchange(port, allowed_host);
        EXPECT_EQ(allowed_host_answer.status, 200u) << allowed_host_answer;
        EXPECT_NE(allowed_host_answer.header("Mcp-Session-Id"), "") << allowed_host_answer;
        const Probe localhost =
            with(post(initialize_message()), "Host", "localhost:" + std::to_string(port));
        const auto localhost_answer = co_await exchange(port, localhost);
        EXPECT_EQ(localhost_answer.status, 200u) << localhost_answer;

        co_await end_with_sigterm(*served);
      },
      120s, "origin and host probes");
  reaper.expect_none_left(15s);
}

TEST_F(GatewayHttp, MalformedAndOversizedRequestsGetTheirStatus) {
  const auto mark = testing::unique_marker("gw-http-bounds");
  testing::MarkerReaper reaper(mark);
  const auto argv = http_serve(write_config(server_entry("local", false, {"--stderr-line", mark})));
  testing::run_async(
      [&]() -> asio::awaitable<void> {
        auto served = co_await launch(argv);
        CO_ASSERT_TRUE(served.has_value());
        const auto port = served->port;
        const auto session = co_await open_session(port);
        CO_ASSERT_TRUE(!session.empty());

        const Probe oversized = post_in(session, oversized_message());
        const auto too_large = co_await exchange(port, oversized);
        EXPECT_EQ(too_large.status, 413u) << too_large;

        const Probe no_session = post(request_message(2, "ping"));
        const auto missing = co_await exchange(port, no_session);
        EXPECT_EQ(missing.status, 400u) << missing;

        const Probe unknown = post_in(std::string(64, '0'), request_message(3, "ping"));
        const auto unknown_answer = co_await exchange(port, unknown);
        EXPECT_EQ(unknown_answer.status, 404u) << unknown_answer;

        const Probe bad_version = with(post_in(session, request_message(4, "ping")),
                                       "MCP-Protocol-Version", "1999-01-01");
        const auto bad_version_answer = co_await exchange(port, bad_version);
        EXPECT_EQ(bad_version_answer.status, 400u) << bad_version_answer;

        const Probe text_body =
            with(post_in(session, request_message(5, "ping")), "Content-Type", "text/plain");
        const auto text_answer = co_await exchange(port, text_body);
        EXPECT_EQ(text_answer.status, 415u) << text_answer;

        const Probe json_only =
            with(post_in(session, request_message(6, "ping")), "Accept", "application/json");
        const auto json_only_answer = co_await exchange(port, json_only);
        EXPECT_EQ(json_only_answer.status, 406u) << json_only_answer;

        const Probe put =
            with(with(plain(http::verb::put, "/mcp"), "Authorization", bearer(token_)),
                 "Mcp-Session-Id", session);
        const auto put_answer = co_await exchange(port, put);
        EXPECT_EQ(put_answer.status, 405u) << put_answer;

        // After all that the session still works, with a version the gateway serves.
        const Probe ping = with(post_in(session, request_message(7, "ping")),
                                "MCP-Protocol-Version", "2025-06-18");
        const auto pong = co_await exchange(port, ping);
        EXPECT_EQ(pong.status, 200u) << pong;
        EXPECT_TRUE(rpc_result(pong).is_object()) << pong;

        co_await end_with_sigterm(*served);
      },
      120s, "malformed requests");
  reaper.expect_none_left(15s);
}

TEST_F(GatewayHttp, ReadyzNeedsNoTokenAndMetricsDo) {
  const auto mark = testing::unique_marker("gw-http-metrics");
  testing::MarkerReaper reaper(mark);
  const auto argv = http_serve(
      write_config(server_entry("local", false, {"--stderr-line", mark}, "required = true")));
  const std::string up_line = R"(tether_server_up{server="local",placement="local"} 1)";
  testing::run_async(
      [&]() -> asio::awaitable<void> {
        auto served = co_await launch(argv);
        CO_ASSERT_TRUE(served.has_value());
        const auto port = served->port;

        // 503 until the required server is ready, then 200; no token either way.
        const Probe readyz = plain(http::verb::get, "/readyz");
        const std::function<bool(const Answer&)> not_starting = [](const Answer& answer) {
          return answer.status != 503;
        };
        const auto ready = co_await poll(port, readyz, not_starting, 60s);
        EXPECT_EQ(ready.status, 200u) << ready;

        const Probe anonymous_metrics = plain(http::verb::get, "/metrics");
        const auto refused = co_await exchange(port, anonymous_metrics);
        EXPECT_EQ(refused.status, 401u) << refused;
        EXPECT_EQ(refused.header("WWW-Authenticate"), "Bearer") << refused;

        const Probe metrics = with(anonymous_metrics, "Authorization", bearer(token_));
        const std::function<bool(const Answer&)> server_up = [&up_line](const Answer& answer) {
          return answer.body().find(up_line) != std::string::npos;
        };
        const auto before = co_await poll(port, metrics, server_up, 30s);
        EXPECT_EQ(before.status, 200u) << before;
        EXPECT_NE(before.body().find(up_line), std::string::npos) << before;
        EXPECT_NE(before.body().find("\ntether_sessions 0\n"), std::string::npos) << before;

        const auto session = co_await open_session(port);
        CO_ASSERT_TRUE(!session.empty());
        const auto during = co_await exchange(port, metrics);
        EXPECT_NE(during.body().find("\ntether_sessions 1\n"), std::string::npos) << during;
        const Probe end_session = delete_session(session);
        const auto removed = co_await exchange(port, end_session);
        EXPECT_EQ(removed.status, 200u) << removed;
        const auto after = co_await exchange(port, metrics);
        EXPECT_NE(after.body().find("\ntether_sessions 0\n"), std::string::npos) << after;

        co_await end_with_sigterm(*served);
      },
      120s, "readyz and metrics");
  reaper.expect_none_left(15s);
}

// --- startup refusals -----------------------------------------------------------------------

TEST_F(GatewayHttp, UnsafeListenSettingsAreRefusedAtStartup) {
  const auto mark = testing::unique_marker("gw-http-refuse");
  testing::MarkerReaper reaper(mark);
  const auto config = write_config(server_entry("local", false, {"--stderr-line", mark}));

  auto exit = run_unattended(config, {"--listen", "http://0.0.0.0:0", "--token-file", token_file_});
  EXPECT_EQ(exit.code, 2) << exit.err;
  EXPECT_NE(exit.err.find("refusing to listen on non-loopback address 0.0.0.0 without "
                          "--allow-non-loopback"),
            std::string::npos)
      << exit.err;

  exit = run_unattended(
      config, {"--listen", "http://0.0.0.0:0", "--allow-non-loopback", "--insecure-no-auth"});
  EXPECT_EQ(exit.code, 2) << exit.err;
  EXPECT_NE(exit.err.find("--insecure-no-auth is only allowed on a loopback address"),
            std::string::npos)
      << exit.err;

  exit = run_unattended(config, {"--isolate-sessions"});
  EXPECT_EQ(exit.code, 2) << exit.err;
  EXPECT_NE(exit.err.find("--isolate-sessions needs --listen http://"), std::string::npos)
      << exit.err;

  EXPECT_TRUE(testing::processes_matching(mark).empty()) << "a refused gateway started a server";
  reaper.expect_none_left(15s);
}

// --- the generated token --------------------------------------------------------------------

TEST_F(GatewayHttp, GeneratedTokenIsPrivateWorksAndIsRemovedAtExit) {
  const auto mark = testing::unique_marker("gw-http-generated");
  testing::MarkerReaper reaper(mark);
  const auto config = write_config(server_entry("local", false, {"--stderr-line", mark}));
  const auto argv = serve(config, {"--listen", "http://127.0.0.1:0"});
  // Its directory goes under this test's own directory, which TearDown removes in any case.
  const auto tmp = dir_ / "tmp";
  fs::create_directories(tmp);
  auto env = env_;
  std::erase_if(env, [](const std::string& entry) {
    return entry.starts_with("TMPDIR=") || entry.starts_with("TETHER_GATEWAY_TOKEN=");
  });
  env.push_back("TMPDIR=" + tmp.string());
  const std::string announced = "generated a bearer token; it is in ";

  fs::path token_path;
  testing::run_async(
      [&]() -> asio::awaitable<void> {
        auto served = co_await launch(argv, env);
        CO_ASSERT_TRUE(served.has_value());
        const auto port = served->port;
        const auto err = served->running.err;
        const std::function<bool()> named = [err, &announced] {
          const auto at = err->text.find(announced);
          return at != std::string::npos && err->text.find('\n', at) != std::string::npos;
        };
        CO_ASSERT_TRUE(co_await testing::eventually(named, 30s));
        const auto at = err->text.find(announced) + announced.size();
        token_path = err->text.substr(at, err->text.find('\n', at) - at);
        EXPECT_EQ(token_path.filename(), "token") << err->text;

        const auto generated = private_token(token_path);
        CO_ASSERT_TRUE(!generated.empty());

        const Probe with_generated = post_as(generated, initialize_message());
        const auto accepted = co_await exchange(port, with_generated);
        EXPECT_EQ(accepted.status, 200u) << accepted;
        EXPECT_NE(accepted.header("Mcp-Session-Id"), "") << accepted;
        const Probe with_other = post(initialize_message());
        const auto refused = co_await exchange(port, with_other);
        EXPECT_EQ(refused.status, 401u) << refused;

        co_await end_with_sigterm(*served);
      },
      120s, "generated token");
  EXPECT_FALSE(token_path.empty());
  if (!token_path.empty()) {
    EXPECT_FALSE(fs::exists(token_path.parent_path())) << token_path.parent_path() << " is left";
  }
  reaper.expect_none_left(15s);
}

// --- the session cap ------------------------------------------------------------------------

TEST_F(GatewayHttp, MaxSessionsRefusesOneMoreInitializeUntilOneEnds) {
  const auto mark = testing::unique_marker("gw-http-cap");
  testing::MarkerReaper reaper(mark);
  const auto argv = http_serve(write_config(server_entry("local", false, {"--stderr-line", mark})),
                               {"--max-sessions", "2"});
  testing::run_async(
      [&]() -> asio::awaitable<void> {
        auto served = co_await launch(argv);
        CO_ASSERT_TRUE(served.has_value());
        const auto port = served->port;
        const auto first = co_await open_session(port);
        const auto second = co_await open_session(port);
        CO_ASSERT_TRUE(!first.empty() && !second.empty());
        EXPECT_NE(first, second);

        const Probe initialize = post(initialize_message());
        const auto third = co_await exchange(port, initialize);
        EXPECT_EQ(third.status, 503u) << third;
        EXPECT_EQ(third.header("Mcp-Session-Id"), "") << third;

        const Probe end_first = delete_session(first);
        const auto removed = co_await exchange(port, end_first);
        EXPECT_EQ(removed.status, 200u) << removed;
        const Probe ping_first = post_in(first, request_message(2, "ping"));
        const auto ended = co_await exchange(port, ping_first);
        EXPECT_EQ(ended.status, 404u) << ended;

        const auto replacement = co_await open_session(port);
        EXPECT_FALSE(replacement.empty());
        const auto over = co_await exchange(port, initialize);
        EXPECT_EQ(over.status, 503u) << over;
        const Probe ping_second = post_in(second, request_message(3, "ping"));
        const auto pong = co_await exchange(port, ping_second);
        EXPECT_EQ(pong.status, 200u) << pong;

        co_await end_with_sigterm(*served);
      },
      120s, "session cap");
  reaper.expect_none_left(15s);
}

// --- isolated sessions ----------------------------------------------------------------------

// A 2026-07-28 request has no session, so it cannot have a gateway of its own: refused, and
// nothing is started for it.
TEST_F(GatewayHttp, IsolatedSessionsRefuseStatelessRequests) {
  const auto mark = testing::unique_marker("gw-http-isolate-stateless");
  testing::MarkerReaper reaper(mark);
  const auto argv = http_serve(write_config(server_entry("local", false, {"--stderr-line", mark})),
                               {"--isolate-sessions"});
  testing::run_async(
      [&]() -> asio::awaitable<void> {
        auto served = co_await launch(argv);
        CO_ASSERT_TRUE(served.has_value());
        const Probe discover = with(
            with(post(R"({"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{)"
                      R"("io.modelcontextprotocol/protocolVersion":"2026-07-28",)"
                      R"("io.modelcontextprotocol/clientCapabilities":{}}}})"),
                 "MCP-Protocol-Version", "2026-07-28"),
            "Mcp-Method", "server/discover");
        const auto refused = co_await exchange(served->port, discover);
        EXPECT_EQ(refused.status, 400u) << refused;
        EXPECT_NE(refused.body().find("-32600"), std::string::npos) << refused;
        EXPECT_NE(refused.body().find("--isolate-sessions"), std::string::npos) << refused;
        EXPECT_TRUE(testing::processes_matching(mark).empty()) << "a server was started for it";
        co_await end_with_sigterm(*served);
      },
      120s, "isolated sessions and a stateless request");
  reaper.expect_none_left(15s);
}

// Each session gets its own servers, started at its initialize and ended with it: told apart by
// the census of the processes carrying the servers' marker, both placements.
TEST_F(GatewayHttp, IsolatedSessionsEachGetTheirOwnServers) {
  const auto mark = testing::unique_marker("gw-http-isolate");
  testing::MarkerReaper reaper(mark);
  const auto argv =
      http_serve(write_config(local_and_remote({"--stderr-line", mark})), {"--isolate-sessions"});
  testing::run_async(
      [&]() -> asio::awaitable<void> {
        auto served = co_await launch(argv);
        CO_ASSERT_TRUE(served.has_value());
        const auto port = served->port;
        EXPECT_TRUE(processes_with(mark).empty()) << "servers started before any session";

        // The first listing waits for the session's servers: they run now.
        const auto first = co_await open_session(port);
        CO_ASSERT_TRUE(!first.empty());
        const Probe list_first = post_in(first, request_message(2, "tools/list"));
        const auto first_tools = co_await exchange(port, list_first);
        EXPECT_TRUE(contains(tool_names(first_tools), "local__echo")) << first_tools;
        EXPECT_TRUE(contains(tool_names(first_tools), "remote__echo")) << first_tools;
        const auto first_servers = processes_with(mark);
        EXPECT_EQ(first_servers.size(), 2u);

        const auto second = co_await open_session(port);
        CO_ASSERT_TRUE(!second.empty());
        const Probe list_second = post_in(second, request_message(2, "tools/list"));
        const auto second_tools = co_await exchange(port, list_second);
        EXPECT_TRUE(contains(tool_names(second_tools), "remote__echo")) << second_tools;
        std::set<pid_t> second_servers;
        for (pid_t pid : processes_with(mark))
          if (!first_servers.contains(pid)) second_servers.insert(pid);
        EXPECT_EQ(second_servers.size(), 2u) << "the second session got no servers of its own";

        // Ending the first session ends exactly its servers.
        const Probe end_first = delete_session(first);
        const auto removed = co_await exchange(port, end_first);
        EXPECT_EQ(removed.status, 200u) << removed;
        const std::function<bool()> only_second = [&mark, &second_servers] {
          return processes_with(mark) == second_servers;
        };
        EXPECT_TRUE(co_await testing::eventually(only_second, 30s))
            << "left running: " << testing::processes_matching(mark).size() << " servers";
        for (const auto& tool : echo_tools()) {
          const Probe echo = post_in(second, echo_call(3, tool, "isolated"));
          const auto echoed = co_await exchange(port, echo);
          EXPECT_EQ(first_text(echoed), "isolated") << tool << ": " << echoed;
        }
        EXPECT_EQ(processes_with(mark), second_servers);

        co_await end_with_sigterm(*served);
      },
      180s, "isolated sessions");
  reaper.expect_none_left(15s);
}

// --- how the gateway ends -------------------------------------------------------------------

// With a session open and a call in flight on its SSE stream, both placements running.
void GatewayHttp::end_gateway(Ending how) {
  const auto mark = testing::unique_marker("gw-http-ending");
  testing::MarkerReaper reaper(mark);
  auto argv = http_serve(write_config(local_and_remote({"--stderr-line", mark})));
  if (how == Ending::parent_sigkill) argv = under_shell(argv);
  // Outside the body: the call's detached exchange may outlive it.
  Probe call;
  bool call_streaming = false;
  testing::run_async(
      [&]() -> asio::awaitable<void> {
        auto served = co_await launch(argv);
        CO_ASSERT_TRUE(served.has_value());
        const auto port = served->port;
        const auto session = co_await open_session(port);
        CO_ASSERT_TRUE(!session.empty());
        const Probe list = post_in(session, request_message(2, "tools/list"));
        const auto tools = co_await exchange(port, list);
        EXPECT_TRUE(contains(tool_names(tools), "remote__sleep")) << tools;
        const std::function<bool()> both_run = [&mark] { return processes_with(mark).size() == 2; };
        CO_ASSERT_TRUE(co_await testing::eventually(both_run, 30s));

        call = post_in(session, sleep_call(3, "remote__sleep", 120000));
        const auto executor = co_await asio::this_coro::executor;
        asio::co_spawn(executor, exchange(port, call, &call_streaming), asio::detached);
        const std::function<bool()> streaming = [&call_streaming] { return call_streaming; };
        CO_ASSERT_TRUE(co_await testing::eventually(streaming, 30s));

        if (how == Ending::sigterm) {
          co_await end_with_sigterm(*served);
        } else {
          co_await kill_parent_expect_gateway_exit(served->running);
        }
      },
      120s, "ending the gateway");
  reaper.expect_none_left(15s);
  testing::expect_no_children({}, 15s, "after the gateway ended");
}

TEST_F(GatewayHttp, SigtermEndsEveryServer) {
  end_gateway(Ending::sigterm);
}

TEST_F(GatewayHttp, ParentSigkillEndsEveryServer) {
  end_gateway(Ending::parent_sigkill);
}

// --- the config's [gateway] table -----------------------------------------------------------

class GatewayTable : public GatewayHttp {
 protected:
  // The table says: HTTP on a free port of 127.0.0.1, the token file, and gw.internal.
  std::string table_config(const std::string& mark) {
    return "[gateway]\nlisten = \"http://127.0.0.1:0\"\ntoken_file = " +
           host::toml_basic_string(token_file_) + "\nallow_hosts = [\"gw.internal\"]\n\n" +
           server_entry("local", false, {"--stderr-line", mark});
  }
};

TEST_F(GatewayTable, ListenAndTokenFileComeFromTheTable) {
  const auto mark = testing::unique_marker("gw-http-table");
  testing::MarkerReaper reaper(mark);
  const auto argv = serve(write_config(table_config(mark)));
  testing::run_async(
      [&]() -> asio::awaitable<void> {
        auto served = co_await launch(argv);
        CO_ASSERT_TRUE(served.has_value());
        const auto port = served->port;
        const Probe anonymous = with(post(initialize_message()), "Authorization", "");
        const auto refused = co_await exchange(port, anonymous);
        EXPECT_EQ(refused.status, 401u) << refused;
        const auto session = co_await open_session(port);
        EXPECT_FALSE(session.empty());
        const Probe allowed_host =
            with(post(initialize_message()), "Host", "gw.internal:" + std::to_string(port));
        const auto allowed_host_answer = co_await exchange(port, allowed_host);
        EXPECT_EQ(allowed_host_answer.status, 200u) << allowed_host_answer;
        co_await end_with_sigterm(*served);
      },
      120s, "the [gateway] table");
  reaper.expect_none_left(15s);
}

// `--listen stdio` wins over the table's HTTP: MCP on stdin/stdout, no URL line.
TEST_F(GatewayTable, ListenFlagOverridesTheTable) {
  const auto mark = testing::unique_marker("gw-http-table-flag");
  testing::MarkerReaper reaper(mark);
  const auto argv = serve(write_config(table_config(mark)), {"--listen", "stdio"});
  const std::string line = initialize_message() + "\n";
  testing::run_async(
      [&]() -> asio::awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        auto running = start(executor, argv, env_, false);
        CO_ASSERT_TRUE(running.has_value());
        auto* in = running->child->stdin_stream();
        CO_ASSERT_TRUE(in != nullptr);
        boost::system::error_code ec;
        co_await asio::async_write(*in, asio::buffer(line),
                                   asio::redirect_error(asio::use_awaitable, ec));
        EXPECT_FALSE(ec) << ec.message();
        const auto out = running->out;
        const std::function<bool()> answered = [out] {
          return out->ended || out->text.find('\n') != std::string::npos;
        };
        CO_ASSERT_TRUE(co_await testing::eventually(answered, 60s));
        const auto first = first_line(out->text);
        boost::system::error_code parse_ec;
        const auto response = json::parse(first, parse_ec);
        EXPECT_FALSE(parse_ec) << "not a JSON-RPC line: " << first;
        if (!parse_ec) {
          EXPECT_EQ(response.at("id"), 1) << first;
          EXPECT_EQ(response.at("result").at("serverInfo").at("name"), "tether") << first;
        }
        running->child->close_stdin();
        auto status = co_await exit_of(*running, 60s, "the gateway after stdin EOF");
        CO_ASSERT_TRUE(status.has_value());
        EXPECT_EQ(status->code, 0) << running->err->text;
      },
      120s, "--listen stdio over the table");
  reaper.expect_none_left(15s);
}

}  // namespace
}  // namespace tether::gateway
