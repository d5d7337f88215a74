// End-to-end tests of `tether mcp`: the real binary, run as a child with its own environment,
// against the demo config (examples/demo.toml: npm servers, one local, one on a spawned
// executor), against configs written here with the project's test server, and against configs
// that must fail, with each message and exit code checked (0 ok, 1 isError, 2 usage/config,
// 3 server failed). Acceptance scenarios 33 (messages at the CLI, a codex config.toml with extra
// keys), 37 (list shows where a server runs), 43 (codex environments.toml + environment_id).
// The census: this test process is a child subreaper, so anything tether leaves behind is
// re-parented here; after each run no child of ours may be left (found ones are killed).
#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "codex_exec_server.hpp"
#include "exec_server.hpp"
#include "mcp_fixtures.hpp"
#include "npm_peers.hpp"
#include <tether/process/child.hpp>

extern char** environ;

namespace tether::cli {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kServer = TETHER_TEST_MCP_SERVER;
constexpr const char* kSource = TETHER_SOURCE_DIR;

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
  json::value json() const {
    boost::system::error_code ec;
    auto value = json::parse(out, ec);
    EXPECT_FALSE(ec) << "stdout is not JSON: " << out;
    return value;
  }
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    home_ = fs::temp_directory_path() / testing::unique_marker("cli-test");
    fs::create_directories(home_ / "home");
    env_ = {"TETHER_HOME=" + (home_ / "home").string(), "NO_COLOR=1"};
    for (char** e = environ; *e; ++e) {
      std::string_view entry(*e);
      if (entry.starts_with("TETHER_") || entry.starts_with("NO_COLOR=")) continue;
      env_.emplace_back(entry);
    }
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(home_, ignored);
  }

  void set_env(const std::string& name, const std::string& value) {
    std::erase_if(env_, [&](const std::string& e) { return e.starts_with(name + "="); });
    env_.push_back(name + "=" + value);
  }
  // The npm servers of the demo on PATH, as `make run` does.
  void demo_environment() {
    const char* path = std::getenv("PATH");
    set_env("PATH", (testing::npm_root() / "node_modules/.bin").string() + ":" +
                        (path ? path : "/usr/bin:/bin"));
    set_env("MEMORY_FILE_PATH", (home_ / "memory.jsonl").string());
  }
  std::string write(const std::string& name, const std::string& text) {
    const auto path = home_ / name;
    std::ofstream(path) << text;
    return path.string();
  }
  std::string read(const std::string& path) { return testing::read_text_file(path); }

  // Runs `tether args...` to its end (SIGINT after `interrupt_after` when set), then checks
  // that nothing it started is left.
  Outcome tether(std::vector<std::string> args,
                 std::optional<std::chrono::milliseconds> interrupt_after = std::nullopt) {
    Outcome run;
    testing::run_async(
        [&]() -> asio::awaitable<void> {
          auto executor = co_await asio::this_coro::executor;
          process::SpawnOptions options;
          options.argv = {testing::tether_binary()};
          options.argv.insert(options.argv.end(), args.begin(), args.end());
          options.env = env_;
          options.stdin_mode = process::StdinMode::closed;
          options.contain = false;  // the census must see what tether leaves behind
          auto child = process::Child::spawn(executor, options);
          CO_ASSERT_TRUE(child.has_value());
          int streams = 2;
          auto drain = [&](asio::posix::stream_descriptor* stream,
                           std::string& into) -> asio::awaitable<void> {
            co_await process::read_lines(*stream, [&](std::string_view line) {
              into.append(line);
              into.push_back('\n');
            });
            --streams;
          };
          asio::co_spawn(executor, drain((*child)->stdout_stream(), run.out), asio::detached);
          asio::co_spawn(executor, drain((*child)->stderr_stream(), run.err), asio::detached);
          if (interrupt_after) {
            co_await testing::sleep_for(*interrupt_after);
            ::kill((*child)->pid(), SIGINT);
          }
          auto status = co_await (*child)->wait();
          run.code = status.code;
          EXPECT_TRUE(co_await testing::eventually([&] { return streams == 0; }, 10s));
        },
        120s, "tether " + (args.empty() ? std::string() : args.front()));
    expect_no_leftovers();
    return run;
  }

  void expect_no_leftovers() {
    // Our children besides the exempt ones (a peer the test itself runs, e.g. codex).
    auto leftovers = [&] {
      auto left = testing::children_of(::getpid());
      std::erase_if(left, [&](pid_t pid) {
        return std::find(exempt_.begin(), exempt_.end(), pid) != exempt_.end();
      });
      return left;
    };
    const auto end = std::chrono::steady_clock::now() + 10s;
    auto left = leftovers();
    while (!left.empty() && std::chrono::steady_clock::now() < end) {
      while (::waitpid(-1, nullptr, WNOHANG) > 0) {
      }
      std::this_thread::sleep_for(10ms);
      left = leftovers();
    }
    for (pid_t pid : left) {
      ADD_FAILURE() << "left running after tether exited: pid " << pid << ": "
                    << testing::command_line(pid);
      ::kill(pid, SIGKILL);
    }
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
  }

  // A config with the test server as `[mcp_servers.<name>]` plus `extra` lines.
  std::string test_server(const std::string& name, const std::string& args = "[]",
                          const std::string& extra = "") {
    return "[mcp_servers." + name + "]\ncommand = \"" + kServer + "\"\nargs = " + args + "\n" +
           extra + "\n";
  }

  std::string demo() const { return std::string(kSource) + "/examples/demo.toml"; }

  fs::path home_;
  std::vector<std::string> env_;
  std::vector<pid_t> exempt_;
};

