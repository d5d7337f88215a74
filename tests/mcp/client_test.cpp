// mcp::Client against the real test server (tests/mcp/test_server), placed the way the host
// places it (host::launch_server): a child of this test ("local") or a process of a `tether
// exec-server` the test spawns on loopback ("remote"). Acceptance scenarios 22-26, 29 and 30 of
// the acceptance scenarios, plus the rest of the client surface: server requests (roots, sampling,
// elicitation with defaults, ping), resources, templates, prompts, completion, logging,
// subscriptions, isError results, argument checks, large and image results, protocol version
// negotiation and shutdown.
// Does not own: the placement rules themselves (tests/host/server_launch_test.cpp) or the
// launchers' transport details (stdio_test.cpp).
// Data flow: test -> McpSite (tests/support/mcp_fixtures) -> host::launch_server -> Client ->
// test server; what the server saw comes back in tool results and its stderr tail.
//
// Every server gets a unique marker on its command line (`--stderr-line <marker>`): tests look
// processes up by it, TearDown checks nothing with it is left, and a MarkerReaper kills whatever a
// failing test left behind.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "build_paths.hpp"
#include "exec_server.hpp"
#include "mcp_fixtures.hpp"
#include <tether/jsonrpc/peer.hpp>
#include <tether/mcp/client.hpp>

namespace tether::mcp {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;
using testing::eventually;
using testing::McpPlacement;
using testing::McpSite;
using testing::processes_matching;

const char* const kServer = testing::test_mcp_server();
constexpr auto kWait = 10s;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

using testing::ok;

// --- JSON built in plain functions (GCC 12 mishandles braced JSON inside co_await) -----------

json::object message_args(const std::string& message) {
  return json::object{{"message", message}};
}
json::object name_args(const std::string& name) {
  return json::object{{"name", name}};
}
json::object sleep_args(std::int64_t ms) {
  return json::object{{"ms", ms}};
}
json::object progress_sleep_args(std::int64_t ms, std::int64_t progress_ms) {
  return json::object{{"ms", ms}, {"progress_ms", progress_ms}};
}
json::object crash_args(std::int64_t code) {
  return json::object{{"code", code}};
}
json::object bytes_args(std::int64_t bytes) {
  return json::object{{"bytes", bytes}};
}
json::object log_args() {
  return json::object{{"level", "warning"}, {"message", "disk almost full"}};
}
json::object prompt_args(const std::string& prompt) {
  return json::object{{"prompt", prompt}};
}
json::value array_args() {
  return json::array{1, 2};
}
json::object completion_params() {
  return json::object{{"ref", json::object{{"type", "ref/prompt"}, {"name", "greet"}}},
                      {"argument", json::object{{"name", "name"}, {"value", "a"}}}};
}

std::set<std::string> names_of(const json::array& items, std::string_view key = "name") {
  std::set<std::string> names;
  for (const auto& item : items)
    if (const auto* name = item.as_object().if_contains(key); name && name->is_string())
      names.insert(std::string(name->as_string()));
  return names;
}

// The value a tool's text content carries as JSON (the ask_* tools answer that way).
json::value text_json(const json::object& result) {
  boost::system::error_code ec;
  auto value = json::parse(testing::first_text(result), ec);
  return ec ? json::value() : value;
}

// The outcome of a tools/call `sleep` run in the background.
struct Outcome {
  std::optional<Expected<json::object>> result;
};

asio::awaitable<void> call_into(std::shared_ptr<Client> client, json::object args,
                                std::shared_ptr<Outcome> outcome) {
  CallOptions options;
  outcome->result = co_await client->call_tool("sleep", std::move(args), std::move(options));
}

// Sets a variable of this process for one test.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
    ::setenv(name_.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() { ::unsetenv(name_.c_str()); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
};

// A fresh directory under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  explicit TempDir(const std::string& name) : path_(std::filesystem::temp_directory_path() / name) {
    std::filesystem::create_directories(path_);
    path_ = std::filesystem::canonical(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

class McpClient : public ::testing::TestWithParam<McpPlacement> {
 protected:
  void run(const std::function<asio::awaitable<void>(McpSite&)>& body,
           std::chrono::milliseconds deadline = 60s) {
    testing::run_in_site(GetParam(), body, deadline);
  }

  // A fresh marker for one server, watched by TearDown and the reaper.
  std::string marker() {
    auto marker = testing::unique_marker("mcp-client-test");
    reaper_.add(marker);
    return marker;
  }

  // The test server with `flags`, marked: `marker` names it on its command line.
  StdioCommand server(std::vector<std::string> flags, const std::string& mark) {
    flags.push_back("--stderr-line");
    flags.push_back(mark);
    return testing::stdio_command(kServer, std::move(flags));
  }
  StdioCommand server(std::vector<std::string> flags = {}) {
    return server(std::move(flags), marker());
  }

  // Nothing a test started may outlive it (the client and the site are gone by now).
  void TearDown() override { reaper_.expect_none_left(kWait); }

  testing::MarkerReaper reaper_;
};

asio::awaitable<bool> gone(const std::string& marker) {
  co_return co_await eventually([&] { return processes_matching(marker).empty(); }, kWait);
}

// --- 22: environment and working directory --------------------------------------------------

TEST_P(McpClient, EchoRoundTripsWithEnvEnvVarsAndCwd) {
  const auto mark = marker();
  TempDir dir(mark);
  ScopedEnv listed("TETHER_TEST_FROM_OWN_ENV", "own value " + mark);
  ScopedEnv overridden("TETHER_TEST_BOTH", "own");
  ScopedEnv unlisted("TETHER_TEST_NOT_LISTED", "must not reach the server");
  auto command = server({}, mark);
  command.env = {{"TETHER_TEST_LITERAL", "literal value"}, {"TETHER_TEST_BOTH", "env wins"}};
  // A listed name that is not set in our environment is left out, not set empty.
  command.env_vars = {"TETHER_TEST_FROM_OWN_ENV", "TETHER_TEST_BOTH", "TETHER_TEST_NEVER_SET"};
  command.cwd = dir.path().string();
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto client = co_await site.connect(command);
    CO_ASSERT_TRUE(ok(client));
    const std::string text = "héllo, wörld ✓";
    auto result = co_await (*client)->call_tool("echo", message_args(text));
    CO_ASSERT_TRUE(ok(result));
    EXPECT_EQ(testing::first_text(*result), text);
    const auto& structured = result->at("structuredContent").as_object();
    EXPECT_EQ(structured.at("message"), json::value(text));
    const json::object expected_env{{"TETHER_TEST_LITERAL", "literal value"},
                                    {"TETHER_TEST_BOTH", "env wins"},
                                    {"TETHER_TEST_FROM_OWN_ENV", "own value " + mark}};
    EXPECT_EQ(structured.at("env"), expected_env)
        << "env overlays env_vars; nothing else of ours leaks: "
        << json::serialize(structured.at("env"));
    EXPECT_EQ(structured.at("cwd"), json::value(dir.path().string()));
    // The core variables come from tether's environment (local) or the executor host's own
    // (remote): the same machine and environment here.
    auto home = co_await (*client)->call_tool("env", name_args("HOME"));
    CO_ASSERT_TRUE(ok(home));
    const char* own_home = std::getenv("HOME");
    EXPECT_EQ(testing::first_text(*home), own_home ? own_home : "<unset>");
    co_await (*client)->shutdown();
  });
}

TEST_P(McpClient, MissingCwdUsesThePlacementDefault) {
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto command = server();
    auto client = co_await site.connect(command);
    CO_ASSERT_TRUE(ok(client));
    auto expected = co_await site.default_cwd();
    CO_ASSERT_TRUE(expected.has_value());
    auto result = co_await (*client)->call_tool("cwd", json::value());
    CO_ASSERT_TRUE(ok(result));
    EXPECT_EQ(testing::first_text(*result), *expected);
    co_await (*client)->shutdown();
  });
}

