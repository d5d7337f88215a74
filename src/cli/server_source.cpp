// The two kinds of ServerSource (server_source.hpp). A gateway is asked once for its catalog
// (`tether/catalog`: every server and every offer with its server and the server's own name),
// so the commands show and take the servers' own names, as they do without a gateway; calls
// then go through the gateway's standard MCP methods under the gateway's names.
#include "server_source.hpp"

#include <algorithm>

#include <fmt/format.h>

#include <tether/mcp/http.hpp>

namespace tether::cli {
namespace asio = boost::asio;
namespace json = boost::json;
using jsonrpc::Expected;

namespace {

std::string_view text_of(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value && value->is_string() ? std::string_view(value->get_string()) : std::string_view();
}

json::array array_of(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value && value->is_array() ? value->get_array() : json::array();
}

class LocalServers : public ServerSource {
 public:
  explicit LocalServers(std::shared_ptr<host::Manager> manager) : manager_(std::move(manager)) {}

  asio::awaitable<Expected<host::StartupSummary>> start(std::vector<std::string> names) override {
    return manager_->start(std::move(names));
  }
  void cancel_startup() override { manager_->cancel_startup(); }
  asio::awaitable<void> shutdown() override { return manager_->shutdown(); }
  std::vector<host::ServerInfo> servers() override { return manager_->servers(); }
  std::vector<host::OfferedTool> tools() override { return manager_->tools(); }

  asio::awaitable<Expected<json::object>> call_tool(std::string server, std::string tool,
                                                    json::value arguments) override {
    return manager_->call_tool(std::move(server), std::move(tool), std::move(arguments));
  }

  asio::awaitable<Expected<json::array>> list(std::string server, Listing listing) override {
    auto manager = manager_;
    auto client = co_await manager->use(server);
    if (!client) co_return client.error();
    const std::string_view capability = listing == Listing::prompts ? "prompts" : "resources";
    if (!(*client)->server_capabilities().contains(capability)) co_return json::array();
    if (listing == Listing::resources) co_return co_await (*client)->list_resources();
    if (listing == Listing::templates) co_return co_await (*client)->list_resource_templates();
    co_return co_await (*client)->list_prompts();
  }

  asio::awaitable<Expected<json::object>> read(std::string server, std::string uri) override {
    auto manager = manager_;
    auto client = co_await manager->use(server);
    if (!client) co_return client.error();
    co_return co_await (*client)->read_resource(uri);
  }

  asio::awaitable<Expected<json::object>> prompt(std::string server, std::string name,
                                                 json::object arguments) override {
    auto manager = manager_;
    auto client = co_await manager->use(server);
    if (!client) co_return client.error();
    co_return co_await (*client)->get_prompt(name, std::move(arguments));
  }

 private:
  std::shared_ptr<host::Manager> manager_;
};

class GatewayServers : public ServerSource {
 public:
  GatewayServers(asio::any_io_executor executor, std::string url, std::optional<std::string> token)
      : executor_(std::move(executor)), url_(std::move(url)), token_(std::move(token)) {}

  asio::awaitable<Expected<host::StartupSummary>> start(std::vector<std::string> names) override {
    mcp::HttpServerConfig config;
    config.url = url_;
    config.bearer_token = token_;
    auto connection = mcp::connect_http(executor_, std::move(config));
    if (!connection) co_return unreachable(connection.error().message);
    mcp::ClientOptions options;
    options.client_name = "tether-cli";
    auto client =
        co_await mcp::Client::connect(executor_, std::move(*connection), std::move(options));
    if (!client) co_return unreachable(client.error().message);
    client_ = std::move(*client);
    json::object no_params;
    auto catalog = co_await client_->request("tether/catalog", std::move(no_params));
    if (!catalog) co_return unreachable(catalog.error().message);
    catalog_ = std::move(*catalog);
    host::StartupSummary summary;
    for (const auto& info : servers()) {
      if (!names.empty() && std::find(names.begin(), names.end(), info.name) == names.end())
        continue;
      if (info.state == host::ServerState::ready) {
        summary.ready.push_back(info.name);
      } else if (info.enabled) {
        summary.failed.push_back({info.name, info.error});
      }
    }
    for (const auto& name : names)
      if (!known(name)) co_return host::unknown_server_error(name, server_names());
    co_return summary;
  }

