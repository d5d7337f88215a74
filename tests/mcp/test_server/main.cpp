// tether-test-mcp-server: the tiny MCP stdio server the MCP client and launcher tests run (spec:
// the test-server brief). It owns the whole server: command-line flags, the
// newline-delimited JSON-RPC framing on stdin/stdout, the MCP methods and the test tools. It does
// not use any tether library on purpose: it is an independent peer for tether's client.
//
// Data flow: one io_context, one thread. A reader coroutine splits stdin into lines; each request
// runs in its own coroutine (so `sleep` never blocks `ping` or a cancellation); every outgoing
// message goes through one write queue drained by one writer coroutine, so lines never interleave.
// Requests this server sends to the client (ask_* tools) are tracked by id until the client
// answers. Logs go to stderr, prefixed `test server: `. Stdin EOF ends the process with code 0.
//
// `--conformance-fixtures` swaps the test tools, resources, templates, prompts and completions
// for the fixtures the server scenarios of @modelcontextprotocol/conformance 0.1.16 expect
// (test_simple_text, test://static-text, test_simple_prompt, ...; tests/gateway/conformance runs
// them through `tether mcp serve`); without it nothing changes.
#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <exception>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <poll.h>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

#include <boost/asio.hpp>
#include <boost/json.hpp>

extern char** environ;

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using asio::awaitable;
using asio::use_awaitable;

// --- stderr and exit --------------------------------------------------------------------------

// Writes all of `text` to fd 2 even when it shares a (non-blocking) file description with stdout.
void write_stderr(std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(STDERR_FILENO, text.data(), text.size());
    if (n > 0) {
      text.remove_prefix(static_cast<std::size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd pfd{STDERR_FILENO, POLLOUT, 0};
      ::poll(&pfd, 1, 1000);
    } else if (!(n < 0 && errno == EINTR)) {
      return;
    }
  }
}

void note(std::string_view text) {
  std::string line = "test server: ";
  line.append(text);
  line.push_back('\n');
  write_stderr(line);
}

// Exits at once: the crash tools must not answer, and pending coroutines need no cleanup.
[[noreturn]] void exit_now(int code) {
  std::_Exit(code);
}

// --- options ----------------------------------------------------------------------------------

struct Options {
  bool never_initialize = false;
  // Requests before initialize get no answer at all (some servers of the session revisions do
  // this), which a client probing for 2026-07-28 must outwait.
  bool silent_before_initialize = false;
  bool exit_during_initialize = false;
  int initialize_delay_ms = 0;
  std::optional<std::string> protocol_version;
  std::size_t page_size = 0;  // 0: everything on one page
  bool duplicate_cursor = false;
  int extra_tools = 0;
  int resources = 3;
  std::vector<std::string> stderr_lines;
  bool crash_on_start = false;
  bool conformance_fixtures = false;
};

[[noreturn]] void usage_error(const std::string& message) {
  note("usage error: " + message);
  exit_now(2);
}

int parse_count(const std::string& flag, const std::string& value) {
  try {
    std::size_t used = 0;
    int n = std::stoi(value, &used);
    if (used == value.size() && n >= 0) return n;
  } catch (const std::exception&) {
  }
  usage_error(flag + " needs a non-negative integer, got '" + value + "'");
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--never-initialize") {
      o.never_initialize = true;
    } else if (flag == "--silent-before-initialize") {
      o.silent_before_initialize = true;
    } else if (flag == "--exit-during-initialize") {
      o.exit_during_initialize = true;
    } else if (flag == "--initialize-delay-ms") {
      o.initialize_delay_ms = parse_count(flag, value());
    } else if (flag == "--protocol-version") {
      o.protocol_version = value();
    } else if (flag == "--page-size") {
      o.page_size = static_cast<std::size_t>(parse_count(flag, value()));
    } else if (flag == "--duplicate-cursor") {
      o.duplicate_cursor = true;
    } else if (flag == "--extra-tools") {
      o.extra_tools = parse_count(flag, value());
    } else if (flag == "--resources") {
      o.resources = parse_count(flag, value());
    } else if (flag == "--stderr-line") {
      o.stderr_lines.push_back(value());
    } else if (flag == "--crash-on-start") {
      o.crash_on_start = true;
    } else if (flag == "--conformance-fixtures") {
      o.conformance_fixtures = true;
    } else {
      usage_error("unknown flag " + flag);
    }
  }
  return o;
}

// --- JSON helpers (plain functions: GCC 12 mishandles braced JSON inside co_await) -------------

std::optional<std::string> get_string(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return std::string(v->get_string());
}

std::optional<std::int64_t> get_int(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v->get_uint64());
  }
  if (v->is_double() &&
      v->get_double() == static_cast<double>(static_cast<std::int64_t>(v->get_double()))) {
    return static_cast<std::int64_t>(v->get_double());
  }
  return std::nullopt;
}

json::object get_object(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_object()) return {};
  return v->get_object();
}

// An id as the stderr lines show it: strings raw, numbers as written.
std::string id_text(const json::value& id) {
  if (id.is_string()) return std::string(id.get_string());
  return json::serialize(id);
}

json::object text_result(std::string text, bool is_error = false) {
  json::object item{{"type", "text"}, {"text", std::move(text)}};
  json::object result{{"content", json::array{std::move(item)}}};
  if (is_error) result["isError"] = true;
  return result;
}

