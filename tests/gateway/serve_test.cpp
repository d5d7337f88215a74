// End-to-end tests of `tether mcp serve` over stdio: the real binary as a child of this test,
// spoken to over its stdin/stdout by the official TypeScript SDK client (sdk_client.mjs under
// Node) and by tether's own mcp::Client, with the project's test server placed locally and on a
// spawned executor. Checked: what a host sees through the gateway, a server dying during a call
// (reported, never replayed, restarted on the next call), every way the gateway ends (stdin EOF,
// SIGTERM, its parent's death) ending every server, and the startup failures that exit 3.
// The census: this test process is a child subreaper, so whatever the gateway leaves behind is
// re-parented here; the servers' command lines carry a unique marker (`--stderr-line <marker>`)
// so that servers running under an executor are found too. What the HTTP tests share with these
// (starting the gateway, the SDK client, the census) is in gateway_fixture.hpp.
#include <csignal>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/this_coro.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "exec_server.hpp"
#include "gateway_fixture.hpp"
#include "mcp_fixtures.hpp"
#include <tether/mcp/client.hpp>
#include <tether/process/child.hpp>

namespace tether::gateway {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;
using namespace fixture;
using testing::McpPlacement;

// An MCP session with the gateway over its stdin/stdout (which the transport takes).
// (Reference parameters: GCC 12 can destroy a by-value argument of a coroutine called inside a
// co_await expression twice.)
asio::awaitable<jsonrpc::Expected<std::shared_ptr<mcp::Client>>> connect(
    process::Child& gateway, mcp::ClientOptions& options) {
  mcp::ServerConnection connection;
  connection.transport = testing::stdio_transport(gateway);
  connection.diagnostics = std::make_shared<mcp::ServerDiagnostics>();
  connection.description = "tether mcp serve (pid " + std::to_string(gateway.pid()) + ")";
  auto executor = co_await asio::this_coro::executor;
  co_return co_await mcp::Client::connect(executor, std::move(connection), std::move(options));
}

// Tool arguments, built outside the coroutines (GCC 12 miscompiles braced JSON inside them).
json::value string_arg(const char* key, const std::string& value) {
  return json::object{{key, value}};
}
json::value crashing_counter_args(const std::string& file) {
  return json::object{{"file", file}, {"crash_after", true}};
}

class GatewayServe : public GatewayFixture {};

class GatewayPlacement : public GatewayServe, public ::testing::WithParamInterface<McpPlacement> {
 protected:
  bool remote() const { return GetParam() == McpPlacement::executor; }
  // The config's sandbox environment and the test server `srv` placed per the parameter.
  std::string placed_server(const std::vector<std::string>& args,
                            const std::string& extra = "") const {
    return std::string(kSandbox) + server_entry("srv", remote(), args, extra);
  }

