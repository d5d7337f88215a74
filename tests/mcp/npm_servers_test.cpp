// Acceptance scenario 31 and the MCP parts of scenarios 40 and 41: MCP servers written by others,
// from npm (pinned in tests/npm/package-lock.json, run as `node <dist file>` with the pinned Node
// 22, never npx), driven by tether's mcp::Client through host::launch_server.
//
// Owns the checks that real servers work through both placements (a child of the test, a process
// of a spawned `tether exec-server`):
// - @modelcontextprotocol/server-everything: handshake and listings, tools with text, image,
//   structured and embedded-resource content, prompts with arguments, completion, static and
//   template resources, subscriptions, resources list_changed, the logging level, progress,
//   sampling, elicitation (with the schema defaults the client applies), roots and
//   roots/list_changed;
// - @modelcontextprotocol/server-filesystem: the client's roots replace the directories given on
//   its command line; access outside them is an isError result;
// - @modelcontextprotocol/server-memory: the knowledge graph, kept in MEMORY_FILE_PATH given
//   through `env`, round-trips and survives a restart;
// - server-everything on a `command` executor (`tether exec-server --listen stdio`, scenario 40)
//   behaves like the WebSocket-placed one, and on a stock codex exec-server placed as "remote"
//   (scenario 41) it answers and leaves nothing behind.
// Process census: each server carries a unique marker on its command line (an argument the server
// ignores, or the name of a directory it is given); every test checks the server runs under it,
// that shutdown leaves no process with it (bounded wait), and a MarkerReaper SIGKILLs leftovers
// when a test failed early.
// Does not own: the placements (mcp_fixtures.hpp: McpSite and its spawned executor; the command
// and codex environments are built here), the codex process (codex_exec_server.hpp), the npm
// install (npm_peers.hpp).
// Not covered here: server-everything's task-based tools (simulate-research-query,
// trigger-*-request-async: the client offers no tasks capability), trigger-url-elicitation (URL
// mode is not offered), gzip-file-as-resource over http(s) (no network: a data: URL is used), and
// pagination (the SDK's servers never page; the project's test server covers cursors).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "client_scenarios.hpp"
#include "codex_exec_server.hpp"
#include "exec_server.hpp"
#include "mcp_fixtures.hpp"
#include "npm_peers.hpp"
#include <tether/host/environment.hpp>
#include <tether/host/server_launch.hpp>
#include <tether/jsonrpc/base64.hpp>
#include <tether/mcp/client.hpp>