json::object notification(std::string_view method, json::object params) {
  json::object msg{{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.empty()) msg["params"] = std::move(params);
  return msg;
}

json::object schema(json::object properties, json::array required = {}) {
  json::object s{{"type", "object"}, {"properties", std::move(properties)}};
  if (!required.empty()) s["required"] = std::move(required);
  return s;
}

json::object tool(std::string_view name, std::string_view description, json::object input_schema) {
  return {{"name", name}, {"description", description}, {"inputSchema", std::move(input_schema)}};
}

json::object type_of(std::string_view type) {
  return {{"type", type}};
}

json::array builtin_tools() {
  json::array t;
  t.push_back(tool("echo", "echoes message, TETHER_TEST_* env vars and cwd",
                   schema({{"message", type_of("string")}}, {"message"})));
  t.push_back(tool("env", "value of an environment variable or <unset>",
                   schema({{"name", type_of("string")}}, {"name"})));
  t.push_back(tool("cwd", "the working directory", schema({})));
  t.push_back(
      tool("sleep", "waits ms, reporting progress every progress_ms",
           schema({{"ms", type_of("integer")}, {"progress_ms", type_of("integer")}}, {"ms"})));
  t.push_back(tool("crash", "exits with code (default 7) without answering",
                   schema({{"code", type_of("integer")}})));
  t.push_back(tool("large", "a text of exactly bytes bytes",
                   schema({{"bytes", type_of("integer")}}, {"bytes"})));
  t.push_back(tool("image", "a 1x1 PNG", schema({})));
  t.push_back(tool("fail", "a tool error", schema({})));
  t.push_back(
      tool("counter", "increments the integer in file; crash_after exits with 9 after",
           schema({{"file", type_of("string")}, {"crash_after", type_of("boolean")}}, {"file"})));
  t.push_back(tool("add_tool", "adds a tool and sends tools/list_changed",
                   schema({{"name", type_of("string")}}, {"name"})));
  t.push_back(tool("notify_resources_changed", "sends resources/list_changed", schema({})));
  t.push_back(tool("notify_prompts_changed", "sends prompts/list_changed", schema({})));
  t.push_back(
      tool("log", "sends notifications/message",
           schema({{"level", type_of("string")}, {"message", type_of("string")}}, {"message"})));
  t.push_back(tool("ask_roots", "asks the client for roots/list", schema({})));
  t.push_back(tool("ask_sampling", "asks the client for sampling/createMessage",
                   schema({{"prompt", type_of("string")}}, {"prompt"})));
  t.push_back(tool("ask_elicitation", "asks the client for elicitation/create", schema({})));
  t.push_back(tool("ping_client", "pings the client", schema({})));
  return t;
}

json::object sampling_params(const std::string& prompt) {
  json::object content{{"type", "text"}, {"text", prompt}};
  json::object message{{"role", "user"}, {"content", std::move(content)}};
  return {{"messages", json::array{std::move(message)}}, {"maxTokens", 100}};
}

json::object elicitation_params() {
  json::object name{{"type", "string"}, {"default", "Ada"}};
  json::object count{{"type", "integer"}, {"default", 3}};
  json::object properties{
      {"name", std::move(name)}, {"count", std::move(count)}, {"ok", type_of("boolean")}};
  return {{"mode", "form"},
          {"message", "need input"},
          {"requestedSchema", {{"type", "object"}, {"properties", std::move(properties)}}}};
}

json::object progress_params(const json::value& token, std::int64_t progress, std::int64_t total) {
  return {{"progressToken", token}, {"progress", progress}, {"total", total}};
}

json::object initialize_result(std::string version) {
  json::object caps{{"tools", {{"listChanged", true}}},
                    {"resources", {{"subscribe", true}, {"listChanged", true}}},
                    {"prompts", {{"listChanged", true}}},
                    {"logging", json::object{}},
                    {"completions", json::object{}}};
  return {{"protocolVersion", std::move(version)},
          {"capabilities", std::move(caps)},
          {"serverInfo", {{"name", "tether-test-mcp-server"}, {"version", "1.0.0"}}},
          {"instructions", "test server"}};
}

std::string negotiate_version(const Options& options, const json::object& params) {
  if (options.protocol_version) return *options.protocol_version;
  static const std::vector<std::string> known{"2025-11-25", "2025-06-18", "2025-03-26",
                                              "2024-11-05"};
  std::optional<std::string> asked = get_string(params, "protocolVersion");
  if (asked && std::find(known.begin(), known.end(), *asked) != known.end()) return *asked;
  return known.front();
}

constexpr std::string_view kPng =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg"
    "==";

const std::vector<std::string_view> kLogLevels{"debug", "info",     "notice", "warning",
                                               "error", "critical", "alert",  "emergency"};

// --- conformance fixtures (--conformance-fixtures) -----------------------------------------------
// What the server scenarios of @modelcontextprotocol/conformance 0.1.16 (spec 2025-11-25) call,
// with the names, arguments and contents their descriptions give. Plain functions: the
// coroutines below only call them.

// A 44-byte header and 8 silent samples: 8 kHz, mono, 8 bit.
constexpr std::string_view kWav =
    "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA==";

json::object text_content(std::string text) {
  return {{"type", "text"}, {"text", std::move(text)}};
}

json::object image_content() {
  return {{"type", "image"}, {"data", kPng}, {"mimeType", "image/png"}};
}

json::object resource_content(std::string uri, std::string mime_type, std::string text) {
  json::object resource{
      {"uri", std::move(uri)}, {"mimeType", std::move(mime_type)}, {"text", std::move(text)}};
  return {{"type", "resource"}, {"resource", std::move(resource)}};
}

json::object content_result(json::array content) {
  return {{"content", std::move(content)}};
}

json::object described(std::string_view type, std::string_view description) {
  return {{"type", type}, {"description", description}};
}

json::object json_schema_2020_12() {
  json::object street_city{{"street", type_of("string")}, {"city", type_of("string")}};
  json::object address{{"type", "object"}, {"properties", std::move(street_city)}};
  json::object properties{{"name", type_of("string")}, {"address", {{"$ref", "#/$defs/address"}}}};
  return {{"$schema", "https://json-schema.org/draft/2020-12/schema"},
          {"type", "object"},
          {"$defs", {{"address", std::move(address)}}},
          {"properties", std::move(properties)},
          {"additionalProperties", false}};
}

json::array fixture_tools() {
  json::array t;
  auto none = [] { return schema({}); };
  t.push_back(tool("test_simple_text", "returns simple text content", none()));
  t.push_back(tool("test_image_content", "returns a 1x1 PNG image", none()));
  t.push_back(tool("test_audio_content", "returns a short WAV", none()));
  t.push_back(tool("test_embedded_resource", "returns an embedded text resource", none()));
  t.push_back(tool("test_multiple_content_types", "returns text, an image and a resource", none()));
  t.push_back(tool("test_tool_with_logging", "sends three info logs ~50 ms apart", none()));
  t.push_back(tool("test_error_handling", "always returns a tool error", none()));
  t.push_back(tool("test_tool_with_progress", "reports progress 0, 50, 100 of 100", none()));
  t.push_back(
      tool("test_sampling", "asks the client for sampling/createMessage",
           schema({{"prompt", described("string", "The prompt to send to the LLM")}}, {"prompt"})));
  t.push_back(tool(
      "test_elicitation", "asks the client for elicitation/create",
      schema({{"message", described("string", "The message to show the user")}}, {"message"})));
  t.push_back(tool("test_elicitation_sep1034_defaults",
                   "elicitation with defaults for every primitive type (SEP-1034)", none()));
  t.push_back(tool("test_elicitation_sep1330_enums",
                   "elicitation with the five enum schema variants (SEP-1330)", none()));
  json::object jsonschema_tool{{"name", "json_schema_2020_12_tool"},
                               {"description", "Tool with JSON Schema 2020-12 features"},
                               {"inputSchema", json_schema_2020_12()}};
  t.push_back(std::move(jsonschema_tool));
  t.push_back(tool("test_reconnection",
                   "answers after 100 ms (SSE polling scenario; a stdio server has no stream "
                   "to close)",
                   none()));
  return t;
}

json::object fixture_multiple_content() {
  json::array content;
  content.push_back(text_content("Multiple content types test:"));
  content.push_back(image_content());
  content.push_back(resource_content("test://mixed-content-resource", "application/json",
                                     R"({"test":"data","value":123})"));
  return content_result(std::move(content));
}

json::object fixture_audio() {
  json::object audio{{"type", "audio"}, {"data", kWav}, {"mimeType", "audio/wav"}};
  return content_result(json::array{std::move(audio)});
}

json::object fixture_log_params(std::string_view level, std::string_view text) {
  return {{"level", level}, {"logger", "conformance"}, {"data", text}};
}

const std::vector<std::string>& fixture_log_texts() {
  static const std::vector<std::string> texts{"Tool execution started", "Tool processing data",
                                              "Tool execution completed"};
  return texts;
}

json::object elicitation_request(std::string message, json::object properties,
                                 json::array required) {
  json::object requested{{"type", "object"}, {"properties", std::move(properties)}};
  requested["required"] = std::move(required);
  return {{"message", std::move(message)}, {"requestedSchema", std::move(requested)}};
}

json::object elicitation_user_params(std::string message) {
  json::object properties{{"username", described("string", "User's response")},
                          {"email", described("string", "User's email address")}};
  return elicitation_request(std::move(message), std::move(properties),
                             json::array{"username", "email"});
}

json::object with_default(std::string_view type, std::string_view description, json::value value) {
  json::object field = described(type, description);
  field["default"] = std::move(value);
  return field;
}

json::object elicitation_defaults_params() {
  json::object status = with_default("string", "User status", "active");
  status["enum"] = json::array{"active", "inactive", "pending"};
  json::object properties{{"name", with_default("string", "User name", "John Doe")},
                          {"age", with_default("integer", "User age", 30)},
                          {"score", with_default("number", "User score", 95.5)},
                          {"status", std::move(status)},
                          {"verified", with_default("boolean", "Verification status", true)}};
  return elicitation_request("Test client default value handling - please accept with defaults",
                             std::move(properties), json::array{});
}

json::array titled(std::string_view first, std::string_view second, std::string_view third) {
  json::array options;
  options.push_back({{"const", "value1"}, {"title", first}});
  options.push_back({{"const", "value2"}, {"title", second}});
  options.push_back({{"const", "value3"}, {"title", third}});
  return options;
}

json::object elicitation_enums_params() {
  json::array options{"option1", "option2", "option3"};
  json::object untitled_single{{"type", "string"}, {"enum", options}};
  json::object titled_single{{"type", "string"},
                             {"oneOf", titled("First Option", "Second Option", "Third Option")}};
  json::object legacy{{"type", "string"},
                      {"enum", json::array{"opt1", "opt2", "opt3"}},
                      {"enumNames", json::array{"Option One", "Option Two", "Option Three"}}};
  json::object untitled_items{{"type", "string"}, {"enum", options}};
  json::object untitled_multi{{"type", "array"}, {"items", std::move(untitled_items)}};
  json::object titled_items{{"anyOf", titled("First Choice", "Second Choice", "Third Choice")}};
  json::object titled_multi{{"type", "array"}, {"items", std::move(titled_items)}};
  json::object properties{{"untitledSingle", std::move(untitled_single)},
                          {"titledSingle", std::move(titled_single)},
                          {"legacyEnum", std::move(legacy)},
                          {"untitledMulti", std::move(untitled_multi)},
                          {"titledMulti", std::move(titled_multi)}};
  return elicitation_request("Test enum schema variants - please pick any options",
                             std::move(properties), json::array{});
}

// "<prefix>action=accept, content={...}" from an elicitation/create result.
std::string elicitation_text(std::string_view prefix, const json::value& result) {
  std::string action = "?";
  std::string content = "{}";
  if (result.is_object()) {
    if (auto a = get_string(result.get_object(), "action")) action = *a;
    if (const json::value* c = result.get_object().if_contains("content")) {
      content = json::serialize(*c);
    }
  }
  return std::string(prefix) + "action=" + action + ", content=" + content;
}

// The text of a sampling/createMessage result's content, else the result as JSON.
std::string sampling_text(const json::value& result) {
  if (result.is_object()) {
    json::object content = get_object(result.get_object(), "content");
    if (auto text = get_string(content, "text")) return *text;
  }
  return json::serialize(result);
}

json::array fixture_resources() {
  json::array list;
  list.push_back({{"uri", "test://static-text"},
                  {"name", "static-text"},
                  {"description", "a static text resource"},
                  {"mimeType", "text/plain"}});
  list.push_back({{"uri", "test://static-binary"},
                  {"name", "static-binary"},
                  {"description", "a static binary resource (1x1 PNG)"},
                  {"mimeType", "image/png"}});
  list.push_back({{"uri", "test://watched-resource"},
                  {"name", "watched-resource"},
                  {"description", "a resource to subscribe to"},
                  {"mimeType", "text/plain"}});
  return list;
}

json::array fixture_templates() {
  json::object entry{{"uriTemplate", "test://template/{id}/data"},
                     {"name", "template-data"},
                     {"description", "data for an id"},
                     {"mimeType", "application/json"}};
  return json::array{std::move(entry)};
}

json::object contents_of(json::object item) {
  return {{"contents", json::array{std::move(item)}}};
}

// resources/read of a fixture URI; nullopt when there is none.
std::optional<json::object> fixture_read(const std::string& uri) {
  if (uri == "test://static-text") {
    return contents_of({{"uri", uri},
                        {"mimeType", "text/plain"},
                        {"text", "This is the content of the static text resource."}});
  }
  if (uri == "test://static-binary") {
    return contents_of({{"uri", uri}, {"mimeType", "image/png"}, {"blob", kPng}});
  }
  if (uri == "test://watched-resource") {
    return contents_of(
        {{"uri", uri}, {"mimeType", "text/plain"}, {"text", "The watched resource."}});
  }
  constexpr std::string_view prefix = "test://template/";
  constexpr std::string_view suffix = "/data";
  if (uri.size() > prefix.size() + suffix.size() && uri.rfind(prefix, 0) == 0 &&
      uri.compare(uri.size() - suffix.size(), suffix.size(), suffix) == 0) {
    std::string id = uri.substr(prefix.size(), uri.size() - prefix.size() - suffix.size());
    if (id.find('/') == std::string::npos) {
      json::object data{{"id", id}, {"templateTest", true}, {"data", "Data for ID: " + id}};
      return contents_of(
          {{"uri", uri}, {"mimeType", "application/json"}, {"text", json::serialize(data)}});
    }
  }
  return std::nullopt;
}

json::object prompt_argument(std::string_view name, std::string_view description) {
  return {{"name", name}, {"description", description}, {"required", true}};
}

json::array fixture_prompts() {
  json::array list;
  list.push_back({{"name", "test_simple_prompt"}, {"description", "a prompt without arguments"}});
  json::array two{prompt_argument("arg1", "First test argument"),
                  prompt_argument("arg2", "Second test argument")};
  list.push_back({{"name", "test_prompt_with_arguments"},
                  {"description", "a prompt with two arguments"},
                  {"arguments", std::move(two)}});
  json::array uri{prompt_argument("resourceUri", "URI of the resource to embed")};
  list.push_back({{"name", "test_prompt_with_embedded_resource"},
                  {"description", "a prompt with an embedded resource"},
                  {"arguments", std::move(uri)}});
  list.push_back({{"name", "test_prompt_with_image"}, {"description", "a prompt with an image"}});
  return list;
}

json::object user_message(json::object content) {
  return {{"role", "user"}, {"content", std::move(content)}};
}

json::object messages_result(json::array messages) {
  return {{"messages", std::move(messages)}};
}

// --- the server -------------------------------------------------------------------------------

// What a request handler produced: a result or a JSON-RPC error, plus notifications that must
// follow the answer (add_tool's list_changed, subscribe's updated).
struct Reply {
  json::object result;
  std::optional<json::object> error;
  std::vector<json::object> after;
};

Reply error_reply(int code, std::string message) {
  Reply r;
  r.error = json::object{{"code", code}, {"message", std::move(message)}};
  return r;
}

Reply result_reply(json::object result) {
  Reply r;
  r.result = std::move(result);
  return r;
}

// One request in flight: `wake` is the timer its coroutine waits on (a sleep tick, or "forever"
// while a client answer is outstanding); cancellation and client answers cancel it.
struct Call {
  explicit Call(const asio::any_io_executor& ex) : wake(ex) {}
  asio::steady_timer wake;
  bool cancelled = false;
};

// A request this server sent to the client, waiting for its answer.
struct Outgoing {
  std::shared_ptr<Call> waiter;
  std::optional<json::object> answer;  // the client's whole response message
};

class Server {
 public:
  Server(asio::io_context& io, Options options)
      : io_(io),
        options_(std::move(options)),
        in_(io, ::dup(STDIN_FILENO)),
        out_(io, ::dup(STDOUT_FILENO)),
        tools_(options_.conformance_fixtures ? fixture_tools() : builtin_tools()) {
    for (int i = 0; i < options_.extra_tools; ++i) {
      std::string name = "filler_" + std::to_string(i);
      tools_.push_back(tool(name, "filler tool", schema({})));
    }
  }

  awaitable<void> read_loop() {
    std::string buffer;
    for (;;) {
      boost::system::error_code ec;
      std::size_t n = co_await asio::async_read_until(in_, asio::dynamic_buffer(buffer), '\n',
                                                      asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (ec != asio::error::eof) note("stdin read failed: " + ec.message());
        if (!buffer.empty()) handle_line(buffer);
        break;
      }
      std::string line = buffer.substr(0, n - 1);
      buffer.erase(0, n);
      handle_line(line);
    }
    stdin_closed_ = true;
    if (!writing_) exit_now(0);
  }

 private:
  // --- output ---

  void send(const json::object& message) {
    queue_.push_back(json::serialize(message) + "\n");
    if (writing_) return;
    writing_ = true;
    asio::co_spawn(io_, drain(), asio::detached);
  }

  awaitable<void> drain() {
    while (!queue_.empty()) {
      boost::system::error_code ec;
      co_await asio::async_write(out_, asio::buffer(queue_.front()),
                                 asio::redirect_error(use_awaitable, ec));
      if (ec) {
        note("stdout write failed: " + ec.message());
        exit_now(1);
      }
      queue_.pop_front();
    }
    writing_ = false;
    if (stdin_closed_) exit_now(0);
  }

  void answer(const json::value& id, const Reply& reply) {
    json::object msg{{"jsonrpc", "2.0"}, {"id", id}};
    if (reply.error) {
      msg["error"] = *reply.error;
    } else {
      msg["result"] = reply.result;
    }
    send(msg);
  }

  // --- input ---

  void handle_line(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) return;
    if (options_.never_initialize) return;
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec) {
      note("ignoring invalid JSON line (" + ec.message() +
           "): " + std::string(line.substr(0, 200)));
      return;
    }
    if (v.is_array()) {  // a 2025-03-26 batch: each element on its own
      for (const json::value& item : v.get_array()) handle_message(item);
    } else {
      handle_message(v);
    }
  }

  void handle_message(const json::value& v) {
    if (!v.is_object()) {
      note("ignoring a JSON value that is not a message: " + json::serialize(v));
      return;
    }
    const json::object& msg = v.get_object();
    const json::value* method = msg.if_contains("method");
    const json::value* id = msg.if_contains("id");
    if (method == nullptr) {
      if (id != nullptr && (msg.contains("result") || msg.contains("error"))) {
        handle_client_answer(*id, msg);
      } else {
        note("ignoring a message without method: " + json::serialize(v));
      }
      return;
    }
    if (!method->is_string()) {
      if (id != nullptr) answer(*id, error_reply(-32600, "invalid request: method not a string"));
      return;
    }
    json::object params = get_object(msg, "params");
    std::string name(method->get_string());
    if (id == nullptr) {
      handle_notification(name, params);
      return;
    }
    auto call = std::make_shared<Call>(io_.get_executor());
    calls_[json::serialize(*id)] = call;
    asio::co_spawn(io_, handle_request(*id, std::move(name), std::move(params), call),
                   [](const std::exception_ptr& e) {
                     if (!e) return;
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& x) {
                       note(std::string("request handler failed: ") + x.what());
                     }
                   });
  }

  void handle_notification(const std::string& method, const json::object& params) {
    if (method == "notifications/cancelled") {
      const json::value* id = params.if_contains("requestId");
      if (id == nullptr) return;
      auto it = calls_.find(json::serialize(*id));
      if (it == calls_.end()) {
        note("cancellation for unknown request " + id_text(*id));
        return;
      }
      note("cancelled request " + id_text(*id));
      it->second->cancelled = true;
      it->second->wake.cancel();
    } else if (method == "notifications/roots/list_changed") {
      note("client roots changed");
    }
  }

  void handle_client_answer(const json::value& id, const json::object& msg) {
    std::optional<std::int64_t> n;
    if (id.is_int64()) n = id.get_int64();
    auto it = n ? outgoing_.find(*n) : outgoing_.end();
    if (it == outgoing_.end()) {
      note("ignoring an answer to unknown request " + id_text(id));
      return;
    }
    it->second.answer = msg;
    it->second.waiter->wake.cancel();
  }

  // --- requests ---

  // Lenient: requests before initialize are answered like any other (unless
  // --silent-before-initialize).
  awaitable<void> handle_request(json::value id, std::string method, json::object params,
                                 std::shared_ptr<Call> call) {
    Reply reply;
    if (method != "initialize" && options_.silent_before_initialize && !initialized_) {
      note("ignoring " + method + " before initialize");
      co_return;
    }
    if (method == "initialize") {
      initialized_ = true;
      reply = co_await initialize(params, call);
    } else if (method == "tools/call" && options_.conformance_fixtures) {
      reply = co_await fixture_call_tool(params, call);
    } else if (method == "tools/call") {
      reply = co_await call_tool(params, call);
    } else if (options_.conformance_fixtures && is_fixture_method(method)) {
      reply = fixture_simple(method, params);
    } else {
      reply = handle_simple(method, params);
    }
    calls_.erase(json::serialize(id));
    if (call->cancelled) co_return;
    answer(id, reply);
    for (const json::object& n : reply.after) send(n);
  }

  awaitable<Reply> initialize(json::object params, std::shared_ptr<Call> call) {
    if (options_.exit_during_initialize) {
      write_stderr("test server: starting\ntest server: fatal: exiting during initialize\n");
      exit_now(3);
    }
    client_capabilities_ = get_object(params, "capabilities");
    note("client capabilities " + json::serialize(client_capabilities_));
    if (options_.initialize_delay_ms > 0) {
      co_await wait(call, std::chrono::milliseconds(options_.initialize_delay_ms));
    }
    co_return result_reply(initialize_result(negotiate_version(options_, params)));
  }

  // Waits up to `d`; returns early when the call is cancelled or woken.
  awaitable<void> wait(std::shared_ptr<Call> call, std::chrono::milliseconds d) {
    call->wake.expires_after(d);
    boost::system::error_code ec;
    co_await call->wake.async_wait(asio::redirect_error(use_awaitable, ec));
  }

  Reply handle_simple(const std::string& method, const json::object& params) {
    if (method == "ping" || method == "logging/setLevel") return result_reply({});
    if (method == "tools/list") return paged(tools_, params, "tools", options_.duplicate_cursor);
    if (method == "resources/list") return paged(resources(), params, "resources", false);
    if (method == "resources/templates/list") {
      json::object entry{{"uriTemplate", "test://template/{id}"}, {"name", "template"}};
      json::array templates{std::move(entry)};
      return paged(templates, params, "resourceTemplates", false);
    }
    if (method == "resources/read") return read_resource(params);
    if (method == "resources/subscribe") {
      Reply r;
      json::object updated{{"uri", get_string(params, "uri").value_or("")}};
      r.after.push_back(notification("notifications/resources/updated", std::move(updated)));
      return r;
    }
    if (method == "resources/unsubscribe") return result_reply({});
    if (method == "prompts/list") {
      json::object argument{{"name", "name"}, {"required", true}};
      json::object greet{{"name", "greet"}, {"arguments", json::array{std::move(argument)}}};
      json::array prompts{std::move(greet)};
      return paged(prompts, params, "prompts", false);
    }
    if (method == "prompts/get") return get_prompt(params);
    if (method == "completion/complete") {
      json::object completion{
          {"values", json::array{"alpha", "beta"}}, {"total", 2}, {"hasMore", false}};
      return result_reply({{"completion", std::move(completion)}});
    }
    return error_reply(-32601, "method not found: " + method);
  }

  // One page of `all`; the cursor is the offset of the page as text, prefixed to look opaque.
  Reply paged(const json::array& all, const json::object& params, std::string_view key,
              bool duplicate_cursor) {
    std::size_t offset = 0;
    std::optional<std::string> cursor = get_string(params, "cursor");
    if (cursor && !(duplicate_cursor && *cursor == "again")) {
      constexpr std::string_view prefix = "page-";
      bool ok = cursor->rfind(prefix, 0) == 0;
      if (ok) {
        try {
          std::size_t used = 0;
          offset = std::stoul(cursor->substr(prefix.size()), &used);
          ok = used + prefix.size() == cursor->size() && offset <= all.size();
        } catch (const std::exception&) {
          ok = false;
        }
      }
      if (!ok) return error_reply(-32602, "invalid cursor: " + *cursor);
    }
    std::size_t end =
        options_.page_size == 0 ? all.size() : std::min(all.size(), offset + options_.page_size);
    json::array items(all.begin() + static_cast<std::ptrdiff_t>(offset),
                      all.begin() + static_cast<std::ptrdiff_t>(end));
    json::object result{{key, std::move(items)}};
    if (duplicate_cursor) {
      result["nextCursor"] = "again";
    } else if (end < all.size()) {
      result["nextCursor"] = "page-" + std::to_string(end);
    }
    return result_reply(std::move(result));
  }

  json::array resources() const {
    json::array list;
    for (int i = 0; i < options_.resources; ++i) {
      list.push_back({{"uri", "test://resource/" + std::to_string(i)},
                      {"name", "resource " + std::to_string(i)},
                      {"mimeType", "text/plain"}});
    }
    return list;
  }

  Reply read_resource(const json::object& params) {
    std::string uri = get_string(params, "uri").value_or("");
    constexpr std::string_view prefix = "test://resource/";
    if (uri.rfind(prefix, 0) == 0) {
      std::string index = uri.substr(prefix.size());
      bool digits = !index.empty() && index.size() < 9 &&
                    index.find_first_not_of("0123456789") == std::string::npos;
      if (digits && std::stoi(index) < options_.resources) {
        json::object content{
            {"uri", uri}, {"mimeType", "text/plain"}, {"text", "content of resource " + index}};
        return result_reply({{"contents", json::array{std::move(content)}}});
      }
    }
    Reply r = error_reply(-32002, "resource not found");
    (*r.error)["data"] = json::object{{"uri", uri}};
    return r;
  }

  static Reply get_prompt(const json::object& params) {
    std::string name = get_string(params, "name").value_or("");
    if (name != "greet") return error_reply(-32602, "unknown prompt: " + name);
    std::optional<std::string> who = get_string(get_object(params, "arguments"), "name");
    if (!who) return error_reply(-32602, "missing required argument: name");
    json::object content{{"type", "text"}, {"text", "Hello, " + *who + "!"}};
    json::object message{{"role", "user"}, {"content", std::move(content)}};
    return result_reply({{"messages", json::array{std::move(message)}}});
  }

  // --- conformance fixtures ---

  static bool is_fixture_method(const std::string& method) {
    static const std::vector<std::string> methods{
        "logging/setLevel", "resources/list",      "resources/templates/list",
        "resources/read",   "resources/subscribe", "resources/unsubscribe",
        "prompts/list",     "prompts/get",         "completion/complete"};
    return std::find(methods.begin(), methods.end(), method) != methods.end();
  }

  Reply fixture_simple(const std::string& method, const json::object& params) {
    if (method == "logging/setLevel") {
      std::string level = get_string(params, "level").value_or("");
      auto it = std::find(kLogLevels.begin(), kLogLevels.end(), level);
      if (it == kLogLevels.end()) return error_reply(-32602, "invalid log level: " + level);
      min_log_level_ = static_cast<std::size_t>(it - kLogLevels.begin());
      return result_reply({});
    }
    if (method == "resources/list") return paged(fixture_resources(), params, "resources", false);
    if (method == "resources/templates/list") {
      return paged(fixture_templates(), params, "resourceTemplates", false);
    }
    std::string uri = get_string(params, "uri").value_or("");
    if (method == "resources/read") {
      if (std::optional<json::object> contents = fixture_read(uri)) {
        return result_reply(std::move(*contents));
      }
      Reply r = error_reply(-32002, "resource not found");
      (*r.error)["data"] = json::object{{"uri", uri}};
      return r;
    }
    if (method == "resources/subscribe" || method == "resources/unsubscribe") {
      if (uri.empty()) return error_reply(-32602, "invalid params: uri must be a string");
      if (method == "resources/subscribe") {
        subscriptions_.push_back(uri);
      } else {
        std::erase(subscriptions_, uri);
      }
      note(method + " " + uri);
      return result_reply({});
    }
    if (method == "prompts/list") return paged(fixture_prompts(), params, "prompts", false);
    if (method == "prompts/get") return fixture_prompt(params);
    return fixture_complete(params);
  }

  static Reply fixture_prompt(const json::object& params) {
    std::string name = get_string(params, "name").value_or("");
    json::object args = get_object(params, "arguments");
    json::array messages;
    if (name == "test_simple_prompt") {
      messages.push_back(user_message(text_content("This is a simple prompt for testing.")));
    } else if (name == "test_prompt_with_arguments") {
      std::optional<std::string> arg1 = get_string(args, "arg1");
      std::optional<std::string> arg2 = get_string(args, "arg2");
      if (!arg1 || !arg2) return error_reply(-32602, "missing required arguments: arg1, arg2");
      messages.push_back(user_message(
          text_content("Prompt with arguments: arg1='" + *arg1 + "', arg2='" + *arg2 + "'")));
    } else if (name == "test_prompt_with_embedded_resource") {
      std::optional<std::string> uri = get_string(args, "resourceUri");
      if (!uri) return error_reply(-32602, "missing required argument: resourceUri");
      messages.push_back(user_message(
          resource_content(*uri, "text/plain", "Embedded resource content for testing.")));
      messages.push_back(user_message(text_content("Please process the embedded resource above.")));
    } else if (name == "test_prompt_with_image") {
      messages.push_back(user_message(image_content()));
      messages.push_back(user_message(text_content("Please analyze the image above.")));
    } else {
      return error_reply(-32602, "unknown prompt: " + name);
    }
    return result_reply(messages_result(std::move(messages)));
  }

  // Values for test_prompt_with_arguments' arguments and the template's id that start with
  // what the client typed.
  static Reply fixture_complete(const json::object& params) {
    json::object ref = get_object(params, "ref");
    std::string type = get_string(ref, "type").value_or("");
    std::vector<std::string> candidates;
    if (type == "ref/prompt" && get_string(ref, "name") == "test_prompt_with_arguments") {
      candidates = {"paris", "park", "party"};
    } else if (type == "ref/resource" && get_string(ref, "uri") == "test://template/{id}/data") {
      candidates = {"1", "2", "3", "123"};
    } else {
      return error_reply(-32602, "no completions for " + json::serialize(ref));
    }
    std::string typed = get_string(get_object(params, "argument"), "value").value_or("");
    json::array values;
    for (const std::string& c : candidates) {
      if (c.rfind(typed, 0) == 0) values.push_back(json::value(c));
    }
    json::object completion{{"values", values}, {"total", values.size()}, {"hasMore", false}};
    return result_reply({{"completion", std::move(completion)}});
  }

  bool logs_enabled(std::string_view level) const {
    auto it = std::find(kLogLevels.begin(), kLogLevels.end(), level);
    return static_cast<std::size_t>(it - kLogLevels.begin()) >= min_log_level_;
  }

  bool client_declares(std::string_view capability) const {
    return client_capabilities_.contains(capability);
  }

  awaitable<Reply> fixture_call_tool(json::object params, std::shared_ptr<Call> call) {
    std::string name = get_string(params, "name").value_or("");
    json::object args = get_object(params, "arguments");
    if (name == "test_tool_with_logging") co_return co_await fixture_logging_tool(call);
    if (name == "test_tool_with_progress") co_return co_await fixture_progress_tool(params, call);
    if (name == "test_sampling") {
      std::optional<std::string> prompt = get_string(args, "prompt");
      if (!prompt) co_return error_reply(-32602, "invalid arguments: prompt must be a string");
      if (!client_declares("sampling")) {
        co_return result_reply(text_result("the client does not support sampling", true));
      }
      std::optional<json::object> answer =
          co_await ask_client(call, "sampling/createMessage", sampling_params(*prompt));
      co_return fixture_answer(answer, "LLM response: ", false);
    }
    if (name == "test_elicitation") {
      std::optional<std::string> message = get_string(args, "message");
      if (!message) co_return error_reply(-32602, "invalid arguments: message must be a string");
      co_return co_await fixture_elicit(call, elicitation_user_params(*message), "User response: ");
    }
    if (name == "test_elicitation_sep1034_defaults") {
      co_return co_await fixture_elicit(call, elicitation_defaults_params(),
                                        "Elicitation completed: ");
    }
    if (name == "test_elicitation_sep1330_enums") {
      co_return co_await fixture_elicit(call, elicitation_enums_params(),
                                        "Elicitation completed: ");
    }
    if (name == "test_reconnection") {
      co_await wait(call, std::chrono::milliseconds(100));
      if (call->cancelled) co_return Reply{};
      co_return result_reply(text_result("Reconnection test completed successfully"));
    }
    co_return fixture_sync_tool(name);
  }

  awaitable<Reply> fixture_elicit(std::shared_ptr<Call> call, json::object params,
                                  std::string prefix) {
    if (!client_declares("elicitation")) {
      co_return result_reply(text_result("the client does not support elicitation", true));
    }
    std::optional<json::object> answer =
        co_await ask_client(call, "elicitation/create", std::move(params));
    co_return fixture_answer(answer, prefix, true);
  }

  // The tool result for a client's answer: `prefix` and the sampled text or the elicitation's
  // action and content; the client's error as a tool error; nothing when cancelled.
  static Reply fixture_answer(const std::optional<json::object>& answer, const std::string& prefix,
                              bool elicitation) {
    if (!answer) return Reply{};
    if (const json::value* error = answer->if_contains("error")) {
      return result_reply(text_result(json::serialize(*error), true));
    }
    const json::value* result = answer->if_contains("result");
    if (result == nullptr) return result_reply(text_result("no result in the answer", true));
    if (elicitation) return result_reply(text_result(elicitation_text(prefix, *result)));
    return result_reply(text_result(prefix + sampling_text(*result)));
  }

  awaitable<Reply> fixture_logging_tool(std::shared_ptr<Call> call) {
    const std::vector<std::string>& texts = fixture_log_texts();
    for (std::size_t i = 0; i < texts.size(); ++i) {
      if (i > 0) co_await wait(call, std::chrono::milliseconds(50));
      if (call->cancelled) co_return Reply{};
      if (logs_enabled("info")) {
        send(notification("notifications/message", fixture_log_params("info", texts[i])));
      }
    }
    co_return result_reply(text_result("Tool with logging executed successfully"));
  }

  awaitable<Reply> fixture_progress_tool(json::object params, std::shared_ptr<Call> call) {
    std::optional<json::value> token;
    json::object meta = get_object(params, "_meta");
    if (const json::value* t = meta.if_contains("progressToken")) token = *t;
    for (std::int64_t progress = 0; progress <= 100; progress += 50) {
      if (progress > 0) co_await wait(call, std::chrono::milliseconds(50));
      if (call->cancelled) co_return Reply{};
      if (token) {
        send(notification("notifications/progress", progress_params(*token, progress, 100)));
      }
    }
    co_return result_reply(text_result("Tool with progress executed successfully"));
  }

  static Reply fixture_sync_tool(const std::string& name) {
    if (name == "test_simple_text") {
      return result_reply(text_result("This is a simple text response for testing."));
    }
    if (name == "test_image_content") {
      return result_reply(content_result(json::array{image_content()}));
    }
    if (name == "test_audio_content") return result_reply(fixture_audio());
    if (name == "test_embedded_resource") {
      return result_reply(content_result(json::array{resource_content(
          "test://embedded-resource", "text/plain", "This is an embedded resource content.")}));
    }
    if (name == "test_multiple_content_types") return result_reply(fixture_multiple_content());
    if (name == "test_error_handling") {
      return result_reply(
          text_result("This tool intentionally returns an error for testing", true));
    }
    if (name == "json_schema_2020_12_tool") {
      return result_reply(text_result("json_schema_2020_12_tool called"));
    }
    return error_reply(-32602, "unknown tool: " + name);
  }

  // --- tools ---

  awaitable<Reply> call_tool(json::object params, std::shared_ptr<Call> call) {
    std::string name = get_string(params, "name").value_or("");
    json::object args = get_object(params, "arguments");
    if (name == "sleep") co_return co_await sleep_tool(params, args, call);
    if (name == "ask_roots") co_return co_await ask_tool(call, "roots/list", json::object{});
    if (name == "ask_sampling") {
      std::optional<std::string> prompt = get_string(args, "prompt");
      if (!prompt) co_return error_reply(-32602, "invalid arguments: prompt must be a string");
      co_return co_await ask_tool(call, "sampling/createMessage", sampling_params(*prompt));
    }
    if (name == "ask_elicitation") {
      co_return co_await ask_tool(call, "elicitation/create", elicitation_params());
    }
    if (name == "ping_client") co_return co_await ping_client_tool(call);
    co_return call_sync_tool(name, args);
  }

  awaitable<Reply> sleep_tool(json::object params, json::object args, std::shared_ptr<Call> call) {
    std::optional<std::int64_t> ms = get_int(args, "ms");
    if (!ms || *ms < 0)
      co_return error_reply(-32602, "invalid arguments: ms must be a non-negative integer");
    std::int64_t tick = std::max<std::int64_t>(1, get_int(args, "progress_ms").value_or(100));
    std::optional<json::value> token;
    json::object meta = get_object(params, "_meta");
    if (const json::value* t = meta.if_contains("progressToken")) token = *t;
    std::int64_t total = (*ms + tick - 1) / tick;
    std::int64_t elapsed = 0;
    std::int64_t k = 0;
    while (elapsed < *ms) {
      std::int64_t step = std::min(tick, *ms - elapsed);
      co_await wait(call, std::chrono::milliseconds(step));
      if (call->cancelled) co_return Reply{};
      elapsed += step;
      ++k;
      if (token) send(notification("notifications/progress", progress_params(*token, k, total)));
    }
    co_return result_reply(text_result("slept " + std::to_string(*ms)));
  }

  // Sends a request to the client and waits for its answer; nothing when the call was cancelled
  // (the client is told with notifications/cancelled).
  awaitable<std::optional<json::object>> ask_client(std::shared_ptr<Call> call, std::string method,
                                                    json::object params) {
    std::int64_t id = next_outgoing_id_++;
    outgoing_[id] = Outgoing{call, std::nullopt};
    json::object request{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
    if (!params.empty()) request["params"] = std::move(params);
    send(request);
    for (;;) {
      auto it = outgoing_.find(id);
      if (it->second.answer) {
        json::object answer = std::move(*it->second.answer);
        outgoing_.erase(it);
        co_return answer;
      }
      if (call->cancelled) {
        outgoing_.erase(it);
        json::object cancelled{{"requestId", id}, {"reason", "tool call cancelled"}};
        send(notification("notifications/cancelled", std::move(cancelled)));
        co_return std::nullopt;
      }
      call->wake.expires_at(asio::steady_timer::time_point::max());
      boost::system::error_code ec;
      co_await call->wake.async_wait(asio::redirect_error(use_awaitable, ec));
    }
  }

  awaitable<Reply> ask_tool(std::shared_ptr<Call> call, std::string method, json::object params) {
    std::optional<json::object> answer = co_await ask_client(call, method, std::move(params));
    if (!answer) co_return Reply{};
    if (const json::value* error = answer->if_contains("error")) {
      co_return result_reply(text_result(json::serialize(*error), true));
    }
    co_return result_reply(text_result(json::serialize(answer->at("result"))));
  }

  awaitable<Reply> ping_client_tool(std::shared_ptr<Call> call) {
    std::optional<json::object> answer = co_await ask_client(call, "ping", json::object{});
    if (!answer) co_return Reply{};
    const json::value* result = answer->if_contains("result");
    if (result != nullptr && result->is_object() && result->get_object().empty()) {
      co_return result_reply(text_result("pong"));
    }
    co_return result_reply(text_result(json::serialize(*answer), true));
  }

  Reply call_sync_tool(const std::string& name, const json::object& args) {
    if (name == "echo") {
      std::optional<std::string> message = get_string(args, "message");
      if (!message) return error_reply(-32602, "invalid arguments: message must be a string");
      json::object env;
      for (char** e = environ; *e != nullptr; ++e) {
        std::string_view entry(*e);
        std::size_t eq = entry.find('=');
        if (entry.rfind("TETHER_TEST_", 0) == 0 && eq != std::string_view::npos) {
          env[entry.substr(0, eq)] = entry.substr(eq + 1);
        }
      }
      json::object result = text_result(*message);
      result["structuredContent"] =
          json::object{{"message", *message}, {"env", std::move(env)}, {"cwd", cwd()}};
      return result_reply(std::move(result));
    }
    if (name == "env") {
      std::optional<std::string> var = get_string(args, "name");
      if (!var) return error_reply(-32602, "invalid arguments: name must be a string");
      const char* value = std::getenv(var->c_str());
      return result_reply(text_result(value != nullptr ? value : "<unset>"));
    }
    if (name == "cwd") return result_reply(text_result(cwd()));
    if (name == "crash") {
      int code = static_cast<int>(get_int(args, "code").value_or(7));
      note("crashing on purpose");
      exit_now(code);
    }
    if (name == "large") {
      std::optional<std::int64_t> bytes = get_int(args, "bytes");
      if (!bytes || *bytes < 0) {
        return error_reply(-32602, "invalid arguments: bytes must be a non-negative integer");
      }
      return result_reply(text_result(std::string(static_cast<std::size_t>(*bytes), 'x')));
    }
    if (name == "image") {
      json::object image{{"type", "image"}, {"data", kPng}, {"mimeType", "image/png"}};
      return result_reply({{"content", json::array{std::move(image)}}});
    }
    if (name == "fail") return result_reply(text_result("failed on purpose", true));
    if (name == "counter") return counter_tool(args);
    if (name == "add_tool") {
      std::optional<std::string> added = get_string(args, "name");
      if (!added || added->empty()) {
        return error_reply(-32602, "invalid arguments: name must be a non-empty string");
      }
      if (!find_tool(*added)) {
        tools_.push_back(tool(*added, "added at run time", schema({})));
        added_tools_.push_back(*added);
      }
      Reply r = result_reply(text_result("added"));
      r.after.push_back(notification("notifications/tools/list_changed", {}));
      return r;
    }
    if (name == "notify_resources_changed") {
      send(notification("notifications/resources/list_changed", {}));
      return result_reply(text_result("notified"));
    }
    if (name == "notify_prompts_changed") {
      send(notification("notifications/prompts/list_changed", {}));
      return result_reply(text_result("notified"));
    }
    if (name == "log") {
      std::string level = get_string(args, "level").value_or("info");
      std::optional<std::string> message = get_string(args, "message");
      if (!message) return error_reply(-32602, "invalid arguments: message must be a string");
      if (std::find(kLogLevels.begin(), kLogLevels.end(), level) == kLogLevels.end()) {
        return error_reply(-32602, "invalid arguments: unknown level " + level);
      }
      json::object params{{"level", level}, {"logger", "test"}, {"data", *message}};
      send(notification("notifications/message", std::move(params)));
      return result_reply(text_result("logged"));
    }
    if (name.rfind("filler_", 0) == 0 && find_tool(name)) {
      return result_reply(text_result("filler"));
    }
    if (std::find(added_tools_.begin(), added_tools_.end(), name) != added_tools_.end()) {
      return result_reply(text_result("called " + name));
    }
    return error_reply(-32602, "unknown tool: " + name);
  }

  static Reply counter_tool(const json::object& args) {
    std::optional<std::string> file = get_string(args, "file");
    if (!file) return error_reply(-32602, "invalid arguments: file must be a string");
    std::int64_t value = 0;
    if (std::ifstream in(*file); in) in >> value;
    ++value;
    std::ofstream out(*file, std::ios::trunc);
    out << value << '\n';
    out.close();
    if (!out) return result_reply(text_result("cannot write " + *file, true));
    const json::value* crash_after = args.if_contains("crash_after");
    if (crash_after != nullptr && crash_after->is_bool() && crash_after->get_bool()) {
      note("crashing after the counter side effect");
      exit_now(9);
    }
    return result_reply(text_result(std::to_string(value)));
  }

  bool find_tool(std::string_view name) const {
    return std::any_of(tools_.begin(), tools_.end(), [&](const json::value& t) {
      return t.get_object().at("name").get_string() == name;
    });
  }

  static std::string cwd() {
    std::error_code ec;
    std::filesystem::path p = std::filesystem::current_path(ec);
    return ec ? std::string("<unknown>") : p.string();
  }

  asio::io_context& io_;
  Options options_;
  asio::posix::stream_descriptor in_;
  asio::posix::stream_descriptor out_;
  std::deque<std::string> queue_;  // deque: push_back keeps the front's buffer valid
  bool writing_ = false;
  bool stdin_closed_ = false;
  bool initialized_ = false;  // an initialize request arrived
  json::object client_capabilities_;
  std::size_t min_log_level_ = 0;           // fixtures: logging/setLevel's index in kLogLevels
  std::vector<std::string> subscriptions_;  // fixtures: subscribed URIs
  json::array tools_;
  std::vector<std::string> added_tools_;
  std::map<std::string, std::shared_ptr<Call>> calls_;  // by serialized request id
  std::map<std::int64_t, Outgoing> outgoing_;
  std::int64_t next_outgoing_id_ = 1;
};

}  // namespace

int main(int argc, char** argv) {
  Options options = parse_options(argc, argv);
  for (const std::string& line : options.stderr_lines) write_stderr(line + "\n");
  if (options.crash_on_start) {
    note("crash on start");
    exit_now(4);
  }
  // A vanished client must surface as a write error, not kill us silently.
  std::signal(SIGPIPE, SIG_IGN);
  asio::io_context io(1);
  Server server(io, std::move(options));
  asio::co_spawn(io, server.read_loop(), asio::detached);
  io.run();
  return 0;
}
