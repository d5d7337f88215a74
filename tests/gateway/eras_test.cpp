// End-to-end tests of the gateway (`tether mcp serve`) between the MCP eras: a gateway offering
// `legacy` (the project's 2025-11-25 test server with --conformance-fixtures) and `modern`
// (tests/mcp/sdk_v2_server.mjs, 2026-07-28 on the official TypeScript SDK v2), driven by hosts
// of both eras that tether did not write (eras_client.mjs: the SDK v2 client pinned to
// 2026-07-28, the SDK 1.32 client speaking 2025-11-25), over stdio (Node starts
// `tether mcp --config F serve`) and over streamable HTTP (this test starts the gateway on
// 127.0.0.1 with --insecure-no-auth and hands Node the URL).
//
// Owns the checks of docs/gateway.md "Between the eras" against real peers: a 2026 host's call
// whose 2025 server elicits gets input_required and its retry's answer reaches the server; a
// 2026 server's input_required reaches a 2026 host as it is; a 2025 host gets a 2026 server's
// question as elicitation/create on its session; and a 2026 host hears a 2026 server's tool list
// change through subscriptions/listen on the gateway.
// Every wait is bounded; every process is ended by the test's end, failed or not (the Child's
// destructor, MarkerReaper on the servers' marker and the config path, and the subreaper census
// of gateway_fixture.hpp). No assertion on wall time.
#include <chrono>
#include <csignal>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/this_coro.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "build_paths.hpp"
#include "gateway_fixture.hpp"
#include "http_probe.hpp"
#include "mcp_fixtures.hpp"
#include "npm_peers.hpp"