namespace tether::testing {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr auto kWait = 15s;
constexpr auto kBodyDeadline = 90s;

constexpr const char* kEverything = "@modelcontextprotocol/server-everything/dist/index.js";
constexpr const char* kFilesystem = "@modelcontextprotocol/server-filesystem/dist/index.js";
constexpr const char* kMemory = "@modelcontextprotocol/server-memory/dist/index.js";

constexpr const char* kSampledText = "tether sampled: forty-two";
constexpr const char* kSampledModel = "tether-test-model";

// ---- JSON helpers ------------------------------------------------------------------------------

const json::value* at(const json::value& value, std::string_view pointer) {
  boost::system::error_code ignored;
  return value.find_pointer(pointer, ignored);
}

std::string string_at(const json::value& value, std::string_view pointer) {
  const auto* found = at(value, pointer);
  return found && found->is_string() ? std::string(found->as_string()) : std::string{};
}

bool is_error(const json::object& result) {
  const auto* flag = result.if_contains("isError");
  return flag && flag->is_bool() && flag->as_bool();
}

// Every text content item of a tool result, joined with '\n'.
std::string all_text(const json::object& result) {
  std::string text;
  const auto* content = result.if_contains("content");
  if (!content || !content->is_array()) return text;
  for (const auto& item : content->as_array()) {
    const auto piece = string_at(item, "/text");
    if (piece.empty()) continue;
    if (!text.empty()) text += '\n';
    text += piece;
  }
  return text;
}

bool has(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string file_contents(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// ---- The host side: what the client's handlers answer and what they saw -------------------------

struct HostSide {
  std::vector<std::string> root_paths;  // offered as file:// roots
  std::string elicitation_action = "accept";
  int roots_requests = 0;
  std::vector<json::value> sampling_requests;
  std::vector<json::value> elicitation_requests;
  std::vector<std::pair<std::string, json::value>> notifications;
  std::vector<json::array> resource_listings;  // fresh listings after resources/list_changed

  // Logging messages whose `data` contains `needle`.
  std::size_t log_messages_containing(std::string_view needle) const {
    return static_cast<std::size_t>(
        std::count_if(notifications.begin(), notifications.end(), [&](const auto& entry) {
          return entry.first == "notifications/message" &&
                 string_at(entry.second, "/data").find(needle) != std::string::npos;
        }));
  }
  bool saw(std::string_view method, std::string_view pointer, std::string_view expected) const {
    return std::any_of(notifications.begin(), notifications.end(), [&](const auto& entry) {
      return entry.first == method && string_at(entry.second, pointer) == expected;
    });
  }
};

json::value roots_answer(const HostSide& host) {
  json::array roots;
  for (const auto& path : host.root_paths)
    roots.push_back(json::object{{"uri", "file://" + path},
                                 {"name", std::filesystem::path(path).filename().string()}});
  return json::object{{"roots", std::move(roots)}};
}

json::value sampling_answer() {
  return json::object{{"role", "assistant"},
                      {"content", json::object{{"type", "text"}, {"text", kSampledText}}},
                      {"model", kSampledModel},
                      {"stopReason", "endTurn"}};
}

// Only `name` and `check`: the schema's defaults for the other fields are the client's to add.
json::value elicitation_answer(const HostSide& host) {
  if (host.elicitation_action != "accept") return json::object{{"action", host.elicitation_action}};
  return json::object{{"action", "accept"},
                      {"content", json::object{{"name", "Ada Lovelace"}, {"check", true}}}};
}

asio::awaitable<jsonrpc::Reply> answer_roots(std::shared_ptr<HostSide> host, json::value) {
  ++host->roots_requests;
  co_return jsonrpc::Reply{roots_answer(*host)};
}

asio::awaitable<jsonrpc::Reply> answer_sampling(std::shared_ptr<HostSide> host,
                                                json::value params) {
  host->sampling_requests.push_back(std::move(params));
  co_return jsonrpc::Reply{sampling_answer()};
}

asio::awaitable<jsonrpc::Reply> answer_elicitation(std::shared_ptr<HostSide> host,
                                                   json::value params) {
  host->elicitation_requests.push_back(std::move(params));
  co_return jsonrpc::Reply{elicitation_answer(*host)};
}

// Every handler set: the client offers roots, sampling and elicitation.
mcp::ClientHandlers handlers_for(const std::shared_ptr<HostSide>& host) {
  mcp::ClientHandlers handlers;
  handlers.roots = [host](json::value params) { return answer_roots(host, std::move(params)); };
  handlers.sampling = [host](json::value params) {
    return answer_sampling(host, std::move(params));
  };
  handlers.elicitation = [host](json::value params) {
    return answer_elicitation(host, std::move(params));
  };
  handlers.on_notification = [host](const std::string& method, const json::value& params) {
    host->notifications.emplace_back(method, params);
  };
  handlers.on_list_changed = [host](mcp::ListKind kind, const json::array& items) {
    if (kind == mcp::ListKind::resources) host->resource_listings.push_back(items);
  };
  return handlers;
}

// ---- Commands and the session runner -----------------------------------------------------------

// `node <package file> args...`. Resolved outside coroutines: a missing install throws.
mcp::StdioCommand node_command(const std::string& package_file, std::vector<std::string> args) {
  args.insert(args.begin(), npm_package_file(package_file).string());
  return stdio_command(node_binary().string(), std::move(args));
}

// `stdio` picks the transport; the server ignores further arguments, so the marker rides there.
mcp::StdioCommand everything_command(const std::string& marker) {
  return node_command(kEverything, {"stdio", marker});
}

asio::awaitable<bool> marker_gone(std::string marker) {
  co_return co_await eventually([&] { return processes_matching(marker).empty(); }, kWait);
}

using ClientBody = std::function<asio::awaitable<void>(mcp::Client&, HostSide&)>;

// Connects `command` at `site` with `host`'s handlers, checks it runs under `marker`, runs `body`,
// shuts the session down and checks nothing with `marker` is left running.
asio::awaitable<void> run_session(McpSite& site, mcp::StdioCommand command, std::string marker,
                                  std::shared_ptr<HostSide> host, const ClientBody& body) {
  mcp::ClientOptions options;
  options.handlers = handlers_for(host);
  auto connected = co_await site.connect(std::move(command), std::move(options));
  if (!connected) {
    ADD_FAILURE() << "connecting the server failed: " << connected.error().message;
    co_return;
  }
  auto client = *connected;
  EXPECT_FALSE(processes_matching(marker).empty()) << "no process runs with marker " << marker;
  co_await body(*client, *host);
  co_await client->shutdown();
  EXPECT_TRUE(client->is_closed());
  const bool gone = co_await marker_gone(marker);
  EXPECT_TRUE(gone) << "a process with marker " << marker << " outlived shutdown";
}

// Calls `tool` until `done` holds for its result (the server applies some changes, e.g. new
// roots, after answering the request that caused them); the last result when it never did.
asio::awaitable<std::optional<json::object>> call_until(
    mcp::Client& client, std::string tool, json::object arguments,
    std::function<bool(const json::object&)> done) {
  std::optional<json::object> last;
  for (int attempt = 0; attempt < 300; ++attempt) {
    auto result = co_await client.call_tool(tool, arguments);
    if (!result) {
      ADD_FAILURE() << tool << " failed: " << result.error().message;
      co_return std::nullopt;
    }
    last = std::move(*result);
    if (done(*last)) co_return last;
    co_await sleep_for(50ms);
  }
  ADD_FAILURE() << tool << " never gave the expected result; last: " << json::serialize(*last);
  co_return last;
}

class NpmEverything : public ::testing::TestWithParam<McpPlacement> {
 protected:
  // One server-everything session at this test's placement, offering roots, sampling and
  // elicitation; `body` runs between the handshake and shutdown.
  void run(const ClientBody& body) {
    const auto marker = unique_marker("npm-everything");
    MarkerReaper reaper(marker);
    TempDir root("npm-everything-root");
    auto host = std::make_shared<HostSide>();
    host->root_paths = {root.path().string()};
    auto command = everything_command(marker);
    run_in_site(
        GetParam(), [&](McpSite& site) { return run_session(site, command, marker, host, body); },
        kBodyDeadline);
  }
};

// ---- server-everything -------------------------------------------------------------------------

asio::awaitable<void> everything_listings(mcp::Client& client, HostSide&) {
  // A 2025-11-25 server: the server/discover probe failed (-32601) and initialize followed.
  EXPECT_EQ(client.era(), mcp::ProtocolEra::legacy);
  EXPECT_EQ(client.protocol_version(), mcp::kProtocolVersion);
  EXPECT_EQ(string_at(client.handshake_result(), "/serverInfo/name"), "mcp-servers/everything");
  const json::value capabilities = client.server_capabilities();
  EXPECT_NE(at(capabilities, "/tools"), nullptr);
  EXPECT_NE(at(capabilities, "/prompts"), nullptr);
  EXPECT_NE(at(capabilities, "/logging"), nullptr);
  EXPECT_NE(at(capabilities, "/completions"), nullptr);
  const auto* subscribe = at(capabilities, "/resources/subscribe");
  EXPECT_TRUE(subscribe && subscribe->is_bool() && subscribe->as_bool());

  auto tools = co_await client.list_tools();
  CO_ASSERT_TRUE(tools.has_value());
  const auto tool_names = strings_of(*tools, "name");
  // The last three exist only for a client that offers roots, elicitation and sampling.
  for (const char* name :
       {"echo", "get-sum", "get-tiny-image", "get-structured-content", "get-resource-reference",
        "trigger-long-running-operation", "toggle-simulated-logging", "toggle-subscriber-updates",
        "get-roots-list", "trigger-elicitation-request", "trigger-sampling-request"})
    EXPECT_TRUE(has(tool_names, name)) << "tools/list lacks " << name;
  auto unique = tool_names;
  std::sort(unique.begin(), unique.end());
  EXPECT_TRUE(std::adjacent_find(unique.begin(), unique.end()) == unique.end())
      << "a tool listed twice";

  auto resources = co_await client.list_resources();
  CO_ASSERT_TRUE(resources.has_value());
  EXPECT_TRUE(
      has(strings_of(*resources, "uri"), "demo://resource/static/document/instructions.md"));

  auto templates = co_await client.list_resource_templates();
  CO_ASSERT_TRUE(templates.has_value());
  const auto uri_templates = strings_of(*templates, "uriTemplate");
  EXPECT_TRUE(has(uri_templates, "demo://resource/dynamic/text/{resourceId}"));
  EXPECT_TRUE(has(uri_templates, "demo://resource/dynamic/blob/{resourceId}"));

  auto prompts = co_await client.list_prompts();
  CO_ASSERT_TRUE(prompts.has_value());
  const auto prompt_names = strings_of(*prompts, "name");
  for (const char* name : {"simple-prompt", "args-prompt", "completable-prompt", "resource-prompt"})
    EXPECT_TRUE(has(prompt_names, name)) << "prompts/list lacks " << name;

  auto pong = co_await client.ping();
  EXPECT_TRUE(pong.has_value());
}

TEST_P(NpmEverything, HandshakeAndListings) {
  run(everything_listings);
}

asio::awaitable<void> everything_tools(mcp::Client& client, HostSide&) {
  json::object echo_args{{"message", "hello from tether"}};
  auto echo = co_await client.call_tool("echo", std::move(echo_args));
  CO_ASSERT_TRUE(echo.has_value());
  EXPECT_FALSE(is_error(*echo));
  EXPECT_EQ(first_text(*echo), "Echo: hello from tether");

  json::object sum_args{{"a", 2}, {"b", 40}};
  auto sum = co_await client.call_tool("get-sum", std::move(sum_args));
  CO_ASSERT_TRUE(sum.has_value());
  EXPECT_EQ(first_text(*sum), "The sum of 2 and 40 is 42.");

  auto image = co_await client.call_tool("get-tiny-image", json::object{});
  CO_ASSERT_TRUE(image.has_value());
  const json::value image_result = *image;
  EXPECT_EQ(string_at(image_result, "/content/1/type"), "image");
  EXPECT_EQ(string_at(image_result, "/content/1/mimeType"), "image/png");
  EXPECT_EQ(
      jsonrpc::base64_decode(string_at(image_result, "/content/1/data")).value_or("").substr(0, 8),
      std::string("\x89PNG\r\n\x1a\n", 8));

  json::object weather_args{{"location", "Chicago"}};
  auto weather = co_await client.call_tool("get-structured-content", std::move(weather_args));
  CO_ASSERT_TRUE(weather.has_value());
  const json::value weather_result = *weather;
  const auto* temperature = at(weather_result, "/structuredContent/temperature");
  CO_ASSERT_TRUE(temperature != nullptr);
  EXPECT_EQ(temperature->to_number<int>(), 36);

  json::object reference_args{{"resourceType", "Text"}, {"resourceId", 5}};
  auto reference = co_await client.call_tool("get-resource-reference", std::move(reference_args));
  CO_ASSERT_TRUE(reference.has_value());
  const json::value reference_result = *reference;
  EXPECT_EQ(string_at(reference_result, "/content/1/type"), "resource");
  EXPECT_EQ(string_at(reference_result, "/content/1/resource/uri"),
            "demo://resource/dynamic/text/5");

  // Arguments the tool's schema refuses: a result with isError, not a failed call.
  json::object bad_args{{"a", "two"}, {"b", 40}};
  auto bad = co_await client.call_tool("get-sum", std::move(bad_args));
  CO_ASSERT_TRUE(bad.has_value());
  EXPECT_TRUE(is_error(*bad)) << json::serialize(*bad);
}

TEST_P(NpmEverything, ToolsWithTextImageStructuredAndResourceContent) {
  run(everything_tools);
}

json::object completion_params(std::string ref_type, std::string ref_key, std::string ref_value,
                               std::string argument, std::string value,
                               std::optional<json::object> context_arguments = std::nullopt) {
  json::object params{
      {"ref",
       json::object{{"type", std::move(ref_type)}, {std::move(ref_key), std::move(ref_value)}}},
      {"argument", json::object{{"name", std::move(argument)}, {"value", std::move(value)}}}};
  if (context_arguments)
    params["context"] = json::object{{"arguments", std::move(*context_arguments)}};
  return params;
}

std::vector<std::string> completion_values(const json::object& result) {
  std::vector<std::string> values;
  const json::value whole = result;
  if (const auto* list = at(whole, "/completion/values"); list && list->is_array())
    for (const auto& value : list->as_array())
      if (value.is_string()) values.emplace_back(value.as_string());
  return values;
}

asio::awaitable<void> everything_prompts_and_completion(mcp::Client& client, HostSide&) {
  auto simple = co_await client.get_prompt("simple-prompt", json::object{});
  CO_ASSERT_TRUE(simple.has_value());
  EXPECT_EQ(string_at(*simple, "/messages/0/content/text"),
            "This is a simple prompt without arguments.");

  json::object city{{"city", "Paris"}, {"state", "Texas"}};
  auto weather = co_await client.get_prompt("args-prompt", std::move(city));
  CO_ASSERT_TRUE(weather.has_value());
  EXPECT_EQ(string_at(*weather, "/messages/0/content/text"), "What's weather in Paris, Texas?");

  json::object embedded{{"resourceType", "Text"}, {"resourceId", "2"}};
  auto resource = co_await client.get_prompt("resource-prompt", std::move(embedded));
  CO_ASSERT_TRUE(resource.has_value());
  EXPECT_EQ(string_at(*resource, "/messages/1/content/type"), "resource");
  EXPECT_EQ(string_at(*resource, "/messages/1/content/resource/uri"),
            "demo://resource/dynamic/text/2");

  auto department_params =
      completion_params("ref/prompt", "name", "completable-prompt", "department", "Sa");
  auto department = co_await client.complete(std::move(department_params));
  CO_ASSERT_TRUE(department.has_value());
  EXPECT_EQ(completion_values(*department), std::vector<std::string>{"Sales"});

  // The second argument's values depend on the first one, passed as context.
  json::object chosen{{"department", "Engineering"}};
  auto name_params =
      completion_params("ref/prompt", "name", "completable-prompt", "name", "", std::move(chosen));
  auto name = co_await client.complete(std::move(name_params));
  CO_ASSERT_TRUE(name.has_value());
  EXPECT_EQ(completion_values(*name), (std::vector<std::string>{"Alice", "Bob", "Charlie"}));

  auto template_params = completion_params(
      "ref/resource", "uri", "demo://resource/dynamic/text/{resourceId}", "resourceId", "7");
  auto resource_id = co_await client.complete(std::move(template_params));
  CO_ASSERT_TRUE(resource_id.has_value());
  EXPECT_EQ(completion_values(*resource_id), std::vector<std::string>{"7"});
}

TEST_P(NpmEverything, PromptsWithArgumentsAndCompletion) {
  run(everything_prompts_and_completion);
}

asio::awaitable<void> everything_resources(mcp::Client& client, HostSide&) {
  auto document = co_await client.read_resource("demo://resource/static/document/instructions.md");
  CO_ASSERT_TRUE(document.has_value());
  EXPECT_EQ(string_at(*document, "/contents/0/mimeType"), "text/markdown");
  EXPECT_FALSE(string_at(*document, "/contents/0/text").empty());

  auto text = co_await client.read_resource("demo://resource/dynamic/text/3");
  CO_ASSERT_TRUE(text.has_value());
  EXPECT_EQ(string_at(*text, "/contents/0/text").rfind("Resource 3: This is a plaintext", 0), 0u)
      << json::serialize(*text);

  auto blob = co_await client.read_resource("demo://resource/dynamic/blob/4");
  CO_ASSERT_TRUE(blob.has_value());
  EXPECT_EQ(jsonrpc::base64_decode(string_at(*blob, "/contents/0/blob"))
                .value_or("")
                .rfind("Resource 4: This is a "
                       "base64 blob",
                       0),
            0u)
      << json::serialize(*blob);

  // A template variable the server refuses: a JSON-RPC error.
  auto refused = co_await client.read_resource("demo://resource/dynamic/text/0");
  EXPECT_FALSE(refused.has_value());
}

TEST_P(NpmEverything, StaticAndTemplateResources) {
  run(everything_resources);
}

asio::awaitable<void> everything_subscriptions(mcp::Client& client, HostSide& host) {
  const std::string uri = "demo://resource/dynamic/text/1";
  auto subscribed = co_await client.subscribe(uri);
  CO_ASSERT_TRUE(subscribed.has_value());
  // The server sends updates for subscribed resources once this is toggled on (one at once).
  auto started = co_await client.call_tool("toggle-subscriber-updates", json::object{});
  CO_ASSERT_TRUE(started.has_value());
  const bool updated = co_await eventually(
      [&] { return host.saw("notifications/resources/updated", "/uri", uri); }, kWait);
  EXPECT_TRUE(updated) << "no notifications/resources/updated for " << uri;
  auto stopped = co_await client.call_tool("toggle-subscriber-updates", json::object{});
  EXPECT_TRUE(stopped.has_value());
  auto unsubscribed = co_await client.unsubscribe(uri);
  EXPECT_TRUE(unsubscribed.has_value());
}

TEST_P(NpmEverything, ResourceSubscriptionDeliversUpdates) {
  run(everything_subscriptions);
}

json::object gzip_arguments(const std::string& name, const std::string& payload) {
  return json::object{{"name", name},
                      {"data", "data:text/plain;base64," + jsonrpc::base64_encode(payload)},
                      {"outputType", "resourceLink"}};
}

asio::awaitable<void> everything_resource_list_changed(mcp::Client& client, HostSide& host) {
  // The tool registers a new session resource (from a data: URL, no network), which makes the
  // server send resources/list_changed; the client lists again and hands over the new listing.
  const std::string uri = "demo://resource/session/tether.txt.gz";
  auto arguments = gzip_arguments("tether.txt.gz", "tether gzip payload\n");
  auto link = co_await client.call_tool("gzip-file-as-resource", std::move(arguments));
  CO_ASSERT_TRUE(link.has_value());
  CO_ASSERT_TRUE(!is_error(*link));
  EXPECT_EQ(string_at(*link, "/content/0/type"), "resource_link");
  EXPECT_EQ(string_at(*link, "/content/0/uri"), uri);
  const bool listed = co_await eventually(
      [&] {
        return std::any_of(
            host.resource_listings.begin(), host.resource_listings.end(),
            [&](const json::array& listing) { return has(strings_of(listing, "uri"), uri); });
      },
      kWait);
  EXPECT_TRUE(listed) << "no fresh resource listing with " << uri;

  auto gzipped = co_await client.read_resource(uri);
  CO_ASSERT_TRUE(gzipped.has_value());
  EXPECT_EQ(string_at(*gzipped, "/contents/0/mimeType"), "application/gzip");
  EXPECT_EQ(
      jsonrpc::base64_decode(string_at(*gzipped, "/contents/0/blob")).value_or("").substr(0, 2),
      "\x1f\x8b");
}

TEST_P(NpmEverything, ResourceListChangedBringsAFreshListing) {
  run(everything_resource_list_changed);
}

asio::awaitable<void> everything_logging(mcp::Client& client, HostSide& host) {
  // The server logs each subscribe request at level info before answering it, so whether that
  // message arrived is known once the answer is in.
  auto info = co_await client.set_logging_level("info");
  CO_ASSERT_TRUE(info.has_value());
  auto first = co_await client.subscribe("demo://resource/dynamic/text/11");
  CO_ASSERT_TRUE(first.has_value());
  const bool logged = co_await eventually(
      [&] { return host.log_messages_containing("demo://resource/dynamic/text/11") == 1; }, kWait);
  EXPECT_TRUE(logged) << "no info log for the first subscription";

  auto error = co_await client.set_logging_level("error");
  CO_ASSERT_TRUE(error.has_value());
  auto second = co_await client.subscribe("demo://resource/dynamic/text/12");
  CO_ASSERT_TRUE(second.has_value());
  EXPECT_EQ(host.log_messages_containing("demo://resource/dynamic/text/12"), 0u)
      << "an info message passed the level 'error'";

  // Simulated logging sends one random-level message at once; at level debug any passes.
  auto debug = co_await client.set_logging_level("debug");
  CO_ASSERT_TRUE(debug.has_value());
  const auto before = host.log_messages_containing("-level message") +
                      host.log_messages_containing("level-message");
  auto started = co_await client.call_tool("toggle-simulated-logging", json::object{});
  CO_ASSERT_TRUE(started.has_value());
  const bool simulated = co_await eventually(
      [&] {
        return host.log_messages_containing("-level message") +
                   host.log_messages_containing("level-message") >
               before;
      },
      kWait);
  EXPECT_TRUE(simulated) << "no simulated log message arrived";
  auto stopped = co_await client.call_tool("toggle-simulated-logging", json::object{});
  EXPECT_TRUE(stopped.has_value());
}

TEST_P(NpmEverything, LoggingLevelIsRespected) {
  run(everything_logging);
}

asio::awaitable<void> everything_progress(mcp::Client& client, HostSide&) {
  std::vector<json::object> progress;
  mcp::CallOptions options;
  options.on_progress = [&](const json::object& event) { progress.push_back(event); };
  json::object arguments{{"duration", 1}, {"steps", 4}};
  auto done = co_await client.call_tool("trigger-long-running-operation", std::move(arguments),
                                        std::move(options));
  CO_ASSERT_TRUE(done.has_value());
  EXPECT_EQ(first_text(*done), "Long running operation completed. Duration: 1 seconds, Steps: 4.");
  CO_ASSERT_EQ(progress.size(), 4u);
  for (std::size_t i = 0; i < progress.size(); ++i) {
    const json::value event = progress[i];
    EXPECT_EQ(at(event, "/progress")->to_number<int>(), static_cast<int>(i + 1));
    EXPECT_EQ(at(event, "/total")->to_number<int>(), 4);
  }
}

TEST_P(NpmEverything, ProgressNotificationsReachTheCaller) {
  run(everything_progress);
}

asio::awaitable<void> everything_sampling(mcp::Client& client, HostSide& host) {
  json::object arguments{{"prompt", "What is 6 x 7?"}, {"maxTokens", 64}};
  auto result = co_await client.call_tool("trigger-sampling-request", std::move(arguments));
  CO_ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(is_error(*result)) << json::serialize(*result);
  CO_ASSERT_EQ(host.sampling_requests.size(), 1u);
  const auto& request = host.sampling_requests.front();
  EXPECT_EQ(string_at(request, "/messages/0/content/text"),
            "Resource trigger-sampling-request context: What is 6 x 7?");
  EXPECT_EQ(string_at(request, "/systemPrompt"), "You are a helpful test server.");
  const auto* max_tokens = at(request, "/maxTokens");
  CO_ASSERT_TRUE(max_tokens != nullptr);
  EXPECT_EQ(max_tokens->to_number<int>(), 64);
  // The tool's result carries our answer back.
  const auto text = first_text(*result);
  EXPECT_NE(text.find(kSampledText), std::string::npos) << text;
  EXPECT_NE(text.find(kSampledModel), std::string::npos) << text;
}

TEST_P(NpmEverything, SamplingRequestIsAnsweredByTheHost) {
  run(everything_sampling);
}

asio::awaitable<void> everything_elicitation(mcp::Client& client, HostSide& host) {
  auto accepted = co_await client.call_tool("trigger-elicitation-request", json::object{});
  CO_ASSERT_TRUE(accepted.has_value());
  CO_ASSERT_EQ(host.elicitation_requests.size(), 1u);
  const auto& request = host.elicitation_requests.front();
  EXPECT_EQ(string_at(request, "/message"), "Please provide inputs for the following fields:");
  EXPECT_NE(at(request, "/requestedSchema/properties/name"), nullptr);
  const auto text = all_text(*accepted);
  EXPECT_NE(text.find("User provided the requested information!"), std::string::npos) << text;
  EXPECT_NE(text.find("- Name: Ada Lovelace"), std::string::npos) << text;
  EXPECT_NE(text.find("- Agreed to terms: true"), std::string::npos) << text;
  // Not in our answer: the schema's defaults, added by the client (form.applyDefaults).
  EXPECT_NE(text.find("- Favorite Integer: 42"), std::string::npos) << text;
  EXPECT_NE(text.find("- Favorite Number: 3.14"), std::string::npos) << text;

  host.elicitation_action = "decline";
  auto declined = co_await client.call_tool("trigger-elicitation-request", json::object{});
  CO_ASSERT_TRUE(declined.has_value());
  EXPECT_NE(all_text(*declined).find("User declined"), std::string::npos) << all_text(*declined);
}

TEST_P(NpmEverything, ElicitationIsAnsweredByTheHost) {
  run(everything_elicitation);
}

bool lists_roots(const json::object& result, std::size_t count) {
  return first_text(result).find("Current MCP Roots (" + std::to_string(count) + " total)") !=
         std::string::npos;
}

asio::awaitable<void> everything_roots(mcp::Client& client, HostSide& host) {
  const auto first_root = host.root_paths.front();
  auto one = co_await call_until(client, "get-roots-list", json::object{},
                                 [](const json::object& result) { return lists_roots(result, 1); });
  CO_ASSERT_TRUE(one.has_value());
  EXPECT_NE(first_text(*one).find("file://" + first_root), std::string::npos) << first_text(*one);
  EXPECT_GE(host.roots_requests, 1);

  // A second root: the server asks again after roots/list_changed.
  const auto second_root = first_root + "/second";
  host.root_paths.push_back(second_root);
  client.notify_roots_changed();
  auto two = co_await call_until(client, "get-roots-list", json::object{},
                                 [](const json::object& result) { return lists_roots(result, 2); });
  CO_ASSERT_TRUE(two.has_value());
  EXPECT_NE(first_text(*two).find("file://" + second_root), std::string::npos) << first_text(*two);
  EXPECT_GE(host.roots_requests, 2);
}

TEST_P(NpmEverything, RootsAndRootsListChanged) {
  run(everything_roots);
}

INSTANTIATE_TEST_SUITE_P(Placements, NpmEverything,
                         ::testing::Values(McpPlacement::local, McpPlacement::executor),
                         placement_name);

// ---- server-filesystem -------------------------------------------------------------------------

class NpmFilesystem : public ::testing::TestWithParam<McpPlacement> {};

json::object path_argument(const std::filesystem::path& path) {
  return json::object{{"path", path.string()}};
}

json::object write_arguments(const std::filesystem::path& path, const std::string& content) {
  return json::object{{"path", path.string()}, {"content", content}};
}

// The allowed directories as list_allowed_directories reports them, one per line.
bool allows_exactly(const json::object& result, const std::vector<std::string>& directories) {
  std::istringstream lines(first_text(result));
  std::string line;
  std::getline(lines, line);  // "Allowed directories:"
  std::vector<std::string> listed;
  while (std::getline(lines, line))
    if (!line.empty()) listed.push_back(line);
  return listed == directories;
}

struct FilesystemDirs {
  std::string root;
  std::string second;
  std::string decoy;  // on the command line; the roots replace it
};

asio::awaitable<void> filesystem_roots(mcp::Client& client, HostSide& host,
                                       const FilesystemDirs& dirs) {
  const std::vector<std::string> only_root{dirs.root};
  auto allowed = co_await call_until(
      client, "list_allowed_directories", json::object{},
      [&](const json::object& result) { return allows_exactly(result, only_root); });
  CO_ASSERT_TRUE(allowed.has_value());
  EXPECT_GE(host.roots_requests, 1);

  const std::filesystem::path note = std::filesystem::path(dirs.root) / "note.txt";
  auto write_args = write_arguments(note, "written through tether\n");
  auto written = co_await client.call_tool("write_file", std::move(write_args));
  CO_ASSERT_TRUE(written.has_value());
  EXPECT_FALSE(is_error(*written)) << json::serialize(*written);
  EXPECT_EQ(file_contents(note), "written through tether\n");
  auto read = co_await client.call_tool("read_text_file", path_argument(note));
  CO_ASSERT_TRUE(read.has_value());
  EXPECT_FALSE(is_error(*read));
  EXPECT_EQ(first_text(*read), "written through tether\n");

  // Outside the root, including the directory the command line gave: refused as results.
  const std::filesystem::path in_decoy = std::filesystem::path(dirs.decoy) / "escape.txt";
  auto escape_args = write_arguments(in_decoy, "must not be written");
  auto escaped = co_await client.call_tool("write_file", std::move(escape_args));
  CO_ASSERT_TRUE(escaped.has_value());
  EXPECT_TRUE(is_error(*escaped));
  EXPECT_NE(first_text(*escaped).find("Access denied"), std::string::npos) << first_text(*escaped);
  EXPECT_FALSE(std::filesystem::exists(in_decoy));
  const auto traversal = std::filesystem::path(dirs.root) / ".." / "tether-npm-traversal.txt";
  auto traversal_args = write_arguments(traversal, "must not be written");
  auto traversed = co_await client.call_tool("write_file", std::move(traversal_args));
  CO_ASSERT_TRUE(traversed.has_value());
  EXPECT_TRUE(is_error(*traversed));
  EXPECT_FALSE(std::filesystem::exists(traversal));
  auto secret = co_await client.call_tool("read_text_file", path_argument("/etc/passwd"));
  CO_ASSERT_TRUE(secret.has_value());
  EXPECT_TRUE(is_error(*secret));

  // New roots replace the old ones once the server hears roots/list_changed.
  host.root_paths = {dirs.second};
  client.notify_roots_changed();
  const std::vector<std::string> only_second{dirs.second};
  auto moved = co_await call_until(
      client, "list_allowed_directories", json::object{},
      [&](const json::object& result) { return allows_exactly(result, only_second); });
  CO_ASSERT_TRUE(moved.has_value());
  auto old_root = co_await client.call_tool("read_text_file", path_argument(note));
  CO_ASSERT_TRUE(old_root.has_value());
  EXPECT_TRUE(is_error(*old_root)) << "the replaced root is still readable";
}

TEST_P(NpmFilesystem, ClientRootsReplaceTheAllowedDirectories) {
  const auto marker = unique_marker("npm-filesystem");
  MarkerReaper reaper(marker);
  TempDir root("npm-fs-root");
  TempDir second("npm-fs-second");
  TempDir decoy(marker);  // its path carries the marker onto the command line
  // The server reports directories by their real path.
  const FilesystemDirs dirs{std::filesystem::canonical(root.path()).string(),
                            std::filesystem::canonical(second.path()).string(),
                            std::filesystem::canonical(decoy.path()).string()};
  auto host = std::make_shared<HostSide>();
  host->root_paths = {dirs.root};
  auto command = node_command(kFilesystem, {dirs.decoy});
  const ClientBody body = [&dirs](mcp::Client& client, HostSide& side) {
    return filesystem_roots(client, side, dirs);
  };
  run_in_site(
      GetParam(), [&](McpSite& site) { return run_session(site, command, marker, host, body); },
      kBodyDeadline);
}

INSTANTIATE_TEST_SUITE_P(Placements, NpmFilesystem,
                         ::testing::Values(McpPlacement::local, McpPlacement::executor),
                         placement_name);

// ---- server-memory -----------------------------------------------------------------------------

class NpmMemory : public ::testing::TestWithParam<McpPlacement> {};

json::object entities_arguments() {
  return json::object{
      {"entities", json::array{json::object{{"name", "tether"},
                                            {"entityType", "project"},
                                            {"observations", json::array{"speaks MCP"}}},
                               json::object{{"name", "node"},
                                            {"entityType", "runtime"},
                                            {"observations", json::array{"runs the server"}}}}}};
}

json::object relations_arguments() {
  return json::object{
      {"relations", json::array{json::object{
                        {"from", "tether"}, {"to", "node"}, {"relationType", "launches"}}}}};
}

// The graph read back: entity names (sorted) and relation count.
asio::awaitable<void> expect_graph(mcp::Client& client) {
  auto graph = co_await client.call_tool("read_graph", json::object{});
  CO_ASSERT_TRUE(graph.has_value());
  CO_ASSERT_TRUE(!is_error(*graph));
  const json::value whole = *graph;
  const auto* entities = at(whole, "/structuredContent/entities");
  const auto* relations = at(whole, "/structuredContent/relations");
  CO_ASSERT_TRUE(entities && entities->is_array() && relations && relations->is_array());
  auto names = strings_of(entities->as_array(), "name");
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"node", "tether"})) << json::serialize(whole);
  CO_ASSERT_EQ(relations->as_array().size(), 1u);
  EXPECT_EQ(string_at(relations->as_array().front(), "/relationType"), "launches");
}

