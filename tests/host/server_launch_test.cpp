// host::launch_server: the placement rules of docs/mcp.md ("Placement") with real processes.
// Acceptance scenarios 27 (remote without an executor: an error, and nothing started anywhere)
// and 28 (remote streamable HTTP: through the executor's http/request, the server sees the
// executor's connection; with no executor, nothing connects), unknown environments,
// and where a stdio server actually runs: a child of this process (local) or of the spawned
// loopback executor (`remote` and the executor's own id), one executor shared by the servers
// placed on it, spawn failures and the UTF-8 rule of remote commands. Without processes: a
// configured server's launch settings (launch_of) and an environment's placement (placement_of).
// Does not own: MCP behaviour over those servers (tests/mcp/client_test.cpp).
// Data flow: ServerLaunch + Environments -> launch_server -> error | ServerConnection -> Client;
// where a process runs is read from /proc (its parent).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "build_paths.hpp"
#include "exec_server.hpp"
#include "mcp_fixtures.hpp"
#include <tether/host/server_launch.hpp>
#include <tether/mcp/client.hpp>

namespace tether::host {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::command_line;
using testing::eventually;
using testing::McpPlacement;
using testing::McpSite;
using testing::processes_matching;
using testing::spawner_of;

const char* const kServer = testing::test_mcp_server();
constexpr auto kWait = 10s;

using testing::ok;

// Tests own their markers: TearDown checks nothing with one is left, the reaper kills leftovers.
class LaunchTest : public ::testing::Test {
 protected:
  std::string marker() {
    auto marker = testing::unique_marker("server-launch-test");
    reaper_.add(marker);
    return marker;
  }
  mcp::StdioCommand server(const std::string& mark) {
    return testing::stdio_command(kServer, {"--stderr-line", mark});
  }
  void TearDown() override { reaper_.expect_none_left(kWait); }
  testing::MarkerReaper reaper_;
};

// A temp file path that does not exist yet (and is removed afterwards).
class TempPath {
 public:
  explicit TempPath(const std::string& name)
      : path_(std::filesystem::temp_directory_path() / name) {
    std::filesystem::remove(path_);
  }
  ~TempPath() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  TempPath(const TempPath&) = delete;
  TempPath& operator=(const TempPath&) = delete;
  std::string str() const { return path_.string(); }
  bool exists() const { return std::filesystem::exists(path_); }

 private:
  std::filesystem::path path_;
};

ServerLaunch stdio_launch(std::string name, mcp::StdioCommand command, std::string environment) {
  ServerLaunch launch;
  launch.name = std::move(name);
  launch.transport = std::move(command);
  launch.environment = std::move(environment);
  return launch;
}

ServerLaunch http_launch(std::string name, std::string url, std::string environment) {
  ServerLaunch launch;
  launch.name = std::move(name);
  mcp::HttpServerConfig config;
  config.url = std::move(url);
  launch.transport = std::move(config);
  launch.environment = std::move(environment);
  return launch;
}

// --- 27: remote without an executor --------------------------------------------------------

TEST_F(LaunchTest, RemoteWithoutAnExecutorFailsAndStartsNothing) {
  const auto mark = marker();
  TempPath touched(mark);
  // Run anywhere, this command would leave a file behind.
  const std::string script =
      "touch '" + touched.str() + "'; exec '" + kServer + "' --stderr-line " + mark;
  const auto command = testing::stdio_command("/bin/sh", {"-c", script});
  testing::run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Environments none;
    auto launch = stdio_launch("far-away", command, "remote");
    auto result = co_await launch_server(executor, launch, none);
    CO_ASSERT_TRUE(!result.has_value());
    EXPECT_EQ(result.error().message,
              "remote MCP server 'far-away' requires a remote executor environment");

    // An executor that exists but is not the remote one changes nothing: no fallback anywhere.
    Environments unnamed;
    unnamed.add(
        Environment::create(executor, "loopback", SpawnedExecutor{testing::tether_binary(), {}}));
    auto again = co_await launch_server(executor, launch, unnamed);
    CO_ASSERT_TRUE(!again.has_value());
    EXPECT_EQ(again.error().message,
              "remote MCP server 'far-away' requires a remote executor environment");

    const auto http = http_launch("web", "http://127.0.0.1:9/mcp", "remote");
    auto web = co_await launch_server(executor, http, unnamed);
    CO_ASSERT_TRUE(!web.has_value());
    EXPECT_EQ(web.error().message,
              "remote MCP server 'web' requires a remote executor environment");
    co_await unnamed.close();
    // The shell would have touched the file within a moment had anything started it.
    co_await testing::sleep_for(300ms);
    EXPECT_FALSE(touched.exists()) << "the command ran somewhere";
    EXPECT_TRUE(processes_matching(mark).empty());
  });
}

