// Manager: one record per configured server, a small state machine each (idle, starting, ready,
// failed, cancelled; disabled ones never leave `disabled`). A start runs as its own coroutine
// bound to a cancellation signal, so cancel_startup() and shutdown() can end it wherever it is
// (Client::connect ends a half-started server itself); every other caller that needs the server
// waits for that one attempt to settle. A session's death arrives through the client's on_closed
// callback, tagged with the attempt's generation so a stale session's news is ignored. When a
// failed server may start again is RestartPolicy's to say; the texts it shows are server_texts'.
#include <algorithm>
#include <map>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "restart_policy.hpp"
#include "server_texts.hpp"
#include <tether/host/manager.hpp>
#include <tether/host/server_launch.hpp>
#include <tether/host/tool_names.hpp>
#include <tether/jsonrpc/async_signal.hpp>
#include <tether/jsonrpc/peer.hpp>

namespace tether::host {
namespace asio = boost::asio;
namespace json = boost::json;
using Clock = RestartPolicy::Clock;

std::string_view to_string(ServerState state) {
  switch (state) {
    case ServerState::disabled:
      return "disabled";
    case ServerState::idle:
      return "idle";
    case ServerState::starting:
      return "starting";
    case ServerState::ready:
      return "ready";
    case ServerState::failed:
      return "failed";
    case ServerState::cancelled:
      return "cancelled";
  }
  return "unknown";
}

json::object to_json(const ServerInfo& info) {
  auto text_or_null = [](const std::string& text) {
    return text.empty() ? json::value(nullptr) : json::value(text);
  };
  json::object row;
  row["name"] = info.name;
  row["enabled"] = info.enabled;
  row["required"] = info.required;
  row["transport"] = info.transport;
  row["target"] = info.target;
  row["placement"] = info.placement;
  row["status"] = to_string(info.state);
  row["environment"] = text_or_null(info.environment_id);
  row["environmentSetting"] = info.environment_setting;
  row["tools"] = info.tools ? json::value(*info.tools) : json::value(nullptr);
  row["error"] = text_or_null(info.error);
  row["process"] = text_or_null(info.process);
  row["protocol"] = text_or_null(info.protocol);
  return row;
}

ServerInfo server_info_from_json(const json::object& object) {
  auto text = [&](std::string_view key) {
    const auto* value = object.if_contains(key);
    return value && value->is_string() ? std::string(value->get_string()) : std::string();
  };
  auto flag = [&](std::string_view key, bool fallback) {
    const auto* value = object.if_contains(key);
    return value && value->is_bool() ? value->get_bool() : fallback;
  };
  ServerInfo info;
  info.name = text("name");
  info.enabled = flag("enabled", true);
  info.required = flag("required", false);
  info.transport = text("transport");
  info.target = text("target");
  info.placement = text("placement");
  for (auto state : {ServerState::disabled, ServerState::idle, ServerState::starting,
                     ServerState::ready, ServerState::failed, ServerState::cancelled})
    if (to_string(state) == text("status")) info.state = state;
  info.environment_id = text("environment");
  info.environment_setting = text("environmentSetting");
  if (const auto* tools = object.if_contains("tools"); tools && tools->is_int64())
    info.tools = static_cast<std::size_t>(tools->get_int64());
  if (const auto* tools = object.if_contains("tools"); tools && tools->is_uint64())
    info.tools = static_cast<std::size_t>(tools->get_uint64());
  info.error = text("error");
  info.process = text("process");
  info.protocol = text("protocol");
  return info;
}

struct Manager::State : std::enable_shared_from_this<State> {
  struct Server {
    Server(const asio::any_io_executor& executor, ServerConfig server,
           RestartPolicy::Settings restart)
        : config(std::move(server)),
          filter{config.enabled_tools, config.disabled_tools},
          state(config.enabled ? ServerState::idle : ServerState::disabled),
          restarts(restart),
          settled(executor) {}

    ServerConfig config;
    ToolFilter filter;
    ServerState state;
    std::string error;
    RestartPolicy restarts;
    std::shared_ptr<mcp::Client> client;
    json::array tools;             // the server's own listing; filtered when offered
    std::uint64_t generation = 0;  // of the latest start attempt
    std::shared_ptr<asio::cancellation_signal> cancel;
    bool cancel_requested = false;
    jsonrpc::AsyncSignal settled;  // a start attempt ended
  };

  State(asio::any_io_executor ex, ManagerOptions opts)
      : executor(std::move(ex)), options(std::move(opts)) {}