// --- 23, 24: handshake failures leave nothing running ---------------------------------------

TEST_P(McpClient, HandshakeNeverAnsweredTimesOutAndEndsTheServer) {
  const auto mark = marker();
  run([&](McpSite& site) -> asio::awaitable<void> {
    ClientOptions options;
    options.startup_timeout = 500ms;
    auto command = server({"--never-initialize"}, mark);
    auto client = co_await site.connect(command, std::move(options));
    CO_ASSERT_TRUE(!client.has_value());
    const auto& message = client.error().message;
    EXPECT_EQ(message.substr(0, message.find('\n')),
              "timed out handshaking with MCP server after 500ms")
        << message;
    EXPECT_TRUE(contains(message, mark)) << "the stderr tail shows the server ran: " << message;
    EXPECT_TRUE(co_await gone(mark)) << "the server outlived its failed handshake";
  });
}

// A connect the caller abandons (cancelled while the server never answers) ends the server.
asio::awaitable<void> connect_into(McpSite& site, StdioCommand command, bool& returned) {
  auto client = co_await site.connect(std::move(command));
  returned = true;
}

TEST_P(McpClient, AnAbandonedHandshakeEndsTheServer) {
  const auto mark = marker();
  run([&](McpSite& site) -> asio::awaitable<void> {
    bool returned = false;
    auto connecting = connect_into(site, server({"--never-initialize"}, mark), returned);
    auto give_up = testing::sleep_for(500ms);
    co_await (std::move(connecting) || std::move(give_up));
    EXPECT_FALSE(returned) << "the handshake with a silent server cannot have finished";
    EXPECT_TRUE(co_await gone(mark)) << "the server outlived its abandoned handshake";
  });
}

TEST_P(McpClient, ServerExitingDuringHandshakeFailsWithItsStderrTail) {
  const auto mark = marker();
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto command = server({"--exit-during-initialize"}, mark);
    auto client = co_await site.connect(command);
    CO_ASSERT_TRUE(!client.has_value());
    const auto& message = client.error().message;
    EXPECT_TRUE(starts_with(message, "handshaking with MCP server failed:")) << message;
    EXPECT_TRUE(contains(message, "exited with code 3")) << message;
    EXPECT_TRUE(contains(message, "test server: starting")) << message;
    EXPECT_TRUE(contains(message, "test server: fatal: exiting during initialize")) << message;
    EXPECT_TRUE(co_await gone(mark));
  });
}

