// host::Manager with real servers in both placements (a child of this test, or of a `tether
// exec-server` the manager spawns from a `spawn = true` environment): acceptance scenarios 34
// (concurrent startup), 35 (required), 36 (filtering and qualified names at the manager), 37
// (listing resolves placement as a session does), 42 (restart without replay, crash loop), the
// user-facing startup failure texts, cancellation and shutdown. Configs are TOML text through
// parse_config, as a user writes them.
// Does not own: config validation (config_test.cpp), placement rules in isolation
// (server_launch_test.cpp), MCP client behaviour (tests/mcp).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "build_paths.hpp"
#include "exec_server.hpp"
#include "mcp_fixtures.hpp"
#include <tether/host/config_edit.hpp>
#include <tether/host/manager.hpp>
#include <tether/host/tool_names.hpp>

namespace tether::host {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;
using testing::McpPlacement;
using testing::ok;

const char* const kServer = testing::test_mcp_server();
constexpr auto kWait = 10s;

std::string toml_array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const auto& item : items)
    out += (out.size() > 1 ? ", " : "") + host::toml_basic_string(item);
  return out + "]";
}

// A fresh directory under the temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir()
      : path_(std::filesystem::temp_directory_path() / testing::unique_marker("manager-test")) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Tool arguments, built outside co_await expressions (GCC 12 mishandles braced JSON there).
json::value message_args(const std::string& text) {
  return json::object{{"message", text}};
}
json::value counter_args(const std::string& file, bool crash_after) {
  return json::object{{"file", file}, {"crash_after", crash_after}};
}

std::size_t line_count(const std::string& path) {
  std::ifstream in(path);
  std::size_t lines = 0;
  for (std::string line; std::getline(in, line);) ++lines;
  return lines;
}

std::vector<std::string> names_of(const std::vector<OfferedTool>& tools) {
  std::vector<std::string> names;
  for (const auto& tool : tools) names.push_back(tool.name);
  std::sort(names.begin(), names.end());
  return names;
}

// Spawned environments run the tether under test; restarts wait milliseconds, not seconds.
ManagerOptions test_options() {
  ManagerOptions options;
  options.tether_binary = testing::tether_binary();
  options.restart_backoff = 10ms;
  options.restart_backoff_max = 50ms;
  return options;
}

// The status events a manager reported, in order (it must outlive the manager).
struct StatusLog {
  std::vector<ServerStatus> events;
  ManagerOptions options() {
    auto options = test_options();
    options.on_status = [this](const ServerStatus& status) { events.push_back(status); };
    return options;
  }
  std::vector<ServerState> of(const std::string& server) const {
    std::vector<ServerState> out;
    for (const auto& event : events)
      if (event.server == server) out.push_back(event.state);
    return out;
  }
};

class ManagerTest : public ::testing::TestWithParam<McpPlacement> {
 protected:
  std::string marker() {
    auto marker = testing::unique_marker("manager-test");
    reaper_.add(marker);
    return marker;
  }
  // The placement line a server table needs for this test's placement.
  std::string placement_line() const {
    return GetParam() == McpPlacement::executor ? "environment = \"loop\"\n" : "";
  }
  // `[mcp_servers.<name>]` running `program args...`, placed per the test parameter.
  std::string server(const std::string& name, const std::string& program,
                     const std::vector<std::string>& args, const std::string& extra = "") const {
    return "[mcp_servers." + name + "]\ncommand = " + host::toml_basic_string(program) +
           "\nargs = " + toml_array(args) + "\n" + placement_line() + extra + "\n";
  }
  // The test server, its command line carrying a fresh marker.
  std::string test_server(const std::string& name, std::vector<std::string> flags = {},
                          const std::string& extra = "") {
    flags.insert(flags.begin(), {"--stderr-line", marker()});
    return server(name, kServer, flags, extra);
  }
  // A shell script server (`sh -c script`), its command line carrying a fresh marker.
  std::string script_server(const std::string& name, const std::string& script,
                            const std::string& extra = "") {
    return server(name, "/bin/sh", {"-c", script + " # " + marker()}, extra);
  }
  static Config config_of(const std::string& servers) {
    const std::string text = "[environments.loop]\nspawn = true\n\n" + servers;
    auto config = parse_config({text, "config.toml"});
    EXPECT_TRUE(config.has_value()) << (config ? "" : config.error().message) << "\n" << text;
    return config ? *config : Config{};
  }