  asio::any_io_executor executor;
  ManagerOptions options;
  Environments environments;
  std::map<std::string, std::string> descriptions;  // environment id -> placement text
  std::vector<std::unique_ptr<Server>> servers;     // config order; addresses stay put
  QualifiedToolIndex index;
  // The MCP era each server spoke (by name), tried first when it starts again.
  std::shared_ptr<mcp::EraMemory> eras = std::make_shared<mcp::EraMemory>();
  bool shut_down = false;

  // `source`: where a definition that is not in the config came from (TETHER_EXEC_SERVER_URL).
  void add_environment(const EnvironmentConfig& config, std::string_view source = {}) {
    descriptions[config.id] = describe_environment(config, source);
    auto placement = placement_of(config, options.env);
    if (!placement) {
      environments.add_unavailable(config.id, placement.error());
      return;
    }
    if (auto* spawned = std::get_if<SpawnedExecutor>(&*placement))
      spawned->tether_binary = options.tether_binary;
    auto environment_options = options.environment;
    auto& client = environment_options.client;
    client.connect_timeout = config.connect_timeout;
    client.ping_interval = config.ping_interval.value_or(client.ping_interval);
    client.idle_timeout = config.idle_timeout.value_or(client.idle_timeout);
    client.resume_window = config.resume_window.value_or(client.resume_window);
    environments.add(
        Environment::create(executor, config.id, std::move(*placement), environment_options));
  }