TEST_P(McpClient, ServerDyingBeforeReadingFailsTheHandshakeWithItsStderrTail) {
  const auto mark = marker();
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto command = server({"--crash-on-start"}, mark);
    auto client = co_await site.connect(command);
    CO_ASSERT_TRUE(!client.has_value());
    const auto& message = client.error().message;
    EXPECT_TRUE(starts_with(message, "handshaking with MCP server failed:")) << message;
    EXPECT_TRUE(contains(message, "test server: crash on start")) << message;
    EXPECT_TRUE(co_await gone(mark));
  });
}

// --- 25: a crash during tools/call ----------------------------------------------------------

TEST_P(McpClient, CrashDuringToolCallFailsTheCallAndClosesTheSession) {
  const auto mark = marker();
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto closed = std::make_shared<std::vector<std::string>>();
    ClientOptions options;
    options.tool_timeout = 30s;  // far beyond "promptly": a hang fails with the timeout text
    options.handlers.on_closed = [closed](const std::string& reason) { closed->push_back(reason); };
    auto command = server({}, mark);
    auto client = co_await site.connect(command, std::move(options));
    CO_ASSERT_TRUE(ok(client));
    auto result = co_await (*client)->call_tool("crash", crash_args(7));
    CO_ASSERT_TRUE(!result.has_value());
    EXPECT_EQ(result.error().code, jsonrpc::code::kConnectionClosed) << result.error().message;
    EXPECT_TRUE(contains(result.error().message, "exited with code 7")) << result.error().message;
    EXPECT_TRUE(co_await eventually([&] { return (*client)->is_closed(); }, kWait));
    EXPECT_TRUE(contains((*client)->close_reason(), "exited with code 7"))
        << (*client)->close_reason();
    EXPECT_TRUE(co_await eventually([&] { return !closed->empty(); }, kWait))
        << "on_closed was not called";
    if (!closed->empty()) {
      EXPECT_EQ(closed->front(), (*client)->close_reason());
    }
    EXPECT_TRUE(contains((*client)->stderr_tail(), "test server: crashing on purpose"))
        << (*client)->stderr_tail();
    auto after = co_await (*client)->ping();
    EXPECT_FALSE(after.has_value()) << "a closed session answers nothing";
    EXPECT_TRUE(co_await gone(mark));
  });
}

// --- 26: dropping the client ends the server and its children -------------------------------

TEST_P(McpClient, DroppingTheClientEndsTheServerAndItsChildren) {
  const auto mark = marker();
  // The background sleep is the grandchild (child of the shell that execs the server); its
  // number is unique to this test run.
  static int round = 0;
  const std::string sleeper =
      "sleep 300." + std::to_string(::getpid()) + "0" + std::to_string(++round) + " ";
  reaper_.add(sleeper);
  TempDir dir(mark);
  const auto pidfile = (dir.path() / "sleep.pid").string();
  const std::string script =
      sleeper + "& echo $! > '" + pidfile + "'; exec '" + kServer + "' --stderr-line " + mark;
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto command = testing::stdio_command("/bin/sh", {"-c", script});
    auto client = co_await site.connect(command);
    CO_ASSERT_TRUE(ok(client));
    auto pong = co_await (*client)->ping();
    EXPECT_TRUE(pong.has_value());
    pid_t pid = 0;
    CO_ASSERT_TRUE(co_await eventually(
        [&] {
          std::ifstream in(pidfile);
          return static_cast<bool>(in >> pid) && pid > 0;
        },
        kWait));
    CO_ASSERT_TRUE(testing::process_alive(pid));
    client->reset();  // no shutdown()
    EXPECT_TRUE(co_await eventually([&] { return !testing::process_alive(pid); }, kWait))
        << "the server's background child outlived the client";
    EXPECT_TRUE(co_await gone(mark)) << "the server outlived the client";
  });
}

// --- 29: listings ---------------------------------------------------------------------------

TEST_P(McpClient, ListingsFollowCursorsAcrossPages) {
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto command = server({"--page-size", "2", "--extra-tools", "5", "--resources", "5"});
    auto client = co_await site.connect(command);
    CO_ASSERT_TRUE(ok(client));
    auto tools = co_await (*client)->list_tools();
    CO_ASSERT_TRUE(ok(tools));
    const auto names = names_of(*tools);
    EXPECT_EQ(names.size(), tools->size()) << "no tool listed twice";
    for (const auto* expected : {"echo", "sleep", "ask_elicitation", "ping_client", "filler_0",
                                 "filler_1", "filler_2", "filler_3", "filler_4"})
      EXPECT_TRUE(names.count(expected)) << "missing " << expected;
    EXPECT_EQ(tools->size(), 17u + 5u) << json::serialize(*tools);
    auto resources = co_await (*client)->list_resources();
    CO_ASSERT_TRUE(resources.has_value());
    CO_ASSERT_EQ(resources->size(), 5u);
    for (std::size_t i = 0; i < resources->size(); ++i)
      EXPECT_EQ((*resources)[i].at("uri"), json::value("test://resource/" + std::to_string(i)));
    auto templates = co_await (*client)->list_resource_templates();
    CO_ASSERT_TRUE(templates.has_value());
    EXPECT_EQ(names_of(*templates, "uriTemplate"), std::set<std::string>{"test://template/{id}"});
    auto prompts = co_await (*client)->list_prompts();
    CO_ASSERT_TRUE(prompts.has_value());
    EXPECT_EQ(names_of(*prompts), std::set<std::string>{"greet"});
    co_await (*client)->shutdown();
  });
}