  void cancel_startup() override {}

  asio::awaitable<void> shutdown() override {
    if (client_) co_await client_->shutdown();
  }

  std::vector<host::ServerInfo> servers() override {
    std::vector<host::ServerInfo> out;
    for (const auto& item : array_of(catalog_, "servers"))
      if (item.is_object()) out.push_back(host::server_info_from_json(item.get_object()));
    return out;
  }

  std::vector<host::OfferedTool> tools() override {
    std::vector<host::OfferedTool> out;
    for (const auto& item : array_of(catalog_, "tools")) {
      const auto& entry = item.get_object();
      const auto* tool = entry.if_contains("item");
      if (tool && tool->is_object())
        out.push_back({std::string(text_of(entry, "name")), std::string(text_of(entry, "server")),
                       tool->get_object()});
    }
    return out;
  }

  asio::awaitable<Expected<json::object>> call_tool(std::string server, std::string tool,
                                                    json::value arguments) override {
    auto name = gateway_name("tools", server, tool);
    if (!name) co_return name.error();
    co_return co_await client_->call_tool(std::move(*name), std::move(arguments));
  }

  asio::awaitable<Expected<json::array>> list(std::string server, Listing listing) override {
    json::array out;
    if (listing == Listing::prompts) {
      for (const auto& item : array_of(catalog_, "prompts"))
        if (text_of(item.get_object(), "server") == server)
          out.push_back(item.get_object().at("item"));
      co_return out;
    }
    const auto key = listing == Listing::resources ? "resources" : "resourceTemplates";
    for (auto item : array_of(catalog_, key)) {
      if (text_of(item.get_object(), "server") != server) continue;
      item.get_object().erase("server");
      out.push_back(std::move(item));
    }
    co_return out;
  }

  asio::awaitable<Expected<json::object>> read(std::string /*server*/, std::string uri) override {
    // The gateway routes a URI itself.
    co_return co_await client_->read_resource(uri);
  }

  asio::awaitable<Expected<json::object>> prompt(std::string server, std::string name,
                                                 json::object arguments) override {
    auto own = gateway_name("prompts", server, name);
    if (!own) co_return own.error();
    co_return co_await client_->get_prompt(*own, std::move(arguments));
  }

 private:
  jsonrpc::Error unreachable(const std::string& why) const {
    return jsonrpc::make_error(jsonrpc::code::kServerError,
                               fmt::format("cannot use the gateway at {}: {}", url_, why));
  }

  std::vector<std::string> server_names() {
    std::vector<std::string> out;
    for (const auto& info : servers()) out.push_back(info.name);
    return out;
  }
  bool known(const std::string& server) {
    const auto names = server_names();
    return std::find(names.begin(), names.end(), server) != names.end();
  }

  // The gateway's name for `server`'s tool or prompt `name`.
  Expected<std::string> gateway_name(std::string_view kind, const std::string& server,
                                     const std::string& name) {
    if (!known(server)) return host::unknown_server_error(server, server_names());
    for (const auto& item : array_of(catalog_, kind)) {
      const auto& entry = item.get_object();
      const auto* own = entry.if_contains("item");
      if (text_of(entry, "server") == server && own && own->is_object() &&
          text_of(own->get_object(), "name") == name)
        return std::string(text_of(entry, "name"));
    }
    return jsonrpc::make_error(jsonrpc::code::kInvalidParams,
                               fmt::format("MCP server '{}' offers no {} '{}' through the gateway",
                                           server, kind == "tools" ? "tool" : "prompt", name));
  }

  asio::any_io_executor executor_;
  std::string url_;
  std::optional<std::string> token_;
  std::shared_ptr<mcp::Client> client_;
  json::object catalog_;
};

}  // namespace

std::unique_ptr<ServerSource> local_servers(
    const asio::any_io_executor& executor, host::Config config,
    std::function<void(const host::ServerStatus&)> on_status) {
  host::ManagerOptions options;
  options.on_status = std::move(on_status);
  return std::make_unique<LocalServers>(
      host::Manager::create(executor, std::move(config), std::move(options)));
}

std::unique_ptr<ServerSource> gateway_servers(const asio::any_io_executor& executor,
                                              std::string url, std::optional<std::string> token) {
  return std::make_unique<GatewayServers>(executor, std::move(url), std::move(token));
}

}  // namespace tether::cli