TEST_F(LaunchTest, UnknownEnvironmentFailsThatServer) {
  const auto mark = marker();
  testing::run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Environments environments;
    auto launch = stdio_launch("gpu-tool", server(mark), "gpu");
    auto result = co_await launch_server(executor, launch, environments);
    CO_ASSERT_TRUE(!result.has_value());
    EXPECT_EQ(result.error().message, "unknown environment 'gpu' for MCP server 'gpu-tool'");
    EXPECT_TRUE(processes_matching(mark).empty());
  });
}

// --- 28: remote streamable HTTP -------------------------------------------------------------

// An initialize answer for whoever connected to `listener`: the connection that reached it, read
// and answered in this process (a fake MCP server that answers one request).
asio::awaitable<void> answer_initialize(asio::ip::tcp::socket socket) {
  namespace http = boost::beast::http;
  boost::beast::flat_buffer buffer;
  http::request<http::string_body> request;
  boost::system::error_code ec;
  co_await http::async_read(socket, buffer, request, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  http::response<http::string_body> response{http::status::ok, 11};
  response.set(http::field::content_type, "application/json");
  response.body() =
      R"({"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},)"
      R"("serverInfo":{"name":"fake","version":"0"}}})";
  response.prepare_payload();
  response.keep_alive(false);
  co_await http::async_write(socket, response, asio::redirect_error(asio::use_awaitable, ec));
}

TEST_F(LaunchTest, RemoteStreamableHttpGoesThroughTheExecutor) {
  testing::run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    asio::ip::tcp::acceptor listener(executor, {asio::ip::make_address("127.0.0.1"), 0});
    const auto port = listener.local_endpoint().port();
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/mcp";
    Environments environments;
    auto loopback =
        Environment::create(executor, "loopback", SpawnedExecutor{testing::tether_binary(), {}});
    environments.add(loopback);
    auto launch = http_launch("web", url, "loopback");
    auto connection = co_await launch_server(executor, launch, environments);
    if (!connection) ADD_FAILURE() << connection.error().message;
    CO_ASSERT_TRUE(connection.has_value());
    EXPECT_EQ(connection->description, url + " via loopback");
    auto ec = co_await connection->transport->write(
        R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{}})");
    CO_ASSERT_TRUE(!ec);
    auto socket = co_await listener.async_accept(asio::use_awaitable);
    // The connection is the executor's, not this process's own.
    auto candidates = processes_matching("exec-server");
    candidates.push_back(::getpid());
    const auto clients = testing::tcp_clients_of(port, candidates);
    CO_ASSERT_EQ(clients.size(), 1u);
    EXPECT_NE(clients[0], ::getpid());
    EXPECT_NE(command_line(clients[0]).find("exec-server"), std::string::npos);
    co_await answer_initialize(std::move(socket));
    auto answer = co_await connection->transport->read();
    CO_ASSERT_TRUE(answer.has_value());
    EXPECT_NE(answer->find("\"fake\""), std::string::npos) << *answer;
    connection->transport->abort();
    co_await environments.close();
  });
}

