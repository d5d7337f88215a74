// End-to-end tests of the config formats tether reads besides its own: the real binary with
// JSON host configs (Claude Desktop / Claude Code / Cursor `mcpServers`, VS Code `servers`) via
// --config, running the project's test server with `${...}` expanded at load; their errors at
// JSON lines and columns; typo warnings on stderr (TOML and JSON, `tether mcp` and `tether mcp
// serve`); and `tether mcp import` from each host's usual places (a temp HOME, CODEX_HOME and
// working directory), the servers it writes run by tether, with no secret in the file.
//
// Owns: these scenarios only; running the binary and the temp home are cli_fixture.hpp's.
#include <filesystem>

#include <gtest/gtest.h>

#include "cli_fixture.hpp"

namespace tether::cli {
namespace {

using namespace std::chrono_literals;

class ConfigFormats : public CliFixture {
 protected:
  void SetUp() override {
    CliFixture::SetUp();
    home_dir_ = (home_ / "home").string();  // TETHER_HOME too: config.toml lands here
    set_env("HOME", home_dir_);
    set_env("CODEX_HOME", (home_ / "codex").string());
    fs::create_directories(home_ / "proj");
    cwd_ = (home_ / "proj").string();
  }
  std::string tether_config() const { return home_dir_ + "/config.toml"; }

  // The test server as a JSON `command` entry with `extra` members (`, "k": v, ...`).
  static std::string json_server(const std::string& extra = "") {
    return std::string("{\"command\": \"") + kServer + "\"" + extra + "}";
  }

  // `call SERVER echo` on `config`: its structured content (env and cwd).
  json::value echo(const std::string& config, const std::string& server) {
    auto run =
        tether({"mcp", "--config", config, "call", server, "echo", "--arg", "message=m", "--json"});
    EXPECT_EQ(run.code, 0) << run.err;
    return run.code == 0 ? run.json().at("structuredContent") : json::value{};
  }

  std::string home_dir_;
};

TEST_F(ConfigFormats, ClaudeDesktopConfigRunsWithVariablesExpandedAtLoad) {
  set_env("TETHER_TEST_SOURCE", "from-env");
  const auto config = write("claude_desktop_config.json", R"({
  "globalShortcut": "Ctrl+Space",
  "mcpServers": {
    "echoer": )" + json_server(R"(, "env": {
      "TETHER_TEST_A": "${TETHER_TEST_SOURCE}",
      "TETHER_TEST_B": "${TETHER_TEST_UNSET:-fallback}",
      "TETHER_TEST_C": "${env:TETHER_TEST_SOURCE}/x"}
    )") + R"(,
    "off": {"command": "never-started", "disabled": true}
  }
})");
  auto env = echo(config, "echoer").at("env");
  EXPECT_EQ(env.at("TETHER_TEST_A"), "from-env");
  EXPECT_EQ(env.at("TETHER_TEST_B"), "fallback");
  EXPECT_EQ(env.at("TETHER_TEST_C"), "from-env/x");

  auto list = tether({"mcp", "--config", config, "list", "--json"});
  EXPECT_EQ(list.code, 0) << list.err;
  const auto answer = list.json();
  const auto& servers = answer.at("servers").as_array();
  ASSERT_EQ(servers.size(), 2u) << list.out;
  EXPECT_EQ(servers[1].at("name"), "off");
  EXPECT_EQ(servers[1].at("status"), "disabled") << list.out;
  EXPECT_EQ(list.err.find("warning:"), std::string::npos) << list.err;
}

TEST_F(ConfigFormats, VsCodeConfigWithCommentsAndWorkspaceFolder) {
  fs::create_directories(home_ / "proj/.vscode");
  const auto config = write("proj/.vscode/mcp.json", R"(// VS Code
{
  "inputs": [],
  "servers": {
    "here": )" + json_server(R"(, "type": "stdio", "cwd": "${workspaceFolder}",)") +
                                                         R"(,
  },
})");
  EXPECT_EQ(echo(config, "here").at("cwd"), json::value((home_ / "proj").string()));
}

