// JSON host config tests: the configs of Claude Desktop / Claude Code / Cursor (`mcpServers`) and
// VS Code (`servers`) loaded into the same host::Config as config.toml, with the same validation
// messages pointing at JSON lines and columns, `${...}` expansion with an injected environment,
// JSON syntax errors, and the JSON reader's corners (comments, trailing commas, escapes).
//
// Owns: checks on parse_config with JSON text only; nothing is started or written.
// Data flows: JSON text -> parse_config -> asserted structs or exact messages.
#include <gtest/gtest.h>

#include <tether/host/config.hpp>

namespace tether::host {
namespace {

using Env = std::map<std::string, std::string, std::less<>>;

ParseOptions with_env(Env vars) {
  return {[vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
            auto it = vars.find(name);
            if (it == vars.end()) return std::nullopt;
            return it->second;
          },
          true};
}

Expected<Config> parse(std::string_view text, const Env& vars = {},
                       const std::string& file = "mcp.json") {
  return parse_config({text, file}, std::nullopt, with_env(vars));
}

Config parse_ok(std::string_view text, const Env& vars = {}) {
  auto config = parse(text, vars);
  EXPECT_TRUE(config.has_value()) << (config ? "" : config.error().message);
  return config ? *config : Config{};
}

std::string parse_error(std::string_view text, const Env& vars = {}) {
  auto config = parse(text, vars);
  return config ? "(loaded)" : config.error().message;
}

TEST(JsonConfig, ClaudeDesktopConfigLoadsInFileOrder) {
  auto config = parse_ok(R"({
  "globalShortcut": "",
  "mcpServers": {
    "memory": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-memory"],
      "env": {"MEMORY_FILE_PATH": "/tmp/memory.jsonl"}
    },
    "filesystem": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/me"],
      "cwd": "/home/me",
      "disabled": true
    }
  }
})");
  ASSERT_EQ(config.servers.size(), 2u);
  EXPECT_EQ(config.servers[0].name, "memory");
  EXPECT_EQ(config.servers[0].location.line, 4);
  EXPECT_EQ(config.servers[0].location.column, 5);
  const auto& memory = std::get<mcp::StdioCommand>(config.servers[0].transport);
  EXPECT_EQ(memory.program, "npx");
  EXPECT_EQ(memory.args, (std::vector<std::string>{"-y", "@modelcontextprotocol/server-memory"}));
  EXPECT_EQ(memory.env.at("MEMORY_FILE_PATH"), "/tmp/memory.jsonl");
  EXPECT_TRUE(config.servers[0].enabled);
  EXPECT_EQ(config.servers[1].name, "filesystem");
  EXPECT_FALSE(config.servers[1].enabled);
  EXPECT_EQ(std::get<mcp::StdioCommand>(config.servers[1].transport).cwd, "/home/me");
  EXPECT_TRUE(config.warnings.empty());
}

TEST(JsonConfig, ClaudeCodeHttpServersWithHeadersAndVariables) {
  auto config = parse_ok(R"({
  "numStartups": 12,
  "projects": {"/home/me/app": {"mcpServers": {}}},
  "mcpServers": {
    "docs": {
      "type": "http",
      "url": "${DOCS_URL:-https://docs.example.com/mcp}",
      "headers": {"Authorization": "Bearer ${DOCS_TOKEN}", "X-Team": "core"}
    },
    "stream": {"type": "streamable-http", "url": "http://127.0.0.1:3001/mcp"},
    "local": {"type": "stdio", "command": "${HOME}/bin/mcp", "args": ["--root", "${env:ROOT}"]}
  }
})",
                         {{"DOCS_TOKEN", "s3cret"}, {"HOME", "/home/me"}, {"ROOT", "/srv"}});
  ASSERT_EQ(config.servers.size(), 3u);
  const auto& docs = std::get<HttpServerSettings>(config.servers[0].transport);
  EXPECT_EQ(docs.url, "https://docs.example.com/mcp");
  EXPECT_EQ(docs.http_headers.at("Authorization"), "Bearer s3cret");
  EXPECT_EQ(docs.http_headers.at("X-Team"), "core");
  EXPECT_EQ(std::get<HttpServerSettings>(config.servers[1].transport).url,
            "http://127.0.0.1:3001/mcp");
  const auto& local = std::get<mcp::StdioCommand>(config.servers[2].transport);
  EXPECT_EQ(local.program, "/home/me/bin/mcp");
  EXPECT_EQ(local.args, (std::vector<std::string>{"--root", "/srv"}));
}

