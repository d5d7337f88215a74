// host config tests: acceptance scenarios 33 (validation messages, TOML errors, a codex
// config.toml with extra keys) and 43 (codex environments.toml + environment_id), and
// resolve_remote with an injected environment.
//
// Owns: checks on parse_config / load_config / resolve_remote only; nothing is started.
// Data flows: TOML text -> parse_config -> asserted structs or exact messages.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include <tether/host/config.hpp>

namespace tether::host {
namespace {

using std::chrono::milliseconds;

Config parse_ok(std::string_view text) {
  auto config = parse_config({text, "config.toml"});
  EXPECT_TRUE(config.has_value()) << (config ? "" : config.error().message);
  return config ? *config : Config{};
}

std::string parse_error(std::string_view text, std::optional<std::string_view> environments = {}) {
  std::optional<ConfigText> extra;
  if (environments) extra = ConfigText{*environments, "environments.toml"};
  auto config = parse_config({text, "config.toml"}, extra);
  return config ? "(loaded)" : config.error().message;
}

const ServerConfig& server(const Config& config, std::string_view name) {
  for (const auto& s : config.servers)
    if (s.name == name) return s;
  throw std::runtime_error("no server " + std::string{name});
}

TEST(HostConfig, SpecSampleLoadsWithEveryField) {
  auto config = parse_ok(R"(
default_environment = "box"

[environments.box]
url = "ws://10.1.2.3:7700"
token_env_var = "BOX_TOKEN"
connect_timeout_sec = 10

[environments.sandbox]
spawn = true
ping_interval_sec = 0.5
idle_timeout_sec = 2
resume_window_sec = 0

[environments.gpu]
command = ["ssh", "gpu-box", "tether", "exec-server", "--listen", "stdio"]

[mcp_servers.everything]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-everything"]
experimental_environment = "remote"
cwd = "/srv/work"
env = { LOG_LEVEL = "debug" }
env_vars = ["GITHUB_TOKEN"]
startup_timeout_sec = 10
tool_timeout_sec = 60
enabled = true
required = false
enabled_tools = ["echo"]
disabled_tools = ["dangerous"]

[mcp_servers.docs]
url = "http://127.0.0.1:3001/mcp"
bearer_token_env_var = "DOCS_TOKEN"
http_headers = { "X-Team" = "core" }
env_http_headers = { "X-Key" = "DOCS_KEY_VAR" }
)");
  EXPECT_EQ(config.file, "config.toml");
  EXPECT_EQ(config.default_environment, "box");
  ASSERT_EQ(config.environments.size(), 3u);
  EXPECT_EQ(config.environments[0].id, "box");
  const auto& box = std::get<EnvironmentConfig::Url>(config.environments[0].how);
  EXPECT_EQ(box.url, "ws://10.1.2.3:7700");
  EXPECT_EQ(box.token_env_var, "BOX_TOKEN");
  EXPECT_FALSE(box.token_file);
  EXPECT_EQ(config.environments[0].connect_timeout, milliseconds{10'000});
  EXPECT_EQ(config.environments[0].ping_interval, std::nullopt);
  EXPECT_EQ(config.environments[1].ping_interval, milliseconds{500});
  EXPECT_EQ(config.environments[1].idle_timeout, milliseconds{2000});
  EXPECT_EQ(config.environments[1].resume_window, milliseconds{0});
  EXPECT_EQ(config.environments[0].location.line, 4);
  EXPECT_TRUE(std::holds_alternative<EnvironmentConfig::Spawn>(config.environments[1].how));
  const auto& gpu = std::get<EnvironmentConfig::Command>(config.environments[2].how);
  EXPECT_EQ(gpu.argv, (std::vector<std::string>{"ssh", "gpu-box", "tether", "exec-server",
                                                "--listen", "stdio"}));

  ASSERT_EQ(config.servers.size(), 2u);
  const auto& everything = config.servers[0];  // file order, not key order
  EXPECT_EQ(everything.name, "everything");
  EXPECT_EQ(everything.location.line, 18);
  const auto& stdio = std::get<mcp::StdioCommand>(everything.transport);
  EXPECT_EQ(stdio.program, "npx");
  EXPECT_EQ(stdio.args,
            (std::vector<std::string>{"-y", "@modelcontextprotocol/server-everything"}));
  EXPECT_EQ(stdio.cwd, "/srv/work");
  EXPECT_EQ(stdio.env, (std::map<std::string, std::string>{{"LOG_LEVEL", "debug"}}));
  EXPECT_EQ(stdio.env_vars, std::vector<std::string>{"GITHUB_TOKEN"});
  EXPECT_EQ(everything.environment, "remote");
  EXPECT_EQ(everything.startup_timeout, milliseconds{10'000});
  EXPECT_EQ(everything.tool_timeout, milliseconds{60'000});
  EXPECT_TRUE(everything.enabled);
  EXPECT_FALSE(everything.required);
  EXPECT_EQ(everything.enabled_tools, std::vector<std::string>{"echo"});
  EXPECT_EQ(everything.disabled_tools, std::vector<std::string>{"dangerous"});

  const auto& docs = config.servers[1];
  const auto& http = std::get<HttpServerSettings>(docs.transport);
  EXPECT_EQ(http.url, "http://127.0.0.1:3001/mcp");
  EXPECT_EQ(http.bearer_token_env_var, "DOCS_TOKEN");
  EXPECT_EQ(http.http_headers, (std::map<std::string, std::string>{{"X-Team", "core"}}));
  EXPECT_EQ(http.env_http_headers, (std::map<std::string, std::string>{{"X-Key", "DOCS_KEY_VAR"}}));
  EXPECT_EQ(docs.environment, "local");
}

TEST(HostConfig, DefaultsAndAlternatives) {
  auto config = parse_ok(R"(
[mcp_servers.plain]
command = "srv"

[mcp_servers.ms]
command = "srv"
startup_timeout_ms = 2500
tool_timeout_sec = 1.5

[mcp_servers.both]
command = "srv"
startup_timeout_sec = 3
startup_timeout_ms = 9000

[mcp_servers.off]
command = "srv"
enabled = false
required = true
environment = "remote"
experimental_environment = "remote"
)");
  const auto& plain = server(config, "plain");
  EXPECT_EQ(plain.startup_timeout, milliseconds{30'000});
  EXPECT_EQ(plain.tool_timeout, milliseconds{120'000});
  EXPECT_EQ(plain.environment, "local");
  EXPECT_TRUE(plain.enabled);
  EXPECT_FALSE(plain.enabled_tools);
  EXPECT_TRUE(plain.disabled_tools.empty());
  EXPECT_EQ(server(config, "ms").startup_timeout, milliseconds{2500});
  EXPECT_EQ(server(config, "ms").tool_timeout, milliseconds{1500});
  EXPECT_EQ(server(config, "both").startup_timeout, milliseconds{3000});
  const auto& off = server(config, "off");  // disabled servers are kept
  EXPECT_FALSE(off.enabled);
  EXPECT_TRUE(off.required);
  EXPECT_EQ(off.environment, "remote");  // the same value twice is no conflict
  EXPECT_FALSE(config.default_environment);
  EXPECT_TRUE(parse_ok("").servers.empty());
}

TEST(HostConfig, CodexConfigWithExtraKeysLoads) {
  auto config = parse_ok(R"(
model = "gpt-5-codex"
model_reasoning_effort = "high"
approval_policy = "on-request"
sandbox_mode = "workspace-write"
notify = ["notify-send", "codex"]

[features]
rmcp_client = true

[profiles.fast]
model = "gpt-5-mini"

[sandbox_workspace_write]
network_access = true

[mcp_servers.github]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-github"]
env_vars = ["GITHUB_TOKEN", { name = "GH_HOST", source = "local" }]
startup_timeout_ms = 20000
supports_parallel_tool_calls = true
default_tools_approval_mode = "auto"

[mcp_servers.github.env]
LOG = "1"

[mcp_servers.github.tools.search]
approval_mode = "approve"

[mcp_servers.figma]
url = "https://mcp.figma.com/mcp"
bearer_token_env_var = "FIGMA_OAUTH_TOKEN"
scopes = ["read"]
oauth_resource = "https://mcp.figma.com"
oauth = { client_id = "abc", callback_port = 5555 }
environment_id = "local"
)");
  ASSERT_EQ(config.servers.size(), 2u);
  const auto& github = server(config, "github");
  const auto& stdio = std::get<mcp::StdioCommand>(github.transport);
  EXPECT_EQ(stdio.env_vars, (std::vector<std::string>{"GITHUB_TOKEN", "GH_HOST"}));
  EXPECT_EQ(stdio.env.at("LOG"), "1");
  EXPECT_EQ(github.startup_timeout, milliseconds{20'000});
  const auto& figma = server(config, "figma");
  EXPECT_EQ(std::get<HttpServerSettings>(figma.transport).url, "https://mcp.figma.com/mcp");
  EXPECT_EQ(figma.environment, "local");
  // codex's own keys are not typos: no warning for any of them.
  EXPECT_TRUE(config.warnings.empty()) << config.warnings.front();
}

TEST(HostConfig, LikelyTyposWarnWithTheNearestKey) {
  auto config = parse_ok(R"(
model = "gpt-5-codex"
default_enviroment = "box"

[mcp_servers.docs]
comand = "docs-mcp"
command = "docs-mcp"
argz = ["--verbose"]
colour = "blue"

[mcp_server.typo]
command = "x"

[mcpServers.camel]
command = "x"

[enviroments.box]
spawn = true

[environments.box]
spawn = true
ping_interval = 5

[gateway]
listen_on = "stdio"
)");
  // Table by table (environments are read before servers), each in file order.
  EXPECT_EQ(config.warnings,
            (std::vector<std::string>{
                std::string("config.toml:22:1: [environments.box] unknown key 'ping_interval'; ") +
                    "did you mean 'ping_interval_sec'?",
                "config.toml:6:1: [mcp_servers.docs] unknown key 'comand'; did you mean 'command'?",
                "config.toml:8:1: [mcp_servers.docs] unknown key 'argz'; did you mean 'args'?",
                "config.toml:9:1: [mcp_servers.docs] unknown key 'colour'",
                "config.toml:25:1: [gateway] unknown key 'listen_on'; did you mean 'listen'?",
                std::string("config.toml:3:1: unknown key 'default_enviroment'; ") +
                    "did you mean 'default_environment'?",
                "config.toml:11:2: unknown table 'mcp_server'; did you mean 'mcp_servers'?",
                "config.toml:14:2: unknown table 'mcpServers'; did you mean 'mcp_servers'?",
                "config.toml:17:2: unknown table 'enviroments'; did you mean 'environments'?",
            }));
}

struct BadConfig {
  const char* what;
  const char* toml;
  const char* message;
};

// Each bad config -> its exact message (file:line:column, the table, the field).
const BadConfig kBadConfigs[] = {
    {"no transport", "[mcp_servers.x]\nargs = [\"a\"]\n",
     "config.toml:1:1: [mcp_servers.x] invalid transport: needs `command` (stdio) or `url` "
     "(streamable HTTP)"},
    {"url with command", "[mcp_servers.x]\ncommand = \"a\"\nurl = \"http://h/\"\n",
     "config.toml:3:1: [mcp_servers.x] url is not supported for stdio"},
    {"bearer_token_env_var with command",
     "[mcp_servers.x]\ncommand = \"a\"\nbearer_token_env_var = \"T\"\n",
     "config.toml:3:1: [mcp_servers.x] bearer_token_env_var is not supported for stdio"},
    {"http_headers with command", "[mcp_servers.x]\ncommand = \"a\"\nhttp_headers = {}\n",
     "config.toml:3:1: [mcp_servers.x] http_headers is not supported for stdio"},
    {"env_http_headers with command",
     "[mcp_servers.x]\ncommand = \"a\"\n[mcp_servers.x.env_http_headers]\nA = \"B\"\n",
     "config.toml:3:16: [mcp_servers.x] env_http_headers is not supported for stdio"},
    {"bearer_token with command", "[mcp_servers.x]\ncommand = \"a\"\nbearer_token = \"t\"\n",
     "config.toml:3:1: [mcp_servers.x] bearer_token is not supported for stdio; put the token in "
     "an "
     "environment variable and name it with bearer_token_env_var"},
    {"args with url", "[mcp_servers.x]\nurl = \"http://h/\"\nargs = []\n",
     "config.toml:3:1: [mcp_servers.x] args is not supported for streamable_http"},
    {"env with url", "[mcp_servers.x]\nurl = \"http://h/\"\n  env = { A = \"b\" }\n",
     "config.toml:3:3: [mcp_servers.x] env is not supported for streamable_http"},
    {"env_vars with url", "[mcp_servers.x]\nurl = \"http://h/\"\nenv_vars = [\"A\"]\n",
     "config.toml:3:1: [mcp_servers.x] env_vars is not supported for streamable_http"},
    {"cwd with url", "[mcp_servers.x]\nurl = \"http://h/\"\ncwd = \"/\"\n",
     "config.toml:3:1: [mcp_servers.x] cwd is not supported for streamable_http"},
    {"bearer_token with url", "[mcp_servers.x]\nurl = \"http://h/\"\nbearer_token = \"t\"\n",
     "config.toml:3:1: [mcp_servers.x] bearer_token is not supported for streamable_http; put the "
     "token in an environment variable and name it with bearer_token_env_var"},
    {"bad server name", "[mcp_servers.\"bad name\"]\ncommand = \"a\"\n",
     "config.toml:1:14: Invalid MCP server name 'bad name': must match pattern ^[a-zA-Z0-9_-]+$"},
    {"dotted server name", "[mcp_servers]\n\"a.b\" = { command = \"a\" }\n",
     "config.toml:2:1: Invalid MCP server name 'a.b': must match pattern ^[a-zA-Z0-9_-]+$"},
    {"server not a table", "[mcp_servers]\nx = 1\n",
     "config.toml:2:1: [mcp_servers.x] must be a table"},
    {"empty command", "[mcp_servers.x]\ncommand = \"\"\n",
     "config.toml:2:1: [mcp_servers.x] command must not be empty"},
    {"command not a string", "[mcp_servers.x]\ncommand = [\"a\"]\n",
     "config.toml:2:1: [mcp_servers.x] command must be a string"},
    {"args not strings", "[mcp_servers.x]\ncommand = \"a\"\nargs = [1]\n",
     "config.toml:3:1: [mcp_servers.x] args must be an array of strings"},
    {"env not strings", "[mcp_servers.x]\ncommand = \"a\"\nenv = { A = 1 }\n",
     "config.toml:3:1: [mcp_servers.x] env must be a table of strings"},
    {"negative startup timeout", "[mcp_servers.x]\ncommand = \"a\"\nstartup_timeout_sec = -1\n",
     "config.toml:3:1: [mcp_servers.x] startup_timeout_sec must be a non-negative, finite number "
     "of seconds"},
    {"infinite startup timeout", "[mcp_servers.x]\ncommand = \"a\"\nstartup_timeout_sec = inf\n",
     "config.toml:3:1: [mcp_servers.x] startup_timeout_sec must be a non-negative, finite number "
     "of seconds"},
    {"NaN tool timeout", "[mcp_servers.x]\ncommand = \"a\"\ntool_timeout_sec = nan\n",
     "config.toml:3:1: [mcp_servers.x] tool_timeout_sec must be a non-negative, finite number of "
     "seconds"},
    {"negative float tool timeout", "[mcp_servers.x]\ncommand = \"a\"\ntool_timeout_sec = -0.5\n",
     "config.toml:3:1: [mcp_servers.x] tool_timeout_sec must be a non-negative, finite number of "
     "seconds"},
    {"string timeout", "[mcp_servers.x]\ncommand = \"a\"\ntool_timeout_sec = \"10\"\n",
     "config.toml:3:1: [mcp_servers.x] tool_timeout_sec must be a non-negative, finite number of "
     "seconds"},
    {"negative startup_timeout_ms", "[mcp_servers.x]\ncommand = \"a\"\nstartup_timeout_ms = -5\n",
     "config.toml:3:1: [mcp_servers.x] startup_timeout_ms must be a non-negative integer"},
    {"float startup_timeout_ms", "[mcp_servers.x]\ncommand = \"a\"\nstartup_timeout_ms = 1.5\n",
     "config.toml:3:1: [mcp_servers.x] startup_timeout_ms must be a non-negative integer"},
    {"enabled not a bool", "[mcp_servers.x]\ncommand = \"a\"\nenabled = \"yes\"\n",
     "config.toml:3:1: [mcp_servers.x] enabled must be true or false"},
    {"environment vs environment_id",
     "[mcp_servers.x]\ncommand = \"a\"\nenvironment = \"gpu\"\nenvironment_id = \"box\"\n",
     "config.toml:4:1: [mcp_servers.x] conflicting environment 'gpu' and environment_id 'box'"},
    {"environment_id vs experimental_environment",
     "[mcp_servers.x]\ncommand = \"a\"\nexperimental_environment = \"local\"\nenvironment_id = "
     "\"box\"\n",
     "config.toml:3:1: [mcp_servers.x] conflicting environment_id 'box' and "
     "experimental_environment 'local'"},
    {"unsupported experimental_environment",
     "[mcp_servers.gh]\ncommand = \"a\"\nexperimental_environment = \"gpu\"\n",
     "config.toml:3:1: [mcp_servers.gh] unsupported experimental_environment 'gpu' for MCP server "
     "'gh'"},
    {"environment with nothing", "[environments.box]\nconnect_timeout_sec = 1\n",
     "config.toml:1:1: [environments.box] environment 'box' must set exactly one of url, spawn or "
     "command"},
    {"environment with spawn = false", "[environments.box]\nspawn = false\n",
     "config.toml:1:1: [environments.box] environment 'box' must set exactly one of url, spawn or "
     "command"},
    {"environment with url and spawn", "[environments.box]\nurl = \"ws://h:1\"\nspawn = true\n",
     "config.toml:1:1: [environments.box] environment 'box' must set exactly one of url, spawn or "
     "command"},
    {"environment with url and command",
     "[environments.box]\nurl = \"ws://h:1\"\ncommand = [\"a\"]\n",
     "config.toml:1:1: [environments.box] environment 'box' must set exactly one of url, spawn or "
     "command"},
    {"reserved id local", "[environments.local]\nspawn = true\n",
     "config.toml:1:15: environment id 'local' is reserved"},
    {"reserved id none", "[environments.none]\nspawn = true\n",
     "config.toml:1:15: environment id 'none' is reserved"},
    {"empty id", "[environments.\"\"]\nspawn = true\n",
     "config.toml:1:15: invalid environment id '': must be 1 to 64 characters of [A-Za-z0-9_-]"},
    {"id with a dot", "[environments.\"a.b\"]\nspawn = true\n",
     "config.toml:1:15: invalid environment id 'a.b': must be 1 to 64 characters of [A-Za-z0-9_-]"},
    {"id of 65 characters",
     "[environments.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\nspawn = "
     "true\n",
     "config.toml:1:15: invalid environment id "
     "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa': must be 1 to 64 "
     "characters of [A-Za-z0-9_-]"},
    {"http environment url", "[environments.box]\nurl = \"http://h:1\"\n",
     "config.toml:2:1: [environments.box] url must start with ws:// or wss://"},
    {"two tokens",
     "[environments.box]\nurl = \"ws://h:1\"\ntoken_env_var = \"T\"\ntoken_file = \"/t\"\n",
     "config.toml:4:1: [environments.box] token_env_var and token_file are mutually exclusive"},
    {"token with spawn", "[environments.box]\nspawn = true\ntoken_file = \"/t\"\n",
     "config.toml:3:1: [environments.box] token_file is only supported with url"},
    {"cwd with url", "[environments.box]\nurl = \"ws://h:1\"\ncwd = \"/\"\n",
     "config.toml:3:1: [environments.box] cwd is only supported with command"},
    {"empty command", "[environments.box]\ncommand = []\n",
     "config.toml:2:1: [environments.box] command must not be empty"},
    {"negative connect timeout", "[environments.box]\nspawn = true\nconnect_timeout_sec = -3\n",
     "config.toml:3:1: [environments.box] connect_timeout_sec must be a non-negative, finite "
     "number of seconds"},
    {"keepalive with command", "[environments.box]\ncommand = [\"a\"]\nping_interval_sec = 1\n",
     "config.toml:3:1: [environments.box] ping_interval_sec is only supported with url or spawn"},
    {"zero ping interval", "[environments.box]\nspawn = true\nping_interval_sec = 0\n",
     "config.toml:3:1: [environments.box] ping_interval_sec must be greater than 0"},
    {"idle timeout within the ping interval",
     "[environments.box]\nspawn = true\nping_interval_sec = 2\nidle_timeout_sec = 2\n",
     "config.toml:4:1: [environments.box] idle_timeout_sec must be greater than ping_interval_sec"},
    {"ping interval past the default idle timeout",
     "[environments.box]\nspawn = true\nping_interval_sec = 60\n",
     "config.toml:3:1: [environments.box] idle_timeout_sec must be greater than ping_interval_sec"},
    {"unknown default", "default_environment = \"nope\"\n",
     "config.toml:1:1: default_environment 'nope' is not a defined environment"},
    {"mcp_servers not a table", "mcp_servers = 3\n",
     "config.toml:1:1: mcp_servers must be a table"},
    {"gateway names", "[gateway]\nnames = \"short\"\n",
     "config.toml:2:1: [gateway] names must be prefixed, qualified or raw"},
    {"gateway hosts", "[gateway]\nallow_hosts = \"h\"\n",
     "config.toml:2:1: [gateway] allow_hosts must be an array of strings"},
    {"gateway not a table", "gateway = 1\n", "config.toml:1:1: [gateway] must be a table"},
};

TEST(HostConfig, GatewayTableGivesServesDefaults) {
  auto config = parse_ok(R"(
[gateway]
listen = "http://127.0.0.1:7800"
names = "raw"
allow_hosts = ["gw.internal"]
allow_origins = ["http://localhost:6274"]
isolate_sessions = true
token_file = "/etc/tether/token"
)");
  const auto& gateway = config.gateway;
  EXPECT_EQ(gateway.listen, "http://127.0.0.1:7800");
  EXPECT_EQ(gateway.names, "raw");
  EXPECT_EQ(gateway.allow_hosts, std::vector<std::string>{"gw.internal"});
  EXPECT_EQ(gateway.allow_origins, std::vector<std::string>{"http://localhost:6274"});
  EXPECT_EQ(gateway.isolate_sessions, true);
  EXPECT_EQ(gateway.token_file, "/etc/tether/token");
  EXPECT_FALSE(parse_ok("").gateway.listen.has_value());
}

TEST(HostConfig, EachBadConfigHasItsExactMessage) {
  for (const auto& bad : kBadConfigs) EXPECT_EQ(parse_error(bad.toml), bad.message) << bad.what;
}

TEST(HostConfig, TomlSyntaxErrorsNameFileLineAndColumn) {
  auto message = parse_error("[mcp_servers.a]\ncommand = \"x\"\nargs = [\"a\",\n");
  EXPECT_TRUE(message.starts_with("config.toml:3:14: ")) << message;
  message = parse_error("[mcp_servers.a]\ncommand = \"x\" extra\n");
  EXPECT_TRUE(message.starts_with("config.toml:2:15: ")) << message;
  message = parse_error("", "[[environments]\n");
  EXPECT_TRUE(message.starts_with("environments.toml:1:")) << message;
}

// Scenario 43: a codex environments.toml next to a codex config.toml using environment_id.
constexpr std::string_view kCodexEnvironments = R"(
default = "devbox"
include_local = true

[[environments]]
id = "devbox"
url = "ws://127.0.0.1:7700"
auth_bearer_token = "s3cret"
connect_timeout_sec = 5
initialize_timeout_sec = 5

[[environments]]
id = "gpu"
program = "ssh"
args = ["gpu-box", "codex", "exec-server", "--listen", "stdio"]
env = { SSH_AUTH_SOCK = "/tmp/agent" }
cwd = "/home/me"
)";

constexpr std::string_view kCodexConfigUsingEnvironmentId = R"(
model = "gpt-5-codex"

[mcp_servers.train]
command = "python"
args = ["-m", "train_mcp"]
environment_id = "gpu"

[mcp_servers.files]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem", "/work"]
experimental_environment = "remote"

[mcp_servers.here]
command = "cat"
)";

TEST(HostConfig, CodexEnvironmentsTomlAndEnvironmentIdPlaceAsCodexWould) {
  auto config = parse_config({kCodexConfigUsingEnvironmentId, "config.toml"},
                             ConfigText{kCodexEnvironments, "environments.toml"});
  ASSERT_TRUE(config.has_value()) << config.error().message;
  ASSERT_EQ(config->environments.size(), 2u);
  EXPECT_EQ(config->default_environment, "devbox");

  const auto* devbox = find_environment(*config, "devbox");
  ASSERT_NE(devbox, nullptr);
  EXPECT_EQ(devbox->location.file, "environments.toml");
  EXPECT_EQ(devbox->location.line, 5);
  const auto& url = std::get<EnvironmentConfig::Url>(devbox->how);
  EXPECT_EQ(url.url, "ws://127.0.0.1:7700");
  EXPECT_EQ(url.token, "s3cret");
  EXPECT_EQ(devbox->connect_timeout, milliseconds{5000});

  const auto* gpu = find_environment(*config, "gpu");
  ASSERT_NE(gpu, nullptr);
  const auto& command = std::get<EnvironmentConfig::Command>(gpu->how);
  EXPECT_EQ(command.argv, (std::vector<std::string>{"ssh", "gpu-box", "codex", "exec-server",
                                                    "--listen", "stdio"}));
  EXPECT_EQ(command.env, (std::map<std::string, std::string>{{"SSH_AUTH_SOCK", "/tmp/agent"}}));
  EXPECT_EQ(command.cwd, "/home/me");

  // environment_id names an environment; "remote" is the default; absent is local.
  EXPECT_EQ(server(*config, "train").environment, "gpu");
  EXPECT_EQ(server(*config, "files").environment, "remote");
  EXPECT_EQ(server(*config, "here").environment, "local");
  auto remote = resolve_remote(*config, [](std::string_view) { return std::nullopt; });
  ASSERT_TRUE(remote.environment);
  EXPECT_EQ(remote.environment->id, "devbox");
  EXPECT_EQ(remote.source, "default_environment 'devbox'");
}

TEST(HostConfig, EnvironmentsTomlErrors) {
  struct Case {
    const char* config;
    const char* environments;
    const char* message;
  };
  const Case cases[] = {
      {"", "[[environments]]\nurl = \"ws://h:1\"\n",
       "environments.toml:1:1: [[environments]] id is required"},
      {"", "[[environments]]\nid = \"a\"\nurl = \"ws://h:1\"\nprogram = \"ssh\"\n",
       "environments.toml:1:1: [[environments]] 'a' environment 'a' must set exactly one of url "
       "or program"},
      {"", "[[environments]]\nid = \"a\"\n",
       "environments.toml:1:1: [[environments]] 'a' environment 'a' must set exactly one of url "
       "or program"},
      {"", "[[environments]]\nid = \"none\"\nurl = \"ws://h:1\"\n",
       "environments.toml:2:1: [[environments]] 'none' environment id 'none' is reserved"},
      {"", "[[environments]]\nid = \"a\"\nurl = \"ws://h:1\"\nargs = []\n",
       "environments.toml:4:1: [[environments]] 'a' args is only supported with program"},
      {"", "[[environments]]\nid = \"a\"\nprogram = \"ssh\"\nauth_bearer_token = \"t\"\n",
       "environments.toml:4:1: [[environments]] 'a' auth_bearer_token is only supported with url"},
      {"", "[[environments]]\nid = \"a\"\nurl = \"https://h\"\n",
       "environments.toml:3:1: [[environments]] 'a' url must start with ws:// or wss://"},
      {"", "default = \"b\"\n[[environments]]\nid = \"a\"\nurl = \"ws://h:1\"\n",
       "environments.toml:1:1: default 'b' is not a defined environment"},
      {"", "environments = { a = 1 }\n",
       "environments.toml:1:1: environments must be an array of tables ([[environments]])"},
      {"[environments.a]\nspawn = true\n", "[[environments]]\nid = \"a\"\nurl = \"ws://h:1\"\n",
       "environments.toml:1:1: duplicate environment id 'a' (first defined at config.toml:1:1)"},
      {"",
       "[[environments]]\nid = \"a\"\nurl = \"ws://h:1\"\n[[environments]]\nid = \"a\"\nurl = "
       "\"ws://h:2\"\n",
       "environments.toml:4:1: duplicate environment id 'a' (first defined at "
       "environments.toml:1:1)"},
  };
  for (const auto& c : cases)
    EXPECT_EQ(parse_error(c.config, c.environments), c.message) << c.environments;
}

TEST(HostConfig, DefaultsOfBothFiles) {
  constexpr std::string_view environments =
      "default = \"a\"\n[[environments]]\nid = \"a\"\nurl = "
      "\"ws://h:1\"\n";
  auto both = parse_config({"default_environment = \"b\"\n[environments.b]\nspawn = true\n", "c"},
                           ConfigText{environments, "e"});
  ASSERT_TRUE(both.has_value()) << both.error().message;
  EXPECT_EQ(both->default_environment, "b");  // config.toml's wins
  for (auto none : {"local", "none"}) {
    auto text = std::string{"default_environment = \""} + none + "\"\n";
    auto config = parse_config({text, "c"}, ConfigText{environments, "e"});
    ASSERT_TRUE(config.has_value()) << config.error().message;
    EXPECT_FALSE(config->default_environment) << none;  // remote never means local
  }
}

using Env = std::map<std::string, std::string>;
EnvLookup lookup(Env env) {
  return [env = std::move(env)](std::string_view name) -> std::optional<std::string> {
    auto it = env.find(std::string{name});
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
}

TEST(HostConfig, ResolveRemote) {
  auto with_default = parse_ok("default_environment = \"box\"\n[environments.box]\nspawn = true\n");
  auto without_default = parse_ok("[environments.box]\nspawn = true\n");

  auto from_env = resolve_remote(with_default, lookup({{"TETHER_EXEC_SERVER_URL", "ws://h:9"},
                                                       {"TETHER_EXEC_SERVER_TOKEN", "tok"}}));
  ASSERT_TRUE(from_env.environment);
  EXPECT_EQ(from_env.environment->id, "remote");
  EXPECT_EQ(from_env.source, "TETHER_EXEC_SERVER_URL");
  const auto& url = std::get<EnvironmentConfig::Url>(from_env.environment->how);
  EXPECT_EQ(url.url, "ws://h:9");
  EXPECT_EQ(url.token, "tok");

  auto no_token = resolve_remote(without_default, lookup({{"TETHER_EXEC_SERVER_URL", "ws://h:9"}}));
  ASSERT_TRUE(no_token.environment);
  EXPECT_FALSE(std::get<EnvironmentConfig::Url>(no_token.environment->how).token);

  auto disabled = resolve_remote(with_default, lookup({{"TETHER_EXEC_SERVER_URL", "none"}}));
  EXPECT_FALSE(disabled.environment);  // `none` beats the default too
  EXPECT_EQ(disabled.source, "TETHER_EXEC_SERVER_URL=none");

  for (const auto& env : {Env{}, Env{{"TETHER_EXEC_SERVER_URL", ""}}}) {
    auto from_default = resolve_remote(with_default, lookup(env));
    ASSERT_TRUE(from_default.environment);
    EXPECT_EQ(from_default.environment->id, "box");
    EXPECT_TRUE(std::holds_alternative<EnvironmentConfig::Spawn>(from_default.environment->how));
    EXPECT_EQ(from_default.source, "default_environment 'box'");
  }

  auto nothing = resolve_remote(without_default, lookup({}));
  EXPECT_FALSE(nothing.environment);
  EXPECT_EQ(nothing.source, "no TETHER_EXEC_SERVER_URL and no default_environment");
}

TEST(HostConfig, TetherHome) {
  EXPECT_EQ(tether_home(lookup({{"TETHER_HOME", "/t"}, {"HOME", "/h"}})), "/t");
  EXPECT_EQ(tether_home(lookup({{"HOME", "/h"}})), "/h/.tether");
}

// A temporary directory removed at the end of the test, even when it fails.
struct TempDir {
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "tether-config-XXXXXX").string();
    path = ::mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  void write(const std::string& name, std::string_view text) const {
    std::ofstream(path / name) << text;
  }
  std::filesystem::path path;
};

TEST(HostConfig, LoadFromFiles) {
  TempDir dir;
  auto config_path = (dir.path / "config.toml").string();
  auto environments_path = (dir.path / "environments.toml").string();

  auto empty = load_config(config_path, environments_path);
  ASSERT_TRUE(empty.has_value()) << empty.error().message;
  EXPECT_TRUE(empty->servers.empty());
  EXPECT_EQ(empty->file, "");
  auto missing = load_config(config_path, environments_path, true);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().message, config_path + ": No such file or directory");

  dir.write("config.toml", kCodexConfigUsingEnvironmentId);
  auto alone = load_config(config_path, environments_path);
  ASSERT_TRUE(alone.has_value()) << alone.error().message;
  EXPECT_EQ(alone->file, config_path);
  EXPECT_TRUE(alone->environments.empty());

  dir.write("environments.toml", kCodexEnvironments);
  auto both = load_config(config_path, environments_path);
  ASSERT_TRUE(both.has_value()) << both.error().message;
  EXPECT_EQ(both->environments.size(), 2u);
  EXPECT_EQ(both->default_environment, "devbox");

  dir.write("config.toml", "[mcp_servers.x]\nurl = \"http://h/\"\nargs = []\n");
  auto bad = load_config(config_path, environments_path);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message,
            config_path + ":3:1: [mcp_servers.x] args is not supported for streamable_http");
}

}  // namespace
}  // namespace tether::host