asio::awaitable<void> memory_write(mcp::Client& client, HostSide&) {
  auto created = co_await client.call_tool("create_entities", entities_arguments());
  CO_ASSERT_TRUE(created.has_value());
  CO_ASSERT_TRUE(!is_error(*created));
  const json::value whole = *created;
  const auto* entities = at(whole, "/structuredContent/entities");
  CO_ASSERT_TRUE(entities && entities->is_array());
  EXPECT_EQ(entities->as_array().size(), 2u);
  auto related = co_await client.call_tool("create_relations", relations_arguments());
  CO_ASSERT_TRUE(related.has_value());
  EXPECT_FALSE(is_error(*related));
  co_await expect_graph(client);
}

asio::awaitable<void> memory_read_back(mcp::Client& client, HostSide&) {
  co_await expect_graph(client);
  json::object query{{"query", "MCP"}};
  auto found = co_await client.call_tool("search_nodes", std::move(query));
  CO_ASSERT_TRUE(found.has_value());
  const json::value whole = *found;
  const auto* entities = at(whole, "/structuredContent/entities");
  CO_ASSERT_TRUE(entities && entities->is_array());
  EXPECT_EQ(strings_of(entities->as_array(), "name"), std::vector<std::string>{"tether"});
}

// Two sessions in a row on the same memory file: the second one sees what the first wrote.
asio::awaitable<void> memory_sessions(McpSite& site, mcp::StdioCommand command, std::string marker,
                                      std::filesystem::path memory_file) {
  const ClientBody write = memory_write;
  const ClientBody read_back = memory_read_back;
  co_await run_session(site, command, marker, std::make_shared<HostSide>(), write);
  const auto stored = file_contents(memory_file);
  EXPECT_NE(stored.find("\"tether\""), std::string::npos) << "memory file: " << stored;
  EXPECT_NE(stored.find("launches"), std::string::npos) << "memory file: " << stored;
  co_await run_session(site, command, marker, std::make_shared<HostSide>(), read_back);
}