namespace tether::gateway {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;
using namespace fixture;

constexpr const char* kModernVersion = "2026-07-28";
constexpr const char* kLegacyVersion = "2025-11-25";

// `legacy` (the test server) and `modern` (the SDK v2 server over stdio), both carrying `mark`
// on their command lines (the node script ignores arguments after `stdio`).
std::string eras_config(const std::string& mark) {
  const std::string script = std::string(testing::source_dir()) + "/tests/mcp/sdk_v2_server.mjs";
  std::string modern =
      "[mcp_servers.modern]\ncommand = " +
      host::toml_basic_string(testing::node_binary().string()) + "\nargs = [" +
      host::toml_basic_string(script) + ", \"stdio\", " + host::toml_basic_string(mark) + "]\n" +
      "env = { TETHER_NPM_ROOT = " + host::toml_basic_string(testing::npm_root().string()) + " }\n";
  return server_entry("legacy", false, {"--conformance-fixtures", "--stderr-line", mark}) + modern;
}

std::vector<std::string> eras_argv(const std::string& scenario,
                                   const std::vector<std::string>& transport) {
  std::vector<std::string> argv{
      testing::node_binary().string(),
      std::string(testing::source_dir()) + "/tests/gateway/eras_client.mjs",
      (testing::npm_root() / "node_modules").string(), scenario};
  argv.insert(argv.end(), transport.begin(), transport.end());
  return argv;
}

json::value empty_object() {
  return json::object();
}

// The report's step `name`; null when it has none (a failure when the report says ok: a failed
// report has been reported whole already).
json::value step_of(const json::value& report, const char* name) {
  const auto* object = report.if_object();
  const auto* steps = object ? object->if_contains("steps") : nullptr;
  const auto* step = steps && steps->is_object() ? steps->get_object().if_contains(name) : nullptr;
  if (step) return *step;
  if (report_ok(report))
    ADD_FAILURE() << "no step " << name << " in the report " << json::serialize(report);
  return nullptr;
}

std::string string_at(const json::value& value, const char* key) {
  const auto* object = value.if_object();
  const auto* found = object ? object->if_contains(key) : nullptr;
  return found && found->is_string() ? std::string(found->get_string()) : std::string();
}

bool has_text(const json::value& step, const std::string& text) {
  return string_at(step, "text").find(text) != std::string::npos;
}

// One question from the server reached the host's handler, with the server's message.
void expect_one_elicitation(const json::value& step, const char* message) {
  const auto* object = step.if_object();
  const auto* count = object ? object->if_contains("elicitations") : nullptr;
  EXPECT_TRUE(count && *count == 1) << json::serialize(step);
  EXPECT_EQ(string_at(step, "message"), message) << json::serialize(step);
}

void expect_connected(const json::value& report, const char* version) {
  const auto connect = step_of(report, "connect");
  EXPECT_EQ(string_at(connect, "protocolVersion"), version) << json::serialize(connect);
  const auto* object = connect.if_object();
  const auto* info = object ? object->if_contains("serverInfo") : nullptr;
  EXPECT_TRUE(info && string_at(*info, "name") == "tether") << json::serialize(connect);
}

// --- what each scenario must show -------------------------------------------------------------

// (a) 2026 host, 2025 server: the gateway's input_required round carried the host's answer.
void expect_modern_to_legacy(const json::value& report) {
  if (!report_ok(report)) return;  // reported whole by eras_report
  expect_connected(report, kModernVersion);
  const auto step = step_of(report, "elicitation");
  EXPECT_TRUE(has_text(step, "User response: action=accept")) << json::serialize(step);
  EXPECT_TRUE(has_text(step, "\"username\":\"ada\"")) << json::serialize(step);
  EXPECT_TRUE(has_text(step, "ada@example.com")) << json::serialize(step);
  expect_one_elicitation(step, "Who?");
}

// (c) 2026 host, 2026 server: input_required relayed; the list change heard through the listen.
void expect_modern_to_modern(const json::value& report) {
  if (!report_ok(report)) return;  // reported whole by eras_report
  expect_connected(report, kModernVersion);
  const auto confirm = step_of(report, "confirm");
  EXPECT_EQ(string_at(confirm, "text"), "confirmed: true") << json::serialize(confirm);
  expect_one_elicitation(confirm, "Proceed?");
  const auto listen = step_of(report, "listen");
  boost::system::error_code ec;
  const auto* honored = listen.find_pointer("/honoredFilter/toolsListChanged", ec);
  EXPECT_TRUE(honored && *honored == true) << json::serialize(listen);
  const auto changed = step_of(report, "list_changed");
  EXPECT_EQ(string_at(changed, "tool"), "modern__late_tool") << json::serialize(changed);
  EXPECT_EQ(string_at(changed, "added"), "added late_tool") << json::serialize(changed);
  EXPECT_EQ(step_of(report, "unlisten"), "local");
}

// (b) 2025 host, 2026 server: the server's input_required came as elicitation/create.
void expect_legacy_to_modern(const json::value& report) {
  if (!report_ok(report)) return;  // reported whole by eras_report
  expect_connected(report, kLegacyVersion);
  const auto confirm = step_of(report, "confirm");
  EXPECT_EQ(string_at(confirm, "text"), "confirmed: true") << json::serialize(confirm);
  expect_one_elicitation(confirm, "Proceed?");
}

// --- the fixture ------------------------------------------------------------------------------

class Eras : public GatewayFixture {
 protected:
  void SetUp() override {
    GatewayFixture::SetUp();
    mark_ = testing::unique_marker("gw-eras");
    config_ = write_config(eras_config(mark_));
    // The servers carry the marker; every gateway and Node process has the config path.
    reaper_.add(mark_);
    reaper_.add(config_);
  }

  void TearDown() override {
    reaper_.expect_none_left(15s);
    GatewayFixture::TearDown();
  }

  // Runs eras_client.mjs `scenario` with `transport` (`-- COMMAND...` or `--url URL`): its JSON
  // report (see GatewayFixture::node_report).
  asio::awaitable<json::value> eras_report(const std::string& scenario,
                                           const std::vector<std::string>& transport) {
    return node_report(eras_argv(scenario, transport), "node eras_client.mjs " + scenario);
  }

