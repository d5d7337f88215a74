// End-to-end tests of `tether mcp`: the real binary, run as a child with its own environment,
// against the demo config (examples/demo.toml: npm servers, one local, one on a spawned
// executor), against configs written here with the project's test server, and against configs
// that must fail, with each message and exit code checked (0 ok, 1 isError, 2 usage/config,
// 3 server failed, 4 or 141 output failed, 130 interrupted), --json error objects, and tether
// run with descriptors a shell may hand it: a reader that goes away, a closed or full stdout, a
// terminal (a pseudo-terminal of a set width). Acceptance scenarios 33 (messages at the CLI, a
// codex config.toml with extra keys), 37 (list shows where a server runs), 43 (codex
// environments.toml + environment_id), and the commands through a running gateway (--gateway).
// The census: this test process is a child subreaper, so anything tether leaves behind is
// re-parented here; after each run no child of ours may be left (found ones are killed). The
// fixture that runs tether and takes the census is cli_fixture.hpp's.
#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <poll.h>
#include <pty.h>
#include <regex>
#include <set>
#include <spawn.h>
#include <sstream>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "build_paths.hpp"
#include "cli_fixture.hpp"
#include "codex_exec_server.hpp"
#include "everything_http.hpp"
#include "exec_server.hpp"
#include "mcp_fixtures.hpp"
#include "npm_peers.hpp"
#include <tether/process/child.hpp>

namespace tether::cli {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

class CliTest : public CliFixture {
 protected:
  // The npm servers of the demo on PATH, as `make run` does.
  void demo_environment() {
    const char* path = std::getenv("PATH");
    set_env("PATH", (testing::npm_root() / "node_modules/.bin").string() + ":" +
                        (path ? path : "/usr/bin:/bin"));
    set_env("MEMORY_FILE_PATH", (home_ / "memory.jsonl").string());
  }
  std::string demo() const { return std::string(kSource) + "/examples/demo.toml"; }

  // tether started with the descriptors `arrange` sets up (a pipe for both streams, a closed or
  // full stdout, a pseudo-terminal: what Child::spawn does not offer), stdin /dev/null, and the
  // signal dispositions a shell gives it. -1 when it did not start (the test has failed).
  pid_t spawn_tether(const std::vector<std::string>& args,
                     const std::function<void(posix_spawn_file_actions_t&)>& arrange) {
    std::vector<std::string> argv{testing::tether_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto env = env_;
    auto pointers = [](std::vector<std::string>& strings) {
      std::vector<char*> out;
      out.reserve(strings.size() + 1);
      for (auto& text : strings) out.push_back(text.data());
      out.push_back(nullptr);
      return out;
    };
    auto argv_pointers = pointers(argv);
    auto env_pointers = pointers(env);
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    arrange(actions);
    posix_spawnattr_t attributes;
    ::posix_spawnattr_init(&attributes);
    sigset_t defaults;
    ::sigemptyset(&defaults);
    for (int sig : {SIGPIPE, SIGINT, SIGTERM}) ::sigaddset(&defaults, sig);
    sigset_t none;
    ::sigemptyset(&none);
    ::posix_spawnattr_setsigdefault(&attributes, &defaults);
    ::posix_spawnattr_setsigmask(&attributes, &none);
    ::posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    pid_t pid = -1;
    const int error = ::posix_spawn(&pid, argv[0].c_str(), &actions, &attributes,
                                    argv_pointers.data(), env_pointers.data());
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attributes);
    EXPECT_EQ(error, 0) << "posix_spawn: " << std::strerror(error);
    return error == 0 ? pid : -1;
  }

  // Reads what `fd` has now (up to `wait`) into `into`; false once it has nothing more to give.
  static bool read_some(int fd, std::string& into, std::chrono::milliseconds wait) {
    pollfd ready{fd, POLLIN, 0};
    if (::poll(&ready, 1, static_cast<int>(wait.count())) <= 0) return true;
    char buffer[4096];
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) return n < 0 && errno == EINTR;
    into.append(buffer, static_cast<std::size_t>(n));
    return true;
  }

  // Reads `fd` into `into` until it contains `wanted` (bounded; the caller checks).
  static void read_until(int fd, std::string& into, std::string_view wanted) {
    const auto end = std::chrono::steady_clock::now() + 30s;
    while (into.find(wanted) == std::string::npos && std::chrono::steady_clock::now() < end &&
           read_some(fd, into, 10ms)) {
    }
  }