TEST_P(McpClient, RepeatedCursorIsAnError) {
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto command = server({"--duplicate-cursor"});
    auto client = co_await site.connect(command);
    CO_ASSERT_TRUE(ok(client));
    auto tools = co_await (*client)->list_tools();
    CO_ASSERT_TRUE(!tools.has_value());
    EXPECT_EQ(tools.error().message, "tools/list returned duplicate cursor");
    auto pong = co_await (*client)->ping();
    EXPECT_TRUE(pong.has_value()) << "the session survives a bad listing";
    co_await (*client)->shutdown();
  });
}

struct ListChanges {
  std::vector<std::pair<ListKind, std::set<std::string>>> seen;
  bool has(ListKind kind, const std::string& name) const {
    for (const auto& [k, names] : seen)
      if (k == kind && names.count(name)) return true;
    return false;
  }
};

TEST_P(McpClient, ListChangedTriggersAFreshListing) {
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto changes = std::make_shared<ListChanges>();
    ClientOptions options;
    options.handlers.on_list_changed = [changes](ListKind kind, const json::array& items) {
      changes->seen.emplace_back(kind,
                                 names_of(items, kind == ListKind::resources ? "uri" : "name"));
    };
    auto command = server({"--page-size", "3"});
    auto client = co_await site.connect(command, std::move(options));
    CO_ASSERT_TRUE(ok(client));
    auto added = co_await (*client)->call_tool("add_tool", name_args("brand_new"));
    CO_ASSERT_TRUE(added.has_value());
    EXPECT_TRUE(
        co_await eventually([&] { return changes->has(ListKind::tools, "brand_new"); }, kWait))
        << "no fresh tools listing with the new tool";
    EXPECT_TRUE(changes->has(ListKind::tools, "echo")) << "the fresh listing is the full listing";
    auto resources = co_await (*client)->call_tool("notify_resources_changed", json::value());
    EXPECT_TRUE(resources.has_value());
    EXPECT_TRUE(co_await eventually(
        [&] { return changes->has(ListKind::resources, "test://resource/2"); }, kWait));
    auto prompts = co_await (*client)->call_tool("notify_prompts_changed", json::value());
    EXPECT_TRUE(prompts.has_value());
    EXPECT_TRUE(
        co_await eventually([&] { return changes->has(ListKind::prompts, "greet"); }, kWait));
    auto call = co_await (*client)->call_tool("brand_new", json::value());
    CO_ASSERT_TRUE(call.has_value());
    EXPECT_EQ(testing::first_text(*call), "called brand_new");
    co_await (*client)->shutdown();
  });
}

// --- 30: timeouts, cancellation, progress ---------------------------------------------------

TEST_P(McpClient, ToolTimeoutSendsCancelled) {
  run([&](McpSite& site) -> asio::awaitable<void> {
    ClientOptions options;
    options.tool_timeout = 300ms;
    auto command = server();
    auto client = co_await site.connect(command, std::move(options));
    CO_ASSERT_TRUE(ok(client));
    auto result = co_await (*client)->call_tool("sleep", sleep_args(10'000));
    CO_ASSERT_TRUE(!result.has_value());
    EXPECT_EQ(result.error().code, jsonrpc::code::kRequestTimedOut);
    EXPECT_EQ(result.error().message, "timed out awaiting tools/call after 300ms");
    EXPECT_TRUE(co_await eventually(
        [&] { return contains((*client)->stderr_tail(), "test server: cancelled request "); },
        kWait))
        << "the server saw no notifications/cancelled: " << (*client)->stderr_tail();
    auto pong = co_await (*client)->ping();
    EXPECT_TRUE(pong.has_value()) << "a timed-out call leaves the session usable";
    co_await (*client)->shutdown();
  });
}

// A caller that stops waiting (Asio cancellation: here the `||` a timer wins) cancels the
// request on the server as well.
asio::awaitable<void> sleep_call(std::shared_ptr<Client> client) {
  auto result = co_await client->call_tool("sleep", sleep_args(10'000));
  ADD_FAILURE() << "the call was not abandoned: " << (result ? "answered" : result.error().message);
}

TEST_P(McpClient, AnAbandonedCallIsCancelledOnTheServer) {
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto command = server();
    auto client = co_await site.connect(command);
    CO_ASSERT_TRUE(ok(client));
    auto call = sleep_call(*client);
    auto give_up = testing::sleep_for(300ms);
    co_await (std::move(call) || std::move(give_up));
    EXPECT_TRUE(co_await eventually(
        [&] { return contains((*client)->stderr_tail(), "test server: cancelled request "); },
        kWait))
        << "the server saw no notifications/cancelled: " << (*client)->stderr_tail();
    auto pong = co_await (*client)->ping();
    EXPECT_TRUE(pong.has_value()) << "an abandoned call leaves the session usable";
    co_await (*client)->shutdown();
  });
}

TEST_P(McpClient, ProgressResetsTheTimeoutOnlyWhenRequested) {
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto command = server();
    auto client = co_await site.connect(command);
    CO_ASSERT_TRUE(ok(client));
    // The call lasts 2.5 timeouts; progress every 100 ms keeps pushing the deadline out.
    auto progress = std::make_shared<std::vector<json::object>>();
    CallOptions with_progress;
    with_progress.timeout = 1000ms;
    with_progress.on_progress = [progress](const json::object& p) { progress->push_back(p); };
    auto result = co_await (*client)->call_tool("sleep", progress_sleep_args(2500, 100),
                                                std::move(with_progress));
    CO_ASSERT_TRUE(ok(result));
    EXPECT_EQ(testing::first_text(*result), "slept 2500");
    CO_ASSERT_TRUE(!progress->empty());
    EXPECT_TRUE(progress->back().contains("progress")) << json::serialize(progress->back());

    CallOptions without_progress;
    without_progress.timeout = 1000ms;
    auto expired = co_await (*client)->call_tool("sleep", progress_sleep_args(2500, 100),
                                                 std::move(without_progress));
    CO_ASSERT_TRUE(!expired.has_value());
    EXPECT_EQ(expired.error().message, "timed out awaiting tools/call after 1s");
    co_await (*client)->shutdown();
  });
}