TEST_F(ConfigFormats, JsonErrorsNameFileLineColumnServerAndField) {
  struct Case {
    std::string text;
    std::string message;
  };
  const Case cases[] = {
      {"{\n  \"mcpServers\": {\n    \"docs\": {\n      \"command\": \"x\",\n      \"args\": "
       "\"-v\"\n    }\n  }\n}",
       ":5:7: [mcpServers.docs] args must be an array of strings"},
      {R"({"mcpServers": {"old": {"type": "sse", "url": "http://127.0.0.1:1/sse"}}})",
       ":1:25: [mcpServers.old] type 'sse' is the old HTTP+SSE transport, which tether does not "
       "speak"},
      {R"({"servers": {"gh": {"url": "http://h/mcp", "headers": {"A": "${input:pat}"}}}})",
       ":1:44: [servers.gh] headers.A: ${input:pat} is a VS Code input prompt"},
      {R"({"mcpServers": {"gh": {"command": "x", "env": {"T": "${TETHER_TEST_UNSET}"}}}})",
       ":1:40: [mcpServers.gh] env.T: ${TETHER_TEST_UNSET} is not set"},
      {"{\"mcpServers\": {\"a\": {}\n  \"b\": {}}}", ":2:3: syntax error at '\"'"},
  };
  for (const auto& c : cases) expect_config_error("mcp.json", c.text, c.message);
}

TEST_F(ConfigFormats, TyposWarnOnStderrAndTheRunGoesOn) {
  const auto config = write("config.toml", test_server("x", "[]", R"(comand = "typo"
supports_parallel_tool_calls = true

[mcp_server.y]
command = "z"
)"));
  auto run = tether({"mcp", "--config", config, "list", "--json"});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_NE(run.err.find("warning: " + config +
                         ":4:1: [mcp_servers.x] unknown key 'comand'; did you mean 'command'?\n"),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("warning: " + config +
                         ":7:2: unknown table 'mcp_server'; did you mean 'mcp_servers'?\n"),
            std::string::npos)
      << run.err;
  EXPECT_EQ(run.err.find("supports_parallel_tool_calls"), std::string::npos) << run.err;
  EXPECT_EQ(run.json().at("servers").as_array().size(), 1u);

  // The gateway reads the same config and says the same (stdin closed: it ends at once).
  auto serve = tether({"mcp", "--config", config, "serve"});
  EXPECT_NE(serve.err.find("warning: " + config + ":4:1: [mcp_servers.x] unknown key 'comand'"),
            std::string::npos)
      << serve.err;

  const auto json_config =
      write("mcp.json",
            R"({"mcpServers": {"x": )" + json_server(R"(, "header": {}, "oauth": {})") + "}}");
  auto from_json = tether({"mcp", "--config", json_config, "list"});
  EXPECT_EQ(from_json.code, 0) << from_json.err;
  EXPECT_NE(from_json.err.find("[mcpServers.x] unknown key 'header'; did you mean 'headers'?"),
            std::string::npos)
      << from_json.err;
  EXPECT_EQ(from_json.err.find("oauth"), std::string::npos) << from_json.err;
}

TEST_F(ConfigFormats, ImportFromClaudeKeepsSecretsInTheEnvironment) {
  // The user's servers, this project's in ~/.claude.json, and the project's .mcp.json.
  write("home/.claude.json", R"({
  "numStartups": 4,
  "mcpServers": {
    "user-echo": )" + json_server(R"(, "env": {"TETHER_TEST_TOKEN": "${TETHER_TEST_TOKEN}"})") +
                                 R"(,
    "shared": {"command": "user-level-loses"},
    "api": {"type": "http", "url": "https://example.com/mcp",
            "headers": {"Authorization": "Bearer ${API_TOKEN}", "X-Team": "core",
                        "X-Key": "${env:API_KEY}"}}
  },
  "projects": {")" + cwd_ + R"(": {"mcpServers": {
    "shared": )" + json_server(R"(, "args": ["--stderr-line", "${HOME}/log"])") +
                                 R"(
  }}}
})");
  write("proj/.mcp.json", R"({"mcpServers": {
    "leaky": {"command": "x", "args": ["--token", "${SECRET}"]},
    "renamed": )" + json_server(R"(, "env": {"TETHER_TEST_PAT": "${GH_TOKEN}"})") +
                              R"(
  }})");

  auto dry = tether({"mcp", "import", "--from", "claude", "--dry-run"});
  EXPECT_EQ(dry.code, 0) << dry.err;
  EXPECT_NE(dry.out.find("Would import MCP server 'user-echo'"), std::string::npos) << dry.out;
  EXPECT_FALSE(fs::exists(tether_config()));

  auto run = tether({"mcp", "import", "--from", "claude"});
  ASSERT_EQ(run.code, 0) << run.err;
  const auto claude_json = home_dir_ + "/.claude.json";
  EXPECT_NE(run.out.find("Imported MCP server 'shared' from " + claude_json + " (project " + cwd_ +
                         ") to " + tether_config()),
            std::string::npos)
      << run.out;
  EXPECT_NE(
      run.out.find("Skipped MCP server 'leaky' from " + cwd_ + "/.mcp.json: args uses ${SECRET}"),
      std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("note: env.TETHER_TEST_PAT was ${GH_TOKEN}"), std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("Skipped MCP server 'shared' from " + claude_json + ": also defined in " +
                         claude_json + " (project " + cwd_ + ")"),
            std::string::npos)
      << run.out;

  const auto text = read(tether_config());
  EXPECT_NE(text.find("env_vars = [\"TETHER_TEST_TOKEN\"]"), std::string::npos) << text;
  EXPECT_NE(text.find("bearer_token_env_var = \"API_TOKEN\""), std::string::npos) << text;
  EXPECT_NE(text.find("env_http_headers = { X-Key = \"API_KEY\" }"), std::string::npos) << text;
  EXPECT_NE(text.find("http_headers = { X-Team = \"core\" }"), std::string::npos) << text;
  EXPECT_NE(text.find("\"" + home_dir_ + "/log\""), std::string::npos) << text;
  EXPECT_EQ(text.find("${"), std::string::npos) << text;
  EXPECT_EQ(text.find("leaky"), std::string::npos) << text;

  // The imported server runs, its token read from tether's environment.
  set_env("TETHER_TEST_TOKEN", "t0ken");
  EXPECT_EQ(echo(tether_config(), "user-echo").at("env").at("TETHER_TEST_TOKEN"), "t0ken");

  // Again: nothing is overwritten.
  auto again = tether({"mcp", "import", "--from", "claude", "--json"});
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(read(tether_config()), text);
  const auto answer = again.json();
  for (const auto& server : answer.at("servers").as_array())
    EXPECT_EQ(server.at("status"), "skipped") << server;
  EXPECT_NE(again.out.find("to import it again, remove it there first (tether mcp remove api)"),
            std::string::npos)
      << again.out;
}