TEST(JsonConfig, VsCodeServersWithCommentsAndTrailingCommas) {
  auto config = parse_ok(R"(// .vscode/mcp.json
{
  "inputs": [{"type": "promptString", "id": "token", "password": true}],
  /* the servers */
  "servers": {
    "github": {
      "type": "http",
      "url": "https://api.githubcopilot.com/mcp/",
      "headers": {"X-Path": "${workspaceFolder}/x"},
    },
    "fetch": {"command": "uvx", "args": ["mcp-server-fetch"], "dev": {"watch": "src/**"}},
  },
})");
  ASSERT_EQ(config.servers.size(), 2u);
  EXPECT_EQ(config.servers[0].name, "github");
  EXPECT_TRUE(std::get<HttpServerSettings>(config.servers[0].transport)
                  .http_headers.at("X-Path")
                  .ends_with("/x"));
  EXPECT_EQ(std::get<mcp::StdioCommand>(config.servers[1].transport).program, "uvx");
  EXPECT_TRUE(config.warnings.empty()) << config.warnings.front();
}

TEST(JsonConfig, TetherKeysAndCodexNamesWorkInJsonToo) {
  auto config = parse_ok(R"({"mcpServers": {"x": {
    "command": "x", "tool_timeout_sec": 5, "enabled_tools": ["a"], "environment": "remote"}}})");
  ASSERT_EQ(config.servers.size(), 1u);
  EXPECT_EQ(config.servers[0].tool_timeout, std::chrono::seconds{5});
  EXPECT_EQ(config.servers[0].environment, "remote");
}

TEST(JsonConfig, ContentStartingWithABraceIsJsonWhateverTheName) {
  auto config = parse_config({R"({"mcpServers": {"a": {"command": "a"}}})", "servers.conf"});
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->servers.at(0).name, "a");
}

TEST(JsonConfig, EmptyOrServerlessObjectIsAnEmptyConfig) {
  EXPECT_TRUE(parse_ok("{}").servers.empty());
  EXPECT_TRUE(parse_ok(R"({"mcpServers": {}})").servers.empty());
}