  enum class Ending { stdin_eof, sigterm, parent_sigkill };
  void end_gateway(Ending how);
};

// --- the official SDK client ----------------------------------------------------------------

TEST_F(GatewayServe, SdkClientListsEveryServersOffers) {
  const auto mark = testing::unique_marker("gw-sdk-list");
  testing::MarkerReaper reaper(mark);
  expect_list_report(sdk_client("list", write_config(local_and_remote({"--stderr-line", mark}))));
  reaper.expect_none_left(15s);
}

TEST_F(GatewayServe, SdkClientTourThroughBothPlacements) {
  const auto mark = testing::unique_marker("gw-sdk-tour");
  testing::MarkerReaper reaper(mark);
  expect_tour_report(sdk_client("tour", write_config(local_and_remote({"--stderr-line", mark}))));
  reaper.expect_none_left(15s);
}

// --- a server dying during a call ---------------------------------------------------------

// The counter's file proves the dying call ran once and was not replayed after the restart;
// the tool added before the crash is gone from the restarted server, so the host hears of it.
TEST_P(GatewayPlacement, CrashDuringACallIsReportedNotRetriedAndTheNextCallRestarts) {
  const auto mark = testing::unique_marker("gw-crash");
  testing::MarkerReaper reaper(mark);
  const auto config = write_config(placed_server({"--stderr-line", mark}));
  const auto counter = (dir_ / "counter").string();
  testing::run_async(
      [&]() -> asio::awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        auto running = start(executor, serve(config), env_, true);
        CO_ASSERT_TRUE(running.has_value());
        auto listings = std::make_shared<std::vector<std::vector<std::string>>>();
        mcp::ClientOptions options;
        options.handlers.on_list_changed = [listings](mcp::ListKind kind,
                                                      const json::array& items) {
          if (kind == mcp::ListKind::tools) listings->push_back(names_of(items));
        };
        auto client = co_await connect(*running->child, options);
        CO_ASSERT_TRUE(testing::ok(client));

        const auto add_args = string_arg("name", "extra_tool");
        auto added = co_await (*client)->call_tool("srv__add_tool", add_args);
        CO_ASSERT_TRUE(testing::ok(added));
        const std::function<bool()> extra_listed = [listings] {
          return !listings->empty() && contains(listings->back(), "srv__extra_tool");
        };
        CO_ASSERT_TRUE(co_await testing::eventually(extra_listed, 30s));

        const auto crash_args = crashing_counter_args(counter);
        auto crashed = co_await (*client)->call_tool("srv__counter", crash_args);
        CO_ASSERT_TRUE(testing::ok(crashed));
        const auto* is_error = crashed->if_contains("isError");
        EXPECT_TRUE(is_error && *is_error == true) << json::serialize(*crashed);
        const auto text = testing::first_text(*crashed);
        EXPECT_TRUE(
            text.starts_with("MCP server 'srv' exited during the call; the call was not retried\n"))
            << text;
        EXPECT_EQ(testing::read_text_file(counter), "1\n");

        const auto echo_args = string_arg("message", "after the crash");
        auto echoed = co_await (*client)->call_tool("srv__echo", echo_args);
        CO_ASSERT_TRUE(testing::ok(echoed));
        EXPECT_EQ(testing::first_text(*echoed), "after the crash") << json::serialize(*echoed);

        const std::function<bool()> extra_gone = [listings] {
          return !listings->empty() && !contains(listings->back(), "srv__extra_tool") &&
                 contains(listings->back(), "srv__counter");
        };
        EXPECT_TRUE(co_await testing::eventually(extra_gone, 30s))
            << "no tools list_changed without the tool the crashed server had added";
        auto tools = co_await (*client)->list_tools();
        CO_ASSERT_TRUE(testing::ok(tools));
        EXPECT_FALSE(contains(names_of(*tools), "srv__extra_tool"));
        EXPECT_TRUE(contains(names_of(*tools), "srv__counter"));

        const auto count_args = string_arg("file", counter);
        auto counted = co_await (*client)->call_tool("srv__counter", count_args);
        CO_ASSERT_TRUE(testing::ok(counted));
        EXPECT_EQ(testing::first_text(*counted), "2") << "the crashed call ran again";

        co_await (*client)->shutdown();
        auto status = co_await exit_of(*running, 60s, "the gateway after its client left");
        CO_ASSERT_TRUE(status.has_value());
        EXPECT_EQ(status->code, 0) << running->err->text;
      },
      120s, "crash during a call");
  reaper.expect_none_left(15s);
}

// --- how the gateway ends -------------------------------------------------------------------

