// tether-conformance-client: the MCP client the official conformance tool
// (@modelcontextprotocol/conformance, `conformance client --command ...`) drives; run by
// tests/mcp/conformance/run-scenario.
//
// Owns: picking what to do for the scenario the tool names (env MCP_CONFORMANCE_SCENARIO, with
// test data in MCP_CONFORMANCE_CONTEXT), with the server URL the tool appends as the last
// argument, and the exit code (0: the scenario's steps succeeded; 1: a step failed; 2: usage or
// unsupported scenario; 3: overall deadline). The same binary serves both tool versions: the
// revision (2025-11-25 or 2026-07-28) is the one the client finds the server speaking.
// Does not own: any MCP behaviour. The revision probe, handshake, streamable HTTP and its
// headers, SSE resumption, input_required rounds and elicitation defaults are tether's
// (mcp::Client, mcp::connect_http): this program only calls them, so the tool's checks judge
// the library, not this file. OAuth (the auth/* scenarios) is out of scope.
// Data flow: argv/env -> connect_http -> Client::connect -> [lists, calls, reads, prompts] ->
// shutdown; the tool's server checks what arrived. Logs go to stderr (level: env TETHER_LOG).
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

// What a scenario needs from the client after the handshake.
enum class Steps {
  none,
  call_tool,      // list tools, call `tool`
  list_tools,     // list tools only
  call_each,      // list tools, call each one listed
  context_calls,  // list tools, call the tools MCP_CONFORMANCE_CONTEXT names, with its arguments
  everything,     // call each tool, read each resource, get each prompt
};

struct Scenario {
  std::string_view name;
  Steps steps;
  std::string_view tool;
  bool elicitation = false;
};

constexpr Scenario kScenarios[] = {
    {"initialize", Steps::none, ""},
    {"tools_call", Steps::call_tool, "add_numbers"},
    {"elicitation-sep1034-client-defaults", Steps::call_tool, "test_client_elicitation_defaults",
     true},
    {"sse-retry", Steps::call_tool, "test_reconnection"},
    {"request-metadata", Steps::call_each, "", true},
    {"sep-2322-client-request-state", Steps::call_each, "", true},
    {"http-standard-headers", Steps::everything, ""},
    {"http-custom-headers", Steps::context_calls, ""},
    {"http-invalid-tool-headers", Steps::call_each, ""},
    {"json-schema-ref-no-deref", Steps::list_tools, ""},
};

const Scenario* find_scenario(std::string_view name) {
  for (const auto& scenario : kScenarios)
    if (scenario.name == name) return &scenario;
  return nullptr;
}

// Arguments for a listed tool: a value of its type for each required property.
json::object tool_arguments(const json::object& tool) {
  const auto* name = tool.if_contains("name");
  if (name && name->is_string() && name->as_string() == "add_numbers")
    return json::object{{"a", 5}, {"b", 3}};
  json::object arguments;
  const auto* schema = tool.if_contains("inputSchema");
  if (!schema || !schema->is_object()) return arguments;
  const auto* required = schema->as_object().if_contains("required");
  const auto* properties = schema->as_object().if_contains("properties");
  if (!required || !required->is_array() || !properties || !properties->is_object())
    return arguments;
  for (const auto& key : required->as_array()) {
    if (!key.is_string()) continue;
    const auto* property = properties->as_object().if_contains(key.as_string());
    const auto* type =
        property && property->is_object() ? property->as_object().if_contains("type") : nullptr;
    const std::string_view kind = type && type->is_string() ? type->as_string().c_str() : "";
    if (kind == "number" || kind == "integer")
      arguments[key.as_string()] = 1;
    else if (kind == "boolean")
      arguments[key.as_string()] = true;
    else
      arguments[key.as_string()] = "conformance";
  }
  return arguments;
}