const json::object* server_named(const json::value& list, std::string_view name) {
  for (const auto& server : list.at("servers").as_array())
    if (server.at("name").as_string() == name) return &server.as_object();
  return nullptr;
}

// --- the demo config (`make run`) ---------------------------------------------------------------

TEST_F(CliTest, DemoListShowsWhereEachServerRuns) {
  demo_environment();
  auto run = tether({"mcp", "--config", demo(), "list", "--json"});
  ASSERT_EQ(run.code, 0) << run.err;
  auto list = run.json();
  const auto* everything = server_named(list, "everything");
  const auto* memory = server_named(list, "memory");
  ASSERT_TRUE(everything && memory) << run.out;
  EXPECT_EQ(everything->at("status"), "ready");
  EXPECT_EQ(everything->at("placement"), "local");
  EXPECT_EQ(everything->at("tools"), 3);
  EXPECT_TRUE(everything->at("process").as_string().starts_with(
      "local process 'mcp-server-everything' (pid "))
      << run.out;
  EXPECT_EQ(memory->at("status"), "ready");
  EXPECT_EQ(memory->at("environment"), "sandbox");
  EXPECT_EQ(memory->at("placement"), "sandbox: spawned on loopback");
  EXPECT_TRUE(memory->at("process").as_string().starts_with("executor process mcp-stdio-"))
      << run.out;
}

TEST_F(CliTest, DemoHumanOutputIsATableAndPlainStatusLines) {
  demo_environment();
  auto run = tether({"mcp", "--config", demo(), "list"});
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_TRUE(run.out.starts_with("SERVER")) << run.out;
  EXPECT_NE(run.out.find("sandbox: spawned on loopback"), std::string::npos) << run.out;
  // Not a terminal: plain lines, no escape sequences anywhere.
  EXPECT_NE(run.err.find("mcp: memory starting\n"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("mcp: memory ready\n"), std::string::npos) << run.err;
  EXPECT_EQ((run.out + run.err).find('\033'), std::string::npos);
}

TEST_F(CliTest, DemoToolsHaveQualifiedNames) {
  demo_environment();
  auto run = tether({"mcp", "--config", demo(), "tools", "--json"});
  ASSERT_EQ(run.code, 0) << run.err;
  std::set<std::string> names;
  const auto listing = run.json();
  for (const auto& tool : listing.at("tools").as_array())
    names.insert(std::string(tool.at("name").as_string()));
  EXPECT_TRUE(names.count("mcp__everything__echo")) << run.out;
  EXPECT_TRUE(names.count("mcp__memory__read_graph")) << run.out;
  EXPECT_FALSE(names.count("mcp__everything__get-env")) << "enabled_tools ignored: " << run.out;
}

TEST_F(CliTest, DemoCallsAToolOnEachPlacement) {
  demo_environment();
  auto echo = tether({"mcp", "--config", demo(), "call", "everything", "echo", "--arg",
                      "message=hello from here"});
  ASSERT_EQ(echo.code, 0) << echo.err;
  EXPECT_NE(echo.out.find("hello from here"), std::string::npos) << echo.out;

  auto created = tether({"mcp", "--config", demo(), "call", "memory", "create_entities", "--args",
                         R"({"entities": [{"name": "tether", "entityType": "project",
                             "observations": ["on the executor"]}]})"});
  ASSERT_EQ(created.code, 0) << created.err;
  // A second run, a second executor and server process: the graph is in MEMORY_FILE_PATH.
  auto graph = tether({"mcp", "--config", demo(), "call", "memory", "read_graph", "--json"});
  ASSERT_EQ(graph.code, 0) << graph.err;
  EXPECT_NE(graph.out.find("on the executor"), std::string::npos) << graph.out;
}

