// host config import tests: where each host's servers are looked for, and what import_servers
// writes for each kind of value (literals, variables, defaults, paths, inputs) on real files in a
// temporary directory, read back with the loader.
//
// Owns: checks on import_sources / import_servers only; nothing is started.
// Data flows: source files -> import_servers -> config.toml -> parse_config -> asserted servers.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include <tether/host/config_import.hpp>

namespace tether::host {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path =
      fs::temp_directory_path() / ("tether-import-" + std::to_string(::getpid()) + "-" +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
  TempDir() { fs::create_directories(path); }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
};

EnvLookup fake_env(std::map<std::string, std::string, std::less<>> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(HostConfigImport, EachHostsUsualPlacesNearestFirst) {
  auto env = fake_env({{"HOME", "/h"}});
  auto files = [](const std::vector<ImportSource>& sources) {
    std::vector<std::string> out;
    out.reserve(sources.size());
    for (const auto& source : sources) out.push_back(source.file + (source.project ? "@" : ""));
    return out;
  };
  EXPECT_EQ(files(import_sources(ImportHost::codex, env, "/p")),
            (std::vector<std::string>{"/h/.codex/config.toml"}));
  EXPECT_EQ(files(import_sources(ImportHost::codex,
                                 fake_env({{"HOME", "/h"}, {"CODEX_HOME", "/c"}}), "/p")),
            (std::vector<std::string>{"/c/config.toml"}));
  EXPECT_EQ(files(import_sources(ImportHost::claude, env, "/p")),
            (std::vector<std::string>{"/h/.claude.json@", "/p/.mcp.json", "/h/.claude.json"}));
  EXPECT_EQ(import_sources(ImportHost::claude, env, "/p").front().project, "/p");
  EXPECT_EQ(files(import_sources(ImportHost::cursor, env, "/p")),
            (std::vector<std::string>{"/p/.cursor/mcp.json", "/h/.cursor/mcp.json"}));
  EXPECT_EQ(files(import_sources(ImportHost::vscode, env, "/p")),
            (std::vector<std::string>{"/p/.vscode/mcp.json", "/h/.config/Code/User/mcp.json"}));
  EXPECT_EQ(import_host("vscode"), ImportHost::vscode);
  EXPECT_FALSE(import_host("windsurf").has_value());
}

TEST(HostConfigImport, ValuesBecomeVariableNamesNeverSecrets) {
  TempDir dir;
  const auto source = dir.write("mcp.json", R"({"mcpServers": {
    "run": {"command": "${HOME}/bin/run", "args": ["${userHome}/data"],
            "env": {"PLAIN": "1", "TOKEN": "${TOKEN}", "PAT": "${env:GH_TOKEN:-x}",
                    "LOG": "${HOME}/log"},
            "disabled": true, "tool_timeout_sec": 2.5},
    "api": {"type": "http", "url": "https://h/mcp",
            "headers": {"authorization": "Bearer ${API_TOKEN:-none}", "X-Key": "${KEY}",
                        "X-Team": "core"}},
    "mixed": {"command": "x", "env": {"A": "pre-${X}"}},
    "prompted": {"url": "https://h/mcp", "headers": {"A": "${input:pat}"}},
    "argsecret": {"command": "x", "args": ["--token=${SECRET}"]}
  }})");
  ImportRequest request;
  request.sources = {{source, std::nullopt, true}};
  request.config_path = (dir.path / "config.toml").string();
  request.env = fake_env({{"HOME", "/home/me"}});
  auto imported = import_servers(request);
  ASSERT_TRUE(imported.has_value()) << imported.error().message;
  ASSERT_EQ(imported->size(), 5u);
  const auto& run = (*imported)[0];
  EXPECT_EQ(run.status, ImportedServer::Status::imported);
  EXPECT_EQ(run.notes,
            (std::vector<std::string>{"env.PAT was ${env:GH_TOKEN:-x}: tether copies PAT from "
                                      "its own environment (env_vars), so set PAT there",
                                      "env.PAT: the default of ${env:GH_TOKEN:-x} is not kept "
                                      "(config.toml has none)"}));
  EXPECT_EQ((*imported)[1].notes,
            (std::vector<std::string>{"headers.authorization: the default of ${API_TOKEN:-none} "
                                      "is not kept (config.toml has none)"}));
  EXPECT_EQ((*imported)[2].reason,
            "env.A is 'pre-${X}', a value that is not just one variable: add this server by hand");
  EXPECT_EQ((*imported)[3].reason,
            "headers.A asks for a VS Code input, which tether cannot prompt for: put the value in "
            "an environment variable and add the server by hand");
  EXPECT_EQ((*imported)[4].reason,
            "args uses ${SECRET}, which config.toml cannot express (it expands no variables) and "
            "import does not copy: add this server by hand");

  std::ifstream in(request.config_path);
  std::stringstream text;
  text << in.rdbuf();
  auto config = parse_config({text.str(), request.config_path});
  ASSERT_TRUE(config.has_value()) << config.error().message;
  ASSERT_EQ(config->servers.size(), 2u) << text.str();
  const auto& stdio = std::get<mcp::StdioCommand>(config->servers[0].transport);
  EXPECT_EQ(stdio.program, "/home/me/bin/run");
  EXPECT_EQ(stdio.args, (std::vector<std::string>{"/home/me/data"}));
  EXPECT_EQ(stdio.env,
            (std::map<std::string, std::string>{{"LOG", "/home/me/log"}, {"PLAIN", "1"}}));
  EXPECT_EQ(stdio.env_vars, (std::vector<std::string>{"PAT", "TOKEN"}));
  EXPECT_FALSE(config->servers[0].enabled);
  EXPECT_EQ(config->servers[0].tool_timeout, std::chrono::milliseconds{2500});
  const auto& http = std::get<HttpServerSettings>(config->servers[1].transport);
  EXPECT_EQ(http.bearer_token_env_var, "API_TOKEN");
  EXPECT_EQ(http.env_http_headers, (std::map<std::string, std::string>{{"X-Key", "KEY"}}));
  EXPECT_EQ(http.http_headers, (std::map<std::string, std::string>{{"X-Team", "core"}}));
}

TEST(HostConfigImport, AnInvalidSourceOrAMissingNamedFileStopsEverything) {
  TempDir dir;
  ImportRequest request;
  request.config_path = (dir.path / "config.toml").string();
  request.sources = {{(dir.path / "absent.json").string(), std::nullopt, true}};
  auto missing = import_servers(request);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().message,
            (dir.path / "absent.json").string() + ": No such file or directory");

  request.sources = {
      {dir.write("bad.json", R"({"mcpServers": {"x": {"url": "ws://h", "args": []}}})"),
       std::nullopt, true}};
  auto invalid = import_servers(request);
  ASSERT_FALSE(invalid.has_value());
  EXPECT_EQ(invalid.error().message,
            (dir.path / "bad.json").string() +
                ":1:40: [mcpServers.x] args is not supported for streamable_http");
  EXPECT_FALSE(fs::exists(request.config_path));
}

}  // namespace
}  // namespace tether::host