TEST_P(NpmMemory, GraphRoundTripsThroughItsFileAndSurvivesARestart) {
  const auto marker = unique_marker("npm-memory");
  MarkerReaper reaper(marker);
  TempDir dir("npm-memory");
  const auto memory_file = dir.path() / "memory.jsonl";
  // The server ignores arguments: the marker rides there. The file comes through `env`.
  auto command = node_command(kMemory, {marker});
  command.env["MEMORY_FILE_PATH"] = memory_file.string();
  run_in_site(
      GetParam(),
      [&](McpSite& site) { return memory_sessions(site, command, marker, memory_file); },
      kBodyDeadline);
}

INSTANTIATE_TEST_SUITE_P(Placements, NpmMemory,
                         ::testing::Values(McpPlacement::local, McpPlacement::executor),
                         placement_name);

// ---- Other executors: a `command` executor (scenario 40), stock codex (scenario 41) ------------

// What one echo-and-list session saw; nullopt when it failed (reported already).
struct EchoAndList {
  std::vector<std::string> tools;
  json::object environment;  // the server's process.env, from get-env
};

// Launches server-everything at `environment` through host::launch_server (with `env` carrying
// a probe variable), echoes, lists tools, reads its environment, shuts down, and checks nothing
// with `marker` is left.
asio::awaitable<std::optional<EchoAndList>> echo_and_list(const host::Environments& environments,
                                                          std::string environment,
                                                          mcp::StdioCommand command,
                                                          std::string marker) {
  auto executor = co_await asio::this_coro::executor;
  host::ServerLaunch launch;
  launch.name = "everything";
  launch.environment = environment;
  launch.transport = std::move(command);
  auto connection = co_await host::launch_server(executor, launch, environments);
  if (!connection) {
    ADD_FAILURE() << "launch at '" << environment << "' failed: " << connection.error().message;
    co_return std::nullopt;
  }
  mcp::ClientOptions options;
  auto connected = co_await mcp::Client::connect(executor, std::move(*connection), options);
  if (!connected) {
    ADD_FAILURE() << "handshake at '" << environment << "' failed: " << connected.error().message;
    co_return std::nullopt;
  }
  auto client = *connected;
  EXPECT_FALSE(processes_matching(marker).empty()) << "no process runs with marker " << marker;

  EchoAndList seen;
  json::object echo_args{{"message", environment}};
  auto echo = co_await client->call_tool("echo", std::move(echo_args));
  EXPECT_TRUE(echo.has_value());
  if (echo) {
    EXPECT_EQ(first_text(*echo), "Echo: " + environment);
  }
  auto tools = co_await client->list_tools();
  EXPECT_TRUE(tools.has_value());
  if (tools) seen.tools = strings_of(*tools, "name");
  auto env = co_await client->call_tool("get-env", json::object{});
  EXPECT_TRUE(env.has_value());
  if (env) {
    boost::system::error_code ec;
    auto parsed = json::parse(first_text(*env), ec);
    EXPECT_FALSE(ec) << "get-env gave no JSON: " << first_text(*env);
    if (!ec && parsed.is_object()) seen.environment = parsed.as_object();
  }

  co_await client->shutdown();
  const bool gone = co_await marker_gone(marker);
  EXPECT_TRUE(gone) << "a process with marker " << marker << " outlived shutdown";
  std::sort(seen.tools.begin(), seen.tools.end());
  co_return seen;
}