void GatewayPlacement::end_gateway(Ending how) {
  const auto mark = testing::unique_marker("gw-end");
  testing::MarkerReaper reaper(mark);
  const auto config = write_config(placed_server({"--stderr-line", mark}));
  // Under a shell that stays its parent (`; :` keeps sh from exec'ing it), for the parent's death.
  auto argv = serve(config);
  if (how == Ending::parent_sigkill) argv = under_shell(argv);
  testing::run_async(
      [&]() -> asio::awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        auto running = start(executor, argv, env_, true);
        CO_ASSERT_TRUE(running.has_value());
        mcp::ClientOptions options;
        auto client = co_await connect(*running->child, options);
        CO_ASSERT_TRUE(testing::ok(client));
        // The first listing waits for every server: they run now.
        auto tools = co_await (*client)->list_tools();
        CO_ASSERT_TRUE(testing::ok(tools));
        EXPECT_TRUE(contains(names_of(*tools), "srv__echo"));
        const std::function<bool()> server_runs = [mark] {
          return !testing::processes_matching(mark).empty();
        };
        CO_ASSERT_TRUE(co_await testing::eventually(server_runs, 30s));

        if (how == Ending::stdin_eof) {
          co_await (*client)->shutdown();
          auto status = co_await exit_of(*running, 60s, "the gateway after stdin EOF");
          CO_ASSERT_TRUE(status.has_value());
          EXPECT_EQ(status->code, 0) << running->err->text;
        } else if (how == Ending::sigterm) {
          ::kill(running->child->pid(), SIGTERM);
          auto status = co_await exit_of(*running, 60s, "the gateway after SIGTERM");
          CO_ASSERT_TRUE(status.has_value());
          EXPECT_EQ(status->code, 0) << running->err->text;
          EXPECT_FALSE(status->signal.has_value());
        } else {
          co_await kill_parent_expect_gateway_exit(*running);
        }
        co_await (*client)->shutdown();
      },
      120s, "ending the gateway");
  reaper.expect_none_left(15s);
  testing::expect_no_children({}, 15s, "after the gateway ended");
}

TEST_P(GatewayPlacement, StdinEofEndsEveryServer) {
  end_gateway(Ending::stdin_eof);
}

TEST_P(GatewayPlacement, SigtermEndsEveryServer) {
  end_gateway(Ending::sigterm);
}

TEST_P(GatewayPlacement, ParentSigkillEndsEveryServer) {
  end_gateway(Ending::parent_sigkill);
}

// --- startup failures -----------------------------------------------------------------------

// The healthy server started beside it is ended too.
TEST_P(GatewayPlacement, RequiredServerFailingToStartExitsThree) {
  const auto mark = testing::unique_marker("gw-required");
  testing::MarkerReaper reaper(mark);
  const auto config =
      write_config(placed_server({"--stderr-line", mark}) +
                   server_entry("bad", remote(), {"--crash-on-start", "--stderr-line", mark},
                                "required = true"));
  const auto exit = run_unattended(config);
  EXPECT_EQ(exit.code, 3) << exit.err;
  EXPECT_NE(exit.err.find("required MCP servers failed to initialize: bad: "), std::string::npos)
      << exit.err;
  reaper.expect_none_left(15s);
}

TEST_F(GatewayServe, RawNamesOfferedByTwoServersExitThree) {
  const auto mark = testing::unique_marker("gw-raw");
  testing::MarkerReaper reaper(mark);
  const auto config = write_config(server_entry("one", false, {"--stderr-line", mark}) +
                                   server_entry("two", false, {"--stderr-line", mark}));
  const auto exit = run_unattended(config, {"--names", "raw"});
  EXPECT_EQ(exit.code, 3) << exit.err;
  EXPECT_NE(exit.err.find("tool 'echo' is offered by MCP servers 'one' and 'two'"),
            std::string::npos)
      << exit.err;
  EXPECT_NE(exit.err.find("prompt 'greet' is offered by MCP servers 'one' and 'two'"),
            std::string::npos)
      << exit.err;
  reaper.expect_none_left(15s);
}

INSTANTIATE_TEST_SUITE_P(Placements, GatewayPlacement,
                         ::testing::Values(McpPlacement::local, McpPlacement::executor),
                         testing::placement_name);

}  // namespace
}  // namespace tether::gateway
