// The MCP stdio launchers with real processes, each test in both placements: here
// (launch_local) and on a real `tether exec-server` started by the test (launch_on_executor
// through host::Environment). Covers the line framing (round trip, '\r\n', empty lines, the
// line limit), the environment and cwd rules, stderr in the diagnostics, the end reason of an
// exited process, the UTF-8 checks of the remote placement, executor loss, and no process left
// behind by close(), abort() or destruction (marker processes, `sleep 301.<unique>`).
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <unistd.h>

#include <boost/asio/this_coro.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "exec_server.hpp"
#include <tether/host/environment.hpp>
#include <tether/mcp/stdio.hpp>

namespace tether::mcp {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::eventually;
using testing::processes_matching;

constexpr auto kWait = 10s;

enum class Where { local, executor };

std::string unique_marker() {
  static int counter = 0;
  return "301." + std::to_string(::getpid()) + std::to_string(++counter);
}

StdioCommand shell(std::string script) {
  StdioCommand command;
  command.program = "sh";
  command.args = {"-c", std::move(script)};
  return command;
}

// Sets a variable of this process for one test.
class ScopedVariable {
 public:
  ScopedVariable(std::string name, const std::string& value) : name_(std::move(name)) {
    ::setenv(name_.c_str(), value.c_str(), 1);
  }
  ~ScopedVariable() { ::unsetenv(name_.c_str()); }

 private:
  std::string name_;
};

// A temporary directory, removed with its content.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "mcp-stdio-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Launches in one placement; owns the executor connection for the remote one (closed by
// finish(), which run() always calls, so nothing outlives the body's io_context).
class Launcher {
 public:
  Launcher(Where where, const testing::ExecServer* server) : where_(where), server_(server) {}

  asio::awaitable<Expected<ServerConnection>> launch(StdioCommand command, StdioOptions options) {
    auto executor = co_await asio::this_coro::executor;
    if (where_ == Where::local) co_return launch_local(executor, command, options);
    auto starter = co_await environment()->starter();
    if (!starter) co_return starter.error();
    co_return co_await launch_on_executor(*starter, std::move(command), std::move(options));
  }
  asio::awaitable<Expected<ServerConnection>> launch(StdioCommand command) {
    return launch(std::move(command), StdioOptions{});
  }

  // The executor connection (remote placement only), made on first use.
  std::shared_ptr<host::Environment> environment() {
    if (!environment_) {
      host::EnvironmentOptions options;
      options.client.resume_window = 300ms;
      environment_ = host::Environment::create(
          executor_, "stdio-test", host::ExecutorUrl{server_->url(), std::nullopt}, options);
    }
    return environment_;
  }

  asio::awaitable<void> finish() {
    if (environment_) co_await environment_->close();
    environment_.reset();
  }

  void set_executor(asio::any_io_executor executor) { executor_ = std::move(executor); }

 private:
  Where where_;
  const testing::ExecServer* server_;
  asio::any_io_executor executor_;
  std::shared_ptr<host::Environment> environment_;
};

class StdioTest : public ::testing::TestWithParam<Where> {
 protected:
  void SetUp() override {
    // Writing to a dead child must not kill the test (the embedding program ignores SIGPIPE).
    ::signal(SIGPIPE, SIG_IGN);
    if (remote()) server_.emplace();
  }

  bool remote() const { return GetParam() == Where::executor; }

  using Body = std::function<asio::awaitable<void>(Launcher&)>;
  void run(const Body& body) {
    testing::run_async([&]() -> asio::awaitable<void> {
      Launcher launcher(GetParam(), server_ ? &*server_ : nullptr);
      launcher.set_executor(co_await asio::this_coro::executor);
      co_await body(launcher);
      co_await launcher.finish();
    });
  }