  // Waits for `pid` to exit by itself, reading `fd` (when >= 0) into `output` meanwhile and to
  // its end afterwards. Its exit code (128 + n for a signal), or -1 when it did not exit: then
  // the test fails saying `what`, and the process is killed.
  int wait_for_exit(pid_t pid, const std::string& what, int fd = -1,
                    std::string* output = nullptr) {
    int status = 0;
    bool exited = false;
    bool readable = fd >= 0;
    const auto end = std::chrono::steady_clock::now() + 60s;
    while (!exited && std::chrono::steady_clock::now() < end) {
      if (readable) {
        readable = read_some(fd, *output, 10ms);
      } else {
        std::this_thread::sleep_for(10ms);
      }
      exited = ::waitpid(pid, &status, WNOHANG) == pid;
    }
    if (!exited) {
      ADD_FAILURE() << "tether did not exit by itself: " << what;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return -1;
    }
    while (readable) readable = read_some(fd, *output, 0ms) && output->size() < (1u << 24);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  // A pipe whose descriptors tether does not inherit (posix_spawn's dup2 clears the flag).
  static std::array<int, 2> cloexec_pipe() {
    std::array<int, 2> fds{-1, -1};
    EXPECT_EQ(::pipe2(fds.data(), O_CLOEXEC), 0) << std::strerror(errno);
    return fds;
  }

  // A stdio server that starts only once the test writes a line to the FIFO `gate`.
  std::string gated_server(const std::string& name, const std::string& gate) {
    return "[mcp_servers." + name + "]\ncommand = \"/bin/sh\"\nargs = [\"-c\", \"read go < " +
           gate + " && exec " + kServer + "\"]\n";
  }
  // Opens the gate once the server waits at it (bounded).
  static void open_gate(const std::string& gate) {
    const auto end = std::chrono::steady_clock::now() + 30s;
    int fd = -1;
    while ((fd = ::open(gate.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0 && errno == ENXIO &&
           std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(10ms);
    ASSERT_GE(fd, 0) << "the gated server never waited at its gate: " << std::strerror(errno);
    EXPECT_EQ(::write(fd, "go\n", 3), 3);
    ::close(fd);
  }

  struct Terminal {
    int code = -1;
    std::string output;  // everything tether wrote to the terminal
  };
  // tether on a pseudo-terminal `columns` wide (stdin, stdout and stderr), colours on; SIGINT
  // once the output contains `interrupt_at` when it is not empty.
  Terminal on_terminal(const std::vector<std::string>& args, unsigned short columns,
                       const std::string& interrupt_at = "") {
    Terminal run;
    int master = -1;
    int slave = -1;
    winsize size{};
    size.ws_col = columns;
    size.ws_row = 24;
    if (::openpty(&master, &slave, nullptr, nullptr, &size) != 0) {
      ADD_FAILURE() << "openpty: " << std::strerror(errno);
      return run;
    }
    ::fcntl(master, F_SETFD, FD_CLOEXEC);
    ::fcntl(slave, F_SETFD, FD_CLOEXEC);
    std::erase_if(env_, [](const std::string& e) { return e.starts_with("NO_COLOR="); });
    const pid_t pid = spawn_tether(args, [&](posix_spawn_file_actions_t& actions) {
      for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO})
        ::posix_spawn_file_actions_adddup2(&actions, slave, fd);
    });
    ::close(slave);
    if (pid > 0) {
      if (!interrupt_at.empty()) {
        read_until(master, run.output, interrupt_at);
        EXPECT_NE(run.output.find(interrupt_at), std::string::npos) << run.output;
        ::kill(pid, SIGINT);
      }
      run.code = wait_for_exit(pid, "on a terminal", master, &run.output);
    }
    ::close(master);
    expect_no_leftovers();
    return run;
  }
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
  EXPECT_EQ(everything->at("protocol"), "2025-11-25");  // a session-revision server
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

// `tools` shows both names; `call` takes either.
TEST_F(CliTest, CallTakesTheQualifiedOrTheServersOwnName) {
  const auto config = write("config.toml", test_server("srv"));
  auto tools = tether({"mcp", "--config", config, "tools"});
  ASSERT_EQ(tools.code, 0) << tools.err;
  EXPECT_NE(tools.out.find("NAME"), std::string::npos) << tools.out;
  const auto row = tools.out.substr(tools.out.find("mcp__srv__echo "));
  EXPECT_TRUE(row.substr(0, row.find('\n')).find(" srv ") != std::string::npos &&
              row.substr(0, row.find('\n')).find(" echo ") != std::string::npos)
      << tools.out;
  for (const char* name : {"echo", "mcp__srv__echo"}) {
    auto run = tether({"mcp", "--config", config, "call", "srv", name, "--arg", "message=named"});
    EXPECT_EQ(run.code, 0) << name << ": " << run.err;
    EXPECT_NE(run.out.find("named"), std::string::npos) << name << ": " << run.out;
  }
}

// A server name that is a typo of a configured one gets the suggestion.
TEST_F(CliTest, AnUnknownServerNameSuggestsTheNearest) {
  const auto config = write("config.toml", test_server("memory"));
  auto run = tether({"mcp", "--config", config, "call", "memroy", "echo"});
  EXPECT_EQ(run.code, 2);
  EXPECT_NE(run.err.find("unknown MCP server 'memroy'; did you mean 'memory'?"), std::string::npos)
      << run.err;
  auto far = tether({"mcp", "--config", config, "call", "files", "echo"});
  EXPECT_NE(far.err.find("unknown MCP server 'files'"), std::string::npos) << far.err;
  EXPECT_EQ(far.err.find("did you mean"), std::string::npos) << far.err;
}

// A tool call that outlives tool_timeout_sec says which setting to raise.
TEST_F(CliTest, AToolTimeoutSaysWhichSettingToRaise) {
  const auto config = write("config.toml", test_server("srv", "[]", "tool_timeout_sec = 0.3"));
  auto run = tether({"mcp", "--config", config, "call", "srv", "sleep", "--arg", "ms=5000"});
  EXPECT_NE(run.code, 0);
  EXPECT_NE(run.err.find("raise tool_timeout_sec of MCP server 'srv' if the tool needs longer"),
            std::string::npos)
      << run.err;
}

// An empty config says how to add a server.
TEST_F(CliTest, AnEmptyConfigSaysHowToAddAServer) {
  const auto config = write("config.toml", "");
  auto listed = tether({"mcp", "--config", config, "list"});
  EXPECT_EQ(listed.code, 0) << listed.err;
  EXPECT_NE(listed.err.find("no MCP servers configured; add one with `tether mcp add"),
            std::string::npos)
      << listed.err;
}

// The global --log-level works after the subcommand too.
TEST_F(CliTest, LogLevelAfterTheSubcommand) {
  const auto config = write("config.toml", test_server("srv"));
  auto listed = tether({"mcp", "--config", config, "list", "--log-level", "error"});
  EXPECT_EQ(listed.code, 0) << listed.err;
  auto refused = tether({"exec-server", "--log-level", "loud"});
  EXPECT_EQ(refused.code, 2);
  EXPECT_NE(refused.err.find("--log-level"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.err.find("not expected"), std::string::npos) << refused.err;
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

TEST_F(CliTest, ArgumentsAreTypedByTheToolsInputSchema) {
  const auto counter = (home_ / "counter").string();
  const auto config = write("config.toml", test_server("srv"));
  auto run = tether({"mcp", "--config", config, "call", "srv", "counter", "--arg",
                     "file=" + counter, "--arg", "crash_after=false"});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(run.out, "1\n");
  // `message` is a string: what parses as JSON stays the text it is.
  for (const char* text : {"123", "true", "{\"a\":1}"}) {
    auto echoed = tether({"mcp", "--config", config, "call", "srv", "echo", "--arg",
                          "message=" + std::string(text)});
    EXPECT_EQ(echoed.code, 0) << text << ": " << echoed.err;
    EXPECT_EQ(echoed.out, std::string(text) + "\n");
  }
  auto wrong = tether({"mcp", "--config", config, "call", "srv", "sleep", "--arg", "ms=abc"});
  EXPECT_EQ(wrong.code, 2);
  EXPECT_NE(wrong.err.find("--arg ms=abc: 'ms' must be an integer (the inputSchema of 'sleep')"),
            std::string::npos)
      << wrong.err;
  EXPECT_EQ(tether({"mcp", "--config", config, "call", "srv", "sleep", "--arg", "ms=1"}).code, 0);
}

TEST_F(CliTest, ArgumentsComeFromAFileOrStdin) {
  const auto config = write("config.toml", test_server("srv"));
  const auto file = write("args.json", "{\n  \"message\": \"from a file\"\n}\n");
  auto run = tether({"mcp", "--config", config, "call", "srv", "echo", "--args", "@" + file});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(run.out, "from a file\n");
  const auto broken = write("broken.json", "{\n  \"message\": x\n}\n");
  auto bad = tether({"mcp", "--config", config, "call", "srv", "echo", "--args", "@" + broken});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(
      bad.err.find("--args @" + broken + " is not valid JSON: line 2, column 14: syntax error"),
      std::string::npos)
      << bad.err;

  const auto input = write("stdin.json", "{\"message\": \"from stdin\"}");
  auto out = cloexec_pipe();
  const pid_t pid = spawn_tether(
      {"mcp", "--config", config, "call", "srv", "echo", "--args", "-"},
      [&](posix_spawn_file_actions_t& actions) {
        ::posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, input.c_str(), O_RDONLY, 0);
        ::posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
      });
  ::close(out[1]);
  std::string output;
  if (pid > 0) {
    EXPECT_EQ(wait_for_exit(pid, "--args -", out[0], &output), 0);
  }
  ::close(out[0]);
  EXPECT_EQ(output, "from stdin\n");
  expect_no_leftovers();
}

TEST_F(CliTest, ToolShowsItsDescriptionAndArguments) {
  const auto config = write("config.toml", test_server("srv"));
  for (const char* name : {"sleep", "mcp__srv__sleep"}) {
    auto run = tether({"mcp", "--config", config, "tool", "srv", name});
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(run.out,
              "mcp__srv__sleep  (srv tool 'sleep')\n"
              "  waits ms, reporting progress every progress_ms\n"
              "\n"
              "  ARGUMENT     TYPE     REQUIRED  DESCRIPTION\n"
              "  ms           integer  yes\n"
              "  progress_ms  integer\n");
  }
  auto typo = tether({"mcp", "--config", config, "tool", "srv", "slep"});
  EXPECT_EQ(typo.code, 3);
  EXPECT_NE(typo.err.find("MCP server 'srv' offers no tool 'slep'; did you mean 'sleep'?"),
            std::string::npos)
      << typo.err;
  auto all = tether({"mcp", "--config", config, "tools", "--long"});
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_NE(all.out.find("mcp__srv__echo  (srv tool 'echo')\n"), std::string::npos) << all.out;
  EXPECT_NE(all.out.find("  the working directory\n  arguments: none\n"), std::string::npos)
      << all.out;
  auto json = tether({"mcp", "--config", config, "--json", "tool", "srv", "sleep"});
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_EQ(json.json().at("tools").at(0).at("tool").at("inputSchema").at("required").at(0), "ms");
}

TEST_F(CliTest, GetShowsOneServersSettingsWithValuesMasked) {
  const auto config = write("config.toml",
                            "[mcp_servers.docs]\n"
                            "command = \"docs-server\"\n"
                            "args = [\"--port\", \"4000\", \"it's\"]\n"
                            "env = { TOKEN = \"secret-value\" }\n"
                            "env_vars = [\"HOME\"]\n"
                            "tool_timeout_sec = 5\n"
                            "\n"
                            "[mcp_servers.web]\n"
                            "url = \"https://example.com/mcp\"\n"
                            "bearer_token_env_var = \"WEB_TOKEN\"\n"
                            "http_headers = { \"X-Key\" = \"header-secret\" }\n"
                            "env_http_headers = { \"X-Env\" = \"ENV_VAR\" }\n"
                            "experimental_environment = \"remote\"\n");
  set_env("TETHER_EXEC_SERVER_URL", "none");
  auto docs = tether({"mcp", "--config", config, "get", "docs"});
  ASSERT_EQ(docs.code, 0) << docs.err;
  for (const char* line :
       {"docs\n", "  transport: stdio\n", "  command: docs-server\n",
        "  args: --port 4000 'it'\\''s'\n", "  env: TOKEN=*****\n", "  env_vars: HOME\n",
        "  environment: local\n", "  tool_timeout_sec: 5\n", "  remove: tether mcp remove docs\n"})
    EXPECT_NE(docs.out.find(line), std::string::npos) << line << " in:\n" << docs.out;
  EXPECT_NE(docs.out.find("  config: " + config + ":1\n"), std::string::npos) << docs.out;
  auto web = tether({"mcp", "--config", config, "get", "web"});
  ASSERT_EQ(web.code, 0) << web.err;
  for (const char* line :
       {"  transport: streamable_http\n", "  url: https://example.com/mcp\n",
        "  bearer_token_env_var: WEB_TOKEN\n", "  http_headers: X-Key=*****\n",
        "  env_http_headers: X-Env=ENV_VAR\n", "  environment: remote\n",
        "  placement: remote MCP server 'web' requires a remote executor environment\n"})
    EXPECT_NE(web.out.find(line), std::string::npos) << line << " in:\n" << web.out;

  auto json = tether({"mcp", "--config", config, "--json", "get", "docs"});
  ASSERT_EQ(json.code, 0) << json.err;
  const auto transport = json.json().at("transport");
  EXPECT_EQ(transport.at("type"), "stdio");
  EXPECT_EQ(transport.at("command"), "docs-server");
  EXPECT_EQ(transport.at("args").at(2), "it's");
  EXPECT_EQ(transport.at("env").at("TOKEN"), "*****");
  EXPECT_EQ(json.json().at("tool_timeout_sec"), 5);
  auto web_json = tether({"mcp", "--config", config, "--json", "get", "web"});
  ASSERT_EQ(web_json.code, 0) << web_json.err;
  EXPECT_EQ(web_json.json().at("transport").at("http_headers").at("X-Key"), "*****");
  for (const auto& output : {docs.out, web.out, json.out, web_json.out}) {
    EXPECT_EQ(output.find("secret-value"), std::string::npos) << output;
    EXPECT_EQ(output.find("header-secret"), std::string::npos) << output;
  }

  auto typo = tether({"mcp", "--config", config, "get", "dcs"});
  EXPECT_EQ(typo.code, 2);
  EXPECT_NE(typo.err.find("unknown MCP server 'dcs'; did you mean 'docs'?"), std::string::npos)
      << typo.err;
}

TEST_F(CliTest, AnUnknownCommandSuggestsTheNearest) {
  const auto config = write("config.toml", test_server("srv"));
  auto typo = tether({"mcp", "--config", config, "lst"});
  EXPECT_EQ(typo.code, 2);
  EXPECT_NE(typo.err.find("'lst' is not a `tether mcp` command; did you mean 'list'?"),
            std::string::npos)
      << typo.err;
  auto top = tether({"mpc", "list"});
  EXPECT_EQ(top.code, 2);
  EXPECT_NE(top.err.find("'mpc' is not a `tether` command; did you mean 'mcp'?"), std::string::npos)
      << top.err;
  auto json = tether({"mcp", "--config", config, "--json", "tols"});
  EXPECT_EQ(json.code, 2);
  EXPECT_EQ(json.json().at("error").at("message"),
            "'tols' is not a `tether mcp` command; did you mean 'tools'?");
}

// A program that answers initialize with "method not found" is not an MCP server, and the
// message says so. (A small Node program plays one: any JSON-RPC request gets -32601.)
TEST_F(CliTest, AProgramThatIsNotAnMcpServerIsNamedSo) {
  const auto script =
      write("not_mcp.js",
            "require('readline').createInterface({input: process.stdin})"
            ".on('line', (line) => { const m = JSON.parse(line);"
            " if (m.id !== undefined) console.log(JSON.stringify({jsonrpc: '2.0',"
            " id: m.id, error: {code: -32601, message: 'Method not found'}})); });\n");
  const auto config =
      write("config.toml", "[mcp_servers.rpc]\ncommand = \"" + testing::node_binary().string() +
                               "\"\nargs = [\"" + script + "\"]\n");
  auto run = tether({"mcp", "--config", config, "tools"});
  EXPECT_EQ(run.code, 3);
  EXPECT_NE(run.err.find("handshaking with MCP server failed: the program is not an MCP server (it "
                         "answered initialize with method not found: "),
            std::string::npos)
      << run.err;
}

// tools --json names the servers that did not start, with their error; list --json has them
// as every server.
TEST_F(CliTest, ToolsJsonNamesTheServersThatFailed) {
  const auto config = write(
      "config.toml", test_server("ok") + test_server("bad", R"(["--exit-during-initialize"])"));
  auto run = tether({"mcp", "--config", config, "--json", "tools"});
  EXPECT_EQ(run.code, 3);
  const auto answer = run.json();
  EXPECT_FALSE(answer.at("tools").as_array().empty());
  EXPECT_EQ(answer.at("failed").at(0).at("server"), "bad");
  EXPECT_NE(std::string(answer.at("failed").at(0).at("error").as_string())
                .find("MCP client for 'bad' failed to start"),
            std::string::npos)
      << run.out;
}

// The COMMAND column quotes as a shell would, so the line can be run again as shown.
TEST_F(CliTest, ListQuotesCommandsAsAShellWould) {
  const auto config = write("config.toml", test_server("srv", R"(["--stderr-line", "it's ok"])"));
  auto run = tether({"mcp", "--config", config, "list"});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_NE(run.out.find(std::string(kServer) + " --stderr-line 'it'\\''s ok'"), std::string::npos)
      << run.out;
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
          options.argv = {testing::tether_binary(),
                          "mcp",
                          "--config",
                          path,
                          "call",
                          "wrapped",
                          "sleep",
                          "--arg",
                          "ms=300000"};
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
  auto unknown =
      tether({"mcp", "--config", config, "read", "test://resource/9", "--server", "docs"});
  EXPECT_EQ(unknown.code, 3) << unknown.err;
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
  // The server's own errors exit 3 (a server answered with an error), not 2 (usage).
  auto unknown = tether({"mcp", "--config", config, "prompt", "nope", "--server", "greeter"});
  EXPECT_EQ(unknown.code, 3) << unknown.err;
  EXPECT_NE(unknown.err.find("unknown prompt: nope"), std::string::npos) << unknown.err;
  auto missing = tether({"mcp", "--config", config, "prompt", "greet", "--server", "greeter"});
  EXPECT_EQ(missing.code, 3) << missing.err;
  EXPECT_NE(missing.err.find("missing required argument: name"), std::string::npos) << missing.err;
}

// --- 33: config errors at the CLI ----------------------------------------------------------

struct BadConfig {
  const char* text;
  const char* message;
};

TEST_F(CliTest, ConfigErrorsNameFileLineServerAndField) {
  const BadConfig cases[] = {
      {"[mcp_servers.x]\nenabled = true\n",
       ":1:1: [mcp_servers.x] invalid transport: needs `command` (stdio) or `url` (streamable "
       "HTTP)"},
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
  for (const auto& bad : cases) expect_config_error("bad.toml", bad.text, bad.message);
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

// A server of each MCP era side by side: the list shows the revision each speaks, and calls work
// in both (the 2026-07-28 one is tests/mcp/sdk_v2_server.mjs on the SDK v2).
TEST_F(CliTest, ListShowsEachServersRevisionAndBothErasWork) {
  const auto node = testing::node_binary().string();
  const auto config = write(
      "config.toml", "[mcp_servers.legacy]\ncommand = \"" + std::string(kServer) + "\"\n\n" +
                         "[mcp_servers.modern]\ncommand = \"" + node + "\"\nargs = [\"" +
                         testing::source_dir() + "/tests/mcp/sdk_v2_server.mjs\", \"stdio\"]\n" +
                         "env = { TETHER_NPM_ROOT = \"" + testing::npm_root().string() + "\" }\n");
  auto list = tether({"mcp", "--config", config, "list", "--json"});
  ASSERT_EQ(list.code, 0) << list.err;
  const auto listing = list.json();
  const auto* legacy = server_named(listing, "legacy");
  const auto* modern = server_named(listing, "modern");
  ASSERT_TRUE(legacy && modern) << list.out;
  EXPECT_EQ(legacy->at("protocol"), "2025-11-25") << list.out;
  EXPECT_EQ(modern->at("protocol"), "2026-07-28") << list.out;
  auto table = tether({"mcp", "--config", config, "list"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("2026-07-28"), std::string::npos) << table.out;

  auto echo = tether({"mcp", "--config", config, "call", "modern", "echo", "--arg", "text=both"});
  EXPECT_EQ(echo.code, 0) << echo.err;
  EXPECT_NE(echo.out.find("both"), std::string::npos) << echo.out;
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
  // WHERE names what the config asked for, even though it does not resolve.
  EXPECT_NE(run.out.find("remote (unavailable)"), std::string::npos) << run.out;
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

// --- 28: a streamable HTTP server placed on an executor ----------------------------------------

// The same HTTP server (server-everything) reached from here and through two executors, a
// spawned `tether exec-server` and a stock codex one: listed as placed there, and called.
TEST_F(CliTest, HttpServerPlacedOnAnExecutorIsListedThereAndCalled) {
  testing::EverythingHttp everything;
  exempt_.push_back(everything.pid());
  testing::CodexExecServer codex;
  exempt_.push_back(codex.pid());
  const auto config = write(
      "config.toml", "[environments.box]\nspawn = true\n\n[environments.codex]\nurl = \"" +
                         codex.url() + "\"\n\n[mcp_servers.here]\nurl = \"" + everything.url() +
                         "\"\n\n[mcp_servers.boxed]\nurl = \"" + everything.url() +
                         "\"\nenvironment = \"box\"\n\n[mcp_servers.codexed]\nurl = \"" +
                         everything.url() + "\"\nenvironment = \"codex\"\n");
  auto listed = tether({"mcp", "--config", config, "list", "--json"});
  ASSERT_EQ(listed.code, 0) << listed.err << codex.log();
  const auto list = listed.json();
  const auto* here = server_named(list, "here");
  const auto* boxed = server_named(list, "boxed");
  const auto* codexed = server_named(list, "codexed");
  ASSERT_TRUE(here && boxed && codexed) << listed.out;
  EXPECT_EQ(here->at("placement"), "local");
  EXPECT_EQ(boxed->at("environment"), "box");
  EXPECT_EQ(boxed->at("placement"), "box: spawned on loopback");
  EXPECT_EQ(codexed->at("placement").as_string(), "codex: " + codex.url());
  for (const auto* server : {here, boxed, codexed})
    EXPECT_EQ(server->at("status"), "ready") << listed.out;
  for (const char* name : {"boxed", "codexed"}) {
    auto echo = tether({"mcp", "--config", config, "call", name, "echo", "--arg",
                        std::string("message=through ") + name});
    EXPECT_EQ(echo.code, 0) << echo.err;
    EXPECT_NE(echo.out.find(std::string("through ") + name), std::string::npos) << echo.out;
  }
}

// `--gateway`: the commands use the servers of a running `tether mcp serve` (one local, one on
// a spawned executor), which keep their state between commands; a wrong token is refused with
// the gateway's reason; stopping the gateway ends every server.
TEST_F(CliTest, GatewayCommandsShareTheGatewaysServers) {
  const auto token = write("token", "cli-gateway-token\n");
  const auto config = write(
      "config.toml", std::string("[environments.sandbox]\nspawn = true\n\n") + test_server("here") +
                         test_server("there", "[]", "environment = \"sandbox\""));
  auto output = cloexec_pipe();
  const pid_t gateway = spawn_tether(
      {"mcp", "--config", config, "serve", "--listen", "http://127.0.0.1:0", "--token-file", token},
      [&](auto& actions) {
        ::posix_spawn_file_actions_adddup2(&actions, output[1], STDOUT_FILENO);
      });
  ::close(output[1]);
  ASSERT_GT(gateway, 0);
  exempt_.push_back(gateway);
  std::string url;
  read_until(output[0], url, "\n");
  ::close(output[0]);
  ASSERT_TRUE(url.starts_with("http://127.0.0.1:")) << url;
  url.pop_back();
  set_env("TETHER_GATEWAY_URL", url);
  set_env("TETHER_GATEWAY_TOKEN", "cli-gateway-token");

  auto listed = tether({"mcp", "list", "--json"});
  ASSERT_EQ(listed.code, 0) << listed.err;
  const auto list = listed.json();
  ASSERT_TRUE(server_named(list, "there")) << listed.out;
  EXPECT_EQ(server_named(list, "there")->at("status"), "ready");
  EXPECT_EQ(server_named(list, "there")->at("environment"), "sandbox");
  auto added = tether({"mcp", "call", "there", "add_tool", "--arg", "name=kept"});
  EXPECT_EQ(added.code, 0) << added.err;
  // The tool added by the previous command is still there: the same server answers.
  auto tools = tether({"mcp", "tools", "there"});
  EXPECT_EQ(tools.code, 0) << tools.err;
  EXPECT_NE(tools.out.find("there__kept"), std::string::npos) << tools.out;
  auto echo = tether({"mcp", "call", "here", "echo", "--arg", "message=through the gateway"});
  EXPECT_EQ(echo.code, 0) << echo.err;
  EXPECT_NE(echo.out.find("through the gateway"), std::string::npos) << echo.out;
  auto prompt = tether({"mcp", "prompt", "greet", "--server", "there", "--arg", "name=Ada"});
  EXPECT_EQ(prompt.code, 0) << prompt.err;
  EXPECT_NE(prompt.out.find("Hello, Ada!"), std::string::npos) << prompt.out;
  auto missing = tether({"mcp", "call", "here", "nope"});
  EXPECT_EQ(missing.code, 3);
  EXPECT_NE(missing.err.find("MCP server 'here' offers no tool 'nope' through the gateway"),
            std::string::npos)
      << missing.err;

  set_env("TETHER_GATEWAY_TOKEN", "wrong");
  auto refused = tether({"mcp", "tools"});
  EXPECT_EQ(refused.code, 3);
  EXPECT_NE(refused.err.find("cannot use the gateway at " + url), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("invalid bearer token"), std::string::npos) << refused.err;

  ::kill(gateway, SIGTERM);
  EXPECT_EQ(wait_for_exit(gateway, "SIGTERM to the gateway"), 0);
  exempt_.clear();
  expect_no_leftovers();
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

// add --url writes a streamable HTTP server (its token stays in the variable named).
TEST_F(CliTest, AddWritesAnHttpServer) {
  const auto config = write("config.toml", "");
  auto added = tether({"mcp", "--config", config, "add", "web", "--url", "http://127.0.0.1:9/mcp",
                       "--bearer-token-env-var", "WEB_TOKEN", "--header", "X-Team=tools",
                       "--header", "X-Query: a=b"});
  ASSERT_EQ(added.code, 0) << added.err;
  EXPECT_EQ(read(config),
            "[mcp_servers.web]\nurl = \"http://127.0.0.1:9/mcp\"\nbearer_token_env_var = "
            "\"WEB_TOKEN\"\nhttp_headers = { X-Query = \"a=b\", X-Team = \"tools\" }\n");
  auto got = tether({"mcp", "--config", config, "--json", "get", "web"});
  ASSERT_EQ(got.code, 0) << got.err;
  EXPECT_EQ(got.json().at("transport").at("type"), "streamable_http");
  EXPECT_EQ(got.json().at("transport").at("bearer_token_env_var"), "WEB_TOKEN");

  const std::pair<std::vector<std::string>, const char*> mistakes[] = {
      {{"add", "x"}, "add needs the server's command after --"},
      {{"add", "x", "--url", "http://h/mcp", "--", "cmd"}, "not both"},
      {{"add", "x", "--url", "http://h/mcp", "--env", "A=1"},
       "--env is for a stdio server; an HTTP server takes --header"},
      {{"add", "x", "--header", "A=1", "--", "cmd"}, "--header and --bearer-token-env-var are for"},
      {{"add", "x", "--url", "http://h/mcp", "--header", "novalue"},
       "--header 'novalue' is not key=value"},
  };
  for (const auto& [words, message] : mistakes) {
    std::vector<std::string> argv = {"mcp", "--config", config};
    argv.insert(argv.end(), words.begin(), words.end());
    auto run = tether(argv);
    EXPECT_EQ(run.code, 2) << message;
    EXPECT_NE(run.err.find(message), std::string::npos) << run.err;
  }
}

// add --environment is checked against the environments the config defines (and codex's
// environments.toml beside it) before anything is written.
// Environments are added, listed and removed from the command line; a server can then run there.
TEST_F(CliTest, EnvironmentsAreAddedListedAndRemoved) {
  const auto config = write("config.toml", "# mine\n");
  auto none = tether({"mcp", "--config", config, "environments"});
  EXPECT_EQ(none.code, 0) << none.err;
  EXPECT_NE(none.out.find("no environments configured; add one with `tether mcp environments add"),
            std::string::npos)
      << none.out;
  auto spawned = tether({"mcp", "--config", config, "environments", "add", "near", "--spawn"});
  ASSERT_EQ(spawned.code, 0) << spawned.err;
  EXPECT_EQ(spawned.out, "Added environment 'near' to " + config + "\n");
  EXPECT_EQ(tether({"mcp", "--config", config, "environments", "add", "far", "--url",
                    "ws://127.0.0.1:1", "--token-env-var", "FAR_TOKEN"})
                .code,
            0);
  EXPECT_EQ(
      tether({"mcp", "--config", config, "environments", "add", "piped", "--", "ssh", "box", "x"})
          .code,
      0);
  auto neither = tether({"mcp", "--config", config, "environments", "add", "odd"});
  EXPECT_EQ(neither.code, 2);
  EXPECT_NE(neither.err.find("environments add needs one of --url URL"), std::string::npos)
      << neither.err;

  auto listed = tether({"mcp", "--config", config, "environments"});
  ASSERT_EQ(listed.code, 0) << listed.err;
  for (const char* row : {"near         spawned on loopback", "far          ws://127.0.0.1:1",
                          "piped        command ssh box x"})
    EXPECT_NE(listed.out.find(row), std::string::npos) << row << " in:\n" << listed.out;
  auto json = tether({"mcp", "--config", config, "--json", "environments"});
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_EQ(json.json().at("environments").as_array().size(), 3u);
  EXPECT_EQ(json.json().at("environments").at(1).at("id"), "far");

  // A server placed there runs there (the spawned executor), and keeps it from being removed.
  ASSERT_EQ(
      tether({"mcp", "--config", config, "add", "srv", "--environment", "near", "--", kServer})
          .code,
      0);
  auto called =
      tether({"mcp", "--config", config, "call", "srv", "echo", "--arg", "message=there"});
  EXPECT_EQ(called.code, 0) << called.err;
  EXPECT_EQ(called.out, "there\n");
  auto used = tether({"mcp", "--config", config, "environments", "remove", "near"});
  EXPECT_EQ(used.code, 2);
  EXPECT_NE(used.err.find("cannot remove environment 'near' from " + config +
                          ": MCP server 'srv' runs there"),
            std::string::npos)
      << used.err;
  EXPECT_EQ(tether({"mcp", "--config", config, "remove", "srv"}).code, 0);
  for (const char* id : {"near", "far", "piped"}) {
    auto removed = tether({"mcp", "--config", config, "environments", "remove", id});
    EXPECT_EQ(removed.code, 0) << id << ": " << removed.err;
  }
  EXPECT_EQ(read(config), "# mine\n");
  auto typo = tether({"mcp", "--config", config, "environments", "rmove", "x"});
  EXPECT_EQ(typo.code, 2);
  EXPECT_NE(typo.err.find("'rmove' is not a `tether mcp environments` command; did you mean "
                          "'remove'?"),
            std::string::npos)
      << typo.err;
}

TEST_F(CliTest, AddChecksTheEnvironmentItNames) {
  const std::string original = "[environments.box]\nspawn = true\n";
  const auto config = write("config.toml", original);
  auto typo =
      tether({"mcp", "--config", config, "add", "far", "--environment", "bx", "--", "true"});
  EXPECT_EQ(typo.code, 2);
  EXPECT_NE(typo.err.find("unknown environment 'bx': use local, remote, or an environment defined "
                          "in " +
                          config + " or the environments.toml beside it; did you mean 'box'?"),
            std::string::npos)
      << typo.err;
  EXPECT_EQ(read(config), original);
  set_env("TETHER_HOME", (home_ / "tether-home").string());
  fs::create_directories(home_ / "tether-home");
  std::ofstream(home_ / "tether-home" / "environments.toml")
      << "[[environments]]\nid = \"codex-box\"\nurl = \"ws://127.0.0.1:1\"\n";
  for (const char* environment : {"box", "codex-box", "remote", "local"}) {
    auto added = tether({"mcp", "--config", config, "add", std::string("s-") + environment,
                         "--environment", environment, "--", "true"});
    EXPECT_EQ(added.code, 0) << environment << ": " << added.err;
  }
}

// --- output that cannot be written: the run ends, every server with it ------------------------

// `tether mcp list 2>&1 | head -1`: the reader leaves after the first status line; the next one
// fails (EPIPE) while the server is still starting.
TEST_F(CliTest, ReaderLeavingEndsTheRunWithEveryServer) {
  const auto gate = (home_ / "gate").string();
  ASSERT_EQ(::mkfifo(gate.c_str(), 0600), 0) << std::strerror(errno);
  const auto config = write("config.toml", gated_server("gated", gate));
  auto output = cloexec_pipe();
  const pid_t pid = spawn_tether({"mcp", "--config", config, "list"}, [&](auto& actions) {
    ::posix_spawn_file_actions_adddup2(&actions, output[1], STDOUT_FILENO);
    ::posix_spawn_file_actions_adddup2(&actions, output[1], STDERR_FILENO);
  });
  ::close(output[1]);
  ASSERT_GT(pid, 0);
  std::string first;
  read_until(output[0], first, "\n");
  EXPECT_TRUE(first.starts_with("mcp: gated starting\n")) << first;
  ::close(output[0]);  // head -1 is done
  open_gate(gate);
  EXPECT_EQ(wait_for_exit(pid, "its output's reader left (`2>&1 | head -1`)"), 141);
  expect_no_leftovers();
}

// `tether mcp tools | head -1`: the answer is larger than the pipe holds, so writing it fails
// once the reader has left.
TEST_F(CliTest, ReaderLeavingDuringTheAnswerEndsTheRun) {
  const auto config = write("config.toml", test_server("many", R"(["--extra-tools", "2000"])"));
  auto output = cloexec_pipe();
  ASSERT_GE(::fcntl(output[0], F_SETPIPE_SZ, 4096), 4096) << std::strerror(errno);
  const pid_t pid = spawn_tether({"mcp", "--config", config, "tools"}, [&](auto& actions) {
    ::posix_spawn_file_actions_adddup2(&actions, output[1], STDOUT_FILENO);
    ::posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  });
  ::close(output[1]);
  ASSERT_GT(pid, 0);
  std::string first;
  read_until(output[0], first, "\n");
  EXPECT_TRUE(first.starts_with("TOOL")) << first.substr(0, 200);
  ::close(output[0]);
  EXPECT_EQ(wait_for_exit(pid, "its stdout's reader left (`| head -1`)"), 141);
  expect_no_leftovers();
}

TEST_F(CliTest, ClosedOrFullStdoutFailsTheRun) {
  const auto config = write("config.toml", test_server("srv"));
  const std::pair<const char*, std::string> cases[] = {
      {nullptr, "error: cannot write to stdout: Bad file descriptor\n"},
      {"/dev/full", "error: cannot write to stdout: No space left on device\n"},
  };
  for (const auto& [path, message] : cases) {
    const char* device = path;  // a plain variable: clang 14 cannot capture a structured binding
    auto errors = cloexec_pipe();
    const pid_t pid = spawn_tether({"mcp", "--config", config, "list"}, [&](auto& actions) {
      if (device == nullptr) {
        ::posix_spawn_file_actions_addclose(&actions, STDOUT_FILENO);
      } else {
        ::posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, device, O_WRONLY, 0);
      }
      ::posix_spawn_file_actions_adddup2(&actions, errors[1], STDERR_FILENO);
    });
    ::close(errors[1]);
    ASSERT_GT(pid, 0);
    std::string err;
    const auto what = std::string("stdout ") + (device ? device : "closed");
    EXPECT_EQ(wait_for_exit(pid, what, errors[0], &err), 4) << what << ": " << err;
    ::close(errors[0]);
    EXPECT_TRUE(err.ends_with(message)) << what << ": " << err;
    expect_no_leftovers();
  }
}

// --- failures in words, and in JSON ----------------------------------------------------------

TEST_F(CliTest, ServerDyingMidCallShowsItsStderrTail) {
  const auto config =
      write("config.toml", test_server("srv", R"(["--stderr-line", "said before dying"])"));
  auto run = tether({"mcp", "--config", config, "call", "srv", "crash"});
  EXPECT_EQ(run.code, 3) << run.err;
  EXPECT_NE(run.err.find("error: MCP server process exited with code 7\nMCP server stderr (last "
                         "lines):\n"),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("said before dying"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("test server: crashing on purpose"), std::string::npos) << run.err;
}

TEST_F(CliTest, JsonFailuresPrintOneErrorObject) {
  const auto config = write("config.toml", test_server("srv") + test_server("bad", R"([
      "--exit-during-initialize", "--stderr-line", "bad news"])"));
  const auto broken = write("broken.toml", "[mcp_servers.x]\nenabled = true\n");
  struct Case {
    std::vector<std::string> args;
    const char* kind;
    int code;
    const char* message;  // a part of it
  };
  const Case cases[] = {
      {{"mcp", "--config", config, "--json", "frobnicate"},
       "usage",
       2,
       "'frobnicate' is not a `tether mcp` command"},
      {{"mcp", "--config", config, "--json", "call", "srv", "echo", "--args", "[1]"},
       "usage",
       2,
       "MCP tool arguments must be a JSON object, got an array"},
      {{"mcp", "--config", broken, "--json", "list"}, "config", 2, "invalid transport"},
      {{"mcp", "--config", config, "--json", "call", "bad", "echo"},
       "server",
       3,
       "MCP client for 'bad' failed to start"},
      {{"mcp", "--config", config, "--json", "call", "srv", "crash"},
       "server",
       3,
       "test server: crashing on purpose"},
      {{"mcp", "--config", config, "--json", "add", "srv", "--", "true"},
       "config",
       2,
       "MCP server 'srv' already exists"},
  };
  for (const auto& c : cases) {
    auto run = tether(c.args);
    EXPECT_EQ(run.code, c.code) << c.args.back() << ": " << run.err;
    boost::system::error_code ec;
    const auto document = json::parse(run.out, ec);
    ASSERT_FALSE(ec) << c.args.back() << ": stdout is not one JSON document: " << run.out;
    const auto* error = document.is_object() ? document.as_object().if_contains("error") : nullptr;
    ASSERT_TRUE(error && error->is_object()) << run.out;
    EXPECT_EQ(error->at("kind"), c.kind) << run.out;
    EXPECT_EQ(error->at("exitCode"), c.code) << run.out;
    EXPECT_NE(error->at("message").as_string().find(c.message), std::string::npos) << run.out;
  }

  const auto mark = testing::unique_marker("cli-json-interrupt");
  testing::MarkerReaper reaper(mark);
  const auto slow =
      write("slow.toml",
            test_server("slow", "[\"--never-initialize\", \"--stderr-line\", \"" + mark + "\"]"));
  auto interrupted = tether({"mcp", "--config", slow, "--json", "call", "slow", "echo"}, 1500ms);
  EXPECT_EQ(interrupted.code, 130) << interrupted.err;
  EXPECT_EQ(interrupted.json().at("error").at("kind"), "interrupted") << interrupted.out;
  reaper.expect_none_left(5s);
}

// --- the live status line on a terminal --------------------------------------------------------

// The status lines drawn in `output`, as shown (colour codes removed): from each `starting MCP
// servers` to the next carriage return or newline.
std::vector<std::string> status_lines(const std::string& output) {
  static const std::regex kStyling("\x1b\\[[0-9;]*m");
  std::vector<std::string> lines;
  for (auto at = output.find("starting MCP servers"); at != std::string::npos;
       at = output.find("starting MCP servers", at + 1)) {
    const auto end = output.find_first_of("\r\n", at);
    lines.push_back(std::regex_replace(output.substr(at, end - at), kStyling, ""));
  }
  return lines;
}

// Whether every status line is drawn on a cleared line and cleared (by the next one, or before
// anything else is written, or before tether exits): nothing stale is left on the terminal.
::testing::AssertionResult status_lines_cleared(const std::string& output) {
  constexpr std::string_view kClear = "\r\x1b[K";
  std::size_t count = 0;
  for (auto at = output.find("starting MCP servers"); at != std::string::npos;
       at = output.find("starting MCP servers", at + 1), ++count) {
    if (at < kClear.size() || output.compare(at - kClear.size(), kClear.size(), kClear) != 0)
      return ::testing::AssertionFailure() << "status line " << count << " drawn after other text";
    const auto end = output.find_first_of("\r\n", at);
    if (end == std::string::npos || output.compare(end, kClear.size(), kClear) != 0)
      return ::testing::AssertionFailure() << "status line " << count << " left on the terminal";
  }
  if (count == 0) return ::testing::AssertionFailure() << "no status line";
  return ::testing::AssertionSuccess();
}

TEST_F(CliTest, StatusLineFitsTheTerminalAndIsCleared) {
  constexpr unsigned short kColumns = 40;
  const auto config =
      write("config.toml",
            test_server("a-server-with-a-long-name") +
                test_server("another-server-failing-to-start", R"(["--exit-during-initialize"])") +
                test_server("a-third-one-with-a-long-name", R"(["--initialize-delay-ms", "200"])"));
  auto listed = on_terminal({"mcp", "--config", config, "list"}, kColumns);
  EXPECT_EQ(listed.code, 3) << listed.output;
  const auto lines = status_lines(listed.output);
  EXPECT_FALSE(lines.empty()) << listed.output;
  for (const auto& line : lines) EXPECT_LE(line.size(), kColumns) << line;
  EXPECT_TRUE(status_lines_cleared(listed.output)) << listed.output;
  EXPECT_NE(listed.output.find("SERVER"), std::string::npos) << listed.output;

  // An error exit: the line is gone before the error is printed.
  auto failed = on_terminal(
      {"mcp", "--config", config, "call", "another-server-failing-to-start", "echo"}, kColumns);
  EXPECT_EQ(failed.code, 3) << failed.output;
  for (const auto& line : status_lines(failed.output)) EXPECT_LE(line.size(), kColumns) << line;
  EXPECT_TRUE(status_lines_cleared(failed.output)) << failed.output;
  EXPECT_NE(failed.output.find("error:"), std::string::npos) << failed.output;
}

// A log line (the server's stderr at info) takes the line from the status, and Ctrl-C leaves none.
TEST_F(CliTest, StatusLineMakesWayForLogsAndIsClearedOnInterrupt) {
  const auto config = write(
      "config.toml",
      test_server("never-ready", R"(["--never-initialize", "--stderr-line", "a line on stderr"])"));
  auto run = on_terminal({"--log-level", "info", "mcp", "--config", config, "list"}, 80,
                         "a line on stderr");
  EXPECT_EQ(run.code, 130) << run.output;
  EXPECT_TRUE(status_lines_cleared(run.output)) << run.output;
}

}  // namespace
}  // namespace tether::cli
