// host config edit tests: add_server / remove_server on config.toml text (what `tether mcp add`
// and `tether mcp remove` write) and edit_config_file on a temporary directory.
//
// Owns: checks that an edit touches only its server: exact output texts (comments and other
// tables byte for byte), exact error messages, and that every result loads with parse_config.
// Does not own: the validation messages themselves (config_test.cpp) or the CLI around these.
// Data flows: TOML text -> add_server / remove_server -> asserted text -> parse_config;
// files -> edit_config_file -> asserted file contents and permission bits.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <tether/host/config.hpp>
#include <tether/host/config_edit.hpp>

namespace tether::host {
namespace {

std::string add_ok(std::string_view text, const NewServer& server) {
  auto out = add_server(text, "config.toml", server);
  EXPECT_TRUE(out.has_value()) << (out ? "" : out.error().message);
  return out ? *out : std::string{};
}

std::string remove_ok(std::string_view text, std::string_view name) {
  auto out = remove_server(text, "config.toml", name);
  EXPECT_TRUE(out.has_value()) << (out ? "" : out.error().message);
  if (!out) return {};
  auto config = parse_config({*out, "config.toml"});
  EXPECT_TRUE(config.has_value()) << "result does not load: " << config.error().message << "\n"
                                  << *out;
  return *out;
}

std::string error_of(const Expected<std::string>& out) {
  return out ? "(edited)" : out.error().message;
}

Config parse_ok(std::string_view text) {
  auto config = parse_config({text, "config.toml"});
  EXPECT_TRUE(config.has_value()) << (config ? "" : config.error().message) << "\n" << text;
  return config ? *config : Config{};
}

std::vector<std::string> server_names(const Config& config) {
  std::vector<std::string> names;
  for (const auto& server : config.servers) names.push_back(server.name);
  return names;
}

TEST(HostConfigEdit, AddToEmptyText) {
  EXPECT_EQ(add_ok("", {.name = "echo", .command = "cat"}),
            "[mcp_servers.echo]\n"
            "command = \"cat\"\n");
}

TEST(HostConfigEdit, AddAppendsAfterOneBlankLine) {
  NewServer server{.name = "b", .command = "b"};
  const std::string b = "[mcp_servers.b]\ncommand = \"b\"\n";
  EXPECT_EQ(add_ok("# mine\n[mcp_servers.a]\ncommand = \"a\"\n", server),
            "# mine\n[mcp_servers.a]\ncommand = \"a\"\n\n" + b);
  EXPECT_EQ(add_ok("[mcp_servers.a]\ncommand = \"a\"", server),
            "[mcp_servers.a]\ncommand = \"a\"\n\n" + b);
  EXPECT_EQ(add_ok("[mcp_servers.a]\ncommand = \"a\"\n\n", server),
            "[mcp_servers.a]\ncommand = \"a\"\n\n" + b);
  EXPECT_EQ(add_ok("model = \"m\" # trailing comment", server),
            "model = \"m\" # trailing comment\n\n" + b);
  // A CRLF file stays CRLF.
  EXPECT_EQ(add_ok("model = \"m\"\r\n", server),
            "model = \"m\"\r\n\r\n[mcp_servers.b]\r\ncommand = \"b\"\r\n");
  // `[mcp_servers]` with inline entries and dotted keys can still take a header table.
  auto text = add_ok("[mcp_servers]\na = { command = \"a\" }\n", server);
  EXPECT_EQ(server_names(parse_ok(text)), (std::vector<std::string>{"a", "b"}));
  text = add_ok("mcp_servers.a.command = \"a\"\n", server);
  EXPECT_EQ(server_names(parse_ok(text)), (std::vector<std::string>{"a", "b"}));
}

TEST(HostConfigEdit, AddWritesEveryFieldAndStringsRoundTrip) {
  NewServer server{
      .name = "tricky_1-x",
      .command = "C:\\tools\\my \"server\".exe",
      .args = {"-y", "line one\nline two\ttab", "back\\slash \"quoted\"", "", "caf\xC3\xA9",
               std::string{"nul\0bell\a del\x7f", 14}, "cr\rform\ffeed\b"},
      .env = {{"LOG_LEVEL", "debug"}, {"needs quotes.x", "a = \"b\""}, {"", "empty key"}},
      .environment = "gpu",
  };
  auto text = add_ok("", server);
  EXPECT_EQ(
      text,
      "[mcp_servers.tricky_1-x]\n"
      "command = \"C:\\\\tools\\\\my \\\"server\\\".exe\"\n"
      "args = [\"-y\", \"line one\\nline two\\ttab\", \"back\\\\slash \\\"quoted\\\"\", \"\", "
      "\"caf\xC3\xA9\", \"nul\\u0000bell\\u0007 del\\u007F\", \"cr\\rform\\ffeed\\b\"]\n"
      "env = { \"\" = \"empty key\", LOG_LEVEL = \"debug\", \"needs quotes.x\" = \"a = "
      "\\\"b\\\"\" }\n"
      "environment = \"gpu\"\n");
  auto config = parse_ok(text);
  ASSERT_EQ(config.servers.size(), 1u);
  const auto& added = config.servers[0];
  EXPECT_EQ(added.name, server.name);
  EXPECT_EQ(added.environment, "gpu");
  const auto& stdio = std::get<mcp::StdioCommand>(added.transport);
  EXPECT_EQ(stdio.program, server.command);
  EXPECT_EQ(stdio.args, server.args);
  EXPECT_EQ(stdio.env, server.env);
  EXPECT_TRUE(stdio.env_vars.empty());
  EXPECT_FALSE(stdio.cwd);
}

TEST(HostConfigEdit, AddOmitsEmptyFields) {
  auto config = parse_ok(add_ok("", {.name = "a", .command = "a"}));
  ASSERT_EQ(config.servers.size(), 1u);
  EXPECT_EQ(config.servers[0].environment, "local");
  EXPECT_TRUE(std::get<mcp::StdioCommand>(config.servers[0].transport).args.empty());
}

TEST(HostConfigEdit, AddErrors) {
  const std::string existing = "[mcp_servers.echo]\ncommand = \"cat\"\n";
  EXPECT_EQ(error_of(add_server(existing, "/home/me/.tether/config.toml",
                                {.name = "echo", .command = "x"})),
            "MCP server 'echo' already exists in /home/me/.tether/config.toml");
  EXPECT_EQ(error_of(add_server("[mcp_servers]\necho = { command = \"cat\" }\n", "config.toml",
                                {.name = "echo", .command = "x"})),
            "MCP server 'echo' already exists in config.toml");
  for (std::string name : {"bad name", "a.b", "", "é"})
    EXPECT_EQ(error_of(add_server("", "config.toml", {.name = name, .command = "x"})),
              "Invalid MCP server name '" + name + "': must match pattern ^[a-zA-Z0-9_-]+$");
  EXPECT_EQ(error_of(add_server("mcp_servers = { a = { command = \"a\" } }\n", "config.toml",
                                {.name = "b", .command = "b"})),
            "cannot add MCP server 'b' to config.toml: mcp_servers is not a table "
            "[mcp_servers.b] can extend");
  auto syntax = error_of(
      add_server("[mcp_servers.a]\ncommand = \"x\" extra\n", "config.toml", {.name = "b"}));
  EXPECT_TRUE(syntax.starts_with("config.toml:2:15: ")) << syntax;
}

constexpr std::string_view kThreeServers =
    "# tether config\n"
    "# (hand-written)\n"
    "\n"
    "[mcp_servers.a]\n"
    "command = \"a\"   # the first\n"
    "\n"
    "# b: the one to remove\n"
    "[mcp_servers.b]\n"
    "# inside b\n"
    "command = \"b\"\n"
    "args = [\n"
    "  \"x\",  # a comment in a value\n"
    "  \"y\",\n"
    "]\n"
    "\n"
    "# c comes next\n"
    "   # and is described here\n"
    "\n"
    "[mcp_servers.c]\n"
    "command = \"c\"\n";

TEST(HostConfigEdit, RemoveHeaderTableKeepsCommentsAroundIt) {
  EXPECT_EQ(remove_ok(kThreeServers, "b"),
            "# tether config\n"
            "# (hand-written)\n"
            "\n"
            "[mcp_servers.a]\n"
            "command = \"a\"   # the first\n"
            "\n"
            "# b: the one to remove\n"
            "\n"
            "# c comes next\n"
            "   # and is described here\n"
            "\n"
            "[mcp_servers.c]\n"
            "command = \"c\"\n");
  // Between two blank lines: the blank line before it goes, not the ones before the next table.
  EXPECT_EQ(remove_ok(kThreeServers, "a"),
            "# tether config\n"
            "# (hand-written)\n"
            "\n"
            "# b: the one to remove\n"
            "[mcp_servers.b]\n"
            "# inside b\n"
            "command = \"b\"\n"
            "args = [\n"
            "  \"x\",  # a comment in a value\n"
            "  \"y\",\n"
            "]\n"
            "\n"
            "# c comes next\n"
            "   # and is described here\n"
            "\n"
            "[mcp_servers.c]\n"
            "command = \"c\"\n");
}

TEST(HostConfigEdit, RemoveFromACrlfFile) {
  EXPECT_EQ(
      remove_ok("[mcp_servers.a]\r\ncommand = \"a\"\r\n\r\n[mcp_servers.b]\r\ncommand = \"b\"\r\n"
                "\r\n# c\r\n[mcp_servers.c]\r\ncommand = \"c\"\r\n",
                "b"),
      "[mcp_servers.a]\r\ncommand = \"a\"\r\n\r\n# c\r\n[mcp_servers.c]\r\ncommand = \"c\"\r\n");
}

TEST(HostConfigEdit, RemoveTheLastTable) {
  auto text = remove_ok(kThreeServers, "c");
  EXPECT_EQ(text, std::string{kThreeServers.substr(0, kThreeServers.find("\n[mcp_servers.c]"))});
  EXPECT_EQ(server_names(parse_ok(text)), (std::vector<std::string>{"a", "b"}));
  // Without a final newline, and with comments after it that stay.
  EXPECT_EQ(remove_ok("[mcp_servers.a]\ncommand = \"a\"\n\n[mcp_servers.b]\ncommand = \"b\"", "b"),
            "[mcp_servers.a]\ncommand = \"a\"\n");
  EXPECT_EQ(remove_ok("[mcp_servers.a]\ncommand = \"a\"\n\n[mcp_servers.b]\ncommand = \"b\"\n"
                      "# the end\n",
                      "b"),
            "[mcp_servers.a]\ncommand = \"a\"\n\n# the end\n");
  EXPECT_EQ(remove_ok("[mcp_servers.only]\ncommand = \"a\"\n", "only"), "");
}

TEST(HostConfigEdit, RemoveWithSubTables) {
  constexpr std::string_view text =
      "[mcp_servers.x]\n"
      "command = \"x\"\n"
      "\n"
      "[mcp_servers.x.env]\n"
      "A = \"1\"\n"
      "\n"
      "# y\n"
      "[mcp_servers.y]\n"
      "command = \"y\"\n"
      "\n"
      "[mcp_servers.x.tools.search]   # sub-tables need not follow their table\n"
      "approval_mode = \"approve\"\n"
      "\n"
      "[[mcp_servers.x.hooks]]\n"
      "run = \"\"\"\n"
      "[mcp_servers.y]\n"
      "\"\"\"\n"
      "[mcp_servers.y.env]\n"
      "B = \"2\"\n";
  EXPECT_EQ(remove_ok(text, "x"),
            "# y\n"
            "[mcp_servers.y]\n"
            "command = \"y\"\n"
            "\n"
            "[mcp_servers.y.env]\n"
            "B = \"2\"\n");
  EXPECT_EQ(remove_ok(text, "y"),
            "[mcp_servers.x]\n"
            "command = \"x\"\n"
            "\n"
            "[mcp_servers.x.env]\n"
            "A = \"1\"\n"
            "\n"
            "# y\n"
            "\n"
            "[mcp_servers.x.tools.search]   # sub-tables need not follow their table\n"
            "approval_mode = \"approve\"\n"
            "\n"
            "[[mcp_servers.x.hooks]]\n"
            "run = \"\"\"\n"
            "[mcp_servers.y]\n"
            "\"\"\"\n");
  // Only sub-tables: the server table itself is implicit.
  auto only_env = remove_server("[mcp_servers.z.env]\nA = \"1\"\n", "config.toml", "z");
  ASSERT_TRUE(only_env.has_value()) << only_env.error().message;
  EXPECT_EQ(*only_env, "");
}

TEST(HostConfigEdit, RemoveInlineAndDottedEntries) {
  EXPECT_EQ(remove_ok("[mcp_servers]\n"
                      "# x\n"
                      "x = { command = \"a\" }\n"
                      "y = { command = \"b\", args = [\"x = { command = \\\"a\\\" }\"] }\n",
                      "x"),
            "[mcp_servers]\n"
            "# x\n"
            "y = { command = \"b\", args = [\"x = { command = \\\"a\\\" }\"] }\n");
  EXPECT_EQ(remove_ok("[mcp_servers]\n"
                      "y = { command = \"b\" }\n"
                      "x = { command = \"a\", env = { A = \"1\" } }   # the one\n",
                      "x"),
            "[mcp_servers]\n"
            "y = { command = \"b\" }\n");
  // Dotted keys, at the top level and inside [mcp_servers], with a sub-table header.
  EXPECT_EQ(remove_ok("model = \"m\"\n"
                      "mcp_servers.x.command = \"a\"\n"
                      "mcp_servers.y.command = \"b\"\n"
                      "mcp_servers.x.args = [\n"
                      "  \"multi-line\",\n"
                      "]\n"
                      "\n"
                      "[mcp_servers.x.env]\n"
                      "A = \"1\"\n",
                      "x"),
            "model = \"m\"\n"
            "mcp_servers.y.command = \"b\"\n");
  EXPECT_EQ(
      remove_ok("[mcp_servers]\nx.command = \"a\"\ny.command = \"b\"\nx.env.A = \"1\"\n", "x"),
      "[mcp_servers]\ny.command = \"b\"\n");
}

TEST(HostConfigEdit, RemoveErrors) {
  EXPECT_EQ(error_of(remove_server(kThreeServers, "/home/me/.tether/config.toml", "nope")),
            "no MCP server 'nope' in /home/me/.tether/config.toml");
  EXPECT_EQ(error_of(remove_server("", "config.toml", "a")), "no MCP server 'a' in config.toml");
  EXPECT_EQ(error_of(remove_server("[mcp_servers.ab]\ncommand = \"a\"\n", "config.toml", "a")),
            "no MCP server 'a' in config.toml");
  EXPECT_EQ(error_of(remove_server("[environments.a]\nspawn = true\n", "config.toml", "a")),
            "no MCP server 'a' in config.toml");
  EXPECT_EQ(error_of(remove_server("mcp_servers = { a = { command = \"a\" }, b = { command = "
                                   "\"b\" } }\n",
                                   "config.toml", "a")),
            "cannot remove MCP server 'a' from config.toml: it shares lines with other settings");
  auto syntax = error_of(
      remove_server("[mcp_servers.a]\ncommand = \"x\"\nargs = [\"a\",\n", "config.toml", "a"));
  EXPECT_TRUE(syntax.starts_with("config.toml:3:14: ")) << syntax;
}

TEST(HostConfigEdit, RemoveAServerOfACodexConfigLeavesTheRestAsItWas) {
  constexpr std::string_view before =
      "# ~/.codex/config.toml, shared with tether\n"
      "model = \"gpt-5-codex\"\n"
      "model_reasoning_effort = \"high\"\n"
      "notify = [\"notify-send\", \"codex\"]\n"
      "default_environment = \"box\"\n"
      "\n"
      "[features]\n"
      "rmcp_client = true\n"
      "\n"
      "[environments.box]\n"
      "url = \"ws://10.1.2.3:7700\"   # the build box\n"
      "token_env_var = \"BOX_TOKEN\"\n"
      "\n"
      "[profiles.fast]\n"
      "model = \"gpt-5-mini\"\n"
      "\n";
  constexpr std::string_view github =
      "[mcp_servers.github]\n"
      "command = \"npx\"\n"
      "args = [\"-y\", \"@modelcontextprotocol/server-github\"]\n"
      "env_vars = [\"GITHUB_TOKEN\", { name = \"GH_HOST\", source = \"local\" }]\n"
      "supports_parallel_tool_calls = true\n"
      "\n"
      "[mcp_servers.github.env]\n"
      "LOG = \"1\"\n"
      "\n"
      "[mcp_servers.github.tools.search]\n"
      "approval_mode = \"approve\"\n"
      "\n";
  constexpr std::string_view after =
      "# figma over HTTP\n"
      "[mcp_servers.figma]\n"
      "url = \"https://mcp.figma.com/mcp\"\n"
      "oauth = { client_id = \"abc\", callback_port = 5555 }\n"
      "\n"
      "[environments.sandbox]\n"
      "spawn = true\n"
      "\n"
      "[sandbox_workspace_write]\n"
      "network_access = true  # trailing\n";
  auto text = std::string{before} + std::string{github} + std::string{after};
  parse_ok(text);
  EXPECT_EQ(remove_ok(text, "github"), std::string{before} + std::string{after});

  // The comment above figma's table is outside it: it stays, as does everything else.
  EXPECT_EQ(remove_ok(text, "figma"),
            std::string{before} + std::string{github} + "# figma over HTTP\n\n" +
                std::string{after.substr(after.find("[environments.sandbox]"))});
}

TEST(HostConfigEdit, RemoveKeepsAByteOrderMark) {
  EXPECT_EQ(remove_ok("\xEF\xBB\xBF[mcp_servers.a]\ncommand = \"a\"\n\n[mcp_servers.b]\n"
                      "command = \"b\"\n",
                      "a"),
            "\xEF\xBB\xBF[mcp_servers.b]\ncommand = \"b\"\n");
}

TEST(HostConfigEdit, AddThenRemoveIsTheOriginal) {
  for (std::string_view original : {std::string_view{""}, kThreeServers}) {
    auto added = add_ok(original, {.name = "new", .command = "n", .args = {"1"}});
    EXPECT_EQ(remove_ok(added, "new"), original);
  }
}

// A temporary directory removed at the end of the test, even when it fails.
struct TempDir {
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "tether-config-edit-XXXXXX").string();
    path = ::mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::filesystem::path path;
};

std::string read(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write(const std::filesystem::path& path, std::string_view text) {
  std::ofstream(path, std::ios::binary) << text;
}

unsigned mode_of(const std::filesystem::path& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0);
  return info.st_mode & 07777;
}

std::function<Expected<std::string>(std::string_view)> adding(const NewServer& server) {
  return [server](std::string_view text) { return add_server(text, "config.toml", server); };
}

// Only config.toml is left in the directory: no temp file stays behind.
std::vector<std::string> entries(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    names.push_back(entry.path().filename().string());
  return names;
}

TEST(HostConfigEdit, EditFileCreatesANew0600FileAndItsDirectories) {
  TempDir dir;
  auto path = dir.path / "home" / ".tether" / "config.toml";
  auto done = edit_config_file(path.string(), adding({.name = "a", .command = "cat"}));
  ASSERT_TRUE(done.has_value()) << done.error().message;
  EXPECT_EQ(read(path), "[mcp_servers.a]\ncommand = \"cat\"\n");
  EXPECT_EQ(mode_of(path), 0600u);
  EXPECT_EQ(entries(path.parent_path()), (std::vector<std::string>{"config.toml"}));
}

TEST(HostConfigEdit, EditFileKeepsTheModeOfAnExistingFile) {
  TempDir dir;
  auto path = dir.path / "config.toml";
  write(path, "# mine\n");
  std::filesystem::permissions(path, std::filesystem::perms{0644});
  auto done = edit_config_file(path.string(), adding({.name = "a", .command = "cat"}));
  ASSERT_TRUE(done.has_value()) << done.error().message;
  EXPECT_EQ(read(path), "# mine\n\n[mcp_servers.a]\ncommand = \"cat\"\n");
  EXPECT_EQ(mode_of(path), 0644u);

  done = edit_config_file(
      path.string(), [](std::string_view text) { return remove_server(text, "config.toml", "a"); });
  ASSERT_TRUE(done.has_value()) << done.error().message;
  EXPECT_EQ(read(path), "# mine\n");
  EXPECT_EQ(mode_of(path), 0644u);
  EXPECT_EQ(entries(dir.path), (std::vector<std::string>{"config.toml"}));
}

TEST(HostConfigEdit, EditFileFollowsASymlink) {
  TempDir dir;
  auto target = dir.path / "dotfiles" / "config.toml";
  std::filesystem::create_directories(target.parent_path());
  write(target, "");
  auto link = dir.path / "config.toml";
  std::filesystem::create_symlink("dotfiles/config.toml", link);
  auto done = edit_config_file(link.string(), adding({.name = "a", .command = "cat"}));
  ASSERT_TRUE(done.has_value()) << done.error().message;
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  EXPECT_EQ(read(target), "[mcp_servers.a]\ncommand = \"cat\"\n");
}

TEST(HostConfigEdit, EditFileRefusesAnInvalidResult) {
  TempDir dir;
  auto path = dir.path / "config.toml";
  constexpr std::string_view original = "[mcp_servers.a]\ncommand = \"cat\"\n";
  write(path, original);
  // An empty command is a config parse_config refuses: nothing is written.
  auto done = edit_config_file(path.string(), adding({.name = "b", .command = ""}));
  ASSERT_FALSE(done.has_value());
  EXPECT_EQ(done.error().message,
            path.string() + ":5:1: [mcp_servers.b] command must not be empty");
  done = edit_config_file(path.string(), [](std::string_view text) {
    return std::string{text} + "[mcp_servers.b]\nargs = [\"x\"]\n";
  });
  ASSERT_FALSE(done.has_value());
  EXPECT_EQ(done.error().message,
            path.string() +
                ":3:1: [mcp_servers.b] invalid transport: needs `command` (stdio) or `url` "
                "(streamable HTTP)");
  // The edit's own error is returned as it is.
  done = edit_config_file(path.string(), adding({.name = "a", .command = "x"}));
  ASSERT_FALSE(done.has_value());
  EXPECT_EQ(done.error().message, "MCP server 'a' already exists in config.toml");
  EXPECT_EQ(read(path), original);
  EXPECT_EQ(entries(dir.path), (std::vector<std::string>{"config.toml"}));
}

TEST(HostConfigEdit, EditFileChecksWithEnvironmentsToml) {
  TempDir dir;
  auto path = dir.path / "config.toml";
  auto environments = dir.path / "environments.toml";
  // config.toml's default names an environment only environments.toml defines.
  constexpr std::string_view original = "default_environment = \"devbox\"\n";
  write(path, original);
  write(environments, "[[environments]]\nid = \"devbox\"\nurl = \"ws://127.0.0.1:7700\"\n");
  auto done = edit_config_file(path.string(), adding({.name = "a", .command = "cat"}));
  ASSERT_FALSE(done.has_value());
  EXPECT_EQ(done.error().message,
            path.string() + ":1:1: default_environment 'devbox' is not a defined environment");
  done = edit_config_file(path.string(), adding({.name = "a", .command = "cat"}),
                          environments.string());
  ASSERT_TRUE(done.has_value()) << done.error().message;
  EXPECT_EQ(read(path), std::string{original} + "\n[mcp_servers.a]\ncommand = \"cat\"\n");
  // An absent environments.toml is no environments.toml.
  done =
      edit_config_file((dir.path / "other.toml").string(), adding({.name = "a", .command = "cat"}),
                       (dir.path / "absent.toml").string());
  ASSERT_TRUE(done.has_value()) << done.error().message;
}

TEST(HostConfigEdit, EditFileReportsASyntaxErrorOfTheExistingFile) {
  TempDir dir;
  auto path = dir.path / "config.toml";
  constexpr std::string_view broken = "[mcp_servers.a]\ncommand = \"cat\" extra\n";
  write(path, broken);
  auto file = path.string();
  auto done = edit_config_file(file, [&](std::string_view text) {
    return add_server(text, file, {.name = "b", .command = "b"});
  });
  ASSERT_FALSE(done.has_value());
  EXPECT_TRUE(done.error().message.starts_with(file + ":2:17: ")) << done.error().message;
  EXPECT_EQ(read(path), broken);
}

TEST(HostConfigEdit, AddATableOfAnyLines) {
  auto out = add_server_table(
      "# mine\n", "config.toml", "api",
      {"url = \"https://h/mcp\"", "env_http_headers = " + toml_string_table({{"X-Key", "KEY"}}),
       "enabled_tools = " + toml_string_array({"a", "b \"c\""})});
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_EQ(*out,
            "# mine\n\n[mcp_servers.api]\nurl = \"https://h/mcp\"\nenv_http_headers = { X-Key = "
            "\"KEY\" }\nenabled_tools = [\"a\", \"b \\\"c\\\"\"]\n");
  EXPECT_EQ(error_of(add_server_table(*out, "config.toml", "api", {"command = \"x\""})),
            "MCP server 'api' already exists in config.toml");
}

TEST(HostConfigEdit, EditFileDryRunAndNoChangeWriteNothing) {
  TempDir dir;
  auto path = dir.path / "config.toml";
  auto dry = edit_config_file(path.string(), adding({.name = "a", .command = "cat"}), {}, true);
  ASSERT_TRUE(dry.has_value()) << dry.error().message;
  EXPECT_FALSE(std::filesystem::exists(path));
  // A dry run still checks the result.
  dry = edit_config_file(path.string(), adding({.name = "a", .command = ""}), {}, true);
  ASSERT_FALSE(dry.has_value());
  EXPECT_EQ(dry.error().message, path.string() + ":2:1: [mcp_servers.a] command must not be empty");
  auto same = edit_config_file(path.string(), [](std::string_view text) {
    return Expected<std::string>{std::string{text}};
  });
  ASSERT_TRUE(same.has_value()) << same.error().message;
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace tether::host

namespace tether::host {
namespace {

EnvironmentConfig environment(std::string id, decltype(EnvironmentConfig::how) how) {
  EnvironmentConfig out;
  out.id = std::move(id);
  out.how = std::move(how);
  return out;
}

TEST(HostConfigEdit, AddsEnvironmentsOfEachKind) {
  const std::string start = "# executors\n";
  auto out = add_environment(
      start, "config.toml",
      environment("box", EnvironmentConfig::Url{"ws://10.0.0.5:7700", "BOX_TOKEN", {}, {}}));
  ASSERT_TRUE(out) << out.error().message;
  out = add_environment(*out, "config.toml", environment("near", EnvironmentConfig::Spawn{}));
  ASSERT_TRUE(out) << out.error().message;
  out = add_environment(
      *out, "config.toml",
      environment("ssh", EnvironmentConfig::Command{{"ssh", "box", "tether exec-server"}, {}, {}}));
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(*out,
            "# executors\n\n"
            "[environments.box]\nurl = \"ws://10.0.0.5:7700\"\ntoken_env_var = \"BOX_TOKEN\"\n\n"
            "[environments.near]\nspawn = true\n\n"
            "[environments.ssh]\ncommand = [\"ssh\", \"box\", \"tether exec-server\"]\n");
  auto config = parse_config({*out, "config.toml"});
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->environments.size(), 3u);
  EXPECT_EQ(error_of(add_environment(*out, "config.toml",
                                     environment("near", EnvironmentConfig::Spawn{}))),
            "environment 'near' already exists in config.toml");
}

TEST(HostConfigEdit, RemovesAnEnvironmentNoServerUses) {
  const std::string text =
      "[environments.box]\nspawn = true\n\n[environments.far]\nurl = \"ws://h:1\"\n\n"
      "[mcp_servers.docs]\ncommand = \"docs\"\nenvironment = \"far\"\n";
  auto out = remove_environment(text, "config.toml", "box");
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(*out,
            "[environments.far]\nurl = \"ws://h:1\"\n\n"
            "[mcp_servers.docs]\ncommand = \"docs\"\nenvironment = \"far\"\n");
  EXPECT_EQ(error_of(remove_environment(text, "config.toml", "far")),
            "cannot remove environment 'far' from config.toml: MCP server 'docs' runs there; "
            "remove it or change its environment first");
  EXPECT_EQ(error_of(remove_environment(text, "config.toml", "none-such")),
            "no environment 'none-such' in config.toml");
}

}  // namespace
}  // namespace tether::host