  // The report of `scenario` with the gateway as Node's child, spoken to over its stdio.
  json::value over_stdio(const std::string& scenario) {
    const std::vector<std::string> transport{
        "--", testing::tether_binary(), "mcp", "--config", config_, "serve"};
    json::value report = empty_object();
    testing::run_async(std::bind_front(&Eras::report_into, this, std::cref(scenario),
                                       std::cref(transport), std::ref(report)),
                       240s, "eras_client.mjs " + scenario + " over stdio");
    return report;
  }

  // The report of `scenario` against the gateway serving HTTP on 127.0.0.1 (started here, ended
  // with SIGTERM, which it must answer with exit 0).
  json::value over_http(const std::string& scenario) {
    json::value report = empty_object();
    testing::run_async(
        std::bind_front(&Eras::http_session, this, std::cref(scenario), std::ref(report)), 240s,
        "eras_client.mjs " + scenario + " over HTTP");
    return report;
  }

  // (Member coroutines bound with std::bind_front rather than capturing lambda coroutines.)
  asio::awaitable<void> report_into(const std::string& scenario,
                                    const std::vector<std::string>& transport,
                                    json::value& report) {
    report = co_await eras_report(scenario, transport);
  }

  asio::awaitable<void> http_session(const std::string& scenario, json::value& report) {
    const auto executor = co_await asio::this_coro::executor;
    auto running = start(executor, http_serve(), env_, false);
    CO_ASSERT_TRUE(running.has_value());
    const auto url = co_await endpoint_url(*running);
    if (url.empty()) {
      running->child->signal_group(SIGKILL);
      co_await running->child->wait();
      co_return;
    }
    const auto transport = url_transport(url);
    report = co_await eras_report(scenario, transport);
    EXPECT_TRUE(report_ok(report)) << "the gateway's stderr:\n" << running->err->text;
    ::kill(running->child->pid(), SIGTERM);
    auto status = co_await exit_of(*running, 60s, "the gateway after SIGTERM");
    if (status) {
      EXPECT_EQ(status->code, 0) << running->err->text;
    }
  }

  // Two raw 2026-07-28 calls of modern__slow over HTTP, with and without a logLevel in `_meta`:
  // the answers' bodies.
  void slow_calls(std::string& with_level, std::string& without_level) {
    testing::run_async(
        std::bind_front(&Eras::logs_session, this, std::ref(with_level), std::ref(without_level)),
        120s, "modern__slow with and without a logLevel over HTTP");
  }

  asio::awaitable<void> logs_session(std::string& with_level, std::string& without_level) {
    const auto executor = co_await asio::this_coro::executor;
    auto running = start(executor, http_serve(), env_, false);
    CO_ASSERT_TRUE(running.has_value());
    const auto url = co_await endpoint_url(*running);
    if (!url.empty()) {
      const auto port = static_cast<unsigned short>(
          std::stoi(url.substr(url.rfind(':') + 1, url.rfind('/') - url.rfind(':') - 1)));
      auto logged = co_await testing::http_probe::exchange(port, slow_call("info"));
      EXPECT_EQ(logged.status, 200U) << logged;
      with_level = logged.body();
      auto quiet = co_await testing::http_probe::exchange(port, slow_call(""));
      EXPECT_EQ(quiet.status, 200U) << quiet;
      without_level = quiet.body();
      ::kill(running->child->pid(), SIGTERM);
    } else {
      running->child->signal_group(SIGKILL);
    }
    co_await exit_of(*running, 60s, "the gateway after SIGTERM");
  }