  // Runs `body` with a manager for `servers`, then shuts it down (also when the body left early).
  void with_manager(const std::string& servers, ManagerOptions options,
                    const std::function<asio::awaitable<void>(Manager&)>& body,
                    std::chrono::milliseconds deadline = 60s) {
    auto config = config_of(servers);
    testing::run_async(
        [&]() -> asio::awaitable<void> {
          auto manager =
              Manager::create(co_await asio::this_coro::executor, config, std::move(options));
          co_await body(*manager);
          co_await manager->shutdown();
        },
        deadline);
  }

  void TearDown() override { reaper_.expect_none_left(kWait); }
  testing::MarkerReaper reaper_;
};

INSTANTIATE_TEST_SUITE_P(Placements, ManagerTest,
                         ::testing::Values(McpPlacement::local, McpPlacement::executor),
                         testing::placement_name);

// --- 34: concurrent startup ------------------------------------------------------------------

TEST_P(ManagerTest, StartsServersConcurrently) {
  // Each server waits, before it even answers initialize, until all four have been launched:
  // a manager starting them one after another would never get past the first.
  TempDir dir;
  std::string servers;
  for (int i = 0; i < 4; ++i) {
    const auto name = "slow" + std::to_string(i);
    const auto script = "touch '" + dir.file(name) + "'; while [ $(ls '" + dir.file("") +
                        "' | wc -l) -lt 4 ]; do sleep 0.01; done; exec '" + kServer +
                        "' --initialize-delay-ms 1000";
    servers += script_server(name, script, "startup_timeout_sec = 20\n");
  }
  StatusLog log;
  with_manager(servers, log.options(), [&](Manager& manager) -> asio::awaitable<void> {
    auto summary = co_await manager.start();
    CO_ASSERT_TRUE(ok(summary));
    EXPECT_EQ(summary->ready, (std::vector<std::string>{"slow0", "slow1", "slow2", "slow3"}));
    EXPECT_TRUE(summary->failed.empty());
    for (int i = 0; i < 4; ++i)
      EXPECT_EQ(log.of("slow" + std::to_string(i)),
                (std::vector<ServerState>{ServerState::starting, ServerState::ready}));
  });
}

// --- 35: required ----------------------------------------------------------------------------

TEST_P(ManagerTest, RequiredServerFailureAbortsStartup) {
  const auto servers = test_server("good") +
                       test_server("bad", {"--exit-during-initialize"}, "required = true\n") +
                       test_server("flaky", {"--exit-during-initialize"});
  with_manager(servers, test_options(), [&](Manager& manager) -> asio::awaitable<void> {
    auto summary = co_await manager.start();
    CO_ASSERT_TRUE(!summary);
    const auto& message = summary.error().message;
    EXPECT_TRUE(
        message.starts_with("required MCP servers failed to initialize: bad: MCP client "
                            "for 'bad' failed to start: handshaking with MCP server "
                            "failed: "))
        << message;
    EXPECT_EQ(message.find("flaky"), std::string::npos) << message;
  });
}

