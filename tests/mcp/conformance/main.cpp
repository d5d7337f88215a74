// tether-conformance-client: the MCP client the official conformance tool
// (@modelcontextprotocol/conformance, `conformance client --command ...`) drives; run by
// tests/mcp/conformance/run-scenario.
//
// Owns: picking what to do for the scenario the tool names (env MCP_CONFORMANCE_SCENARIO), with
// the server URL the tool appends as the last argument, and the exit code (0: the scenario's
// steps succeeded; 1: a step failed; 2: usage or unsupported scenario; 3: overall deadline).
// Does not own: any MCP behaviour. The handshake, streamable HTTP, SSE resumption and elicitation
// defaults are tether's (mcp::Client, mcp::connect_http): this program only calls them, so the
// tool's checks judge the library, not this file. OAuth (the auth/* scenarios) is out of scope.
// Data flow: argv/env -> connect_http -> Client::connect -> [tools/list, tools/call] -> shutdown;
// the tool's server checks what arrived. Logs go to stderr (level: env TETHER_LOG).
#include <chrono>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <tether/mcp/client.hpp>
#include <tether/mcp/http.hpp>

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
namespace mcp = tether::mcp;
using namespace std::chrono_literals;

// Below the tool's own client timeout (30 s), so a hang is reported by us, not as a kill.
constexpr auto kDeadline = 25s;

// What a scenario needs from the client: an empty tool means the handshake alone.
struct Scenario {
  std::string_view name;
  std::string_view tool;
  bool elicitation = false;
};

constexpr Scenario kScenarios[] = {
    {"initialize", "", false},
    {"tools_call", "add_numbers", false},
    {"elicitation-sep1034-client-defaults", "test_client_elicitation_defaults", true},
    {"sse-retry", "test_reconnection", false},
};

const Scenario* find_scenario(std::string_view name) {
  for (const auto& scenario : kScenarios)
    if (scenario.name == name) return &scenario;
  return nullptr;
}

json::object tool_arguments(std::string_view tool) {
  if (tool == "add_numbers") return json::object{{"a", 5}, {"b", 3}};
  return json::object{};
}

// Accepts every form without filling anything: the client must add the schema's defaults
// (form.applyDefaults), which is what elicitation-sep1034-client-defaults checks.
asio::awaitable<tether::jsonrpc::Reply> accept_with_defaults(json::value params) {
  spdlog::info("elicitation/create: {}", json::serialize(params));
  co_return json::value(json::object{{"action", "accept"}, {"content", json::object{}}});
}

std::string content_text(const json::object& result) {
  std::string text;
  if (const auto* content = result.if_contains("content"); content && content->is_array())
    for (const auto& item : content->as_array())
      if (const auto* t = item.is_object() ? item.as_object().if_contains("text") : nullptr;
          t && t->is_string())
        text += t->as_string();
  return text;
}

asio::awaitable<int> call_scenario_tool(mcp::Client& client, const Scenario& scenario) {
  auto tools = co_await client.list_tools();
  if (!tools) {
    spdlog::error("tools/list failed: {}", tools.error().message);
    co_return 1;
  }
  bool listed = false;
  for (const auto& tool : *tools) {
    const auto* name = tool.is_object() ? tool.as_object().if_contains("name") : nullptr;
    if (name && name->is_string() && name->as_string() == scenario.tool) listed = true;
  }
  if (!listed) {
    spdlog::error("the server does not list tool '{}'", scenario.tool);
    co_return 1;
  }
  auto arguments = tool_arguments(scenario.tool);
  auto result = co_await client.call_tool(std::string(scenario.tool), std::move(arguments));
  if (!result) {
    spdlog::error("tools/call {} failed: {}", scenario.tool, result.error().message);
    co_return 1;
  }
  const auto* is_error = result->if_contains("isError");
  if (is_error && is_error->is_bool() && is_error->as_bool()) {
    spdlog::error("tools/call {} returned an error: {}", scenario.tool, content_text(*result));
    co_return 1;
  }
  spdlog::info("tools/call {}: {}", scenario.tool, content_text(*result));
  co_return 0;
}

asio::awaitable<int> run(std::string url, const Scenario& scenario) {
  auto executor = co_await asio::this_coro::executor;
  auto connection = mcp::connect_http(executor, mcp::HttpServerConfig{url});
  if (!connection) {
    spdlog::error("{}", connection.error().message);
    co_return 2;
  }
  mcp::ClientOptions options;
  options.startup_timeout = 10s;
  options.tool_timeout = 15s;
  if (scenario.elicitation) options.handlers.elicitation = accept_with_defaults;
  auto connected = co_await mcp::Client::connect(executor, std::move(*connection), options);
  if (!connected) {
    spdlog::error("connecting to {} failed: {}", url, connected.error().message);
    co_return 1;
  }
  std::shared_ptr<mcp::Client> client = std::move(*connected);
  spdlog::info("connected to {} (protocol {})", url, client->protocol_version());
  int code = 0;
  if (!scenario.tool.empty()) code = co_await call_scenario_tool(*client, scenario);
  co_await client->shutdown();
  co_return code;
}

}  // namespace

int main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("conformance-client");
  logger->set_pattern("%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);
  const char* level = std::getenv("TETHER_LOG");
  spdlog::set_level(spdlog::level::from_str(level ? level : "info"));

  const char* scenario_name = std::getenv("MCP_CONFORMANCE_SCENARIO");
  if (argc < 2 || !scenario_name) {
    spdlog::error("usage: MCP_CONFORMANCE_SCENARIO=<scenario> {} <server-url>", argv[0]);
    return 2;
  }
  const Scenario* scenario = find_scenario(scenario_name);
  if (!scenario) {
    spdlog::error("unsupported scenario '{}' (auth/* scenarios: OAuth is out of scope)",
                  scenario_name);
    return 2;
  }
  spdlog::info("scenario {} against {}", scenario->name, argv[argc - 1]);

  asio::io_context io;
  std::optional<int> exit_code;
  asio::steady_timer deadline(io, kDeadline);
  deadline.async_wait([&](boost::system::error_code ec) {
    if (ec) return;
    spdlog::error("scenario {} did not finish within {}s", scenario->name, kDeadline.count());
    exit_code = 3;
    io.stop();
  });
  asio::co_spawn(io, run(argv[argc - 1], *scenario), [&](std::exception_ptr error, int code) {
    deadline.cancel();
    if (!error) {
      exit_code = code;
      return;
    }
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      spdlog::error("scenario {} failed: {}", scenario->name, e.what());
    }
    exit_code = 1;
  });
  io.run();
  if (exit_code == 0) spdlog::info("scenario {} done", scenario->name);
  return exit_code.value_or(1);
}