TEST_F(ConfigFormats, ImportFromCodexHomeAndVsCodeFile) {
  fs::create_directories(home_ / "codex");
  write("codex/config.toml", R"(model = "gpt-5-codex"

[mcp_servers.coder]
command = ")" + std::string(kServer) +
                                 R"("
env = { TETHER_TEST_LEVEL = "debug" }
tool_timeout_sec = 300
supports_parallel_tool_calls = true

[mcp_servers.coder.tools.echo]
approval_mode = "approve"
)");
  auto codex = tether({"mcp", "import", "--from", "codex"});
  ASSERT_EQ(codex.code, 0) << codex.err;
  EXPECT_NE(codex.out.find("Imported MCP server 'coder' from " + (home_ / "codex").string() +
                           "/config.toml"),
            std::string::npos)
      << codex.out;
  EXPECT_EQ(echo(tether_config(), "coder").at("env").at("TETHER_TEST_LEVEL"), "debug");
  EXPECT_NE(read(tether_config()).find("tool_timeout_sec = 300"), std::string::npos);

  const auto vscode = write("vscode.json", R"({"servers": {
    "pat": {"url": "https://api.githubcopilot.com/mcp/",
            "headers": {"Authorization": "Bearer ${input:github_pat}"}},
    "fetch": )" + json_server(R"(, "type": "stdio")") +
                                               R"(}})");
  auto from_file = tether({"mcp", "import", "--file", vscode});
  ASSERT_EQ(from_file.code, 0) << from_file.err;
  EXPECT_NE(from_file.out.find("Skipped MCP server 'pat' from " + vscode +
                               ": headers.Authorization asks for a VS Code input"),
            std::string::npos)
      << from_file.out;
  EXPECT_NE(from_file.out.find("Imported MCP server 'fetch'"), std::string::npos) << from_file.out;
}

TEST_F(ConfigFormats, ImportFailuresSayWhatToDo) {
  auto none = tether({"mcp", "import", "--from", "cursor"});
  EXPECT_EQ(none.code, 2);
  EXPECT_NE(none.err.find("error: found none of the config files " + cwd_ + "/.cursor/mcp.json, " +
                          home_dir_ + "/.cursor/mcp.json; name one with --file PATH"),
            std::string::npos)
      << none.err;

  const auto bad = write("bad.json", R"({"mcpServers": {"x": {"command": 1}}})");
  auto invalid = tether({"mcp", "import", "--file", bad, "--json"});
  EXPECT_EQ(invalid.code, 2);
  EXPECT_EQ(invalid.json().at("error").at("message"),
            json::value(bad + ":1:23: [mcpServers.x] command must be a string"));
  EXPECT_FALSE(fs::exists(tether_config()));

  auto neither = tether({"mcp", "import"});
  EXPECT_EQ(neither.code, 2);
  EXPECT_NE(neither.err.find("import needs --from codex|claude|cursor|vscode, or --file PATH"),
            std::string::npos)
      << neither.err;
}

}  // namespace
}  // namespace tether::cli