TEST_P(ManagerTest, OptionalFailuresLeaveTheOthersUsable) {
  const auto servers = test_server("good") + test_server("bad", {"--exit-during-initialize"});
  with_manager(servers, test_options(), [&](Manager& manager) -> asio::awaitable<void> {
    auto summary = co_await manager.start();
    CO_ASSERT_TRUE(ok(summary));
    EXPECT_EQ(summary->ready, std::vector<std::string>{"good"});
    CO_ASSERT_EQ(summary->failed.size(), 1u);
    EXPECT_EQ(summary->failed[0].server, "bad");
    EXPECT_TRUE(summary->failed[0].error.starts_with(
        "MCP client for 'bad' failed to start: handshaking with MCP server failed: "))
        << summary->failed[0].error;
    auto echoed = co_await manager.call_tool("good", "echo", message_args("hi"));
    CO_ASSERT_TRUE(ok(echoed));
    EXPECT_NE(testing::first_text(*echoed).find("hi"), std::string::npos);
  });
}

TEST_P(ManagerTest, StartupTimeoutSaysWhichSettingToChange) {
  const auto servers = test_server("slow", {"--never-initialize"}, "startup_timeout_sec = 0.5\n");
  StatusLog log;
  with_manager(servers, log.options(), [&](Manager& manager) -> asio::awaitable<void> {
    auto summary = co_await manager.start();
    CO_ASSERT_TRUE(ok(summary));
    CO_ASSERT_EQ(summary->failed.size(), 1u);
    EXPECT_EQ(summary->failed[0].error,
              "MCP client for 'slow' timed out after 0.5 seconds. Add or adjust "
              "'startup_timeout_sec' in your config: [mcp_servers.slow] startup_timeout_sec = XX");
    EXPECT_EQ(log.of("slow"),
              (std::vector<ServerState>{ServerState::starting, ServerState::failed}));
  });
}

// --- 36: filtering and qualified names -------------------------------------------------------

TEST_P(ManagerTest, FiltersToolsAtListingAndAtCallTime) {
  const auto servers = test_server("srv", {}, R"(enabled_tools = ["echo", "env", "cwd"]
disabled_tools = ["env"]
)");
  with_manager(servers, test_options(), [&](Manager& manager) -> asio::awaitable<void> {
    CO_ASSERT_TRUE(ok(co_await manager.start()));
    EXPECT_EQ(names_of(manager.tools()),
              (std::vector<std::string>{"mcp__srv__cwd", "mcp__srv__echo"}));
    auto listed = co_await manager.tools("srv");
    CO_ASSERT_TRUE(ok(listed));
    EXPECT_EQ(listed->size(), 2u);
    EXPECT_EQ(manager.servers()[0].tools, std::optional<std::size_t>{2});

    for (const char* refused : {"env", "crash"}) {
      auto call = co_await manager.call_tool("srv", refused, json::object{});
      CO_ASSERT_TRUE(!call);
      EXPECT_EQ(call.error().message,
                std::string("tool '") + refused + "' is disabled for MCP server 'srv'");
    }
    // The server is still there: the refused crash never reached it.
    auto by_name = co_await manager.call_tool("mcp__srv__echo", message_args("q"));
    CO_ASSERT_TRUE(ok(by_name));
    EXPECT_NE(testing::first_text(*by_name).find("q"), std::string::npos);
    auto unknown = co_await manager.call_tool("mcp__srv__nope", json::object{});
    CO_ASSERT_TRUE(!unknown);
    EXPECT_EQ(unknown.error().message, "unknown tool 'mcp__srv__nope'");
  });
}