// --- server requests ------------------------------------------------------------------------

struct SeenRequests {
  std::vector<json::value> roots, sampling, elicitation;
};

json::object roots_result() {
  return json::object{
      {"roots", json::array{json::object{{"uri", "file:///work/project"}, {"name", "project"}}}}};
}

asio::awaitable<jsonrpc::Reply> answer_roots(std::shared_ptr<SeenRequests> seen,
                                             json::value params) {
  seen->roots.push_back(std::move(params));
  co_return jsonrpc::Reply{json::value(roots_result())};
}

json::object sampling_result(const json::value& params) {
  const auto& text = params.at("messages").at(0).at("content").at("text").as_string();
  return json::object{
      {"role", "assistant"},
      {"content", json::object{{"type", "text"}, {"text", "sampled: " + std::string(text)}}},
      {"model", "test-model"},
      {"stopReason", "endTurn"}};
}

asio::awaitable<jsonrpc::Reply> answer_sampling(std::shared_ptr<SeenRequests> seen,
                                                json::value params) {
  seen->sampling.push_back(params);
  co_return jsonrpc::Reply{json::value(sampling_result(params))};
}

// The first elicitation is accepted with nothing filled in, the next with a name.
json::object elicitation_result(std::size_t nth) {
  json::object content;
  if (nth > 1) content["name"] = "Bob";
  return json::object{{"action", "accept"}, {"content", std::move(content)}};
}

asio::awaitable<jsonrpc::Reply> answer_elicitation(std::shared_ptr<SeenRequests> seen,
                                                   json::value params) {
  seen->elicitation.push_back(std::move(params));
  co_return jsonrpc::Reply{json::value(elicitation_result(seen->elicitation.size()))};
}

ClientHandlers handlers_for(const std::shared_ptr<SeenRequests>& seen) {
  ClientHandlers handlers;
  handlers.roots = [seen](json::value p) { return answer_roots(seen, std::move(p)); };
  handlers.sampling = [seen](json::value p) { return answer_sampling(seen, std::move(p)); };
  handlers.elicitation = [seen](json::value p) { return answer_elicitation(seen, std::move(p)); };
  return handlers;
}

TEST_P(McpClient, ServerRequestsReachTheHandlers) {
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto seen = std::make_shared<SeenRequests>();
    ClientOptions options;
    options.handlers = handlers_for(seen);
    auto command = server();
    auto client = co_await site.connect(command, std::move(options));
    CO_ASSERT_TRUE(ok(client));

    auto roots = co_await (*client)->call_tool("ask_roots", json::value());
    CO_ASSERT_TRUE(roots.has_value());
    EXPECT_FALSE(roots->contains("isError") && roots->at("isError") == true);
    EXPECT_EQ(text_json(*roots), json::value(roots_result()));
    EXPECT_EQ(seen->roots.size(), 1u);

    auto sampled = co_await (*client)->call_tool("ask_sampling", prompt_args("hi there"));
    CO_ASSERT_TRUE(sampled.has_value());
    const auto sample = text_json(*sampled);
    CO_ASSERT_TRUE(sample.is_object());
    EXPECT_EQ(sample.at("content").at("text"), "sampled: hi there") << json::serialize(sample);
    EXPECT_EQ(seen->sampling.size(), 1u);

    auto first = co_await (*client)->call_tool("ask_elicitation", json::value());
    CO_ASSERT_TRUE(first.has_value());
    const auto defaults = text_json(*first);
    CO_ASSERT_TRUE(defaults.is_object());
    EXPECT_EQ(defaults.at("action"), "accept");
    const json::object with_defaults{{"name", "Ada"}, {"count", 3}};
    EXPECT_EQ(defaults.at("content"), with_defaults)
        << "an empty accepted answer gets the schema defaults: " << json::serialize(defaults);
    auto second = co_await (*client)->call_tool("ask_elicitation", json::value());
    CO_ASSERT_TRUE(second.has_value());
    const json::object partly{{"name", "Bob"}, {"count", 3}};
    EXPECT_EQ(text_json(*second).at("content"), partly)
        << "given fields are kept: " << testing::first_text(*second);
    CO_ASSERT_EQ(seen->elicitation.size(), 2u);
    EXPECT_EQ(seen->elicitation[0].at("message"), "need input");

    auto pong = co_await (*client)->call_tool("ping_client", json::value());
    CO_ASSERT_TRUE(pong.has_value());
    EXPECT_EQ(testing::first_text(*pong), "pong");

    (*client)->notify_roots_changed();
    EXPECT_TRUE(co_await eventually(
        [&] { return contains((*client)->stderr_tail(), "test server: client roots changed"); },
        kWait))
        << (*client)->stderr_tail();
    co_await (*client)->shutdown();
  });
}