mcp::StdioCommand probed_everything(const std::string& marker) {
  auto command = everything_command(marker);
  command.env["TETHER_NPM_PROBE"] = marker;
  return command;
}

TEST(NpmEverythingPlacement, CommandExecutorServesLikeAWebSocketExecutor) {
  const auto ws_marker = unique_marker("npm-everything-ws");
  const auto pipe_marker = unique_marker("npm-everything-pipe");
  MarkerReaper reaper;
  reaper.add(ws_marker);
  reaper.add(pipe_marker);
  auto ws_command = probed_everything(ws_marker);
  auto pipe_command = probed_everything(pipe_marker);
  run_async(
      [&]() -> asio::awaitable<void> {
        auto executor = co_await asio::this_coro::executor;
        host::Environments environments;
        environments.add(
            host::Environment::create(executor, "ws", host::SpawnedExecutor{tether_binary(), {}}));
        environments.add(host::Environment::create(
            executor, "pipe",
            host::CommandExecutor{{tether_binary(), "exec-server", "--listen", "stdio"},
                                  std::nullopt,
                                  std::nullopt}));
        auto over_ws = co_await echo_and_list(environments, "ws", ws_command, ws_marker);
        auto over_pipe = co_await echo_and_list(environments, "pipe", pipe_command, pipe_marker);
        co_await environments.close();
        CO_ASSERT_TRUE(over_ws.has_value());
        CO_ASSERT_TRUE(over_pipe.has_value());
        EXPECT_FALSE(over_ws->tools.empty());
        EXPECT_EQ(over_pipe->tools, over_ws->tools);
        EXPECT_EQ(string_at(over_pipe->environment, "/TETHER_NPM_PROBE"), pipe_marker);
        EXPECT_FALSE(string_at(over_pipe->environment, "/PATH").empty());
      },
      kBodyDeadline);
}