TEST_P(ManagerTest, QualifiedNamesAreUniqueBoundedAndStable) {
  // `a-b` and `a_b` sanitize alike; a 60-character server name overflows 64 bytes.
  const std::string long_name(60, 'x');
  const std::string first = test_server("a-b") + test_server("a_b");
  const std::string second = test_server(long_name) + test_server("a_b") + test_server("a-b");
  std::vector<std::string> run1;
  std::vector<std::string> run2;
  auto collect = [&](std::vector<std::string>& into) {
    return [&into](Manager& manager) -> asio::awaitable<void> {
      CO_ASSERT_TRUE(ok(co_await manager.start()));
      into = names_of(manager.tools());
      // Every qualified name routes back to its own server.
      for (const auto& tool : manager.tools()) {
        if (tool.tool.at("name").as_string() != "cwd") continue;
        auto call = co_await manager.call_tool(tool.name, json::object{});
        EXPECT_TRUE(ok(call)) << tool.name;
      }
    };
  };
  with_manager(first, test_options(), collect(run1));
  with_manager(second, test_options(), collect(run2));
  for (const auto& name : run2) {
    EXPECT_LE(name.size(), host::kMaxQualifiedToolNameBytes) << name;
    EXPECT_EQ(
        name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"),
        std::string::npos)
        << name;
  }
  EXPECT_EQ(std::set<std::string>(run2.begin(), run2.end()).size(), run2.size());
  // The a-b / a_b names do not depend on the order or on the other servers.
  std::vector<std::string> shared;
  std::copy_if(run2.begin(), run2.end(), std::back_inserter(shared),
               [](const std::string& name) { return name.starts_with("mcp__a_b__"); });
  EXPECT_EQ(shared, run1);
}

// --- 42: restart without replay, crash loop --------------------------------------------------

TEST_P(ManagerTest, CrashAfterReadyFailsTheCallWithoutReplayAndRestartsOnNextUse) {
  TempDir dir;
  const auto counter = dir.file("counter");
  StatusLog log;
  with_manager(test_server("srv"), log.options(), [&](Manager& manager) -> asio::awaitable<void> {
    CO_ASSERT_TRUE(ok(co_await manager.start()));
    auto crashed = co_await manager.call_tool("srv", "counter", counter_args(counter, true));
    CO_ASSERT_TRUE(!crashed);
    EXPECT_NE(crashed.error().message.find("exited with code 9"), std::string::npos)
        << crashed.error().message;
    EXPECT_EQ(manager.servers()[0].state, ServerState::failed);
    EXPECT_NE(manager.servers()[0].error.find("crashing after the counter side effect"),
              std::string::npos)
        << manager.servers()[0].error;
    // Ran once, not replayed.
    EXPECT_EQ(testing::read_text_file(counter), "1\n");

    auto again = co_await manager.call_tool("srv", "counter", counter_args(counter, false));
    CO_ASSERT_TRUE(ok(again));
    EXPECT_EQ(testing::first_text(*again), "2");
    EXPECT_EQ(log.of("srv"), (std::vector<ServerState>{ServerState::starting, ServerState::ready,
                                                       ServerState::failed, ServerState::starting,
                                                       ServerState::ready}));
  });
}

TEST_P(ManagerTest, ServerThatDiesOnEveryStartIsCrashLooping) {
  TempDir dir;
  const auto starts = dir.file("starts");
  const auto servers = script_server(
      "doomed", "echo start >> '" + starts + "'; exec '" + kServer + "' --crash-on-start");
  with_manager(servers, test_options(), [&](Manager& manager) -> asio::awaitable<void> {
    auto summary = co_await manager.start();
    CO_ASSERT_TRUE(ok(summary));
    EXPECT_EQ(summary->failed.size(), 1u);
    std::string last;
    for (int use = 0; use < 6; ++use) {
      auto call = co_await manager.call_tool("doomed", "echo", message_args("x"));
      CO_ASSERT_TRUE(!call);
      last = call.error().message;
    }
    EXPECT_EQ(line_count(starts), 5u);
    EXPECT_TRUE(
        last.starts_with("MCP server 'doomed' is crash-looping: MCP client for 'doomed' "
                         "failed to start: handshaking with MCP server failed: "))
        << last;
    EXPECT_EQ(manager.servers()[0].error, last);

    // The user restarts it: one more start.
    auto restarted = co_await manager.restart("doomed");
    EXPECT_FALSE(restarted.has_value());
    EXPECT_EQ(line_count(starts), 6u);
  });
}