// A host callback that throws is contained: the notification is dropped with a log line, a
// handler's exception becomes an error answer, and the session goes on.
TEST_P(McpClient, HostCallbacksThatThrowDoNotBreakTheSession) {
  run([&](McpSite& site) -> asio::awaitable<void> {
    ClientOptions options;
    options.handlers.on_notification = [](const std::string&, const json::value&) {
      throw std::runtime_error("host bug in on_notification");
    };
    options.handlers.roots = [](json::value) -> asio::awaitable<jsonrpc::Reply> {
      throw std::runtime_error("host bug in roots");
      co_return json::value();
    };
    auto command = server();
    auto client = co_await site.connect(command, std::move(options));
    CO_ASSERT_TRUE(ok(client));
    auto logged = co_await (*client)->call_tool("log", log_args());
    EXPECT_TRUE(ok(logged));
    json::value no_args = json::object();
    auto roots = co_await (*client)->call_tool("ask_roots", std::move(no_args));
    CO_ASSERT_TRUE(ok(roots));
    EXPECT_TRUE(contains(json::serialize(*roots), "host bug in roots")) << json::serialize(*roots);
    auto pong = co_await (*client)->ping();
    EXPECT_TRUE(pong.has_value()) << "the session survives a throwing callback";
    co_await (*client)->shutdown();
  });
}

TEST_P(McpClient, ServerRequestsWithoutHandlersGetMethodNotFound) {
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto command = server();
    auto client = co_await site.connect(command);
    CO_ASSERT_TRUE(ok(client));
    const std::vector<std::string> tools{"ask_roots", "ask_sampling", "ask_elicitation"};
    for (const auto& tool : tools) {
      json::value args;
      if (tool == "ask_sampling") args = prompt_args("hi");
      auto result = co_await (*client)->call_tool(tool, std::move(args));
      CO_ASSERT_TRUE(result.has_value());
      EXPECT_EQ(result->at("isError"), true) << tool;
      const auto error = text_json(*result);
      CO_ASSERT_TRUE(error.is_object());
      EXPECT_EQ(error.at("code"), -32601) << tool << ": " << json::serialize(error);
    }
    auto pong = co_await (*client)->call_tool("ping_client", json::value());
    CO_ASSERT_TRUE(pong.has_value());
    EXPECT_EQ(testing::first_text(*pong), "pong") << "ping needs no handler";
    co_await (*client)->shutdown();
  });
}

// --- the rest of the client surface ---------------------------------------------------------

struct Notifications {
  std::vector<std::pair<std::string, json::value>> seen;
  const json::value* find(const std::string& method) const {
    for (const auto& [m, params] : seen)
      if (m == method) return &params;
    return nullptr;
  }
};

TEST_P(McpClient, ResourcesPromptsCompletionLoggingAndSubscriptions) {
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto notes = std::make_shared<Notifications>();
    ClientOptions options;
    options.handlers.on_notification = [notes](const std::string& method, const json::value& p) {
      notes->seen.emplace_back(method, p);
    };
    auto command = server();
    auto client = co_await site.connect(command, std::move(options));
    CO_ASSERT_TRUE(ok(client));
    EXPECT_EQ((*client)->protocol_version(), kProtocolVersion);
    EXPECT_EQ((*client)->handshake_result().at("serverInfo").at("name"), "tether-test-mcp-server");
    EXPECT_TRUE((*client)->server_capabilities().contains("tools"));
    EXPECT_FALSE((*client)->description().empty());

    auto read = co_await (*client)->read_resource("test://resource/1");
    CO_ASSERT_TRUE(ok(read));
    EXPECT_EQ(read->at("contents").at(0).at("text"), "content of resource 1");
    auto missing = co_await (*client)->read_resource("test://resource/99");
    CO_ASSERT_TRUE(!missing.has_value());
    EXPECT_EQ(missing.error().code, -32002);
    EXPECT_EQ(missing.error().message, "resource not found");

    json::object greet_args;
    greet_args["name"] = "Ada";
    auto prompt = co_await (*client)->get_prompt("greet", std::move(greet_args));
    CO_ASSERT_TRUE(prompt.has_value());
    EXPECT_EQ(prompt->at("messages").at(0).at("content").at("text"), "Hello, Ada!");

    auto completion = co_await (*client)->complete(completion_params());
    CO_ASSERT_TRUE(ok(completion));
    EXPECT_EQ(completion->at("completion").at("values"), (json::array{"alpha", "beta"}));

    auto level = co_await (*client)->set_logging_level("debug");
    EXPECT_TRUE(level.has_value());
    auto pong = co_await (*client)->ping();
    EXPECT_TRUE(pong.has_value());

    auto logged = co_await (*client)->call_tool("log", log_args());
    CO_ASSERT_TRUE(logged.has_value());
    EXPECT_TRUE(co_await eventually([&] { return notes->find("notifications/message") != nullptr; },
                                    kWait));
    if (const auto* message = notes->find("notifications/message")) {
      EXPECT_EQ(message->at("level"), "warning");
      EXPECT_EQ(message->at("data"), "disk almost full");
    }

    auto subscribed = co_await (*client)->subscribe("test://resource/0");
    EXPECT_TRUE(subscribed.has_value());
    EXPECT_TRUE(co_await eventually(
        [&] { return notes->find("notifications/resources/updated") != nullptr; }, kWait));
    if (const auto* updated = notes->find("notifications/resources/updated")) {
      EXPECT_EQ(updated->at("uri"), "test://resource/0");
    }
    auto unsubscribed = co_await (*client)->unsubscribe("test://resource/0");
    EXPECT_TRUE(unsubscribed.has_value());

    auto unknown = co_await (*client)->request("no/such/method", json::object{});
    CO_ASSERT_TRUE(!unknown.has_value());
    EXPECT_EQ(unknown.error().code, jsonrpc::code::kMethodNotFound);
    co_await (*client)->shutdown();
  });
}