TEST(JsonConfig, ValidationMessagesAreTheTomlOnesAtJsonPositions) {
  struct Case {
    std::string text;
    std::string message;
  };
  const Case cases[] = {
      {"{\n  \"mcpServers\": {\n    \"docs\": {\n      \"command\": \"x\",\n      \"args\": "
       "\"--verbose\"\n    }\n  }\n}",
       "mcp.json:5:7: [mcpServers.docs] args must be an array of strings"},
      {R"({"mcpServers": {"docs": {"command": "x", "args": [1]}}})",
       "mcp.json:1:42: [mcpServers.docs] args must be an array of strings"},
      {R"({"mcpServers": {"docs": {"url": "http://h/mcp", "args": []}}})",
       "mcp.json:1:49: [mcpServers.docs] args is not supported for streamable_http"},
      {R"({"mcpServers": {"docs": {"command": "x", "headers": {"A": "b"}}}})",
       "mcp.json:1:42: [mcpServers.docs] headers is not supported for stdio"},
      {R"({"mcpServers": {"docs": {"command": "x", "headers": {"A": 1}}}})",
       "mcp.json:1:42: [mcpServers.docs] headers is not supported for stdio"},
      {R"({"servers": {"docs": {"url": "http://h/mcp", "headers": {"A": 1}}}})",
       "mcp.json:1:46: [servers.docs] headers must be a table of strings"},
      {R"({"mcpServers": {"docs": {"command": "x", "disabled": "yes"}}})",
       "mcp.json:1:42: [mcpServers.docs] disabled must be true or false"},
      {R"({"mcpServers": {"docs": {"args": []}}})",
       "mcp.json:1:17: [mcpServers.docs] invalid transport: needs `command` (stdio) or `url` "
       "(streamable HTTP)"},
      {R"({"mcpServers": {"docs": "npx"}})", "mcp.json:1:17: [mcpServers.docs] must be a table"},
      {R"({"mcpServers": {"my docs": {"command": "x"}}})",
       "mcp.json:1:17: Invalid MCP server name 'my docs': must match pattern ^[a-zA-Z0-9_-]+$"},
      {R"({"mcpServers": []})", "mcp.json:1:2: mcpServers must be an object"},
      {R"({"mcpServers": {"docs": {"type": "sse", "url": "http://h/sse"}}})",
       "mcp.json:1:26: [mcpServers.docs] type 'sse' is the old HTTP+SSE transport, which tether "
       "does not speak; use the server's streamable HTTP endpoint with type 'http'"},
      {R"({"mcpServers": {"docs": {"type": "websocket", "url": "ws://h"}}})",
       "mcp.json:1:26: [mcpServers.docs] unknown type 'websocket': must be stdio, http or "
       "streamable-http"},
      {R"({"mcpServers": {"docs": {"type": "http", "command": "x"}}})",
       "mcp.json:1:26: [mcpServers.docs] type 'http' needs url"},
      {R"({"mcpServers": {"docs": {"type": "stdio", "url": "http://h/mcp"}}})",
       "mcp.json:1:26: [mcpServers.docs] type 'stdio' needs command"},
      {R"({"servers": {"docs": {"command": "x", "envFile": "${workspaceFolder}/.env"}}})",
       "mcp.json:1:39: [servers.docs] envFile is not supported; list the variables in env "
       "(\"NAME\": \"${env:NAME}\" copies one from tether's environment)"},
  };
  for (const auto& c : cases) EXPECT_EQ(parse_error(c.text), c.message) << c.text;
}

TEST(JsonConfig, UnresolvableVariablesNameTheServerAndField) {
  EXPECT_EQ(parse_error(R"({"servers": {"gh": {"url": "http://h", "headers": {
      "Authorization": "Bearer ${input:token}"}}}})"),
            "mcp.json:1:40: [servers.gh] headers.Authorization: ${input:token} is a VS Code "
            "input prompt, which tether cannot ask for; put the value in an environment variable "
            "and write ${env:NAME} instead");
  EXPECT_EQ(parse_error(R"({"mcpServers": {"gh": {"command": "x", "env": {"T": "${GH_TOKEN}"}}}})"),
            "mcp.json:1:40: [mcpServers.gh] env.T: ${GH_TOKEN} is not set; set GH_TOKEN or give "
            "a default: ${GH_TOKEN:-...}");
  EXPECT_EQ(parse_error(R"({"mcpServers": {"gh": {"command": "x", "args": ["${command:pick}"]}}})"),
            "mcp.json:1:40: [mcpServers.gh] args: ${command:pick} can be resolved only by the "
            "editor that defines it; write the value, or ${env:NAME}");
  // Set but empty is a value; a default replaces unset and empty alike; `${` alone is text.
  auto config = parse_ok(R"({"mcpServers": {"gh": {"command": "x", "args": [
      "${EMPTY}", "${EMPTY:-d}", "${UNSET:-}", "cost: ${5", "$HOME"]}}})",
                         {{"EMPTY", ""}});
  EXPECT_EQ(std::get<mcp::StdioCommand>(config.servers.at(0).transport).args,
            (std::vector<std::string>{"", "d", "", "cost: ${5", "$HOME"}));
}