std::string_view string_at(const json::value& value, std::string_view key) {
  const auto* found = value.is_object() ? value.as_object().if_contains(key) : nullptr;
  return found && found->is_string() ? std::string_view(found->as_string()) : std::string_view();
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

asio::awaitable<int> call(mcp::Client& client, std::string name, json::object arguments) {
  auto result = co_await client.call_tool(name, std::move(arguments));
  if (!result) {
    spdlog::error("tools/call {} failed: {}", name, result.error().message);
    co_return 1;
  }
  const auto* is_error = result->if_contains("isError");
  if (is_error && is_error->is_bool() && is_error->as_bool()) {
    spdlog::error("tools/call {} returned an error: {}", name, content_text(*result));
    co_return 1;
  }
  spdlog::info("tools/call {}: {}", name, content_text(*result));
  co_return 0;
}

// The tool calls the scenario's context lists: {"toolCalls": [{"name", "arguments"}]}.
json::array context_calls() {
  const char* context = std::getenv("MCP_CONFORMANCE_CONTEXT");
  boost::system::error_code ec;
  auto parsed = json::parse(context ? context : "{}", ec);
  const auto* calls =
      !ec && parsed.is_object() ? parsed.as_object().if_contains("toolCalls") : nullptr;
  return calls && calls->is_array() ? calls->as_array() : json::array();
}

asio::awaitable<int> run_tools(mcp::Client& client, const Scenario& scenario) {
  auto tools = co_await client.list_tools();
  if (!tools) {
    spdlog::error("tools/list failed: {}", tools.error().message);
    co_return 1;
  }
  spdlog::info("tools/list: {} tools", tools->size());
  int code = 0;
  if (scenario.steps == Steps::context_calls) {
    for (const auto& planned : context_calls()) {
      const auto* arguments =
          planned.is_object() ? planned.as_object().if_contains("arguments") : nullptr;
      json::object given =
          arguments && arguments->is_object() ? arguments->as_object() : json::object();
      code |= co_await call(client, std::string(string_at(planned, "name")), std::move(given));
    }
    co_return code;
  }
  bool listed = false;
  for (const auto& tool : *tools) {
    if (!tool.is_object()) continue;
    const std::string name(string_at(tool, "name"));
    const bool wanted = scenario.steps == Steps::call_each || scenario.steps == Steps::everything ||
                        name == scenario.tool;
    if (!wanted || scenario.steps == Steps::list_tools) continue;
    listed = true;
    code |= co_await call(client, name, tool_arguments(tool.as_object()));
  }
  if (scenario.steps == Steps::call_tool && !listed) {
    spdlog::error("the server does not list tool '{}'", scenario.tool);
    co_return 1;
  }
  co_return code;
}

// Every resource read and every prompt got (http-standard-headers checks their headers).
asio::awaitable<int> run_resources_and_prompts(mcp::Client& client) {
  int code = 0;
  auto resources = co_await client.list_resources();
  if (!resources) {
    spdlog::error("resources/list failed: {}", resources.error().message);
    co_return 1;
  }
  for (const auto& resource : *resources) {
    auto read = co_await client.read_resource(string_at(resource, "uri"));
    if (!read) {
      spdlog::error("resources/read failed: {}", read.error().message);
      code = 1;
    }
  }
  auto prompts = co_await client.list_prompts();
  if (!prompts) {
    spdlog::error("prompts/list failed: {}", prompts.error().message);
    co_return 1;
  }
  for (const auto& prompt : *prompts) {
    auto got = co_await client.get_prompt(string_at(prompt, "name"), json::object());
    if (!got) {
      spdlog::error("prompts/get failed: {}", got.error().message);
      code = 1;
    }
  }
  co_return code;
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
  if (scenario.steps != Steps::none) code = co_await run_tools(*client, scenario);
  if (scenario.steps == Steps::everything) code |= co_await run_resources_and_prompts(*client);
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
  asio::co_spawn(io, run(argv[argc - 1], *scenario),
                 [&](const std::exception_ptr& error, int code) {
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
