// tether's MCP client against a real MCP 2026-07-28 server: tests/mcp/sdk_v2_server.mjs, built on
// the official TypeScript SDK v2 (@modelcontextprotocol/server 2.4.0, pinned in tests/npm), over
// stdio in both placements (a child of the test, a process of a spawned `tether exec-server`) and
// over streamable HTTP, from this process and through a spawned executor's http/request.
//
// Owns the checks that the client finds the 2026-07-28 revision (server/discover) and works in
// it: serverInfo from the discover result's `_meta`, tools, resources, templates and prompts,
// a multi-round-trip elicitation answered through the host's handler (accepted and declined), a
// tool list change delivered through `subscriptions/listen`, progress and cancellation, the
// logging level carried in `_meta`, a listing kept for its `ttlMs`, the Mcp-Param-* header of an
// x-mcp-header argument (HTTP), and that nothing outlives shutdown. The reference servers (2025
// only) through the fallback are npm_servers_test's.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "build_paths.hpp"
#include "exec_server.hpp"
#include "mcp_fixtures.hpp"
#include "npm_peers.hpp"
#include <tether/exec/client.hpp>
#include <tether/mcp/client.hpp>
#include <tether/mcp/http.hpp>
#include <tether/process/child.hpp>

namespace tether::testing {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr auto kWait = 15s;
constexpr auto kBodyDeadline = 90s;

std::string server_script() {
  return std::string(source_dir()) + "/tests/mcp/sdk_v2_server.mjs";
}

// {key: value}, built outside coroutine bodies (GCC 12 miscompiles braced lists inside them).
json::object arg(std::string_view key, json::value value) {
  json::object object;
  object[key] = std::move(value);
  return object;
}

constexpr std::string_view kServerTools[] = {"echo", "confirm", "add_tool", "slow", "header_echo"};

std::vector<std::string> names_of(const json::array& items) {
  return strings_of(items, "name");
}

bool has(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// What the host side saw and answers.
struct Host {
  std::string elicitation_action = "accept";
  std::vector<json::value> elicitations;
  std::vector<json::array> tool_listings;  // fresh listings after tools list_changed
};

json::value elicitation_answer(const Host& host) {
  auto answer = arg("action", json::value(host.elicitation_action));
  if (host.elicitation_action == "accept") answer["content"] = arg("confirmed", true);
  return answer;
}

asio::awaitable<jsonrpc::Reply> elicit(std::shared_ptr<Host> host, json::value params) {
  host->elicitations.push_back(std::move(params));
  co_return jsonrpc::Reply{elicitation_answer(*host)};
}

mcp::ClientOptions options_for(const std::shared_ptr<Host>& host) {
  mcp::ClientOptions options;
  options.handlers.elicitation = [host](json::value params) {
    return elicit(host, std::move(params));
  };
  options.handlers.on_list_changed = [host](mcp::ListKind kind, const json::array& items) {
    if (kind == mcp::ListKind::tools) host->tool_listings.push_back(items);
  };
  return options;
}

using Body = std::function<asio::awaitable<void>(mcp::Client&, Host&)>;

// ---- what every transport must show --------------------------------------------------------

asio::awaitable<void> modern_session(mcp::Client& client, Host&) {
  EXPECT_EQ(client.era(), mcp::ProtocolEra::modern);
  EXPECT_EQ(client.protocol_version(), "2026-07-28");
  const json::value handshake = client.handshake_result();
  boost::system::error_code ignored;
  const auto* name = handshake.find_pointer("/serverInfo/name", ignored);
  EXPECT_TRUE(name && *name == "tether-sdk-v2-peer") << json::serialize(handshake);
  EXPECT_TRUE(client.server_capabilities().contains("tools"));

  auto tools = co_await client.list_tools();
  CO_ASSERT_TRUE(tools.has_value());
  const auto tool_names = names_of(*tools);
  for (auto expected : kServerTools) EXPECT_TRUE(has(tool_names, expected)) << expected;

  auto echoed = co_await client.call_tool("echo", arg("text", "over 2026-07-28"));
  CO_ASSERT_TRUE(echoed.has_value());
  EXPECT_EQ(first_text(*echoed), "over 2026-07-28");

  auto read = co_await client.read_resource("test://static");
  CO_ASSERT_TRUE(read.has_value());
  EXPECT_NE(json::serialize(*read).find("static text"), std::string::npos);
  auto item = co_await client.read_resource("test://item/7");
  CO_ASSERT_TRUE(item.has_value());
  EXPECT_NE(json::serialize(*item).find("item 7"), std::string::npos);
  auto templates = co_await client.list_resource_templates();
  CO_ASSERT_TRUE(templates.has_value());
  EXPECT_NE(json::serialize(*templates).find("test://item/{id}"), std::string::npos);

  auto prompt = co_await client.get_prompt("greet", arg("name", "Ada"));
  CO_ASSERT_TRUE(prompt.has_value());
  EXPECT_NE(json::serialize(*prompt).find("Hello, Ada!"), std::string::npos);

  // No ping and no logging/setLevel in 2026-07-28: the client carries both out its own way.
  auto ping = co_await client.ping();
  EXPECT_TRUE(ping.has_value()) << ping.error().message;
  auto level = co_await client.set_logging_level("debug");
  EXPECT_TRUE(level.has_value()) << level.error().message;
}

asio::awaitable<void> input_required_elicitation(mcp::Client& client, Host& host) {
  auto confirmed = co_await client.call_tool("confirm", arg("question", "Proceed?"));
  CO_ASSERT_TRUE(confirmed.has_value());
  EXPECT_EQ(first_text(*confirmed), "confirmed: true");
  CO_ASSERT_EQ(host.elicitations.size(), 1u);
  EXPECT_NE(json::serialize(host.elicitations[0]).find("Proceed?"), std::string::npos);

  host.elicitation_action = "decline";
  auto declined = co_await client.call_tool("confirm", arg("question", "Really?"));
  CO_ASSERT_TRUE(declined.has_value());
  EXPECT_EQ(first_text(*declined), "declined");
  EXPECT_EQ(host.elicitations.size(), 2u);
}

asio::awaitable<void> list_change_through_listen(mcp::Client& client, Host& host) {
  auto before = co_await client.list_tools();
  CO_ASSERT_TRUE(before.has_value());
  EXPECT_FALSE(has(names_of(*before), "added_by_test"));
  auto added = co_await client.call_tool("add_tool", arg("name", "added_by_test"));
  CO_ASSERT_TRUE(added.has_value());
  const bool relisted = co_await eventually(
      [&] {
        return std::any_of(
            host.tool_listings.begin(), host.tool_listings.end(),
            [](const json::array& tools) { return has(names_of(tools), "added_by_test"); });
      },
      kWait);
  EXPECT_TRUE(relisted) << "no tools list_changed arrived through subscriptions/listen";
  auto after = co_await client.list_tools();
  CO_ASSERT_TRUE(after.has_value());
  EXPECT_TRUE(has(names_of(*after), "added_by_test"));
}

asio::awaitable<void> progress_and_cancellation(mcp::Client& client, Host&) {
  auto progress = std::make_shared<std::vector<json::object>>();
  mcp::CallOptions reporting;
  reporting.on_progress = [progress](const json::object& update) { progress->push_back(update); };
  auto done = co_await client.call_tool("slow", arg("ms", 200), std::move(reporting));
  CO_ASSERT_TRUE(done.has_value());
  EXPECT_EQ(first_text(*done), "done");
  EXPECT_EQ(progress->size(), 4u);

  mcp::CallOptions hurried;
  hurried.timeout = 100ms;
  auto cut = co_await client.call_tool("slow", arg("ms", 20'000), std::move(hurried));
  CO_ASSERT_TRUE(!cut.has_value());
  EXPECT_EQ(cut.error().code, jsonrpc::code::kRequestTimedOut) << cut.error().message;
  const bool aborted = co_await eventually(
      [&] { return client.stderr_tail().find("slow aborted") != std::string::npos; }, kWait);
  EXPECT_TRUE(aborted) << "the server did not see the cancellation; stderr:\n"
                       << client.stderr_tail();
}

// The server lets its template listing be cached for 10 minutes (ttlMs) and nothing else: the
// client asks for templates once, and for tools every time.
asio::awaitable<void> cached_listings(mcp::Client& client, Host&) {
  for (int i = 0; i < 3; ++i) {
    auto templates = co_await client.list_resource_templates();
    CO_ASSERT_TRUE(templates.has_value());
    auto tools = co_await client.list_tools();
    CO_ASSERT_TRUE(tools.has_value());
  }
  auto templates = co_await client.call_tool("requests", arg("method", "resources/templates/list"));
  CO_ASSERT_TRUE(templates.has_value());
  EXPECT_EQ(first_text(*templates), "1");
  auto tools = co_await client.call_tool("requests", arg("method", "tools/list"));
  CO_ASSERT_TRUE(tools.has_value());
  EXPECT_EQ(first_text(*tools), "3");
}

// ---- stdio, both placements ----------------------------------------------------------------

asio::awaitable<void> stdio_session(McpSite& site, mcp::StdioCommand command, std::string marker,
                                    const Body& body) {
  auto host = std::make_shared<Host>();
  auto connected = co_await site.connect(std::move(command), options_for(host));
  CO_ASSERT_TRUE(connected.has_value());
  auto client = *connected;
  co_await body(*client, *host);
  co_await client->shutdown();
  const bool gone = co_await eventually([&] { return processes_matching(marker).empty(); }, kWait);
  EXPECT_TRUE(gone) << "the SDK v2 server outlived shutdown";
}

class SdkV2Stdio : public ::testing::TestWithParam<McpPlacement> {
 protected:
  void run(const Body& body) {
    const auto marker = unique_marker("sdk-v2");
    MarkerReaper reaper(marker);
    auto command = stdio_command(node_binary().string(), {server_script(), "stdio", marker});
    command.env["TETHER_NPM_ROOT"] = npm_root().string();
    run_in_site(
        GetParam(), [&](McpSite& site) { return stdio_session(site, command, marker, body); },
        kBodyDeadline);
  }
};

TEST_P(SdkV2Stdio, SpeaksTheStatelessRevision) {
  run(modern_session);
}

TEST_P(SdkV2Stdio, AnswersInputRequiredThroughTheElicitationHandler) {
  run(input_required_elicitation);
}

TEST_P(SdkV2Stdio, ToolListChangesArriveThroughSubscriptionsListen) {
  run(list_change_through_listen);
}

TEST_P(SdkV2Stdio, ProgressAndCancellation) {
  run(progress_and_cancellation);
}

TEST_P(SdkV2Stdio, ListingsAreCachedForTheirTtl) {
  run(cached_listings);
}

INSTANTIATE_TEST_SUITE_P(Placements, SdkV2Stdio,
                         ::testing::Values(McpPlacement::local, McpPlacement::executor),
                         placement_name);

// ---- streamable HTTP -----------------------------------------------------------------------

// The server's first stdout line: its URL.
asio::awaitable<std::string> first_line(asio::posix::stream_descriptor* stream) {
  std::string text;
  std::array<char, 512> chunk{};
  while (text.find('\n') == std::string::npos) {
    boost::system::error_code ec;
    const std::size_t n = co_await stream->async_read_some(
        asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return std::string();
    text.append(chunk.data(), n);
  }
  co_return text.substr(0, text.find('\n'));
}

// `executor_url`: the executor whose http/request reaches the server (empty: this process).
asio::awaitable<void> http_session(process::SpawnOptions spawn, const Body& body,
                                   std::string executor_url) {
  auto executor = co_await asio::this_coro::executor;
  auto spawned = process::Child::spawn(executor, spawn);
  CO_ASSERT_TRUE(spawned.has_value());
  // Owned here only: leaving this body (also on a failed assertion) ends the server.
  std::shared_ptr<process::Child> server = *spawned;
  const auto url = co_await first_line(server->stdout_stream());
  CO_ASSERT_TRUE(url.starts_with("http://127.0.0.1:"));
  mcp::HttpServerConfig config{url};
  std::shared_ptr<exec::ExecClient> exec;
  if (!executor_url.empty()) {
    exec::WebSocketEndpoint endpoint;
    endpoint.url = executor_url;
    auto connected = co_await exec::ExecClient::connect(executor, endpoint);
    CO_ASSERT_TRUE(connected.has_value());
    exec = *connected;
    config.client = exec->http_client("box");
  }
  auto connection = mcp::connect_http(executor, std::move(config));
  CO_ASSERT_TRUE(connection.has_value());
  auto host = std::make_shared<Host>();
  auto connected =
      co_await mcp::Client::connect(executor, std::move(*connection), options_for(host));
  CO_ASSERT_TRUE(connected.has_value());
  auto client = *connected;
  co_await body(*client, *host);
  co_await client->shutdown();
  if (exec) co_await exec->close();
}

// Over HTTP from this process, or through a spawned `tether exec-server` (the 2026-07-28 headers
// and streams go through its http/request unchanged).
class SdkV2Http : public ::testing::TestWithParam<McpPlacement> {
 protected:
  void run_http(const Body& body) {
    std::optional<ExecServer> through;
    if (GetParam() == McpPlacement::executor) through.emplace();
    const std::string executor_url = through ? through->url() : std::string();
    process::SpawnOptions spawn;
    spawn.argv = {node_binary().string(), server_script(), "http", "--port", "0"};
    spawn.env = {"PATH=/usr/bin:/bin", "TETHER_NPM_ROOT=" + npm_root().string()};
    run_async([&] { return http_session(spawn, body, executor_url); }, kBodyDeadline,
              "the SDK v2 HTTP session");
  }
};

TEST_P(SdkV2Http, SpeaksTheStatelessRevision) {
  run_http(modern_session);
}

TEST_P(SdkV2Http, AnswersInputRequiredThroughTheElicitationHandler) {
  run_http(input_required_elicitation);
}

TEST_P(SdkV2Http, ToolListChangesArriveThroughSubscriptionsListen) {
  run_http(list_change_through_listen);
}

// The server answers with the Mcp-Param-Region header it received (and refuses a call whose
// header is missing or does not match the argument: 400, -32020).
asio::awaitable<void> header_params(mcp::Client& client, Host&) {
  auto tools = co_await client.list_tools();
  CO_ASSERT_TRUE(tools.has_value());
  auto echoed = co_await client.call_tool("header_echo", arg("region", "eu west"));
  CO_ASSERT_TRUE(echoed.has_value());
  EXPECT_EQ(first_text(*echoed), "eu west");
  auto unsafe = co_await client.call_tool("header_echo", arg("region", " padded"));
  CO_ASSERT_TRUE(unsafe.has_value());
  EXPECT_EQ(first_text(*unsafe), "=?base64?IHBhZGRlZA==?=");
}

TEST_P(SdkV2Http, XMcpHeaderArgumentsGoInMcpParamHeaders) {
  run_http(header_params);
}

INSTANTIATE_TEST_SUITE_P(Placements, SdkV2Http,
                         ::testing::Values(McpPlacement::local, McpPlacement::executor),
                         placement_name);

}  // namespace
}  // namespace tether::testing
