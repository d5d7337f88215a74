// End-to-end tests of `tether mcp serve`: the real binary as a child of this test, spoken to over
// its stdin/stdout by the official TypeScript SDK client (sdk_client.mjs under Node) and by
// tether's own mcp::Client, with the project's test server placed locally and on a spawned
// executor. Checked: what a host sees through the gateway, a server dying during a call (reported,
// never replayed, restarted on the next call), every way the gateway ends (stdin EOF, SIGTERM,
// its parent's death) ending every server, and the startup failures that exit 3.
// The census: this test process is a child subreaper, so whatever the gateway leaves behind is
// re-parented here; the servers' command lines carry a unique marker (`--stderr-line <marker>`)
// so that servers running under an executor are found too.
// The gateway runs uncontained (SpawnOptions::contain false; not mcp::launch_local, whose
// supervisor would end the gateway's leftovers itself and hide them from the census).
#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "build_paths.hpp"
#include "exec_server.hpp"
#include "mcp_fixtures.hpp"
#include "npm_peers.hpp"
#include <tether/mcp/client.hpp>
#include <tether/process/child.hpp>

namespace tether::gateway {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using testing::McpPlacement;

const char* const kServer = testing::test_mcp_server();
// A spawned executor (`tether exec-server` started by the gateway itself), as servers with
// `environment = "sandbox"` use it.
const char* const kSandbox = "[environments.sandbox]\nspawn = true\n\n";

// What a child wrote on one stream, and whether that stream has ended.
struct Output {
  std::string text;
  bool ended = false;
};

// `owner` keeps `stream` alive while it is read.
asio::awaitable<void> drain(std::shared_ptr<process::Child> /*owner*/,
                            asio::posix::stream_descriptor* stream, std::shared_ptr<Output> into) {
  // A named local, not a temporary in the co_await expression: GCC 12 destroys that twice.
  const std::function<void(std::string_view)> append = [into](std::string_view line) {
    into->text.append(line);
    into->text.push_back('\n');
  };
  co_await process::read_lines(*stream, append);
  into->ended = true;
}

// A child of the test: the gateway, the shell around it, or Node.
struct Running {
  std::shared_ptr<process::Child> child;
  std::shared_ptr<Output> out = std::make_shared<Output>();
  std::shared_ptr<Output> err = std::make_shared<Output>();
};

// Starts `argv` uncontained with stdin a pipe (or /dev/null); stderr is drained, and stdout too
// unless the test speaks MCP on it. nullopt (a test failure) when it did not start.
std::optional<Running> start(const asio::any_io_executor& executor, std::vector<std::string> argv,
                             std::vector<std::string> env, bool speak_on_stdio,
                             process::StdinMode stdin_mode = process::StdinMode::pipe) {
  process::SpawnOptions options;
  options.argv = std::move(argv);
  options.env = std::move(env);
  options.stdin_mode = stdin_mode;
  options.contain = false;  // only the gateway's own mechanisms may end what it started
  auto child = process::Child::spawn(executor, options);
  if (!child) {
    ADD_FAILURE() << "cannot start " << options.argv.front() << ": " << child.error().message;
    return std::nullopt;
  }
  Running running{*child};
  asio::co_spawn(executor, drain(running.child, running.child->stderr_stream(), running.err),
                 asio::detached);
  if (speak_on_stdio) {
    running.out->ended = true;  // the transport owns stdout
  } else {
    asio::co_spawn(executor, drain(running.child, running.child->stdout_stream(), running.out),
                   asio::detached);
  }
  return running;
}

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

// The child's exit status once it exited by itself within `bound` and its drained streams
// ended; nullopt when it did not exit: a test failure naming `what` with its stderr, and the
// child is killed.
asio::awaitable<std::optional<process::ExitStatus>> exit_of(Running& running,
                                                            std::chrono::seconds bound,
                                                            const char* what) {
  asio::steady_timer deadline(co_await asio::this_coro::executor, bound);
  auto ended = co_await (running.child->wait() || deadline.async_wait(asio::use_awaitable));
  if (ended.index() == 1) {
    ADD_FAILURE() << what << " did not exit within " << bound.count() << " s; stderr so far:\n"
                  << running.err->text;
    running.child->signal_group(SIGKILL);
    co_await running.child->wait();
    co_return std::nullopt;
  }
  const std::function<bool()> streams_ended = [&running] {
    return running.out->ended && running.err->ended;
  };
  EXPECT_TRUE(co_await testing::eventually(streams_ended, 10s))
      << what << ": its output streams stayed open after it exited";
  co_return std::get<0>(ended);
}

std::vector<std::string> names_of(const json::array& items) {
  std::vector<std::string> names;
  for (const auto& item : items)
    if (const auto* name = item.as_object().if_contains("name"); name && name->is_string())
      names.emplace_back(name->get_string());
  return names;
}

bool contains(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool contains(const json::value& array, std::string_view text) {
  if (!array.is_array()) return false;
  for (const auto& item : array.as_array())
    if (item.is_string() && item.get_string() == text) return true;
  return false;
}

// Tool arguments, built outside the coroutines (GCC 12 miscompiles braced JSON inside them).
json::value string_arg(const char* key, const std::string& value) {
  return json::object{{key, value}};
}
json::value crashing_counter_args(const std::string& file) {
  return json::object{{"file", file}, {"crash_after", true}};
}

std::string toml_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

// `[mcp_servers.<name>]`: the test server with `args`, on the spawned executor when `remote`,
// plus `extra` lines.
std::string server_entry(const std::string& name, bool remote, std::vector<std::string> args,
                         const std::string& extra = "") {
  std::string entry =
      "[mcp_servers." + name + "]\ncommand = " + toml_string(kServer) + "\nargs = [";
  for (std::size_t i = 0; i < args.size(); ++i) entry += (i ? ", " : "") + toml_string(args[i]);
  entry += "]\n";
  if (remote) entry += "environment = \"sandbox\"\n";
  return entry + extra + "\n";
}

class GatewayServe : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    dir_ = fs::temp_directory_path() / testing::unique_marker("gateway-test");
    fs::create_directories(dir_ / "home");
    env_ = testing::host_environment((dir_ / "home").string());
  }
  void TearDown() override {
    testing::expect_no_children({}, 15s, "at the end of the test");
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::string write_config(const std::string& text) {
    const auto path = dir_ / "gateway.toml";
    std::ofstream(path) << text;
    return path.string();
  }

  std::vector<std::string> serve(const std::string& config,
                                 std::vector<std::string> extra = {}) const {
    std::vector<std::string> argv{testing::tether_binary(), "mcp", "serve", "--config", config};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  struct Exit {
    int code = -1;  // -1: it did not exit by itself (the test has failed)
    std::string err;
  };
  // The gateway with `config` left alone (stdin open, no client) until it exits by itself.
  Exit run_unattended(const std::string& config, std::vector<std::string> extra = {}) {
    Exit exit;
    testing::run_async(
        [&]() -> asio::awaitable<void> {
          const auto executor = co_await asio::this_coro::executor;
          auto running = start(executor, serve(config, extra), env_, false);
          CO_ASSERT_TRUE(running.has_value());
          auto status = co_await exit_of(*running, 60s, "tether mcp serve");
          exit.err = running->err->text;
          if (status) exit.code = status->code;
          EXPECT_EQ(running->out->text, "") << "the gateway wrote to stdout unasked";
        },
        90s, "tether mcp serve left alone");
    return exit;
  }

  // The SDK client's report for `scenario` against the gateway with `config` (one local server
  // `local`, one on the spawned executor `remote`).
  json::value sdk_client(const std::string& scenario, const std::string& config) {
    json::value report;
    std::vector<std::string> argv{
        testing::node_binary().string(),
        std::string(testing::source_dir()) + "/tests/gateway/sdk_client.mjs",
        (testing::npm_root() / "node_modules").string(),
        scenario,
        "--prefix",
        "local__",
        "--prefix",
        "remote__",
        "--"};
    const auto gateway = serve(config);
    argv.insert(argv.end(), gateway.begin(), gateway.end());
    testing::run_async(
        [&]() -> asio::awaitable<void> {
          const auto executor = co_await asio::this_coro::executor;
          auto running = start(executor, argv, env_, false, process::StdinMode::closed);
          CO_ASSERT_TRUE(running.has_value());
          const std::string what = "node sdk_client.mjs " + scenario;
          auto status = co_await exit_of(*running, 180s, what.c_str());
          CO_ASSERT_TRUE(status.has_value());
          const std::string out = running->out->text;
          // The report is the last line (npos + 1 is 0: no newline, from the start).
          std::string last_line = out.substr(0, out.find_last_not_of('\n') + 1);
          last_line = last_line.substr(last_line.rfind('\n') + 1);
          boost::system::error_code ec;
          report = json::parse(last_line, ec);
          EXPECT_TRUE(report.is_object() && !ec) << "no JSON report on stdout:\n"
                                                 << out << "\nstderr:\n"
                                                 << running->err->text;
          const bool ok =
              report.is_object() && report.as_object().if_contains("ok") && report.at("ok") == true;
          EXPECT_TRUE(ok && status->code == 0)
              << "exit " << status->code << ", report " << out << "stderr:\n"
              << running->err->text;
        },
        240s, "sdk_client.mjs " + scenario);
    return report.is_object() ? report : json::value(json::object{});
  }

  static std::string local_and_remote(const std::vector<std::string>& args) {
    return std::string(kSandbox) + server_entry("local", false, args) +
           server_entry("remote", true, args);
  }

  fs::path dir_;
  std::vector<std::string> env_;
};

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
  const auto report = sdk_client("list", write_config(local_and_remote({"--stderr-line", mark})));
  const auto* steps = report.as_object().if_contains("steps");
  ASSERT_TRUE(steps && steps->is_object()) << json::serialize(report);
  const auto& step = steps->as_object();
  EXPECT_EQ(step.at("initialize").at("serverInfo").at("name"), "tether");
  for (const char* tool : {"local__echo", "remote__echo", "local__crash", "remote__add_tool"})
    EXPECT_TRUE(contains(step.at("tools"), tool)) << tool << " missing: " << step.at("tools");
  EXPECT_TRUE(contains(step.at("prompts"), "local__greet")) << step.at("prompts");
  EXPECT_TRUE(contains(step.at("prompts"), "remote__greet")) << step.at("prompts");
  // Both servers list the same resources and template: each is offered once.
  const auto& templates = step.at("resource_templates").as_array();
  EXPECT_EQ(templates, json::array{"test://template/{id}"});
  const auto& resources = step.at("resources").as_array();
  EXPECT_FALSE(resources.empty());
  std::set<std::string> unique;
  for (const auto& uri : resources) unique.insert(std::string(uri.as_string()));
  EXPECT_EQ(unique.size(), resources.size()) << "a URI is listed twice: " << resources;
  reaper.expect_none_left(15s);
}

TEST_F(GatewayServe, SdkClientTourThroughBothPlacements) {
  const auto mark = testing::unique_marker("gw-sdk-tour");
  testing::MarkerReaper reaper(mark);
  const auto report = sdk_client("tour", write_config(local_and_remote({"--stderr-line", mark})));
  const auto* steps = report.as_object().if_contains("steps");
  ASSERT_TRUE(steps && steps->is_object()) << json::serialize(report);
  const auto& step = steps->as_object();
  for (const char* echo : {"echo:local__", "echo:remote__"}) {
    ASSERT_TRUE(step.contains(echo)) << json::serialize(report);
    EXPECT_NE(std::string(step.at(echo).as_string()).find("hi"), std::string::npos);
  }
  EXPECT_EQ(step.at("prompt"), "Hello, Ada!");
  EXPECT_NE(std::string(step.at("elicitation").as_string()).find("Grace"), std::string::npos)
      << step.at("elicitation");
  EXPECT_NE(std::string(step.at("sampling").as_string()).find("sampled by sdk"), std::string::npos);
  EXPECT_NE(std::string(step.at("roots").as_string()).find("sdk-root"), std::string::npos);
  EXPECT_TRUE(std::string(step.at("list_changed").at("tool").as_string()).starts_with("local__"))
      << step.at("list_changed");
  EXPECT_EQ(step.at("logging").at("logger"), "local/test");
  EXPECT_EQ(step.at("tool_error").at("code"), -32602);
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
  if (how == Ending::parent_sigkill)
    argv = {"/bin/sh", "-c", "\"$0\" mcp serve --config \"$1\"; :", testing::tether_binary(),
            config};
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
          pid_t gateway = -1;
          for (pid_t pid : testing::children_of(running->child->pid()))
            if (testing::command_line(pid).find("mcp serve") != std::string::npos) gateway = pid;
          CO_ASSERT_TRUE(gateway > 0);
          ::kill(running->child->pid(), SIGKILL);  // the shell alone, not its group
          co_await running->child->wait();
          // Re-parented to this subreaper: ours to reap.
          int raw = 0;
          const std::function<bool()> reaped = [gateway, &raw] {
            return ::waitpid(gateway, &raw, WNOHANG) == gateway;
          };
          const bool ended = co_await testing::eventually(reaped, 60s);
          EXPECT_TRUE(ended) << "the gateway outlived its parent; stderr:\n" << running->err->text;
          if (!ended) {
            ::kill(gateway, SIGKILL);
            ::waitpid(gateway, nullptr, 0);
          } else {
            EXPECT_TRUE(WIFEXITED(raw) && WEXITSTATUS(raw) == 0)
                << "status " << raw << "; stderr:\n"
                << running->err->text;
          }
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
