// Test support: MCP server placements for tests (see mcp_fixtures.hpp).
#include "mcp_fixtures.hpp"

#include <atomic>
#include <csignal>
#include <filesystem>
#include <thread>
#include <unistd.h>

#include <boost/asio/this_coro.hpp>

#include "async_test.hpp"
#include "exec_server.hpp"

namespace tether::testing {
namespace asio = boost::asio;
namespace json = boost::json;

std::string placement_name(const ::testing::TestParamInfo<McpPlacement>& info) {
  return info.param == McpPlacement::local ? "Local" : "Executor";
}

void PrintTo(McpPlacement placement, std::ostream* out) {
  *out << (placement == McpPlacement::local ? "local" : "executor");
}

std::string unique_marker(std::string_view what) {
  static std::atomic<int> counter{0};
  return std::string(what) + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

void MarkerReaper::expect_none_left(std::chrono::milliseconds wait) const {
  for (const auto& marker : markers_) {
    const auto end = std::chrono::steady_clock::now() + wait;
    while (!processes_matching(marker).empty() && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_TRUE(processes_matching(marker).empty())
        << "a process with " << marker << " outlived the test";
  }
}

MarkerReaper::~MarkerReaper() {
  for (const auto& marker : markers_)
    for (pid_t pid : processes_matching(marker)) ::kill(pid, SIGKILL);
}

McpSite::McpSite(asio::any_io_executor executor, McpPlacement placement)
    : executor_(std::move(executor)), placement_(placement) {
  if (placement_ == McpPlacement::executor) {
    host::EnvironmentOptions options;
    options.client.client_name = "mcp-test";
    remote_ = host::Environment::create(
        executor_, "loopback", host::SpawnedExecutor{tether_binary(), {}}, std::move(options));
    environments_.add(remote_);
    environments_.set_remote(remote_->id());
  }
}

// A site whose close() was skipped still ends its executor: Environment's destructor kills it.
McpSite::~McpSite() = default;

std::string McpSite::environment_name() const {
  return std::string(placement_ == McpPlacement::local ? host::kLocalEnvironment
                                                       : host::kRemoteEnvironment);
}

asio::awaitable<jsonrpc::Expected<mcp::ServerConnection>> McpSite::launch(mcp::StdioCommand command,
                                                                          std::string name) {
  host::ServerLaunch launch;
  launch.name = std::move(name);
  launch.transport = std::move(command);
  launch.environment = environment_name();
  co_return co_await host::launch_server(executor_, launch, environments_);
}

asio::awaitable<jsonrpc::Expected<mcp::ServerConnection>> McpSite::launch(
    mcp::StdioCommand command) {
  return launch(std::move(command), "test");
}

asio::awaitable<jsonrpc::Expected<std::shared_ptr<mcp::Client>>> McpSite::connect(
    mcp::StdioCommand command) {
  return connect(std::move(command), mcp::ClientOptions{});
}

asio::awaitable<jsonrpc::Expected<std::shared_ptr<mcp::Client>>> McpSite::connect(
    mcp::StdioCommand command, mcp::ClientOptions options) {
  using Result = jsonrpc::Expected<std::shared_ptr<mcp::Client>>;
  auto connection = co_await launch(std::move(command), "test");
  if (!connection) co_return Result{boost::system::in_place_error, connection.error()};
  co_return co_await mcp::Client::connect(executor_, std::move(*connection), std::move(options));
}

asio::awaitable<jsonrpc::Expected<std::string>> McpSite::default_cwd() {
  using Result = jsonrpc::Expected<std::string>;
  if (placement_ == McpPlacement::local) co_return Result{std::filesystem::current_path().string()};
  auto client = co_await remote_->client();
  if (!client) co_return Result{boost::system::in_place_error, client.error()};
  co_return Result{(*client)->default_cwd()};
}

asio::awaitable<void> McpSite::close() {
  if (closed_) co_return;
  closed_ = true;
  co_await environments_.close();
}

namespace {
asio::awaitable<void> run_site(McpPlacement placement,
                               const std::function<asio::awaitable<void>(McpSite&)>& body) {
  auto executor = co_await asio::this_coro::executor;
  McpSite site(executor, placement);
  co_await body(site);
  co_await site.close();
}
}  // namespace

void run_in_site(McpPlacement placement, const std::function<asio::awaitable<void>(McpSite&)>& body,
                 std::chrono::milliseconds deadline) {
  run_async([&]() { return run_site(placement, body); }, deadline);
}

mcp::StdioCommand stdio_command(std::string program, std::vector<std::string> args) {
  mcp::StdioCommand command;
  command.program = std::move(program);
  command.args = std::move(args);
  return command;
}

std::vector<std::string> strings_of(const json::array& items, std::string_view key) {
  std::vector<std::string> out;
  for (const auto& item : items)
    if (item.is_object())
      if (const auto* field = item.as_object().if_contains(key); field && field->is_string())
        out.emplace_back(field->as_string());
  return out;
}

std::string first_text(const json::object& result) {
  const auto* content = result.if_contains("content");
  if (!content || !content->is_array()) return {};
  for (const auto& item : content->as_array()) {
    if (!item.is_object()) continue;
    const auto* text = item.as_object().if_contains("text");
    if (text && text->is_string()) return std::string(text->as_string());
  }
  return {};
}

}  // namespace tether::testing