  static testing::http_probe::Probe slow_call(const std::string& log_level) {
    json::object meta{{"io.modelcontextprotocol/protocolVersion", kModernVersion},
                      {"io.modelcontextprotocol/clientCapabilities", json::object()}};
    if (!log_level.empty()) meta["io.modelcontextprotocol/logLevel"] = log_level;
    const json::object body{{"jsonrpc", "2.0"},
                            {"id", 1},
                            {"method", "tools/call"},
                            {"params", json::object{{"name", "modern__slow"},
                                                    {"arguments", json::object{{"ms", 40}}},
                                                    {"_meta", std::move(meta)}}}};
    using testing::http_probe::with;
    auto probe = with(testing::http_probe::post_as("", json::serialize(body)),
                      "MCP-Protocol-Version", kModernVersion);
    return with(with(std::move(probe), "Mcp-Method", "tools/call"), "Mcp-Name", "modern__slow");
  }

  // `tether mcp serve` on a port of 127.0.0.1, without authentication (loopback only).
  std::vector<std::string> http_serve() const {
    return serve(config_, {"--listen", "http://127.0.0.1:0", "--insecure-no-auth"});
  }

  static std::vector<std::string> url_transport(const std::string& url) { return {"--url", url}; }

  // (Local: http_test.cpp's launch() is a member of its own fixture.)
  // The endpoint URL on the gateway's first stdout line, awaited within a bound; "" (a
  // failure) when none came.
  static asio::awaitable<std::string> endpoint_url(Running& running) {
    const auto out = running.out;
    const std::function<bool()> line_or_end = [out] {
      return out->ended || out->text.find('\n') != std::string::npos;
    };
    co_await testing::eventually(line_or_end, 60s);
    const std::string line = out->text.substr(0, out->text.find('\n'));
    if (line.starts_with("http://127.0.0.1:") && line.ends_with("/mcp")) co_return line;
    ADD_FAILURE() << "no endpoint URL on the gateway's first stdout line: '" << out->text
                  << "'; stderr:\n"
                  << running.err->text;
    co_return std::string();
  }

  std::string mark_;
  std::string config_;
  testing::MarkerReaper reaper_;  // SIGKILLs what is left when the test object goes
};

// --- (a) a 2026-07-28 host, a 2025-11-25 server -------------------------------------------------

TEST_F(Eras, ModernHostAnswersLegacyServersElicitationOverStdio) {
  expect_modern_to_legacy(over_stdio("modern_to_legacy"));
}

TEST_F(Eras, ModernHostAnswersLegacyServersElicitationOverHttp) {
  expect_modern_to_legacy(over_http("modern_to_legacy"));
}

// --- (c) a 2026-07-28 host, a 2026-07-28 server -------------------------------------------------

TEST_F(Eras, ModernHostGetsModernServersInputRequiredAndListChangesOverStdio) {
  expect_modern_to_modern(over_stdio("modern_to_modern"));
}

TEST_F(Eras, ModernHostGetsModernServersInputRequiredAndListChangesOverHttp) {
  expect_modern_to_modern(over_http("modern_to_modern"));
}

// --- (b) a 2025-11-25 host, a 2026-07-28 server -------------------------------------------------

TEST_F(Eras, LegacyHostAnswersModernServersInputRequiredOverStdio) {
  expect_legacy_to_modern(over_stdio("legacy_to_modern"));
}

TEST_F(Eras, LegacyHostAnswersModernServersInputRequiredOverHttp) {
  expect_legacy_to_modern(over_http("legacy_to_modern"));
}

// A 2026-07-28 host gets the log messages of the requests whose `_meta` asked for them (on that
// request's stream), and no others.
TEST_F(Eras, ModernHostGetsTheLogsItsRequestAskedFor) {
  std::string with_level;
  std::string without_level;
  slow_calls(with_level, without_level);
  EXPECT_NE(with_level.find("notifications/message"), std::string::npos) << with_level;
  EXPECT_NE(with_level.find("slow: step"), std::string::npos) << with_level;
  EXPECT_NE(without_level.find("\"done\""), std::string::npos) << without_level;
  EXPECT_EQ(without_level.find("notifications/message"), std::string::npos) << without_level;
}

}  // namespace
}  // namespace tether::gateway