TEST_P(ManagerTest, RestartWhileInUseNeverHandsOutAnEndedSession) {
  TempDir dir;
  const auto counter = dir.file("counter");
  with_manager(test_server("srv"), test_options(), [&](Manager& manager) -> asio::awaitable<void> {
    CO_ASSERT_TRUE(ok(co_await manager.start()));
    auto executor = co_await asio::this_coro::executor;
    // Two restarts and calls race; each call either runs on a live session or fails cleanly.
    int done = 0;
    for (int i = 0; i < 2; ++i) {
      asio::co_spawn(
          executor,
          [&]() -> asio::awaitable<void> {
            EXPECT_TRUE(ok(co_await manager.restart("srv")));
            ++done;
          },
          asio::detached);
      asio::co_spawn(
          executor,
          [&]() -> asio::awaitable<void> {
            auto call = co_await manager.call_tool("srv", "counter", counter_args(counter, false));
            if (!call) {
              EXPECT_NE(call.error().message, "") << "an error must say why";
            }
            ++done;
          },
          asio::detached);
    }
    CO_ASSERT_TRUE(co_await testing::eventually([&] { return done == 4; }, kWait));
    EXPECT_EQ(manager.servers()[0].state, ServerState::ready);
    auto after = co_await manager.call_tool("srv", "cwd", json::value(json::object()));
    EXPECT_TRUE(ok(after));
  });
}

// --- cancellation and shutdown ---------------------------------------------------------------

TEST_P(ManagerTest, CancelledStartupEndsTheServer) {
  const auto mark = marker();
  const auto servers = server("slow", kServer, {"--stderr-line", mark, "--never-initialize"});
  StatusLog log;
  with_manager(servers, log.options(), [&](Manager& manager) -> asio::awaitable<void> {
    std::optional<Expected<StartupSummary>> summary;
    asio::co_spawn(
        co_await asio::this_coro::executor,
        [&]() -> asio::awaitable<void> { summary = co_await manager.start(); }, asio::detached);
    CO_ASSERT_TRUE(co_await testing::eventually(
        [&] { return !testing::processes_matching(mark).empty(); }, kWait));
    manager.cancel_startup();
    CO_ASSERT_TRUE(co_await testing::eventually([&] { return summary.has_value(); }, kWait));
    CO_ASSERT_TRUE(ok(*summary));
    EXPECT_EQ((*summary)->cancelled, std::vector<std::string>{"slow"});
    EXPECT_EQ(manager.servers()[0].state, ServerState::cancelled);
    EXPECT_TRUE(co_await testing::eventually(
        [&] { return testing::processes_matching(mark).empty(); }, kWait));
  });
}

TEST_P(ManagerTest, ShutdownEndsEveryServerAndLaterUsesFail) {
  // `grand` leaves a grandchild (a shell sleeping, the marker its $0) that must go too.
  const auto servers = test_server("one") + test_server("two") +
                       script_server("grand", "sh -c 'sleep 300; true' " + marker() + " & exec '" +
                                                  std::string(kServer) + "'");
  with_manager(servers, test_options(), [&](Manager& manager) -> asio::awaitable<void> {
    auto summary = co_await manager.start();
    CO_ASSERT_TRUE(ok(summary));
    EXPECT_EQ(summary->ready.size(), 3u);
    co_await manager.shutdown();
    auto late = co_await manager.call_tool("one", "echo", message_args("x"));
    CO_ASSERT_TRUE(!late);
    EXPECT_EQ(late.error().message, "the MCP servers are shut down");
  });
}

