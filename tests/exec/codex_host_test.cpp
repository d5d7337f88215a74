// A stock codex 0.169 host uses tether's executor for its streamable HTTP MCP servers: codex
// app-server (the npm package, pinned), with `[mcp_servers.everything] url = ...` and
// `environment_id = "box"` naming an environment of its environments.toml that is a `tether
// exec-server` (token auth on), lists server-everything's tools and calls one through it. No
// model and no login are involved (mcpServerStatus/list and mcpServer/tool/call); the model
// provider points at a closed loopback port and codex's plugin sync is off, so nothing leaves
// 127.0.0.1. Every connection to the MCP server is the executor's: checked from /proc while the
// thread's MCP session (and its GET stream) is open.
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "codex_exec_server.hpp"
#include "everything_http.hpp"
#include "exec_server.hpp"
#include "test_client.hpp"
#include <tether/process/child.hpp>

namespace tether::testing {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kToken = "codex-host-test-token";

// A directory removed afterwards.
class TempDir {
 public:
  TempDir()
      : path_(fs::temp_directory_path() / ("tether-codex-host-" + std::to_string(::getpid()))) {
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
  }

 private:
  fs::path path_;
};

// codex's configuration: the HTTP server placed on "box", nothing that would reach a network.
std::string config_toml(const std::string& mcp_url) {
  return "model = \"gpt-5\"\n"
         "model_provider = \"loopback\"\n"
         "mcp_oauth_credentials_store = \"file\"\n"
         "cli_auth_credentials_store = \"file\"\n"
         "[model_providers.loopback]\n"
         "name = \"loopback\"\n"
         "base_url = \"http://127.0.0.1:9/v1\"\n"
         "wire_api = \"responses\"\n"
         "[features]\n"
         "plugins = false\n"
         "apps = false\n"
         "[mcp_servers.everything]\n"
         "url = \"" +
         mcp_url +
         "\"\n"
         "environment_id = \"box\"\n";
}

std::string environments_toml(const std::string& executor_url) {
  return "[[environments]]\nid = \"box\"\nurl = \"" + executor_url + "\"\nauth_bearer_token = \"" +
         kToken + "\"\n";
}

json::value initialize_params() {
  return json::object{{"clientInfo", {{"name", "tether-test"}, {"version", "0"}}},
                      {"capabilities", {{"experimentalApi", true}}}};
}

json::value list_params() {
  return json::object{{"detail", "toolsAndAuthOnly"}};
}

json::value thread_params(const std::string& cwd) {
  return json::object{{"ephemeral", true}, {"cwd", cwd}};
}

json::value call_params(const std::string& thread_id) {
  return json::object{{"threadId", thread_id},
                      {"server", "everything"},
                      {"tool", "echo"},
                      {"arguments", {{"message", "through tether's executor"}}}};
}

// `codex app-server` on stdio, its stderr in a log file.
std::shared_ptr<process::Child> spawn_app_server(const asio::any_io_executor& executor,
                                                 const fs::path& codex_home,
                                                 const std::string& log_path) {
  process::SpawnOptions spawn;
  spawn.argv = {"/bin/sh",
                "-c",
                "exec \"$0\" \"$@\" 2>>\"$TETHER_TEST_LOG\"",
                codex_binary().string(),
                "app-server",
                "--strict-config"};
  spawn.env = codex_environment(codex_home);
  spawn.env.push_back("TETHER_TEST_LOG=" + log_path);
  spawn.cwd = codex_home.string();
  spawn.contain = false;
  auto spawned = process::Child::spawn(executor, spawn);
  if (!spawned) {
    ADD_FAILURE() << "cannot start codex app-server: " << spawned.error().message;
    return nullptr;
  }
  return *spawned;
}

TEST(CodexHost, ReachesAnHttpMcpServerThroughTetherExecutor) {
  TempDir dir;
  dir.write("token", kToken);
  EverythingHttp everything;
  ExecServer::Options options;
  options.args = {"--token-file", (dir.path() / "token").string()};
  ExecServer executor(options);
  fs::create_directories(dir.path() / "home");
  dir.write("home/config.toml", config_toml(everything.url()));
  dir.write("home/environments.toml", environments_toml(executor.url()));
  const auto log_path = (dir.path() / "app-server.log").string();

  run_async(
      [&]() -> asio::awaitable<void> {
        auto child =
            spawn_app_server(co_await asio::this_coro::executor, dir.path() / "home", log_path);
        CO_ASSERT_TRUE(child != nullptr);
        auto codex = TestClient::over(co_await asio::this_coro::executor, stdio_transport(*child));
        auto initialized = co_await codex->call("initialize", initialize_params(), 30s);
        if (!initialized) ADD_FAILURE() << initialized.error().message;
        CO_ASSERT_TRUE(initialized.has_value());
        codex->send_text(R"({"method":"initialized"})");

        auto listed = co_await codex->call("mcpServerStatus/list", list_params(), 60s);
        if (!listed) ADD_FAILURE() << listed.error().message;
        CO_ASSERT_TRUE(listed.has_value());
        const auto text = json::serialize(*listed);
        EXPECT_NE(text.find("\"echo\""), std::string::npos) << text.substr(0, 600);
        EXPECT_NE(text.find("trigger-long-running-operation"), std::string::npos);
        EXPECT_NE(text.find("\"toolsError\":null"), std::string::npos) << text.substr(0, 600);

        auto thread = co_await codex->call("thread/start", thread_params(dir.path().string()), 60s);
        if (!thread) ADD_FAILURE() << thread.error().message;
        CO_ASSERT_TRUE(thread.has_value());
        const auto* thread_id = thread->as_object().at("thread").as_object().if_contains("id");
        CO_ASSERT_TRUE(thread_id && thread_id->is_string());
        auto called = co_await codex->call("mcpServer/tool/call",
                                           call_params(std::string(thread_id->as_string())), 60s);
        if (!called) ADD_FAILURE() << called.error().message;
        CO_ASSERT_TRUE(called.has_value());
        EXPECT_NE(json::serialize(*called).find("Echo: through tether's executor"),
                  std::string::npos)
            << json::serialize(*called);

        // The thread's MCP session is open (its GET stream too): every connection to the server
        // is the executor's, none is codex's own.
        std::vector<pid_t> candidates;
        candidates.push_back(child->pid());
        candidates.push_back(executor.pid());
        const auto clients = tcp_clients_of(everything.port(), candidates);
        EXPECT_EQ(clients.size(), 1u);
        EXPECT_TRUE(!clients.empty() && clients.front() == executor.pid());

        child->close_stdin();
        codex->close();
      },
      120s, "the codex app-server session");
  // The session went through the executor (its log names no connection of codex's own).
  EXPECT_TRUE(everything.logged("Received session termination request") ||
              everything.logged("Establishing new SSE stream"))
      << everything.log();
}

}  // namespace
}  // namespace tether::testing