TEST_F(LaunchTest, RemoteStreamableHttpWithoutAnExecutorConnectsNowhere) {
  testing::run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    // A listener the server URL points at: nothing may connect to it.
    asio::ip::tcp::acceptor listener(executor, {asio::ip::make_address("127.0.0.1"), 0});
    listener.non_blocking(true);
    const std::string url =
        "http://127.0.0.1:" + std::to_string(listener.local_endpoint().port()) + "/mcp";
    // No remote executor at all; and an executor URL that nothing answers.
    Environments environments;
    const auto dead_port = std::to_string(testing::free_port());
    environments.add(
        Environment::create(executor, "gone", ExecutorUrl{"ws://127.0.0.1:" + dead_port, "token"}));
    auto remote = co_await launch_server(executor, http_launch("web", url, "remote"), environments);
    CO_ASSERT_TRUE(!remote.has_value());
    EXPECT_EQ(remote.error().message,
              "remote MCP server 'web' requires a remote executor environment");
    auto gone = co_await launch_server(executor, http_launch("web", url, "gone"), environments);
    CO_ASSERT_TRUE(!gone.has_value());
    EXPECT_NE(gone.error().message.find("failed to connect to exec-server websocket"),
              std::string::npos)
        << gone.error().message;
    co_await testing::sleep_for(100ms);
    boost::system::error_code ec;
    asio::ip::tcp::socket peer(executor);
    listener.accept(peer, ec);
    EXPECT_EQ(ec, asio::error::would_block) << "something connected to the HTTP server";
    co_await environments.close();
  });
}

// --- where stdio servers run ----------------------------------------------------------------

class ServerPlacement : public LaunchTest, public ::testing::WithParamInterface<McpPlacement> {};

asio::awaitable<jsonrpc::Expected<std::shared_ptr<mcp::Client>>> connect_launch(
    asio::any_io_executor executor, ServerLaunch launch, const Environments& environments) {
  using Result = jsonrpc::Expected<std::shared_ptr<mcp::Client>>;
  auto connection = co_await launch_server(executor, launch, environments);
  if (!connection) co_return Result{boost::system::in_place_error, connection.error()};
  mcp::ClientOptions options;
  co_return co_await mcp::Client::connect(executor, std::move(*connection), std::move(options));
}

// The one process carrying `mark`, 0 (with a failure) otherwise.
pid_t only_process(const std::string& mark) {
  const auto found = processes_matching(mark);
  EXPECT_EQ(found.size(), 1u) << mark;
  return found.size() == 1 ? found.front() : 0;
}

TEST_P(ServerPlacement, StdioServerRunsWhereItsPlacementSays) {
  const auto first_mark = marker();
  const auto second_mark = marker();
  testing::run_in_site(GetParam(), [&](McpSite& site) -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto first = co_await connect_launch(
        executor, stdio_launch("first", server(first_mark), site.environment_name()),
        site.environments());
    CO_ASSERT_TRUE(ok(first));
    // The executor also answers to its own id; both servers share its one connection.
    const std::string second_placement =
        GetParam() == McpPlacement::local ? std::string("local") : std::string("loopback");
    auto second = co_await connect_launch(
        executor, stdio_launch("second", server(second_mark), second_placement),
        site.environments());
    CO_ASSERT_TRUE(ok(second));

    const pid_t first_pid = only_process(first_mark);
    const pid_t second_pid = only_process(second_mark);
    CO_ASSERT_TRUE(first_pid != 0 && second_pid != 0);
    const pid_t first_parent = spawner_of(first_pid);
    if (GetParam() == McpPlacement::local) {
      EXPECT_EQ(first_parent, ::getpid()) << "a local server is our child";
    } else {
      EXPECT_NE(first_parent, ::getpid()) << "a remote server is not our child";
      EXPECT_NE(command_line(first_parent).find("exec-server"), std::string::npos)
          << "its parent is the executor: " << command_line(first_parent);
    }
    EXPECT_EQ(spawner_of(second_pid), first_parent) << "one executor serves both";

    auto pong = co_await (*first)->ping();
    EXPECT_TRUE(pong.has_value());
    co_await (*first)->shutdown();
    co_await (*second)->shutdown();
    EXPECT_TRUE(co_await eventually([&] { return processes_matching(first_mark).empty(); }, kWait));
    EXPECT_TRUE(
        co_await eventually([&] { return processes_matching(second_mark).empty(); }, kWait));
  });
}