TEST_P(ManagerTest, DisabledServersNeverStart) {
  TempDir dir;
  const auto touched = dir.file("touched");
  const auto servers =
      script_server("off", "touch '" + touched + "'; exec '" + kServer + "'", "enabled = false\n");
  with_manager(servers, test_options(), [&](Manager& manager) -> asio::awaitable<void> {
    auto summary = co_await manager.start();
    CO_ASSERT_TRUE(ok(summary));
    EXPECT_TRUE(summary->ready.empty() && summary->failed.empty());
    EXPECT_EQ(manager.servers()[0].state, ServerState::disabled);
    auto call = co_await manager.call_tool("off", "echo", message_args("x"));
    CO_ASSERT_TRUE(!call);
    EXPECT_EQ(call.error().message, "MCP server 'off' is disabled");
    EXPECT_FALSE(std::filesystem::exists(touched));
  });
}

// --- 37 and 27: placement as listed is placement as launched ---------------------------------

class ManagerPlacementTest : public ::testing::Test {
 protected:
  void TearDown() override { reaper_.expect_none_left(kWait); }
  testing::MarkerReaper reaper_;
};

TEST_F(ManagerPlacementTest, ListingResolvesPlacementAsTheLaunchDoes) {
  TempDir dir;
  const auto here = testing::unique_marker("manager-here");
  const auto there = testing::unique_marker("manager-there");
  const auto far = testing::unique_marker("manager-far");
  for (const auto& m : {here, there, far}) reaper_.add(m);
  const auto touched = dir.file("far-touched");
  const std::string text =
      "default_environment = \"loop\"\n[environments.loop]\nspawn = true\n\n" +
      std::string("[mcp_servers.here]\ncommand = ") + host::toml_basic_string(kServer) +
      "\nargs = [\"--stderr-line\", " + host::toml_basic_string(here) + "]\n\n" +
      "[mcp_servers.there]\ncommand = " + host::toml_basic_string(kServer) +
      "\nargs = [\"--stderr-line\", " + host::toml_basic_string(there) +
      "]\nexperimental_environment = \"remote\"\n\n" +
      "[mcp_servers.nowhere]\ncommand = \"/bin/sh\"\nargs = [\"-c\", " +
      host::toml_basic_string("touch '" + touched + "' # " + far) + "]\nenvironment = \"gpu\"\n\n" +
      "[mcp_servers.web]\nurl = \"http://127.0.0.1:9/mcp\"\n"
      "environment = \"loop\"\n";
  auto config = parse_config({text, "config.toml"});
  ASSERT_TRUE(config.has_value()) << config.error().message;
  auto options = test_options();
  testing::run_async([&]() -> asio::awaitable<void> {
    auto manager = Manager::create(co_await asio::this_coro::executor, *config, options);
    auto listed = manager->servers();
    CO_ASSERT_EQ(listed.size(), 4u);
    EXPECT_EQ(listed[0].placement, "local");
    EXPECT_EQ(listed[1].placement, "loop: spawned on loopback");
    EXPECT_EQ(listed[1].environment_id, "loop");
    EXPECT_FALSE(listed[2].placement_ok);
    EXPECT_EQ(listed[2].placement, "unknown environment 'gpu' for MCP server 'nowhere'");
    EXPECT_TRUE(listed[3].placement_ok);
    EXPECT_EQ(listed[3].placement, "loop: spawned on loopback");

    auto summary = co_await manager->start();
    CO_ASSERT_TRUE(ok(summary));
    EXPECT_EQ(summary->ready, (std::vector<std::string>{"here", "there"}));
    CO_ASSERT_EQ(summary->failed.size(), 2u);
    EXPECT_EQ(summary->failed[0].error,
              "MCP client for 'nowhere' failed to start: unknown environment 'gpu' for MCP "
              "server 'nowhere'");
    // The executor tried the URL (nothing listens there) and said so.
    EXPECT_NE(summary->failed[1].error.find("could not connect to 127.0.0.1:9"), std::string::npos)
        << summary->failed[1].error;
    // Where they really run: `here` is our child, `there` the spawned executor's.
    auto here_pids = testing::processes_matching(here);
    auto there_pids = testing::processes_matching(there);
    CO_ASSERT_EQ(here_pids.size(), 1u);
    CO_ASSERT_EQ(there_pids.size(), 1u);
    EXPECT_EQ(testing::spawner_of(here_pids[0]), ::getpid());
    const auto executor_pid = testing::spawner_of(there_pids[0]);
    EXPECT_NE(executor_pid, ::getpid());
    EXPECT_EQ(testing::spawner_of(executor_pid), ::getpid());
    EXPECT_FALSE(std::filesystem::exists(touched));
    co_await manager->shutdown();
  });
}