TEST_P(McpClient, ToolResultsErrorsArgumentsLargeAndImageContent) {
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto command = server();
    auto client = co_await site.connect(command);
    CO_ASSERT_TRUE(ok(client));

    auto failed = co_await (*client)->call_tool("fail", json::value());
    CO_ASSERT_TRUE(ok(failed));
    EXPECT_EQ(failed->at("isError"), true);
    EXPECT_EQ(testing::first_text(*failed), "failed on purpose");

    auto bad = co_await (*client)->call_tool("echo", array_args());
    CO_ASSERT_TRUE(!bad.has_value());
    EXPECT_EQ(bad.error().message, "MCP tool arguments must be a JSON object, got array");
    auto text = co_await (*client)->call_tool("echo", json::value("text"));
    CO_ASSERT_TRUE(!text.has_value());
    EXPECT_EQ(text.error().message, "MCP tool arguments must be a JSON object, got string");

    auto unknown = co_await (*client)->call_tool("nope", json::value());
    CO_ASSERT_TRUE(!unknown.has_value());
    EXPECT_EQ(unknown.error().code, -32602);
    EXPECT_EQ(unknown.error().message, "unknown tool: nope");

    constexpr std::int64_t kLarge = std::int64_t{8} << 20;
    auto large = co_await (*client)->call_tool("large", bytes_args(kLarge));
    CO_ASSERT_TRUE(ok(large));
    const auto body = testing::first_text(*large);
    EXPECT_EQ(body.size(), static_cast<std::size_t>(kLarge));
    EXPECT_EQ(body.find_first_not_of('x'), std::string::npos) << "the large text arrived altered";

    auto image = co_await (*client)->call_tool("image", json::value());
    CO_ASSERT_TRUE(image.has_value());
    const auto& item = image->at("content").at(0).as_object();
    EXPECT_EQ(item.at("type"), "image");
    EXPECT_EQ(item.at("mimeType"), "image/png");
    EXPECT_TRUE(starts_with(std::string(item.at("data").as_string()), "iVBORw0KGgo"))
        << "base64 of a PNG signature: " << item.at("data");

    auto pong = co_await (*client)->ping();
    EXPECT_TRUE(pong.has_value()) << "the session survives all of the above";
    co_await (*client)->shutdown();
  });
}

TEST_P(McpClient, ASlowCallDoesNotBlockOthers) {
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto command = server();
    auto client = co_await site.connect(command);
    CO_ASSERT_TRUE(ok(client));
    auto slow = std::make_shared<Outcome>();
    asio::co_spawn(executor, call_into(*client, sleep_args(1500), slow), asio::detached);
    auto pong = co_await (*client)->ping();
    EXPECT_TRUE(pong.has_value());
    auto echoed = co_await (*client)->call_tool("echo", message_args("meanwhile"));
    CO_ASSERT_TRUE(ok(echoed));
    EXPECT_FALSE(slow->result.has_value()) << "the slow call finished first";
    EXPECT_TRUE(co_await eventually([&] { return slow->result.has_value(); }, kWait));
    if (slow->result) {
      CO_ASSERT_TRUE(ok(*slow->result));
      EXPECT_EQ(testing::first_text(**slow->result), "slept 1500");
    }
    co_await (*client)->shutdown();
  });
}

// Over 16 MiB: the executor launcher splits such a message over several process/write calls.
TEST_P(McpClient, LargeArgumentsArriveIntact) {
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto command = server();
    auto client = co_await site.connect(command);
    CO_ASSERT_TRUE(ok(client));
    const std::string big((std::size_t{17} << 20) + 3, 'y');
    auto echoed = co_await (*client)->call_tool("echo", message_args(big));
    CO_ASSERT_TRUE(ok(echoed));
    const auto text = testing::first_text(*echoed);
    EXPECT_EQ(text.size(), big.size());
    EXPECT_TRUE(text == big) << "the message came back altered";
    co_await (*client)->shutdown();
  });
}