TEST_P(ServerPlacement, ProgramThatCannotStartIsAnError) {
  const std::string program = "/nonexistent/" + marker();
  testing::run_in_site(GetParam(), [&](McpSite& site) -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    mcp::ClientOptions options;
    options.startup_timeout = 5s;
    auto connection = co_await site.launch(testing::stdio_command(program));
    if (GetParam() == McpPlacement::local) {
      CO_ASSERT_TRUE(!connection.has_value());
      EXPECT_EQ(connection.error().message,
                "failed to start '" + program + "': No such file or directory (os error 2)");
      co_return;
    }
    // An executor may report it at process/start or as a process that exits at once; either way
    // no session comes of it.
    if (!connection) co_return;
    auto client =
        co_await mcp::Client::connect(executor, std::move(*connection), std::move(options));
    CO_ASSERT_TRUE(!client.has_value());
    EXPECT_NE(client.error().message.find("handshaking with MCP server failed"), std::string::npos)
        << client.error().message;
  });
}

INSTANTIATE_TEST_SUITE_P(Placements, ServerPlacement,
                         ::testing::Values(McpPlacement::local, McpPlacement::executor),
                         testing::placement_name);

// --- the UTF-8 rule of remote commands ------------------------------------------------------

TEST_F(LaunchTest, RemoteCommandsMustBeValidUnicode) {
  const auto mark = marker();
  const std::string bad = "bad\xff\xfe";
  testing::run_in_site(McpPlacement::executor, [&](McpSite& site) -> asio::awaitable<void> {
    struct Case {
      mcp::StdioCommand command;
      std::string word;
    };
    std::vector<Case> cases;
    cases.push_back({testing::stdio_command("/bin/" + bad, {"--stderr-line", mark}), "command"});
    cases.push_back({testing::stdio_command(kServer, {"--stderr-line", mark, bad}), "argument"});
    auto name = server(mark);
    name.env["TETHER_TEST_" + bad] = "x";
    cases.push_back({name, "environment variable name"});
    auto value = server(mark);
    value.env["TETHER_TEST_VALUE"] = bad;
    cases.push_back({value, "environment variable value"});
    for (auto& c : cases) {
      auto result = co_await site.launch(c.command);
      CO_ASSERT_TRUE(!result.has_value());
      const auto& message = result.error().message;
      EXPECT_EQ(message.rfind(c.word, 0), 0u) << message;
      EXPECT_NE(message.find("must be valid Unicode for remote MCP stdio"), std::string::npos)
          << message;
    }
    EXPECT_TRUE(processes_matching(mark).empty());
  });
}

// --- servers and environments from config ---------------------------------------------------

TEST(LaunchOf, StdioServersKeepTheirCommandPlacementAndOptions) {
  ServerConfig server;
  server.name = "docs";
  server.environment = "remote";
  server.transport = mcp::StdioCommand{"node", {"server.js"}, {{"A", "1"}}, {"HOME"}, "/srv"};
  mcp::StdioOptions stdio;
  stdio.stderr_tail_lines = 7;
  auto launch = launch_of(server, process_env, stdio);
  ASSERT_TRUE(launch.has_value()) << launch.error().message;
  EXPECT_EQ(launch->name, "docs");
  EXPECT_EQ(launch->environment, "remote");
  EXPECT_EQ(launch->stdio.stderr_tail_lines, 7u);
  const auto& command = std::get<mcp::StdioCommand>(launch->transport);
  EXPECT_EQ(command.program, "node");
  EXPECT_EQ(command.args, std::vector<std::string>{"server.js"});
  EXPECT_EQ(command.cwd, "/srv");
}

