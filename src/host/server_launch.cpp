// launch_of: a server's settings as its launch needs them. launch_server: placement first (no
// process is started for a placement that fails), then the launcher that placement needs.
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <tether/host/server_launch.hpp>

namespace tether::host {
namespace asio = boost::asio;

std::optional<std::string> token_from_env(const EnvLookup& env, const std::string& name) {
  auto token = env(name);
  if (!token || token->empty()) return std::nullopt;
  return token;
}

Expected<ServerLaunch> launch_of(const ServerConfig& server, const EnvLookup& env,
                                 const mcp::StdioOptions& stdio) {
  ServerLaunch launch{server.name, {}, server.environment, stdio};
  if (const auto* command = std::get_if<mcp::StdioCommand>(&server.transport)) {
    launch.transport = *command;
    return launch;
  }
  const auto& settings = std::get<HttpServerSettings>(server.transport);
  mcp::HttpServerConfig http;
  http.url = settings.url;
  if (settings.bearer_token_env_var) {
    http.bearer_token = token_from_env(env, *settings.bearer_token_env_var);
    if (!http.bearer_token)
      return jsonrpc::make_error(
          jsonrpc::code::kInternalError,
          fmt::format("bearer_token_env_var {} for MCP server '{}' is not set",
                      *settings.bearer_token_env_var, server.name));
  }
  for (const auto& header : settings.http_headers) http.headers.push_back(header);
  for (const auto& [header, variable] : settings.env_http_headers) {
    auto value = env(variable);
    if (value && !value->empty()) {
      http.headers.emplace_back(header, *value);
    } else {
      spdlog::debug("MCP server '{}': header {} skipped, {} is not set", server.name, header,
                    variable);
    }
  }
  launch.transport = std::move(http);
  return launch;
}

Expected<Placement> placement_of(const EnvironmentConfig& config, const EnvLookup& env) {
  if (std::holds_alternative<EnvironmentConfig::Spawn>(config.how)) return SpawnedExecutor{};
  if (const auto* command = std::get_if<EnvironmentConfig::Command>(&config.how))
    return CommandExecutor{command->argv, command->env, command->cwd};
  const auto& url = std::get<EnvironmentConfig::Url>(config.how);
  ExecutorUrl placement{url.url, url.token};
  if (url.token_env_var) {
    placement.bearer_token = token_from_env(env, *url.token_env_var);
    if (!placement.bearer_token)
      return jsonrpc::make_error(jsonrpc::code::kInternalError,
                                 fmt::format("environment '{}': token variable {} is not set",
                                             config.id, *url.token_env_var));
  } else if (url.token_file) {
    std::ifstream in(*url.token_file);
    if (!in)
      return jsonrpc::make_error(jsonrpc::code::kInternalError,
                                 fmt::format("environment '{}': token file '{}' cannot be read: {}",
                                             config.id, *url.token_file, std::strerror(errno)));
    std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())))
      token.pop_back();
    if (token.empty())
      return jsonrpc::make_error(
          jsonrpc::code::kInternalError,
          fmt::format("environment '{}': token file '{}' is empty", config.id, *url.token_file));
    placement.bearer_token = std::move(token);
  }
  return placement;
}

void Environments::add(std::shared_ptr<Environment> environment) {
  auto id = environment->id();
  environments_[std::move(id)] = std::move(environment);
}

void Environments::add_unavailable(const std::string& id, jsonrpc::Error why) {
  unavailable_.insert_or_assign(id, std::move(why));
}

Expected<std::shared_ptr<Environment>> Environments::resolve(const std::string& placement,
                                                             const std::string& server) const {
  if (placement.empty() || placement == kLocalEnvironment) return std::shared_ptr<Environment>{};
  std::string id = placement;
  if (placement == kRemoteEnvironment) {
    if (!remote_)
      return jsonrpc::make_error(
          jsonrpc::code::kInternalError,
          fmt::format("remote MCP server '{}' requires a remote executor environment", server));
    id = *remote_;
  }
  if (auto broken = unavailable_.find(id); broken != unavailable_.end()) return broken->second;
  auto it = environments_.find(id);
  if (it == environments_.end())
    return jsonrpc::make_error(
        jsonrpc::code::kInternalError,
        fmt::format("unknown environment '{}' for MCP server '{}'", id, server));
  return it->second;
}

asio::awaitable<void> Environments::close() {
  if (environments_.empty()) co_return;
  auto executor = co_await asio::this_coro::executor;
  using Op =
      decltype(asio::co_spawn(executor, std::declval<asio::awaitable<void>>(), asio::deferred));
  std::vector<Op> closing;
  for (auto& [id, environment] : environments_)
    closing.push_back(asio::co_spawn(executor, environment->close(), asio::deferred));
  co_await asio::experimental::make_parallel_group(std::move(closing))
      .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
}

Expected<std::shared_ptr<Environment>> resolve_placement(const Environments& environments,
                                                         const std::string& server,
                                                         const std::string& environment) {
  return environments.resolve(environment, server);
}

asio::awaitable<Expected<mcp::ServerConnection>> launch_server(asio::any_io_executor executor,
                                                               ServerLaunch launch,
                                                               const Environments& environments) {
  using Result = Expected<mcp::ServerConnection>;
  auto* http = std::get_if<mcp::HttpServerConfig>(&launch.transport);
  auto environment = resolve_placement(environments, launch.name, launch.environment);
  if (!environment) co_return Result{boost::system::in_place_error, environment.error()};
  if (http && *environment) {
    // Every connection to the server is the executor's: none is made from here, even when the
    // executor cannot be reached.
    auto client = co_await (*environment)->client();
    if (!client) co_return Result{boost::system::in_place_error, client.error()};
    http->client = (*client)->http_client((*environment)->id());
  }
  if (http) co_return mcp::connect_http(executor, std::move(*http));
  const auto& command = std::get<mcp::StdioCommand>(launch.transport);
  if (!*environment) co_return mcp::launch_local(executor, command, launch.stdio);
  auto starter = co_await (*environment)->starter();
  if (!starter) co_return Result{boost::system::in_place_error, starter.error()};
  co_return co_await mcp::launch_on_executor(*starter, command, launch.stdio);
}

}  // namespace tether::host