  RestartPolicy::Settings restart_settings() const {
    return {options.restart_backoff, options.restart_backoff_max, options.crash_loop_deaths,
            options.crash_loop_window};
  }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& server : servers) out.push_back(server->config.name);
    return out;
  }

  Server* find(std::string_view name) {
    for (auto& server : servers)
      if (server->config.name == name) return server.get();
    return nullptr;
  }

  void emit(const Server& server) {
    if (options.on_status)
      options.on_status({server.config.name, server.state, server.error,
                         server.state == ServerState::failed && server.restarts.may_restart()});
  }

  // The same resolution a launch makes (launch_server resolves through it too).
  Expected<std::shared_ptr<Environment>> placement(const ServerConfig& config) const {
    return resolve_placement(environments, config.name, config.environment);
  }

  mcp::ClientHandlers handlers_for(Server& server) {
    auto handlers = options.handlers ? options.handlers(server.config.name) : mcp::ClientHandlers{};
    std::weak_ptr<State> weak = shared_from_this();
    Server* target = &server;
    const auto generation = server.generation;
    handlers.on_closed = [weak, target, generation,
                          user = std::move(handlers.on_closed)](const std::string& reason) {
      if (auto self = weak.lock()) self->died(*target, generation, reason);
      if (user) user(reason);
    };
    handlers.on_list_changed = [weak, target, generation,
                                user = std::move(handlers.on_list_changed)](
                                   mcp::ListKind kind, const json::array& listing) {
      if (auto self = weak.lock();
          self && kind == mcp::ListKind::tools && target->generation == generation)
        target->tools = listing;
      if (user) user(kind, listing);
    };
    return handlers;
  }

  struct Session {
    std::shared_ptr<mcp::Client> client;
    json::array tools;
  };

  asio::awaitable<Expected<Session>> launch_and_list(Server& server) {
    // Placement and settings are checked before anything starts: such failures are permanent.
    auto launch = launch_of(server.config, options.env, options.stdio);
    if (auto placed = placement(server.config); !placed) launch = placed.error();
    if (!launch) {
      server.restarts.record_permanent_failure();
      co_return launch.error();
    }
    auto connection = co_await launch_server(executor, std::move(*launch), environments);
    if (!connection) co_return connection.error();
    mcp::ClientOptions client_options;
    client_options.startup_timeout = server.config.startup_timeout;
    client_options.tool_timeout = server.config.tool_timeout;
    client_options.handlers = handlers_for(server);
    // A restart goes straight to the era the server spoke before.
    client_options.eras = eras;
    client_options.era_key = server.config.name;
    auto client =
        co_await mcp::Client::connect(executor, std::move(*connection), std::move(client_options));
    if (!client) co_return client.error();
    auto tools = co_await (*client)->list_tools();
    if (!tools) {
      co_await (*client)->shutdown();
      co_return tools.error();
    }
    co_return Session{std::move(*client), std::move(*tools)};
  }

  static asio::awaitable<void> run_start(std::shared_ptr<State> self, Server* server) {
    std::optional<Expected<Session>> outcome;
    try {
      outcome = co_await self->launch_and_list(*server);
    } catch (const std::exception& error) {
      if (!server->cancel_requested)
        outcome.emplace(jsonrpc::make_error(jsonrpc::code::kInternalError,
                                            fmt::format("unexpected error: {}", error.what())));
    }
    server->cancel.reset();
    if (server->cancel_requested || !outcome) {
      server->state = ServerState::cancelled;
      server->error.clear();
    } else if (*outcome) {
      server->state = ServerState::ready;
      server->client = std::move((*outcome)->client);
      server->tools = std::move((*outcome)->tools);
      spdlog::info("MCP server '{}' ready ({})", server->config.name,
                   server->client->description());
    } else {
      auto error = startup_failure_text(server->config, outcome->error());
      if (server->restarts.permanent()) {
        server->error = std::move(error);
      } else {
        self->record_death(*server, std::move(error));
      }
      server->state = ServerState::failed;
    }
    self->emit(*server);
    server->settled.notify_all();
  }

  // One attempt at a time; none once shutdown began (it would escape the shutdown).
  void begin_start(Server& server) {
    if (server.state == ServerState::starting) return;
    if (shut_down) {
      server.state = ServerState::cancelled;
      emit(server);
      return;
    }
    server.state = ServerState::starting;
    server.error.clear();
    server.restarts.begin_attempt();
    server.cancel_requested = false;
    ++server.generation;
    auto signal = std::make_shared<asio::cancellation_signal>();
    server.cancel = signal;
    emit(server);
    asio::co_spawn(
        executor, run_start(shared_from_this(), &server),
        asio::bind_cancellation_slot(signal->slot(), [signal](const std::exception_ptr&) {}));
  }

  asio::awaitable<void> settle(Server& server) {
    while (server.state == ServerState::starting) co_await server.settled.wait();
  }

  void record_death(Server& server, std::string error) {
    if (server.restarts.record_death(Clock::now())) {
      server.error = crash_loop_text(server.config.name, error);
    } else {
      server.error = std::move(error);
    }
  }

  // The session of `generation` ended by itself: failed, calls in flight already failed with
  // `reason` (never replayed), restarted on the next use.
  void died(Server& server, std::uint64_t generation, const std::string& reason) {
    if (generation != server.generation || server.state != ServerState::ready) return;
    auto error = reason;
    if (server.client) {
      error = death_text(std::move(error), server.client->stderr_tail());
      // Released later: this runs inside the client's own callback.
      asio::post(executor, [client = std::move(server.client)] {});
    }
    spdlog::warn("MCP server '{}' stopped: {}", server.config.name, reason);
    record_death(server, std::move(error));
    server.state = ServerState::failed;
    emit(server);
  }

  asio::awaitable<Expected<std::shared_ptr<mcp::Client>>> use(const std::string& name) {
    using Result = Expected<std::shared_ptr<mcp::Client>>;
    for (;;) {
      if (shut_down)
        co_return jsonrpc::make_error(jsonrpc::code::kInternalError,
                                      "the MCP servers are shut down");
      Server* server = find(name);
      if (server == nullptr) co_return unknown_server_error(name, names());
      switch (server->state) {
        case ServerState::disabled:
          co_return jsonrpc::make_error(jsonrpc::code::kInvalidParams,
                                        fmt::format("MCP server '{}' is disabled", name));
        case ServerState::starting:
          co_await settle(*server);
          continue;
        case ServerState::ready:
          if (!server->client)
            co_return jsonrpc::make_error(jsonrpc::code::kInternalError,
                                          "the MCP servers are shut down");
          if (!server->client->is_closed()) co_return Result{server->client};
          died(*server, server->generation, server->client->close_reason());
          continue;
        case ServerState::idle:
        case ServerState::failed:
        case ServerState::cancelled:
          break;
      }
      if (!server->restarts.may_restart())
        co_return jsonrpc::make_error(jsonrpc::code::kInternalError, server->error);
      if (server->state == ServerState::failed && Clock::now() < server->restarts.restart_at()) {
        asio::steady_timer timer(executor, server->restarts.restart_at());
        boost::system::error_code ignored;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        continue;  // someone else may have restarted it meanwhile
      }
      begin_start(*server);
      co_await settle(*server);
      if (shut_down)
        co_return jsonrpc::make_error(jsonrpc::code::kInternalError,
                                      "the MCP servers are shut down");
      if (server->state == ServerState::ready) co_return Result{server->client};
      if (server->state == ServerState::cancelled)
        co_return jsonrpc::make_error(
            jsonrpc::code::kInternalError,
            fmt::format("the start of MCP server '{}' was cancelled", name));
      co_return jsonrpc::make_error(jsonrpc::code::kInternalError, server->error);
    }
  }

  void cancel_startup() {
    for (auto& server : servers) {
      if (server->state != ServerState::starting || !server->cancel) continue;
      server->cancel_requested = true;
      server->cancel->emit(asio::cancellation_type::terminal);
    }
  }

  std::vector<OfferedTool> offered_tools() {
    std::vector<std::pair<std::string, std::string>> pairs;
    std::map<std::pair<std::string, std::string>, const json::object*> definitions;
    for (const auto& server : servers) {
      if (server->state != ServerState::ready) continue;
      for (const auto& item : server->tools) {
        const auto* tool = item.if_object();
        const auto* name = tool ? tool->if_contains("name") : nullptr;
        if (name == nullptr || !name->is_string()) continue;
        std::string raw(name->get_string());
        if (!server->filter.allows(raw)) continue;
        definitions[{server->config.name, raw}] = tool;
        pairs.emplace_back(server->config.name, std::move(raw));
      }
    }
    auto qualified = qualify(pairs);
    std::vector<OfferedTool> out;
    out.reserve(qualified.size());
    for (const auto& tool : qualified)
      out.push_back({tool.name, tool.server, *definitions.at({tool.server, tool.tool})});
    index = QualifiedToolIndex(std::move(qualified));
    return out;
  }
};