// --- exit codes ----------------------------------------------------------------------------

TEST_F(CliTest, ToolErrorExitsOne) {
  const auto config = write("config.toml", test_server("srv"));
  auto run = tether({"mcp", "--config", config, "call", "srv", "fail"});
  EXPECT_EQ(run.code, 1) << run.err;
  EXPECT_EQ(run.out, "failed on purpose\n");
}

TEST_F(CliTest, FailedServerExitsThreeWithTheReason) {
  const auto config =
      write("config.toml", test_server("bad", R"(["--exit-during-initialize", "--stderr-line",
                                                   "bad news"])"));
  auto run = tether({"mcp", "--config", config, "call", "bad", "echo", "--arg", "message=x"});
  EXPECT_EQ(run.code, 3);
  EXPECT_NE(run.err.find("error: MCP client for 'bad' failed to start: handshaking with MCP "
                         "server failed: "),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("bad news"), std::string::npos) << "stderr tail missing: " << run.err;

  auto listed = tether({"mcp", "--config", config, "list", "--json"});
  EXPECT_EQ(listed.code, 3);
  EXPECT_EQ(server_named(listed.json(), "bad")->at("status"), "failed");
}

TEST_F(CliTest, RequiredServerFailureIsReported) {
  const auto config = write(
      "config.toml", test_server("ok") +
                         test_server("must", R"(["--exit-during-initialize"])", "required = true"));
  auto run = tether({"mcp", "--config", config, "tools"});
  EXPECT_EQ(run.code, 3);
  EXPECT_NE(run.err.find("error: required MCP servers failed to initialize: must: MCP client for "
                         "'must' failed to start: "),
            std::string::npos)
      << run.err;
  // The status listing still shows every server.
  auto listed = tether({"mcp", "--config", config, "list"});
  EXPECT_EQ(listed.code, 3);
  EXPECT_NE(listed.out.find("\nok      ready"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("\nmust    failed"), std::string::npos) << listed.out;
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  const auto config = write("config.toml", test_server("srv"));
  auto array = tether({"mcp", "--config", config, "call", "srv", "echo", "--args", "[1]"});
  EXPECT_EQ(array.code, 2);
  EXPECT_NE(array.err.find("MCP tool arguments must be a JSON object, got an array"),
            std::string::npos)
      << array.err;
  auto unknown = tether({"mcp", "--config", config, "call", "nope", "echo"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find("unknown MCP server 'nope'"), std::string::npos) << unknown.err;
  EXPECT_EQ(tether({"mcp", "--config", config, "frobnicate"}).code, 2);
  EXPECT_EQ(tether({"mcp", "--config", config, "call", "srv"}).code, 2);
}

TEST_F(CliTest, ArgumentsAreTypedWhenTheyParseAsJson) {
  const auto counter = (home_ / "counter").string();
  const auto config = write("config.toml", test_server("srv"));
  auto run = tether({"mcp", "--config", config, "call", "srv", "counter", "--arg",
                     "file=" + counter, "--arg", "crash_after=false"});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(run.out, "1\n");
}

TEST_F(CliTest, VersionIsPrinted) {
  auto run = tether({"--version"});
  EXPECT_EQ(run.code, 0);
  EXPECT_TRUE(run.out.starts_with("tether ")) << run.out;
}

TEST_F(CliTest, InterruptDuringStartupEndsEverything) {
  const auto mark = testing::unique_marker("cli-interrupt");
  testing::MarkerReaper reaper(mark);
  const auto config =
      write("config.toml",
            test_server("slow", "[\"--never-initialize\", \"--stderr-line\", \"" + mark + "\"]"));
  auto run = tether({"mcp", "--config", config, "list"}, 1500ms);
  EXPECT_EQ(run.code, 130) << run.err;
  reaper.expect_none_left(5s);
}

// tether killed with SIGKILL while a call runs. Each server is started the way `npx` starts
// one: a wrapper whose child is the real server (no exec), so a parent-death signal on the direct
// child alone would leave the server running. Locally and on a spawned executor, the server and
// its wrapper must go (containment, docs/process-api.md).
TEST_F(CliTest, SigkillDuringACallEndsEveryServerInBothPlacements) {
  for (const bool remote : {false, true}) {
    SCOPED_TRACE(remote ? "on a spawned executor" : "local");
    const auto mark = testing::unique_marker(remote ? "cli-sigkill-remote" : "cli-sigkill-local");
    testing::MarkerReaper reaper(mark);
    std::string config = remote ? "[environments.sandbox]\nspawn = true\n\n" : "";
    config += R"([mcp_servers.wrapped]
command = "/bin/sh"
args = ["-c", "\"$0\" \"$@\"; exit $?", ")" +
              std::string(kServer) + R"(", "--stderr-line", ")" + mark + "\"]\n";
    if (remote) config += "environment = \"sandbox\"\n";
    const auto path = write("config.toml", config);
    testing::run_async(
        [&]() -> asio::awaitable<void> {
          process::SpawnOptions options;
          options.argv = {testing::tether_binary(), "mcp",   "--config", path,       "call",
                          "wrapped",                "sleep", "--arg",    "ms=300000"};
          options.env = env_;
          options.stdin_mode = process::StdinMode::closed;
          options.contain = false;  // only tether's own mechanisms may end what it started
          auto child = process::Child::spawn(co_await asio::this_coro::executor, options);
          CO_ASSERT_TRUE(child.has_value());
          // The wrapper's and the server's command lines both carry the marker.
          const bool wrapped_server_started = co_await testing::eventually(
              [&] { return testing::processes_matching(mark).size() == 2; }, 30s);
          CO_ASSERT_TRUE(wrapped_server_started);
          (*child)->signal_group(SIGKILL);
          const auto status = co_await (*child)->wait();
          EXPECT_EQ(status.signal, std::optional<int>(SIGKILL));
        },
        60s, "tether mcp call killed with SIGKILL");
    reaper.expect_none_left(5s);
    expect_no_leftovers();
  }
}

// --- resources and prompts ----------------------------------------------------------------

TEST_F(CliTest, ResourcesAreListedAndRead) {
  const auto config =
      write("config.toml", test_server("docs", R"(["--resources", "3", "--page-size", "2"])") +
                               test_server("other", R"(["--resources", "0"])"));
  auto listed = tether({"mcp", "--config", config, "resources"});
  ASSERT_EQ(listed.code, 0) << listed.err;
  for (const char* uri : {"test://resource/0", "test://resource/2", "test://template/{id}"})
    EXPECT_NE(listed.out.find(uri), std::string::npos) << listed.out;

  // Without --server the server listing the URI answers.
  auto read = tether({"mcp", "--config", config, "read", "test://resource/2"});
  ASSERT_EQ(read.code, 0) << read.err;
  EXPECT_EQ(read.out, "content of resource 2\n");
  auto unlisted = tether({"mcp", "--config", config, "read", "test://resource/9"});
  EXPECT_EQ(unlisted.code, 2);
  EXPECT_NE(unlisted.err.find("no MCP server lists resource 'test://resource/9': name one with "
                              "--server"),
            std::string::npos)
      << unlisted.err;
  auto json = tether(
      {"mcp", "--config", config, "--json", "read", "test://resource/1", "--server", "docs"});
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_EQ(json.json().at("contents").at(0).at("text"), "content of resource 1");
}

TEST_F(CliTest, PromptsAreListedAndRendered) {
  const auto config = write("config.toml", test_server("greeter"));
  auto listed = tether({"mcp", "--config", config, "prompts"});
  ASSERT_EQ(listed.code, 0) << listed.err;
  EXPECT_NE(listed.out.find("greet"), std::string::npos) << listed.out;
  auto prompt = tether({"mcp", "--config", config, "prompt", "greet", "--arg", "name=Ada"});
  ASSERT_EQ(prompt.code, 0) << prompt.err;
  EXPECT_NE(prompt.out.find("Hello, Ada!"), std::string::npos) << prompt.out;
  auto unknown = tether({"mcp", "--config", config, "prompt", "nope", "--server", "greeter"});
  EXPECT_EQ(unknown.code, 2) << unknown.err;
  EXPECT_NE(unknown.err.find("unknown prompt: nope"), std::string::npos) << unknown.err;
}

// --- 33: config errors at the CLI ----------------------------------------------------------

struct BadConfig {
  const char* text;
  const char* message;
};

TEST_F(CliTest, ConfigErrorsNameFileLineServerAndField) {
  const BadConfig cases[] = {
      {"[mcp_servers.x]\nenabled = true\n", ":1:1: [mcp_servers.x] invalid transport"},
      {"[mcp_servers.x]\nurl = \"http://127.0.0.1:1/mcp\"\nargs = [\"a\"]\n",
       ":3:1: [mcp_servers.x] args is not supported for streamable_http"},
      {"[mcp_servers.x]\ncommand = \"a\"\nhttp_headers = { A = \"b\" }\n",
       ":3:1: [mcp_servers.x] http_headers is not supported for stdio"},
      {"[mcp_servers.\"a b\"]\ncommand = \"a\"\n",
       ":1:14: Invalid MCP server name 'a b': must match pattern ^[a-zA-Z0-9_-]+$"},
      {"[mcp_servers.x]\ncommand = \"a\"\ntool_timeout_sec = -1\n",
       ":3:1: [mcp_servers.x] tool_timeout_sec must be a non-negative, finite number of seconds"},
      {"[mcp_servers.x]\ncommand = \"a\"\nenvironment = \"a\"\nenvironment_id = \"b\"\n",
       ":4:1: [mcp_servers.x] conflicting environment 'a' and environment_id 'b'"},
      {"[mcp_servers.x]\ncommand = \"a\"\nexperimental_environment = \"mars\"\n",
       ":3:1: [mcp_servers.x] unsupported experimental_environment 'mars' for MCP server 'x'"},
      {"[environments.e]\nspawn = true\nurl = \"ws://127.0.0.1:1\"\n",
       ":1:1: [environments.e] environment 'e' must set exactly one of url, spawn or command"},
      {"[mcp_servers.x]\ncommand = \"a\nargs = []\n", ":2:"},
  };
  for (const auto& bad : cases) {
    const auto config = write("bad.toml", bad.text);
    auto run = tether({"mcp", "--config", config, "list"});
    EXPECT_EQ(run.code, 2) << bad.text;
    EXPECT_EQ(run.err.rfind("error: " + config + bad.message, 0), 0u) << "config:\n"
                                                                      << bad.text << "stderr:\n"
                                                                      << run.err;
  }
  auto missing = tether({"mcp", "--config", (home_ / "absent.toml").string(), "list"});
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("absent.toml: No such file or directory"), std::string::npos)
      << missing.err;
}

TEST_F(CliTest, CodexConfigWithExtraKeysLoadsAndRuns) {
  const auto config = write("config.toml", std::string(R"(model = "gpt-5"
approval_policy = "on-request"
sandbox_mode = "workspace-write"

[tui]
notifications = true

[profiles.fast]
model = "gpt-5-mini"

[mcp_servers.test]
command = ")") + kServer + R"("
args = []
startup_timeout_ms = 20000
tool_timeout_sec = 30.5
env = { TETHER_TEST_GREETING = "hi" }
enabled_tools = ["echo"]
scopes = ["repo"]
oauth_resource = "https://example.invalid"
)");
  auto run = tether(
      {"mcp", "--config", config, "call", "test", "echo", "--arg", "message=codex", "--json"});
  EXPECT_EQ(run.code, 0) << run.err;
  const auto structured = run.json().at("structuredContent");
  EXPECT_EQ(structured.at("message"), "codex") << run.out;
  EXPECT_EQ(structured.at("env").at("TETHER_TEST_GREETING"), "hi") << run.out;
}

// --- 43 and 37: codex environments.toml, environment_id, remote placement ----------------------

TEST_F(CliTest, CodexEnvironmentsTomlPlacesServersAsCodexWould) {
  write("home/environments.toml", std::string(R"(default = "pipe"

[[environments]]
id = "pipe"
program = ")") + testing::tether_binary() +
                                      R"("
args = ["exec-server", "--listen", "stdio"]
)");
  const auto config = write(
      "config.toml", test_server("named", "[]", "environment_id = \"pipe\"") +
                         test_server("remote", "[]", "experimental_environment = \"remote\"") +
                         test_server("here"));
  auto run = tether({"mcp", "--config", config, "list", "--json"});
  ASSERT_EQ(run.code, 0) << run.err;
  auto list = run.json();
  for (const char* name : {"named", "remote"}) {
    const auto* server = server_named(list, name);
    ASSERT_TRUE(server) << run.out;
    EXPECT_EQ(server->at("status"), "ready") << name;
    EXPECT_EQ(server->at("environment"), "pipe") << name;
    EXPECT_TRUE(server->at("process").as_string().starts_with("executor process mcp-stdio-"))
        << run.out;
  }
  EXPECT_EQ(server_named(list, "here")->at("placement"), "local");
}

TEST_F(CliTest, RemoteServerWithoutAnExecutorIsListedWithTheReason) {
  const auto touched = (home_ / "touched").string();
  const auto config = write("config.toml",
                            "[mcp_servers.far]\ncommand = \"/bin/sh\"\nargs = "
                            "[\"-c\", \"touch " +
                                touched + "\"]\nexperimental_environment = \"remote\"\n");
  auto run = tether({"mcp", "--config", config, "list"});
  EXPECT_EQ(run.code, 3);
  EXPECT_NE(run.out.find("(no placement)"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("error: MCP client for 'far' failed to start: remote MCP server 'far' "
                         "requires a remote executor environment"),
            std::string::npos)
      << run.out;
  EXPECT_FALSE(fs::exists(touched));
}

// --- 41: an npm server placed on a stock codex executor through the config ----------------------

TEST_F(CliTest, NpmServerOnAStockCodexExecutorThroughTheConfig) {
  testing::CodexExecServer codex;
  exempt_.push_back(codex.pid());
  const auto mark = testing::unique_marker("cli-codex");
  testing::MarkerReaper reaper(mark);
  const auto config =
      write("config.toml",
            "[environments.codex]\nurl = \"" + codex.url() + "\"\n\n" +
                "[mcp_servers.everything]\ncommand = \"" + testing::node_binary().string() +
                "\"\nargs = [\"" +
                testing::npm_package_file("@modelcontextprotocol/server-everything/dist/index.js")
                    .string() +
                "\", \"stdio\", \"" + mark + "\"]\nenvironment = \"codex\"\n");
  auto listed = tether({"mcp", "--config", config, "list", "--json"});
  ASSERT_EQ(listed.code, 0) << listed.err << codex.log();
  const auto list = listed.json();
  const auto* everything = server_named(list, "everything");
  ASSERT_TRUE(everything) << listed.out;
  EXPECT_EQ(everything->at("environment"), "codex");
  EXPECT_EQ(everything->at("placement").as_string(), "codex: " + codex.url());
  auto echo = tether(
      {"mcp", "--config", config, "call", "everything", "echo", "--arg", "message=via codex"});
  EXPECT_EQ(echo.code, 0) << echo.err;
  EXPECT_NE(echo.out.find("via codex"), std::string::npos) << echo.out;
  reaper.expect_none_left(5s);
}

// --- add and remove ------------------------------------------------------------------------

TEST_F(CliTest, AddAndRemoveEditTheConfigKeepingComments) {
  const std::string original = "# my servers\n\n" + test_server("keep") + "# the end\n";
  const auto config = write("config.toml", original);
  auto added = tether({"mcp", "--config", config, "add", "echoer", "--env", "TETHER_TEST_X=1", "--",
                       kServer, "--stderr-line", "added"});
  ASSERT_EQ(added.code, 0) << added.err;
  EXPECT_NE(added.out.find("Added MCP server 'echoer'"), std::string::npos) << added.out;
  const auto text = read(config);
  EXPECT_TRUE(text.starts_with(original)) << text;
  EXPECT_NE(text.find("[mcp_servers.echoer]"), std::string::npos) << text;

  auto called =
      tether({"mcp", "--config", config, "call", "echoer", "echo", "--arg", "message=m", "--json"});
  EXPECT_EQ(called.code, 0) << called.err;
  EXPECT_EQ(called.json().at("structuredContent").at("env").at("TETHER_TEST_X"), "1") << called.out;

  auto again = tether({"mcp", "--config", config, "add", "echoer", "--", "true"});
  EXPECT_EQ(again.code, 2);
  EXPECT_NE(again.err.find("MCP server 'echoer' already exists"), std::string::npos) << again.err;

  auto removed = tether({"mcp", "--config", config, "remove", "echoer"});
  ASSERT_EQ(removed.code, 0) << removed.err;
  EXPECT_EQ(read(config), original);
  auto gone = tether({"mcp", "--config", config, "remove", "echoer"});
  EXPECT_EQ(gone.code, 2);
  EXPECT_NE(gone.err.find("no MCP server 'echoer'"), std::string::npos) << gone.err;
}

}  // namespace
}  // namespace tether::cli