// --- protocol version -----------------------------------------------------------------------

TEST_P(McpClient, OlderSupportedProtocolVersionIsAccepted) {
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto command = server({"--protocol-version", "2025-06-18"});
    auto client = co_await site.connect(command);
    CO_ASSERT_TRUE(ok(client));
    EXPECT_EQ((*client)->protocol_version(), "2025-06-18");
    auto tools = co_await (*client)->list_tools();
    EXPECT_TRUE(tools.has_value());
    co_await (*client)->shutdown();
  });
}

TEST_P(McpClient, UnsupportedProtocolVersionFailsAndEndsTheServer) {
  const auto mark = marker();
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto command = server({"--protocol-version", "1999-01-01"}, mark);
    auto client = co_await site.connect(command);
    CO_ASSERT_TRUE(!client.has_value());
    const auto& message = client.error().message;
    EXPECT_EQ(message.substr(0, message.find('\n')),
              "unsupported MCP protocol version '1999-01-01'")
        << message;
    EXPECT_TRUE(co_await gone(mark));
  });
}

// A session-revision server that ignores requests before initialize: the client's
// server/discover probe gets no answer, initialize follows after discover_timeout, and the era
// found is remembered so the next connect sends initialize first (no probe at all).
TEST_P(McpClient, ASilentLegacyServerIsReachedAfterTheDiscoverTimeoutAndRemembered) {
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto eras = std::make_shared<mcp::EraMemory>();
    mcp::ClientOptions options;
    options.discover_timeout = 200ms;
    options.eras = eras;
    options.era_key = "silent";
    auto command = server({"--silent-before-initialize"});
    auto client = co_await site.connect(command, options);
    CO_ASSERT_TRUE(ok(client));
    EXPECT_EQ((*client)->era(), mcp::ProtocolEra::legacy);
    EXPECT_EQ((*client)->protocol_version(), kProtocolVersion);
    EXPECT_NE((*client)->stderr_tail().find("ignoring server/discover before initialize"),
              std::string::npos)
        << (*client)->stderr_tail();
    EXPECT_EQ(eras->recall("silent"), std::optional<mcp::ProtocolEra>(mcp::ProtocolEra::legacy));
    co_await (*client)->shutdown();

    // Remembered: initialize goes first, and a long discover_timeout costs nothing.
    options.discover_timeout = 60s;
    auto again = co_await site.connect(command, options);
    CO_ASSERT_TRUE(ok(again));
    EXPECT_EQ((*again)->era(), mcp::ProtocolEra::legacy);
    EXPECT_EQ((*again)->stderr_tail().find("server/discover"), std::string::npos)
        << (*again)->stderr_tail();
    co_await (*again)->shutdown();
  });
}

// --- shutdown -------------------------------------------------------------------------------

TEST_P(McpClient, ShutdownFailsPendingCallsAndLeavesNothingRunning) {
  const auto mark = marker();
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto closed = std::make_shared<bool>(false);
    ClientOptions options;
    options.handlers.on_closed = [closed](const std::string&) { *closed = true; };
    auto command = server({}, mark);
    auto client = co_await site.connect(command, std::move(options));
    CO_ASSERT_TRUE(ok(client));
    EXPECT_EQ(processes_matching(mark).size(), 1u);
    auto outcome = std::make_shared<Outcome>();
    asio::co_spawn(executor, call_into(*client, sleep_args(30'000), outcome), asio::detached);
    co_await testing::sleep_for(100ms);  // let the call reach the server (not required)
    co_await (*client)->shutdown();
    EXPECT_TRUE((*client)->is_closed());
    EXPECT_TRUE(co_await gone(mark)) << "the server outlived shutdown()";
    EXPECT_TRUE(co_await eventually([&] { return outcome->result.has_value(); }, kWait));
    if (outcome->result) {
      CO_ASSERT_TRUE(!outcome->result->has_value());
      EXPECT_EQ(outcome->result->error().code, jsonrpc::code::kConnectionClosed);
    }
    EXPECT_FALSE(*closed) << "on_closed is for sessions that end by themselves";
    co_await (*client)->shutdown();  // idempotent
    auto after = co_await (*client)->ping();
    CO_ASSERT_TRUE(!after.has_value());
    EXPECT_EQ(after.error().code, jsonrpc::code::kConnectionClosed);
  });
}

TEST_P(McpClient, ShutdownReturnsOnlyOnceTheServerIsGone) {
  const auto mark = marker();
  run([&](McpSite& site) -> asio::awaitable<void> {
    auto command = server({}, mark);
    auto client = co_await site.connect(command);
    CO_ASSERT_TRUE(ok(client));
    EXPECT_EQ(processes_matching(mark).size(), 1u);
    co_await (*client)->shutdown();
    EXPECT_TRUE(processes_matching(mark).empty()) << "shutdown() returned with the server running";
  });
}

INSTANTIATE_TEST_SUITE_P(Placements, McpClient,
                         ::testing::Values(McpPlacement::local, McpPlacement::executor),
                         testing::placement_name);

}  // namespace
}  // namespace tether::mcp