Manager::Manager(std::shared_ptr<State> state) : state_(std::move(state)) {}

std::shared_ptr<Manager> Manager::create(asio::any_io_executor executor, Config config,
                                         ManagerOptions options) {
  auto state = std::make_shared<State>(std::move(executor), std::move(options));
  for (const auto& environment : config.environments) state->add_environment(environment);
  auto remote = resolve_remote(config, state->options.env);
  if (remote.environment) {
    if (find_environment(config, remote.environment->id) == nullptr)
      state->add_environment(*remote.environment, remote.source);
    state->environments.set_remote(remote.environment->id);
  }
  for (auto& server : config.servers)
    state->servers.push_back(std::make_unique<State::Server>(state->executor, std::move(server),
                                                             state->restart_settings()));
  return std::shared_ptr<Manager>(new Manager(std::move(state)));
}

Manager::~Manager() {
  state_->cancel_startup();
  // Each client's destructor ends its server; the environments end with the state.
  for (auto& server : state_->servers) server->client.reset();
  state_->shut_down = true;
}

std::vector<ServerInfo> Manager::servers() const {
  std::vector<ServerInfo> out;
  for (const auto& server : state_->servers) {
    const auto& config = server->config;
    ServerInfo info;
    info.name = config.name;
    info.enabled = config.enabled;
    info.required = config.required;
    info.state = server->state;
    info.error = server->error;
    info.transport =
        std::holds_alternative<mcp::StdioCommand>(config.transport) ? "stdio" : "streamable_http";
    info.target = server_target(config);
    info.environment_setting = config.environment;
    auto environment = state_->placement(config);
    if (!environment) {
      info.placement_ok = false;
      info.placement = environment.error().message;
    } else if (!*environment) {
      info.placement = std::string(kLocalEnvironment);
    } else {
      info.environment_id = (*environment)->id();
      info.placement = state_->descriptions[info.environment_id];
    }
    // A session whose process has just ended is still ready until its death is handled: no
    // pid of a process that is gone.
    if (server->state == ServerState::ready && server->client && !server->client->is_closed()) {
      info.process = server->client->description();
      info.protocol = server->client->protocol_version();
      info.tools = static_cast<std::size_t>(
          std::count_if(server->tools.begin(), server->tools.end(), [&](const json::value& tool) {
            const auto* name = tool.is_object() ? tool.get_object().if_contains("name") : nullptr;
            return name && name->is_string() && server->filter.allows(name->get_string());
          }));
    }
    out.push_back(std::move(info));
  }
  return out;
}

asio::awaitable<Expected<StartupSummary>> Manager::start(std::vector<std::string> names) {
  auto state = state_;
  if (state->shut_down)
    co_return jsonrpc::make_error(jsonrpc::code::kInternalError, "the MCP servers are shut down");
  std::vector<State::Server*> targets;
  if (names.empty()) {
    for (auto& server : state->servers)
      if (server->config.enabled) targets.push_back(server.get());
  } else {
    for (const auto& name : names) {
      auto* server = state->find(name);
      if (server == nullptr) co_return unknown_server_error(name, state->names());
      if (!server->config.enabled)
        co_return jsonrpc::make_error(jsonrpc::code::kInvalidParams,
                                      fmt::format("MCP server '{}' is disabled", name));
      if (std::find(targets.begin(), targets.end(), server) == targets.end())
        targets.push_back(server);
    }
  }
  for (auto* server : targets) {
    if (server->state != ServerState::starting && server->state != ServerState::ready &&
        !server->restarts.crash_looping())
      state->begin_start(*server);
  }
  for (auto* server : targets) co_await state->settle(*server);

  StartupSummary summary;
  std::vector<StartupSummary::Failure> required_failures;
  for (auto* server : targets) {
    const auto& name = server->config.name;
    if (server->state == ServerState::ready) {
      summary.ready.push_back(name);
    } else if (server->state == ServerState::cancelled) {
      summary.cancelled.push_back(name);
    } else {
      summary.failed.push_back({name, server->error});
      if (server->config.required) required_failures.push_back({name, server->error});
    }
  }
  if (!required_failures.empty())
    co_return jsonrpc::make_error(jsonrpc::code::kInternalError,
                                  required_failures_text(required_failures));
  co_return summary;
}