TEST(LaunchOf, HttpTokenAndHeadersAreReadFromTheEnvironment) {
  const EnvLookup env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "WEB_TOKEN") return "secret";
    if (name == "TRACE_ID") return "t-1";
    if (name == "EMPTY") return "";
    return std::nullopt;
  };
  ServerConfig server;
  server.name = "web";
  server.transport =
      HttpServerSettings{"https://example.com/mcp",
                         "WEB_TOKEN",
                         {{"X-Static", "s"}},
                         {{"X-Trace", "TRACE_ID"}, {"X-Unset", "NOT_SET"}, {"X-Empty", "EMPTY"}}};
  auto launch = launch_of(server, env, {});
  ASSERT_TRUE(launch.has_value()) << launch.error().message;
  const auto& http = std::get<mcp::HttpServerConfig>(launch->transport);
  EXPECT_EQ(http.url, "https://example.com/mcp");
  EXPECT_EQ(http.bearer_token, "secret");
  // Unset and empty variables leave their header out.
  const std::vector<std::pair<std::string, std::string>> headers{{"X-Static", "s"},
                                                                 {"X-Trace", "t-1"}};
  EXPECT_EQ(http.headers, headers);

  for (const char* variable : {"NOT_SET", "EMPTY"}) {
    std::get<HttpServerSettings>(server.transport).bearer_token_env_var = variable;
    auto unset = launch_of(server, env, {});
    ASSERT_FALSE(unset.has_value());
    EXPECT_EQ(unset.error().message,
              "bearer_token_env_var " + std::string(variable) + " for MCP server 'web' is not set");
  }
}

EnvironmentConfig url_environment(EnvironmentConfig::Url url) {
  EnvironmentConfig config;
  config.id = "box";
  config.how = std::move(url);
  return config;
}

TEST(PlacementOf, UrlTokensComeFromTheVariableTheFileOrTheLiteral) {
  const EnvLookup env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "BOX_TOKEN") return "from-variable";
    return std::nullopt;
  };
  auto from_variable = placement_of(url_environment({"ws://h:1", "BOX_TOKEN", {}, {}}), env);
  ASSERT_TRUE(from_variable.has_value()) << from_variable.error().message;
  EXPECT_EQ(std::get<ExecutorUrl>(*from_variable).bearer_token, "from-variable");

  auto unset = placement_of(url_environment({"ws://h:1", "NOT_SET", {}, {}}), env);
  ASSERT_FALSE(unset.has_value());
  EXPECT_EQ(unset.error().message, "environment 'box': token variable NOT_SET is not set");

  const auto file =
      std::filesystem::temp_directory_path() / ("tether-token-" + std::to_string(::getpid()));
  std::ofstream(file) << "from-file\n";
  auto from_file = placement_of(url_environment({"ws://h:1", {}, file.string(), {}}), env);
  std::filesystem::remove(file);
  ASSERT_TRUE(from_file.has_value()) << from_file.error().message;
  EXPECT_EQ(std::get<ExecutorUrl>(*from_file).bearer_token, "from-file");

  auto missing = placement_of(url_environment({"ws://h:1", {}, file.string(), {}}), env);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().message, "environment 'box': token file '" + file.string() +
                                         "' cannot be read: No such file or directory");

  std::ofstream(file) << "  \n";
  auto empty = placement_of(url_environment({"ws://h:1", {}, file.string(), {}}), env);
  std::filesystem::remove(file);
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().message,
            "environment 'box': token file '" + file.string() + "' is empty");

  auto literal = placement_of(url_environment({"ws://h:1", {}, {}, "literal"}), env);
  ASSERT_TRUE(literal.has_value());
  EXPECT_EQ(std::get<ExecutorUrl>(*literal).bearer_token, "literal");
  EXPECT_EQ(std::get<ExecutorUrl>(*literal).url, "ws://h:1");
}

TEST(PlacementOf, SpawnAndCommandEnvironments) {
  EnvironmentConfig spawn;
  spawn.id = "sandbox";
  spawn.how = EnvironmentConfig::Spawn{};
  auto spawned = placement_of(spawn, process_env);
  ASSERT_TRUE(spawned.has_value());
  EXPECT_TRUE(std::holds_alternative<SpawnedExecutor>(*spawned));

  EnvironmentConfig command;
  command.id = "gpu";
  command.how = EnvironmentConfig::Command{
      {"ssh", "gpu", "tether", "exec-server", "--listen", "stdio"}, {}, "/srv"};
  auto placed = placement_of(command, process_env);
  ASSERT_TRUE(placed.has_value());
  const auto& executor = std::get<CommandExecutor>(*placed);
  EXPECT_EQ(executor.argv.front(), "ssh");
  EXPECT_EQ(executor.cwd, "/srv");
}

}  // namespace
}  // namespace tether::host
