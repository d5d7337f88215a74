// The manager's texts for users, word for word: a failed start and a startup timeout (which
// setting to change, in seconds as the config writes them), required servers that failed, a crash
// loop, a death with and without stderr lines, command lines (what gets quoted), a server's target
// and how each kind of executor environment is described.
// Does not own: when the manager says them (manager_test.cpp), or how the cli lays them out.
#include "../../src/host/server_texts.hpp"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tether::host {
namespace {

using namespace std::chrono_literals;

ServerConfig stdio_server(std::string name, std::string program, std::vector<std::string> args) {
  ServerConfig server;
  server.name = std::move(name);
  server.transport = mcp::StdioCommand{std::move(program), std::move(args), {}, {}, {}};
  return server;
}

TEST(ServerTexts, AFailedStartNamesTheServerAndWhy) {
  const auto server = stdio_server("docs", "node", {});
  EXPECT_EQ(startup_failure_text(
                server, jsonrpc::make_error(jsonrpc::code::kInternalError, "spawn failed: ENOENT")),
            "MCP client for 'docs' failed to start: spawn failed: ENOENT");
}

TEST(ServerTexts, AStartupTimeoutSaysWhichSettingToChange) {
  auto server = stdio_server("docs", "node", {});
  const auto timeout = jsonrpc::make_error(jsonrpc::code::kRequestTimedOut, "timed out");
  EXPECT_EQ(startup_failure_text(server, timeout),
            "MCP client for 'docs' timed out after 30 seconds. Add or adjust "
            "'startup_timeout_sec' in your config: [mcp_servers.docs] startup_timeout_sec = XX");
  server.startup_timeout = 1500ms;
  EXPECT_THAT(startup_failure_text(server, timeout),
              ::testing::StartsWith("MCP client for 'docs' timed out after 1.5 seconds."));
}

TEST(ServerTexts, RequiredFailuresAreListedInOrder) {
  EXPECT_EQ(required_failures_text({{"a", "boom"}, {"b", "bang"}}),
            "required MCP servers failed to initialize: a: boom; b: bang");
}

TEST(ServerTexts, CrashLoopAndDeath) {
  EXPECT_EQ(crash_loop_text("docs", "exit status 1"),
            "MCP server 'docs' is crash-looping: exit status 1");
  EXPECT_EQ(death_text("exit status 1", ""), "exit status 1");
  EXPECT_EQ(death_text("exit status 1", "oops\nagain"),
            "exit status 1\nMCP server stderr (last lines):\noops\nagain");
}

TEST(ServerTexts, CommandLinesQuoteWhatIsNotPlain) {
  EXPECT_EQ(command_line({"node", "server.js", "--port=3"}), "node server.js --port=3");
  EXPECT_EQ(command_line({"sh", "-c", "echo hi", "", "it's", "$HOME", "a\\b", "tab\there"}),
            "sh -c 'echo hi' '' 'it'\\''s' '$HOME' 'a\\b' $'tab\\there'");
  EXPECT_EQ(command_line({"npx", "-y", "@scope/pkg@1.2", "a*b", "x;y", "line\n'q'"}),
            "npx -y @scope/pkg@1.2 'a*b' 'x;y' $'line\\n\\'q\\''");
  EXPECT_EQ(command_line({}), "");
}

TEST(ServerTexts, TargetIsTheCommandLineOrTheUrl) {
  EXPECT_EQ(server_target(stdio_server("a", "npx", {"-y", "my server"})), "npx -y 'my server'");
  ServerConfig http;
  http.name = "web";
  http.transport = HttpServerSettings{"https://example.com/mcp", {}, {}, {}};
  EXPECT_EQ(server_target(http), "https://example.com/mcp");
}

TEST(ServerTexts, EnvironmentsAreDescribedByKind) {
  EnvironmentConfig environment;
  environment.id = "box";
  environment.how = EnvironmentConfig::Url{"ws://10.1.2.3:7700", {}, {}, {}};
  EXPECT_EQ(describe_environment(environment), "box: ws://10.1.2.3:7700");
  EXPECT_EQ(describe_environment(environment, "TETHER_EXEC_SERVER_URL"),
            "box: ws://10.1.2.3:7700 (TETHER_EXEC_SERVER_URL)");
  environment.id = "loop";
  environment.how = EnvironmentConfig::Spawn{};
  EXPECT_EQ(describe_environment(environment), "loop: spawned on loopback");
  environment.id = "gpu";
  environment.how = EnvironmentConfig::Command{{"ssh", "gpu box", "tether"}, {}, {}};
  EXPECT_EQ(describe_environment(environment), "gpu: command ssh 'gpu box' tether");
}

}  // namespace
}  // namespace tether::host