  std::optional<testing::ExecServer> server_;
};

asio::awaitable<std::string> read_text(jsonrpc::Transport& transport) {
  auto line = co_await transport.read();
  if (!line) co_return "<error: " + line.error().message() + ">";
  co_return *line;
}

TEST_P(StdioTest, MessagesRoundTripThroughTheProcess) {
  run([&](Launcher& launcher) -> asio::awaitable<void> {
    StdioCommand command;
    command.program = "cat";
    auto server = co_await launcher.launch(command);
    CO_ASSERT_TRUE(server.has_value());
    EXPECT_NE(
        server->description.find(remote() ? "executor process mcp-stdio-" : "local process 'cat'"),
        std::string::npos)
        << server->description;
    auto& transport = *server->transport;
    EXPECT_FALSE(transport.has_keepalive());
    const std::string first = R"({"jsonrpc":"2.0","id":1,"method":"ping"})";
    const std::string second = R"({"jsonrpc":"2.0","method":"notifications/initialized"})";
    EXPECT_FALSE(co_await transport.write(first));
    EXPECT_FALSE(co_await transport.write(second));
    EXPECT_EQ(co_await read_text(transport), first);
    EXPECT_EQ(co_await read_text(transport), second);
    co_await transport.close(jsonrpc::close_code::kNormal);
  });
}

TEST_P(StdioTest, CrLfIsTrimmedAndEmptyLinesAreSkipped) {
  run([&](Launcher& launcher) -> asio::awaitable<void> {
    auto server = co_await launcher.launch(shell(R"(printf '\n{"a":1}\r\n\r\n\n{"b":2}'; exit 0)"));
    CO_ASSERT_TRUE(server.has_value());
    EXPECT_EQ(co_await read_text(*server->transport), R"({"a":1})");
    // The unterminated last line still arrives before the end.
    EXPECT_EQ(co_await read_text(*server->transport), R"({"b":2})");
    auto end = co_await server->transport->read();
    EXPECT_FALSE(end.has_value());
  });
}

TEST_P(StdioTest, EnvironmentIsBuiltFromNothing) {
  const std::string tag = std::to_string(::getpid());
  ScopedVariable copied("STDIO_TEST_COPIED", "copied-" + tag);
  ScopedVariable overridden("STDIO_TEST_OVERRIDDEN", "ours-" + tag);
  ScopedVariable secret("STDIO_TEST_SECRET", "secret-" + tag);
  // A core variable set after the executor started: only a local child copies our value.
  ScopedVariable core("TZ", "STDIO-TEST-" + tag);
  run([&](Launcher& launcher) -> asio::awaitable<void> {
    StdioCommand command = shell(
        R"(printf '%s|%s|%s|%s|%s\n' "$STDIO_TEST_COPIED" "$STDIO_TEST_OVERRIDDEN" )"
        R"("${STDIO_TEST_SECRET-unset}" "$STDIO_TEST_LITERAL" "${TZ-unset}"; cat >/dev/null)");
    command.env_vars = {"STDIO_TEST_COPIED", "STDIO_TEST_OVERRIDDEN", "STDIO_TEST_NOT_SET"};
    command.env = {{"STDIO_TEST_OVERRIDDEN", "literal-wins"}, {"STDIO_TEST_LITERAL", "lit"}};
    auto server = co_await launcher.launch(command);
    CO_ASSERT_TRUE(server.has_value());
    const std::string line = co_await read_text(*server->transport);
    const std::string tz = remote() ? "" : "|STDIO-TEST-" + tag;
    EXPECT_TRUE(line.starts_with("copied-" + tag + "|literal-wins|unset|lit")) << line;
    if (remote()) {
      EXPECT_EQ(line.find("STDIO-TEST-"), std::string::npos) << line;
    } else {
      EXPECT_TRUE(line.ends_with(tz)) << line;
    }
    co_await server->transport->close(jsonrpc::close_code::kNormal);
  });
}

TEST_P(StdioTest, ProgramIsResolvedAgainstTheChildsPath) {
  TempDir dir;
  {
    std::ofstream script(dir.path() + "/stdio-test-echo");
    script << "#!/bin/sh\necho '{\"from\":\"path\"}'\nexec cat >/dev/null\n";
  }
  fs::permissions(dir.path() + "/stdio-test-echo", fs::perms::owner_all);
  run([&](Launcher& launcher) -> asio::awaitable<void> {
    StdioCommand command;
    command.program = "stdio-test-echo";
    command.env = {{"PATH", dir.path() + ":/usr/bin:/bin"}};
    auto server = co_await launcher.launch(command);
    CO_ASSERT_TRUE(server.has_value());
    EXPECT_EQ(co_await read_text(*server->transport), R"({"from":"path"})");
    co_await server->transport->close(jsonrpc::close_code::kNormal);
  });
}

TEST_P(StdioTest, CwdIsHonouredElseTheDefault) {
  TempDir dir;
  run([&](Launcher& launcher) -> asio::awaitable<void> {
    StdioCommand command = shell("pwd -P; cat >/dev/null");
    command.cwd = dir.path();
    auto server = co_await launcher.launch(command);
    CO_ASSERT_TRUE(server.has_value());
    EXPECT_EQ(co_await read_text(*server->transport), fs::canonical(dir.path()).string());
    co_await server->transport->close(jsonrpc::close_code::kNormal);

    std::string expected = fs::canonical(fs::current_path()).string();
    if (remote()) {
      auto client = co_await launcher.environment()->client();
      CO_ASSERT_TRUE(client.has_value());
      expected = fs::canonical((*client)->default_cwd()).string();
    }
    auto fallback = co_await launcher.launch(shell("pwd -P; cat >/dev/null"));
    CO_ASSERT_TRUE(fallback.has_value());
    EXPECT_EQ(co_await read_text(*fallback->transport), expected);
    co_await fallback->transport->close(jsonrpc::close_code::kNormal);
  });
}

TEST_P(StdioTest, ExitEndsReadsWithTheExitCodeAndTheStderrTail) {
  run([&](Launcher& launcher) -> asio::awaitable<void> {
    auto server = co_await launcher.launch(shell("echo one >&2; echo 'two\r' >&2; exit 3"));
    CO_ASSERT_TRUE(server.has_value());
    auto end = co_await server->transport->read();
    CO_ASSERT_TRUE(!end.has_value());
    EXPECT_EQ(end.error().message(), "MCP server process exited with code 3");
    EXPECT_EQ(server->diagnostics->end_reason(), "MCP server process exited with code 3");
    EXPECT_EQ(server->diagnostics->stderr_tail(), "one\ntwo");
    EXPECT_FALSE(server->transport->remote_close_code().has_value());
    // The process is gone: writing fails.
    EXPECT_TRUE(co_await server->transport->write("{}"));
  });
}

TEST_P(StdioTest, ASignalEndsReadsWithItsReason) {
  run([&](Launcher& launcher) -> asio::awaitable<void> {
    auto server = co_await launcher.launch(shell("kill -9 $$"));
    CO_ASSERT_TRUE(server.has_value());
    auto end = co_await server->transport->read();
    CO_ASSERT_TRUE(!end.has_value());
    // The executor reports a signal the shell's way (128 + N).
    const std::string expected = remote() ? "MCP server process exited with code 137"
                                          : "MCP server process killed by signal 9";
    EXPECT_EQ(server->diagnostics->end_reason(), expected);
  });
}

TEST_P(StdioTest, AnOverLongLineIsAnError) {
  run([&](Launcher& launcher) -> asio::awaitable<void> {
    StdioOptions options;
    options.max_line_bytes = 100;
    auto server = co_await launcher.launch(
        shell(R"(echo '{"short":1}'; head -c 500 /dev/zero | tr '\0' x; echo; cat >/dev/null)"),
        options);
    CO_ASSERT_TRUE(server.has_value());
    EXPECT_EQ(co_await read_text(*server->transport), R"({"short":1})");
    auto end = co_await server->transport->read();
    CO_ASSERT_TRUE(!end.has_value());
    EXPECT_EQ(end.error(), boost::system::errc::message_size);
    EXPECT_EQ(server->diagnostics->end_reason(), "MCP server sent a line longer than 100 bytes");
    co_await server->transport->close(jsonrpc::close_code::kNormal);
  });
}

// The three ways a transport ends; none may leave a process of the server's group behind.
enum class Ending { close, abort, destroy };

TEST_P(StdioTest, NoProcessIsLeftBehind) {
  for (const Ending ending : {Ending::close, Ending::abort, Ending::destroy}) {
    SCOPED_TRACE(static_cast<int>(ending));
    const std::string marker = unique_marker();
    run([&](Launcher& launcher) -> asio::awaitable<void> {
      StdioOptions options;
      options.kill_grace = 500ms;
      auto server = co_await launcher.launch(
          shell("sleep " + marker + " & echo '{}'; cat >/dev/null"), options);
      CO_ASSERT_TRUE(server.has_value());
      EXPECT_EQ(co_await read_text(*server->transport), "{}");
      const bool started = co_await eventually(
          [&] { return !processes_matching("sleep " + marker).empty(); }, kWait);
      CO_ASSERT_TRUE(started);
      if (ending == Ending::close) co_await server->transport->close(jsonrpc::close_code::kNormal);
      if (ending == Ending::abort) server->transport->abort();
      if (ending == Ending::destroy) server->transport.reset();
      const bool gone =
          co_await eventually([&] { return processes_matching(marker).empty(); }, kWait);
      EXPECT_TRUE(gone) << "the server's group outlived the transport";
    });
    // Whatever happened, nothing of ours keeps running.
    for (const pid_t pid : processes_matching(marker)) ::kill(pid, SIGKILL);
  }
}

INSTANTIATE_TEST_SUITE_P(Placements, StdioTest, ::testing::Values(Where::local, Where::executor),
                         [](const auto& info) {
                           return info.param == Where::local ? "Local" : "Executor";
                         });

// --- One placement only ---------------------------------------------------------------------

// Counts starts; the UTF-8 checks must fail before anything is sent to an executor.
class CountingStarter final : public exec::ProcessStarter {
 public:
  asio::awaitable<Expected<std::shared_ptr<exec::Process>>> start(exec::StartParams) override {
    ++starts;
    co_return jsonrpc::make_error(jsonrpc::code::kInternalError, "not for this test");
  }
  int starts = 0;
};

TEST(StdioExecutor, NonUnicodeStringsAreRejectedBeforeAnythingStarts) {
  const std::string bad = "\xff\xfe";
  ScopedVariable copied("STDIO_TEST_BYTES", bad);
  struct Case {
    StdioCommand command;
    std::string message;
  };
  std::vector<Case> cases(5);
  cases[0].command.program = "cat" + bad;
  cases[0].message = "command must be valid Unicode for remote MCP stdio";
  cases[1].command.program = "cat";
  cases[1].command.args = {"ok", bad};
  cases[1].message = "argument must be valid Unicode for remote MCP stdio";
  cases[2].command.program = "cat";
  cases[2].command.env = {{"NAME" + bad, "v"}};
  cases[2].message = "environment variable name must be valid Unicode for remote MCP stdio";
  cases[3].command.program = "cat";
  cases[3].command.env_vars = {"STDIO_TEST_BYTES"};
  cases[3].message = "environment variable value must be valid Unicode for remote MCP stdio";
  cases[4].command.program = "cat";
  cases[4].command.cwd = "/tmp/" + bad;
  cases[4].message = "working directory must be valid Unicode for remote MCP stdio";
  auto starter = std::make_shared<CountingStarter>();
  testing::run_async([&]() -> asio::awaitable<void> {
    for (const Case& c : cases) {
      auto server = co_await launch_on_executor(starter, c.command, StdioOptions{});
      CO_ASSERT_TRUE(!server.has_value());
      EXPECT_EQ(server.error().message, c.message);
    }
  });
  EXPECT_EQ(starter->starts, 0);
}

TEST(StdioLocal, NonUnicodeValuesArePreserved) {
  ScopedVariable copied("STDIO_TEST_BYTES", "\xff\xfe");
  testing::run_async([&]() -> asio::awaitable<void> {
    StdioCommand command = shell(R"(printf '%s%s' "$STDIO_TEST_BYTES" "$LITERAL" | od -An -tx1)");
    command.env_vars = {"STDIO_TEST_BYTES"};
    command.env = {{"LITERAL", "\xc0"}};
    auto executor = co_await asio::this_coro::executor;
    auto server = launch_local(executor, command, StdioOptions{});
    CO_ASSERT_TRUE(server.has_value());
    EXPECT_EQ(co_await read_text(*server->transport), " ff fe c0");
  });
}

TEST(StdioLocal, SpawnFailuresCarryTheOsReason) {
  testing::run_async([&]() -> asio::awaitable<void> {
    StdioCommand command;
    command.program = "stdio-test-no-such-program";
    auto executor = co_await asio::this_coro::executor;
    auto server = launch_local(executor, command, StdioOptions{});
    CO_ASSERT_TRUE(!server.has_value());
    EXPECT_EQ(
        server.error().message,
        "failed to start 'stdio-test-no-such-program': No such file or directory (os error 2)");
  });
}

TEST(StdioExecutor, ExecutorLossEndsReadsWithTheFailure) {
  ::signal(SIGPIPE, SIG_IGN);
  testing::ExecServer server;
  const std::string marker = unique_marker();
  testing::run_async([&]() -> asio::awaitable<void> {
    Launcher launcher(Where::executor, &server);
    launcher.set_executor(co_await asio::this_coro::executor);
    auto mcp = co_await launcher.launch(shell("echo '{}'; exec sleep " + marker));
    CO_ASSERT_TRUE(mcp.has_value());
    EXPECT_EQ(co_await read_text(*mcp->transport), "{}");
    server.signal(SIGKILL);
    auto end = co_await mcp->transport->read();
    EXPECT_FALSE(end.has_value());
    const auto& reason = mcp->diagnostics->end_reason();
    CO_ASSERT_TRUE(reason.has_value());
    EXPECT_TRUE(reason->starts_with(exec::kDisconnected)) << *reason;
    // The executor's direct child dies with it (a grandchild could not: nobody is left to
    // signal its group).
    const bool gone =
        co_await eventually([&] { return processes_matching(marker).empty(); }, kWait);
    EXPECT_TRUE(gone);
    co_await launcher.finish();
  });
  for (const pid_t pid : processes_matching(marker)) ::kill(pid, SIGKILL);
}

}  // namespace
}  // namespace tether::mcp