TEST_F(ManagerPlacementTest, HttpServerWithoutItsBearerTokenFailsBeforeConnecting) {
  const std::string text =
      "[mcp_servers.web]\nurl = \"http://127.0.0.1:9/mcp\"\n"
      "bearer_token_env_var = \"TETHER_TEST_UNSET_TOKEN\"\n";
  auto config = parse_config({text, "config.toml"});
  ASSERT_TRUE(config.has_value()) << config.error().message;
  auto options = test_options();
  options.env = [](std::string_view name) -> std::optional<std::string> {
    return name == "TETHER_TEST_UNSET_TOKEN" ? std::nullopt : process_env(name);
  };
  testing::run_async([&]() -> asio::awaitable<void> {
    auto manager = Manager::create(co_await asio::this_coro::executor, *config, options);
    EXPECT_EQ(manager->servers()[0].placement, "local");
    auto summary = co_await manager->start();
    CO_ASSERT_TRUE(ok(summary));
    CO_ASSERT_EQ(summary->failed.size(), 1u);
    EXPECT_EQ(summary->failed[0].error,
              "MCP client for 'web' failed to start: bearer_token_env_var "
              "TETHER_TEST_UNSET_TOKEN for MCP server 'web' is not set");
    co_await manager->shutdown();
  });
}

TEST_F(ManagerPlacementTest, RemoteWithoutAnExecutorStartsNothing) {
  TempDir dir;
  const auto mark = testing::unique_marker("manager-remote");
  reaper_.add(mark);
  const auto touched = dir.file("touched");
  const std::string text =
      "[environments.loop]\nspawn = true\n\n[mcp_servers.far]\n"
      "command = \"/bin/sh\"\nargs = [\"-c\", " +
      host::toml_basic_string("touch '" + touched + "' # " + mark) +
      "]\nexperimental_environment = \"remote\"\n";
  auto config = parse_config({text, "config.toml"});
  ASSERT_TRUE(config.has_value()) << config.error().message;
  // TETHER_EXEC_SERVER_URL=none disables remote placement even with environments defined.
  for (std::optional<std::string> url :
       {std::optional<std::string>{}, std::optional<std::string>{"none"}}) {
    auto options = test_options();
    options.env = [url](std::string_view name) -> std::optional<std::string> {
      if (name == "TETHER_EXEC_SERVER_URL") return url;
      return process_env(name);
    };
    testing::run_async([&]() -> asio::awaitable<void> {
      auto manager = Manager::create(co_await asio::this_coro::executor, *config, options);
      EXPECT_EQ(manager->servers()[0].placement,
                "remote MCP server 'far' requires a remote executor environment");
      auto summary = co_await manager->start();
      CO_ASSERT_TRUE(ok(summary));
      CO_ASSERT_EQ(summary->failed.size(), 1u);
      EXPECT_EQ(summary->failed[0].error,
                "MCP client for 'far' failed to start: remote MCP server 'far' requires a remote "
                "executor environment");
      // A config problem: using it again fails at once, still starting nothing.
      auto call = co_await manager->call_tool("far", "echo", json::object{});
      EXPECT_FALSE(call.has_value());
      co_await manager->shutdown();
    });
    EXPECT_FALSE(std::filesystem::exists(touched));
  }
}

}  // namespace
}  // namespace tether::host