void Manager::cancel_startup() {
  state_->cancel_startup();
}

std::vector<OfferedTool> Manager::tools() {
  return state_->offered_tools();
}

asio::awaitable<Expected<json::array>> Manager::tools(std::string server) {
  auto state = state_;
  auto client = co_await state->use(server);
  if (!client) co_return client.error();
  const auto* record = state->find(server);
  json::array out;
  for (const auto& tool : record->tools) {
    const auto* name = tool.is_object() ? tool.get_object().if_contains("name") : nullptr;
    if (name && name->is_string() && record->filter.allows(name->get_string())) out.push_back(tool);
  }
  co_return out;
}

asio::awaitable<Expected<json::object>> Manager::call_tool(std::string server, std::string tool,
                                                           json::value arguments) {
  auto state = state_;
  const auto* record = state->find(server);
  if (record == nullptr) co_return unknown_server_error(server, state->names());
  if (auto allowed = record->filter.check_call(server, tool); !allowed) co_return allowed.error();
  auto client = co_await state->use(server);
  if (!client) co_return client.error();
  auto result = co_await (*client)->call_tool(std::move(tool), std::move(arguments));
  if (!result && result.error().code == jsonrpc::code::kRequestTimedOut)
    co_return tool_timeout_error(result.error(), server);
  co_return result;
}

asio::awaitable<Expected<json::object>> Manager::call_tool(std::string qualified_name,
                                                           json::value arguments) {
  const auto* tool = state_->index.find(qualified_name);
  if (tool == nullptr) {
    state_->offered_tools();
    tool = state_->index.find(qualified_name);
  }
  if (tool == nullptr)
    co_return jsonrpc::make_error(jsonrpc::code::kInvalidParams,
                                  fmt::format("unknown tool '{}'", qualified_name));
  co_return co_await call_tool(tool->server, tool->tool, std::move(arguments));
}

asio::awaitable<Expected<std::shared_ptr<mcp::Client>>> Manager::use(std::string server) {
  auto state = state_;
  co_return co_await state->use(server);
}

asio::awaitable<Expected<void>> Manager::restart(std::string server) {
  auto state = state_;
  auto* record = state->find(server);
  if (record == nullptr) co_return unknown_server_error(server, state->names());
  if (record->state == ServerState::starting) {
    record->cancel_requested = true;
    record->cancel->emit(asio::cancellation_type::terminal);
    co_await state->settle(*record);
  }
  // The server leaves `ready` before anything suspends: no one may take the client being ended.
  auto old = std::move(record->client);
  record->restarts.reset();
  if (record->state != ServerState::disabled && record->state != ServerState::starting)
    record->state = ServerState::idle;
  if (old) co_await old->shutdown();
  auto client = co_await state->use(server);
  if (!client) co_return client.error();
  co_return Expected<void>{};
}

asio::awaitable<void> Manager::shutdown() {
  auto state = state_;
  if (state->shut_down) co_return;
  // First, so no start begins while the others are being ended.
  state->shut_down = true;
  state->cancel_startup();
  for (auto& server : state->servers) co_await state->settle(*server);

  auto executor = co_await asio::this_coro::executor;
  using Op =
      decltype(asio::co_spawn(executor, std::declval<asio::awaitable<void>>(), asio::deferred));
  std::vector<Op> ending;
  for (auto& server : state->servers) {
    if (auto client = std::move(server->client)) {
      server->state = ServerState::idle;
      ending.push_back(asio::co_spawn(
          executor,
          [](std::shared_ptr<mcp::Client> c) -> asio::awaitable<void> {
            co_await c->shutdown();
          }(std::move(client)),
          asio::deferred));
    }
  }
  if (!ending.empty())
    co_await asio::experimental::make_parallel_group(std::move(ending))
        .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
  co_await state->environments.close();
}

}  // namespace tether::host