TEST(NpmEverythingPlacement, StockCodexExecutorServesAsTheRemoteEnvironment) {
  CodexExecServer codex;
  const auto marker = unique_marker("npm-everything-codex");
  MarkerReaper reaper(marker);
  auto command = probed_everything(marker);
  run_async(
      [&]() -> asio::awaitable<void> {
        auto executor = co_await asio::this_coro::executor;
        host::Environments environments;
        environments.add(host::Environment::create(executor, "codex",
                                                   host::ExecutorUrl{codex.url(), std::nullopt}));
        environments.set_remote("codex");
        auto seen = co_await echo_and_list(environments, std::string(host::kRemoteEnvironment),
                                           command, marker);
        co_await environments.close();
        CO_ASSERT_TRUE(seen.has_value());
        EXPECT_TRUE(has(seen->tools, "echo"));
        // envPolicy inherit core: the executor's own PATH and HOME, plus the `env` we sent.
        EXPECT_EQ(string_at(seen->environment, "/TETHER_NPM_PROBE"), marker);
        EXPECT_FALSE(string_at(seen->environment, "/PATH").empty());
        EXPECT_FALSE(string_at(seen->environment, "/HOME").empty());
      },
      kBodyDeadline);
  EXPECT_TRUE(processes_matching(marker).empty()) << "codex log:\n" << codex.log();
}

}  // namespace
}  // namespace tether::testing