TEST(JsonConfig, VariablesAreKeptWhenAskedTo) {
  ParseOptions keep;
  keep.expand_variables = false;
  auto config = parse_config(
      {R"({"mcpServers": {"gh": {"command": "x", "env": {"T": "${input:t}"}}}})", "mcp.json"},
      std::nullopt, keep);
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(std::get<mcp::StdioCommand>(config->servers.at(0).transport).env.at("T"), "${input:t}");
}

TEST(JsonConfig, TyposWarnWithTheJsonSpelling) {
  auto config = parse_ok(R"({
  "mcpServer": {},
  "mcpServers": {
    "docs": {"url": "http://h/mcp", "header": {"A": "b"}, "oauth": {"clientId": "x"}},
    "run": {"comand": "x", "command": "x", "disable": true}
  }
})");
  EXPECT_EQ(config.warnings,
            (std::vector<std::string>{
                "mcp.json:2:3: unknown key 'mcpServer'; did you mean 'mcpServers'?",
                "mcp.json:4:37: [mcpServers.docs] unknown key 'header'; did you mean 'headers'?",
                "mcp.json:5:13: [mcpServers.run] unknown key 'comand'; did you mean 'command'?",
                "mcp.json:5:44: [mcpServers.run] unknown key 'disable'; did you mean "
                "'disabled'?",
            }));
}

TEST(JsonConfig, SyntaxErrorsNameLineColumnAndWhat) {
  struct Case {
    std::string text;
    std::string message;
  };
  const Case cases[] = {
      {"{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\"}\n    \"b\": {}\n  }\n}",
       "mcp.json:4:5: syntax error at '\"'"},
      {"{\"mcpServers\": {\"a\": {\"command\": \"x}}}",
       "mcp.json:1:39: the file ends inside the JSON document"},
      {"{\"mcpServers\": [1 2]}", "mcp.json:1:19: syntax error at '2'"},
      {"{\"a\" 1}", "mcp.json:1:6: syntax error at '1'"},
      {"{\"a\": tru}", "mcp.json:1:10: syntax error at '}'"},
      {"{\"a\": 1, \"a\": 2}", "mcp.json:1:10: duplicate key 'a'"},
      {"{\"a\": \"\\q\"}", "mcp.json:1:9: syntax error at 'q'"},
      {"{\"a\": -}", "mcp.json:1:8: syntax error at '}'"},
      {"{} x", "mcp.json:1:4: unexpected text after the JSON document"},
      {"[]", "mcp.json:1:1: a JSON config must be an object ({...})"},
      {"", "mcp.json:1:1: the file is empty: expected a JSON object ({...})"},
      {"{ /* open", "mcp.json:1:3: unterminated /* comment"},
      {"{\"é\": 1, x}", "mcp.json:1:10: syntax error at 'x'"},
  };
  for (const auto& c : cases) EXPECT_EQ(parse_error(c.text), c.message) << c.text;
}

TEST(JsonConfig, StringsNumbersAndNulls) {
  auto config = parse_ok(R"({"mcpServers": {"a": {
    "command": "caf\u00e9 \ud83d\ude00 \"q\" \\ \/ \t",
    "startup_timeout_sec": 1.5e1,
    "tool_timeout_sec": 7,
    "cwd": null
  }}})");
  const auto& server = config.servers.at(0);
  const auto& stdio = std::get<mcp::StdioCommand>(server.transport);
  EXPECT_EQ(stdio.program, "caf\xC3\xA9 \xF0\x9F\x98\x80 \"q\" \\ / \t");
  EXPECT_EQ(server.startup_timeout, std::chrono::seconds{15});
  EXPECT_EQ(server.tool_timeout, std::chrono::seconds{7});
  EXPECT_FALSE(stdio.cwd.has_value());  // a null member is absent
  EXPECT_EQ(parse_error(R"({"mcpServers": {"a": {"command": "x", "args": [null]}}})"),
            "mcp.json:1:39: [mcpServers.a] args must be an array of strings");
}

}  // namespace
}  // namespace tether::host
