// Gateway: the Catalog says where a request goes, the Manager gives a session with that server,
// and the request travels with the downstream session's progress token swapped for the
// client's own (progress comes back under the downstream token). A request to a server is
// recorded while it runs, so that a server-to-client request (sampling, elicitation, roots) goes
// to the session waiting on that server. Listings are refreshed whole, per server, when a server
// becomes ready or says a list changed; the Catalog then says which aggregate lists changed, and
// every session hears of those.
#include <list>
#include <map>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "catalog.hpp"
#include <tether/gateway/gateway.hpp>
#include <tether/host/server_launch.hpp>
#include <tether/jsonrpc/async_signal.hpp>
#include <tether/jsonrpc/duration.hpp>
#include <tether/mcp_protocol/revision.hpp>

namespace tether::gateway {
namespace asio = boost::asio;
using jsonrpc::make_error;
using jsonrpc::Reply;
using mcp_protocol::capability_for;
using mcp_server::Session;

Expected<Names> parse_names(std::string_view text) {
  if (text == "prefixed") return Names::prefixed;
  if (text == "qualified") return Names::qualified;
  if (text == "raw") return Names::raw;
  return make_error(jsonrpc::code::kInvalidParams,
                    fmt::format("--names must be prefixed, qualified or raw, not '{}'", text));
}

namespace {

Reply error_reply(int code, std::string message) {
  return Reply{boost::system::in_place_error, make_error(code, std::move(message))};
}

// Errors that only mean something here (timeouts, a closed connection) reach the wire as
// internal errors with their words; a server's own errors pass with code, message and data.
jsonrpc::Error wire_error(jsonrpc::Error error) {
  if (error.code <= jsonrpc::code::kRequestTimedOut && error.code >= -32099)
    error.code = jsonrpc::code::kInternalError;
  return error;
}

json::object tool_error_result(std::string text) {
  json::object content{{"type", "text"}, {"text", std::move(text)}};
  return json::object{{"content", json::array{std::move(content)}}, {"isError", true}};
}

std::string_view string_at(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value && value->is_string() ? std::string_view(value->get_string()) : std::string_view();
}

}  // namespace

struct Gateway::State : std::enable_shared_from_this<State> {
  State(asio::any_io_executor ex, const host::Config& config, GatewayOptions opts)
      : executor(std::move(ex)),
        options(std::move(opts)),
        catalog(options.names, server_names(config)),
        listed_signal(executor) {
    for (const auto& server : config.servers) tool_timeouts[server.name] = server.tool_timeout;
  }

  static std::vector<std::string> server_names(const host::Config& config) {
    std::vector<std::string> names;
    for (const auto& server : config.servers) names.push_back(server.name);
    return names;
  }

  // A request to a server in flight, for the server's requests back to the client.
  struct Call {
    std::weak_ptr<Session> session;
    std::string server;
    jsonrpc::Id id;
    // A 2026-07-28 request whose `_meta` asked for log messages (they belong to requests there).
    bool wants_logs = false;
  };

  asio::any_io_executor executor;
  GatewayOptions options;
  std::shared_ptr<host::Manager> manager;
  Catalog catalog;
  std::map<std::string, std::chrono::milliseconds> tool_timeouts;
  std::map<std::string, std::string> instructions;           // server -> its instructions
  std::map<std::string, const mcp::Client*> listed_clients;  // the session each listing is of
  std::map<std::string, std::uint64_t> refreshes;            // server -> latest refresh
  std::vector<std::weak_ptr<Session>> sessions;
  std::list<Call> calls;                                          // oldest first
  std::map<std::string, std::set<const Session*>> subscriptions;  // uri -> sessions
  std::optional<std::string> log_level;
  std::map<std::string, std::string> placements;  // server -> `local` or its environment
  std::set<std::string> ever_ready;
  std::set<std::string> warned_conflicts;
  bool listed = false;  // the first listings are complete (start() finished)
  jsonrpc::AsyncSignal listed_signal;
  bool shut_down = false;

  std::vector<std::shared_ptr<Session>> live_sessions() {
    std::vector<std::shared_ptr<Session>> out;
    std::erase_if(sessions, [](const auto& weak) { return weak.expired(); });
    for (const auto& weak : sessions)
      if (auto session = weak.lock(); session && !session->is_ended()) out.push_back(session);
    return out;
  }

  void broadcast(const std::string& method, const json::value& params) {
    for (const auto& session : live_sessions()) session->notify(method, params);
  }

  // Sessions hear of changes once the first listings are done: before that none has listed.
  void publish(Catalog::Changes changes) {
    warn_conflicts();
    if (!listed) return;
    if (changes.tools) broadcast("notifications/tools/list_changed", json::object{});
    if (changes.prompts) broadcast("notifications/prompts/list_changed", json::object{});
    if (changes.resources) broadcast("notifications/resources/list_changed", json::object{});
  }

  // Raw names that two servers offer after startup (start() fails on those present then): the
  // first server in config order keeps the name; said once per conflict.
  void warn_conflicts() {
    if (!listed) return;
    for (const auto& conflict : catalog.conflicts())
      if (warned_conflicts.insert(conflict).second)
        spdlog::warn("gateway: {}; the first in config order serves it", conflict);
  }

  std::chrono::milliseconds tool_timeout(const std::string& server) const {
    auto it = tool_timeouts.find(server);
    return it == tool_timeouts.end() ? std::chrono::milliseconds(120'000) : it->second;
  }

  // --- listings ---

  static asio::awaitable<void> refresh(std::shared_ptr<State> self, std::string server) {
    const auto generation = ++self->refreshes[server];
    auto client = co_await self->manager->use(server);
    if (!client) co_return;  // its status event says why
    // A listing that fails keeps what was listed before (a passing failure must not make a
    // server's offers vanish until its next list_changed).
    Listing listing;
    if (const auto* before = self->catalog.listing(server)) listing = *before;
    auto keep = [&](auto listed, json::array& into, std::string_view what) {
      if (listed) {
        into = std::move(*listed);
      } else {
        spdlog::warn("gateway: listing the {} of MCP server '{}' failed: {}", what, server,
                     listed.error().message);
      }
    };
    keep(co_await self->manager->tools(server), listing.tools, "tools");
    const auto& capabilities = (*client)->server_capabilities();
    if (capabilities.contains("prompts"))
      keep(co_await (*client)->list_prompts(), listing.prompts, "prompts");
    if (capabilities.contains("resources")) {
      keep(co_await (*client)->list_resources(), listing.resources, "resources");
      keep(co_await (*client)->list_resource_templates(), listing.templates, "resource templates");
    }
    if (self->shut_down || self->refreshes[server] != generation) co_return;
    self->catalog.set(server, std::move(listing));
    const auto text = string_at((*client)->handshake_result(), "instructions");
    self->instructions[server] = std::string(text);
    self->publish(self->catalog.rebuild());
    if (self->listed_clients[server] != client->get()) {
      self->listed_clients[server] = client->get();
      co_await self->restore_settings(server, *client);
    }
  }

  // A server that (re)started gets what the sessions asked of the servers before: the logging
  // level and the subscriptions to its resources.
  asio::awaitable<void> restore_settings(std::string server, std::shared_ptr<mcp::Client> client) {
    auto self = shared_from_this();
    if (log_level && client->server_capabilities().contains("logging")) {
      if (auto set = co_await client->set_logging_level(*log_level); !set)
        spdlog::warn("gateway: setting the log level of MCP server '{}' failed: {}", server,
                     set.error().message);
    }
    for (const auto& [uri, subscribers] : subscriptions) {
      if (subscribers.empty() || catalog.resource_owner(uri) != server) continue;
      if (auto subscribed = co_await client->subscribe(uri); !subscribed)
        spdlog::warn("gateway: subscribing to '{}' on MCP server '{}' failed: {}", uri, server,
                     subscribed.error().message);
    }
  }

  void on_status(const host::ServerStatus& status) {
    if (options.metrics) {
      const bool up = status.state == host::ServerState::ready;
      options.metrics->set_server_up(status.server, placements[status.server], up);
      if (up && !ever_ready.insert(status.server).second)
        options.metrics->record_restart(status.server);
    }
    if (status.state == host::ServerState::ready && listed && !shut_down) {
      asio::co_spawn(executor, refresh(shared_from_this(), status.server), asio::detached);
    } else if (status.state == host::ServerState::failed && !status.restartable) {
      // Crash-looping or unable to start: its offers are gone until the user restarts it. A
      // server that died and will restart keeps them.
      ++refreshes[status.server];
      catalog.remove(status.server);
      publish(catalog.rebuild());
    }
  }

  asio::awaitable<void> wait_listed() {
    while (!listed) co_await listed_signal.wait();
  }

  // --- server-to-client ---

  // The session with the latest request in flight to `server`, else the one most recently
  // active; and the request it is waiting on.
  std::pair<std::shared_ptr<Session>, std::optional<jsonrpc::Id>> client_for(
      const std::string& server) {
    for (auto it = calls.rbegin(); it != calls.rend(); ++it) {
      auto session = it->session.lock();
      if (it->server == server && session && !session->is_ended()) return {session, it->id};
    }
    std::shared_ptr<Session> latest;
    for (auto& session : live_sessions())
      if (!latest || session->last_active() > latest->last_active()) latest = session;
    return {latest, std::nullopt};
  }

  static asio::awaitable<Reply> ask_client(std::weak_ptr<State> weak, std::string server,
                                           std::string method, json::value params) {
    auto self = weak.lock();
    if (!self || self->shut_down)
      co_return error_reply(jsonrpc::code::kInternalError, "the gateway is shutting down");
    auto [session, related] = self->client_for(server);
    if (!session)
      co_return error_reply(jsonrpc::code::kMethodNotFound,
                            fmt::format("no MCP client is connected to answer {}", method));
    // A 2026-07-28 session answers for itself (-32021 to its client when it lacks the capability).
    if (!session->is_modern() && !session->declares(capability_for(method)))
      co_return error_reply(
          jsonrpc::code::kMethodNotFound,
          fmt::format("the MCP client does not support {} (capability '{}' not declared)", method,
                      capability_for(method)));
    auto reply = co_await session->request(method, std::move(params), std::move(related),
                                           self->tool_timeout(server));
    if (!reply) co_return Reply{boost::system::in_place_error, wire_error(reply.error())};
    co_return reply;
  }

  void relay(const std::string& server, const std::string& method, const json::value& params) {
    if (method == "notifications/message" && params.is_object()) {
      auto message = params.get_object();
      const auto logger = string_at(message, "logger");
      message["logger"] = logger.empty() ? server : fmt::format("{}/{}", server, logger);
      broadcast(method, message);
      // A 2026-07-28 client hears only the logs of its requests: those in flight to this
      // server that asked for them.
      for (const auto& call : calls) {
        auto session = call.session.lock();
        if (call.wants_logs && call.server == server && session && !session->is_ended())
          session->notify(call.id, method, message);
      }
    } else if (method == "notifications/resources/updated" && params.is_object()) {
      const std::string uri(string_at(params.get_object(), "uri"));
      auto subscribers = subscriptions.find(uri);
      if (subscribers == subscriptions.end()) return;
      for (const auto& session : live_sessions())
        if (subscribers->second.contains(session.get())) session->notify(method, params);
    } else {
      spdlog::debug("gateway: MCP server '{}' sent {}; not relayed", server, method);
    }
  }

  mcp::ClientHandlers handlers_for(const std::string& server) {
    mcp::ClientHandlers handlers;
    std::weak_ptr<State> weak = shared_from_this();
    auto asker = [weak, server](const std::string& method) {
      return [weak, server, method](json::value params) {
        return ask_client(weak, server, method, std::move(params));
      };
    };
    handlers.roots = asker("roots/list");
    handlers.sampling = asker("sampling/createMessage");
    handlers.elicitation = asker("elicitation/create");
    handlers.on_notification = [weak, server](const std::string& method,
                                              const json::value& params) {
      if (auto self = weak.lock()) self->relay(server, method, params);
    };
    handlers.on_list_changed = [weak, server](mcp::ListKind, const json::array&) {
      auto self = weak.lock();
      if (self && self->listed && !self->shut_down)
        asio::co_spawn(self->executor, refresh(self, server), asio::detached);
    };
    return handlers;
  }

  // --- requests ---

  // Sends `method` to `server` for `session`: the downstream progress token (if any) is swapped
  // for the client's own, and progress is sent back under it.
  asio::awaitable<Expected<json::object>> forward(std::shared_ptr<Session> session, jsonrpc::Id id,
                                                  std::string server, std::string method,
                                                  json::object params,
                                                  std::chrono::milliseconds timeout) {
    auto self = shared_from_this();
    auto client = co_await manager->use(server);
    if (!client && options.metrics)
      options.metrics->record_request(server, method, "unavailable",
                                      std::chrono::steady_clock::duration::zero());
    if (!client)
      co_return make_error(
          jsonrpc::code::kUnavailable,
          fmt::format("MCP server '{}' is unavailable: {}", server, client.error().message));
    mcp::CallOptions call;
    call.timeout = timeout;
    // A 2026-07-28 client's multi-round-trip request: relayed as it is to a server of that
    // revision; a session revision's server asks by request instead (Session turns those into
    // rounds), so a requestState here is one the gateway never gave out or no longer keeps.
    const bool relay = session->is_modern() && (*client)->era() == mcp::ProtocolEra::modern;
    if (relay) {
      call.relay_input_required = true;
      call.client_capabilities = session->client_capabilities();
    } else if (session->is_modern()) {
      if (params.contains("requestState"))
        co_return make_error(jsonrpc::code::kInvalidParams,
                             "requestState is unknown or has expired; send the request again "
                             "without it");
      params.erase("inputResponses");
    }
    if (auto* meta = params.if_contains("_meta"); meta && meta->is_object()) {
      auto& fields = meta->get_object();
      if (auto* token = fields.if_contains("progressToken")) {
        call.on_progress = [weak = std::weak_ptr<Session>(session), id,
                            downstream = *token](const json::object& progress) {
          auto target = weak.lock();
          if (!target) return;
          auto relayed = progress;
          relayed["progressToken"] = downstream;
          target->notify(id, "notifications/progress", std::move(relayed));
        };
        fields.erase("progressToken");
      }
      if (fields.empty()) params.erase("_meta");
    }
    auto call_entry =
        calls.insert(calls.end(), Call{session, server, id, asks_for_logs(*session, params)});
    struct Forget {
      std::list<Call>& calls;
      std::list<Call>::iterator entry;
      ~Forget() { calls.erase(entry); }
    } forget{calls, call_entry};
    const auto started = std::chrono::steady_clock::now();
    const bool tool_call = method == "tools/call";
    auto result = co_await (*client)->request(method, std::move(params), std::move(call));
    if (relay && result) {
      if (auto lacking = undeclared_input(*session, *result)) co_return std::move(*lacking);
    }
    if (options.metrics) {
      const auto* is_error = result ? result->if_contains("isError") : nullptr;
      const bool tool_error = tool_call && is_error && is_error->is_bool() && is_error->get_bool();
      options.metrics->record_request(server, method,
                                      !result ? "error" : (tool_error ? "tool_error" : "ok"),
                                      std::chrono::steady_clock::now() - started);
    }
    co_return result;
  }

  static bool asks_for_logs(const Session& session, const json::object& params) {
    const auto* meta = params.if_contains("_meta");
    return session.is_modern() && meta && meta->is_object() &&
           meta->get_object().contains(mcp_protocol::meta::kLogLevel);
  }

  // -32021 when a relayed input_required result asks for what the client did not declare.
  static std::optional<jsonrpc::Error> undeclared_input(const Session& session,
                                                        const json::object& result) {
    const auto* requests = result.if_contains("inputRequests");
    if (!requests || !requests->is_object()) return std::nullopt;
    for (const auto& [key, asked] : requests->get_object()) {
      const auto method = asked.is_object() ? string_at(asked.get_object(), "method") : "";
      if (!session.declares(capability_for(method)))
        return mcp_protocol::missing_capability(capability_for(method));
    }
    return std::nullopt;
  }

  asio::awaitable<Reply> call_tool(std::shared_ptr<Session> session,
                                   mcp_server::IncomingRequest request) {
    auto self = shared_from_this();
    co_await wait_listed();
    const std::string name(string_at(request.params, "name"));
    const auto* route = catalog.tool(name);
    if (route == nullptr)
      co_return error_reply(jsonrpc::code::kInvalidParams, fmt::format("unknown tool '{}'", name));
    const auto server = route->server;
    request.params["name"] = route->name;
    auto result = co_await forward(session, request.id, server, "tools/call",
                                   std::move(request.params), tool_timeout(server));
    if (result) co_return json::value(std::move(*result));
    const auto& error = result.error();
    if (error.code == jsonrpc::code::kUnavailable)
      co_return json::value(tool_error_result(error.message));
    if (error.code == jsonrpc::code::kConnectionClosed) {
      co_return json::value(tool_error_result(
          fmt::format("MCP server '{}' exited during the call; the call was not retried\n{}",
                      server, error.message)));
    }
    if (error.code == jsonrpc::code::kRequestTimedOut)
      co_return json::value(tool_error_result(
          fmt::format("MCP server '{}' did not answer in time: {}", server, error.message)));
    if (error.code == jsonrpc::code::kInvalidArguments)
      co_return error_reply(jsonrpc::code::kInvalidParams, error.message);
    co_return Reply{boost::system::in_place_error, wire_error(error)};
  }

  // A routed request other than tools/call: the server's answer or error as it is.
  asio::awaitable<Reply> routed(std::shared_ptr<Session> session, jsonrpc::Id id,
                                std::string server, std::string method, json::object params) {
    auto self = shared_from_this();
    auto result = co_await forward(std::move(session), id, server, std::move(method),
                                   std::move(params), tool_timeout(server));
    if (!result) co_return Reply{boost::system::in_place_error, wire_error(result.error())};
    co_return json::value(std::move(*result));
  }

  asio::awaitable<Reply> list(std::string_view key, const json::array& (Catalog::*items)() const) {
    auto self = shared_from_this();
    co_await wait_listed();
    json::object result;
    result[key] = (catalog.*items)();
    co_return json::value(std::move(result));
  }

  // -32002 for the session revisions, -32602 (invalid params) for 2026-07-28.
  static Reply resource_not_found(const Session& session, std::string_view uri) {
    auto error = make_error(session.is_modern() ? jsonrpc::code::kInvalidParams : -32002,
                            "resource not found");
    error.data = json::object{{"uri", uri}};
    return Reply{boost::system::in_place_error, std::move(error)};
  }

  asio::awaitable<Reply> resource_request(std::shared_ptr<Session> session,
                                          mcp_server::IncomingRequest request) {
    auto self = shared_from_this();
    co_await wait_listed();
    const std::string uri(string_at(request.params, "uri"));
    if (uri.empty())
      co_return error_reply(jsonrpc::code::kInvalidParams,
                            fmt::format("{}: uri must be a string", request.method));
    auto owner = catalog.resource_owner(uri);
    if (!owner) co_return resource_not_found(*session, uri);
    // Subscribed before the server answers: it may send an update right after its answer, and
    // the update can be relayed before this coroutine resumes.
    const bool subscribing = request.method == "resources/subscribe";
    const bool fresh = subscribing && subscriptions[uri].insert(session.get()).second;
    const std::string method = request.method;
    auto reply = co_await routed(session, request.id, *owner, method, std::move(request.params));
    if (!reply && fresh) unsubscribe(*session, uri);
    if (reply && method == "resources/unsubscribe") unsubscribe(*session, uri);
    co_return reply;
  }

  void unsubscribe(const Session& session, const std::string& uri) {
    auto it = subscriptions.find(uri);
    if (it == subscriptions.end()) return;
    it->second.erase(&session);
    if (it->second.empty()) subscriptions.erase(it);
  }

  asio::awaitable<Reply> complete(std::shared_ptr<Session> session,
                                  mcp_server::IncomingRequest request) {
    auto self = shared_from_this();
    co_await wait_listed();
    auto* ref = request.params.if_contains("ref");
    if (ref == nullptr || !ref->is_object())
      co_return error_reply(jsonrpc::code::kInvalidParams,
                            "completion/complete: ref must be an object");
    auto& reference = ref->get_object();
    const auto type = string_at(reference, "type");
    std::optional<std::string> server;
    if (type == "ref/prompt") {
      const auto* route = catalog.prompt(string_at(reference, "name"));
      if (route == nullptr)
        co_return error_reply(jsonrpc::code::kInvalidParams,
                              fmt::format("unknown prompt '{}'", string_at(reference, "name")));
      server = route->server;
      reference["name"] = route->name;
    } else if (type == "ref/resource") {
      server = catalog.template_owner(string_at(reference, "uri"));
      if (!server) co_return resource_not_found(*session, string_at(reference, "uri"));
    } else {
      co_return error_reply(jsonrpc::code::kInvalidParams,
                            fmt::format("completion/complete: unknown ref type '{}'", type));
    }
    co_return co_await routed(session, request.id, *server, request.method,
                              std::move(request.params));
  }

  asio::awaitable<Reply> get_prompt(std::shared_ptr<Session> session,
                                    mcp_server::IncomingRequest request) {
    auto self = shared_from_this();
    co_await wait_listed();
    const std::string name(string_at(request.params, "name"));
    const auto* route = catalog.prompt(name);
    if (route == nullptr)
      co_return error_reply(jsonrpc::code::kInvalidParams,
                            fmt::format("unknown prompt '{}'", name));
    const auto server = route->server;
    request.params["name"] = route->name;
    co_return co_await routed(session, request.id, server, request.method,
                              std::move(request.params));
  }

  asio::awaitable<Reply> set_level(mcp_server::IncomingRequest request) {
    auto self = shared_from_this();
    const std::string level(string_at(request.params, "level"));
    if (level.empty())
      co_return error_reply(jsonrpc::code::kInvalidParams,
                            "logging/setLevel: level must be a string");
    log_level = level;
    for (const auto& info : manager->servers()) {
      if (info.state != host::ServerState::ready) continue;
      auto client = co_await manager->use(info.name);
      if (!client || !(*client)->server_capabilities().contains("logging")) continue;
      if (auto set = co_await (*client)->set_logging_level(level); !set)
        spdlog::warn("gateway: setting the log level of MCP server '{}' failed: {}", info.name,
                     set.error().message);
    }
    co_return json::value(json::object{});
  }

  // `tether/catalog`, for tether's own command line (docs/gateway.md "tether/catalog"): the
  // servers, and every offer with its server and the name it has there.
  asio::awaitable<Reply> describe_catalog() {
    auto self = shared_from_this();
    co_await wait_listed();
    json::array servers;
    for (const auto& info : manager->servers()) servers.push_back(host::to_json(info));
    auto routed = [](const json::array& items, auto route_of) {
      json::array out;
      for (const auto& item : items) {
        const auto* route = route_of(string_at(item.get_object(), "name"));
        if (route == nullptr) continue;
        auto own = item.get_object();
        own["name"] = route->name;
        out.push_back(json::object{{"name", string_at(item.get_object(), "name")},
                                   {"server", route->server},
                                   {"item", std::move(own)}});
      }
      return out;
    };
    auto owned = [](const json::array& items, std::string_view key, auto owner_of) {
      json::array out;
      for (const auto& item : items) {
        auto tagged = item.get_object();
        tagged["server"] = owner_of(string_at(item.get_object(), key)).value_or("");
        out.push_back(std::move(tagged));
      }
      return out;
    };
    json::object result;
    result["servers"] = std::move(servers);
    result["tools"] = routed(catalog.tools(), [&](std::string_view n) { return catalog.tool(n); });
    result["prompts"] =
        routed(catalog.prompts(), [&](std::string_view n) { return catalog.prompt(n); });
    result["resources"] = owned(catalog.resources(), "uri",
                                [&](std::string_view uri) { return catalog.resource_owner(uri); });
    result["resourceTemplates"] =
        owned(catalog.templates(), "uriTemplate",
              [&](std::string_view uri) { return catalog.template_owner(uri); });
    co_return json::value(std::move(result));
  }

  static asio::awaitable<void> roots_changed(std::shared_ptr<State> self) {
    for (const auto& info : self->manager->servers()) {
      if (info.state != host::ServerState::ready) continue;
      if (auto client = co_await self->manager->use(info.name)) (*client)->notify_roots_changed();
    }
  }
};

Gateway::Gateway(std::shared_ptr<State> state) : state_(std::move(state)) {}

std::shared_ptr<Gateway> Gateway::create(asio::any_io_executor executor, host::Config config,
                                         GatewayOptions options) {
  auto state = std::make_shared<State>(executor, config, std::move(options));
  auto manager_options = state->options.manager;
  std::weak_ptr<State> weak = state;
  manager_options.handlers = [weak](const std::string& server) {
    auto self = weak.lock();
    return self ? self->handlers_for(server) : mcp::ClientHandlers{};
  };
  manager_options.on_status =
      [weak, user = std::move(manager_options.on_status)](const host::ServerStatus& status) {
        if (auto self = weak.lock()) self->on_status(status);
        if (user) user(status);
      };
  state->manager =
      host::Manager::create(std::move(executor), std::move(config), std::move(manager_options));
  for (const auto& info : state->manager->servers()) {
    const auto& placement = state->placements[info.name] =
        info.environment_id.empty() ? std::string(host::kLocalEnvironment) : info.environment_id;
    if (state->options.metrics && info.enabled)
      state->options.metrics->set_server_up(info.name, placement, false);
  }
  return std::shared_ptr<Gateway>(new Gateway(std::move(state)));
}

Gateway::~Gateway() {
  state_->shut_down = true;
}

asio::awaitable<Expected<void>> Gateway::start() {
  auto state = state_;
  auto summary = co_await state->manager->start();
  // Every server is ready, failed or cancelled now: list the ready ones, together.
  std::vector<std::string> ready;
  for (const auto& info : state->manager->servers())
    if (info.state == host::ServerState::ready) ready.push_back(info.name);
  using Op = decltype(asio::co_spawn(state->executor, std::declval<asio::awaitable<void>>(),
                                     asio::deferred));
  std::vector<Op> listings;
  listings.reserve(ready.size());
  for (const auto& server : ready)
    listings.push_back(
        asio::co_spawn(state->executor, State::refresh(state, server), asio::deferred));
  if (!listings.empty())
    co_await asio::experimental::make_parallel_group(std::move(listings))
        .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
  state->listed = true;
  state->listed_signal.notify_all();
  if (!summary) co_return summary.error();
  if (const auto conflicts = state->catalog.conflicts(); !conflicts.empty())
    co_return make_error(jsonrpc::code::kInvalidParams,
                         fmt::format("--names raw: {}", fmt::join(conflicts, "; ")));
  co_return Expected<void>{};
}

asio::awaitable<void> Gateway::shutdown() {
  auto state = state_;
  state->shut_down = true;
  state->listed = true;  // nobody waits for listings that will not come
  state->listed_signal.notify_all();
  co_await state->manager->shutdown();
}

std::vector<host::ServerInfo> Gateway::servers() const {
  return state_->manager->servers();
}

json::object Gateway::describe() {
  json::object capabilities{{"tools", json::object{{"listChanged", true}}},
                            {"resources", json::object{{"subscribe", true}, {"listChanged", true}}},
                            {"prompts", json::object{{"listChanged", true}}},
                            {"logging", json::object{}},
                            {"completions", json::object{}}};
  json::object result{{"serverInfo", json::object{{"name", "tether"}, {"version", TETHER_VERSION}}},
                      {"capabilities", std::move(capabilities)}};
  std::string instructions;
  for (const auto& [server, text] : state_->instructions) {
    if (text.empty()) continue;
    if (!instructions.empty()) instructions += "\n\n";
    instructions += fmt::format("## {}\n{}", server, text);
  }
  if (!instructions.empty()) result["instructions"] = instructions;
  return result;
}

void Gateway::attach(const std::shared_ptr<Session>& session) {
  state_->sessions.push_back(session);
}

void Gateway::detach(Session& session) {
  auto& state = *state_;
  std::erase_if(state.sessions, [&](const auto& weak) {
    auto locked = weak.lock();
    return !locked || locked.get() == &session;
  });
  std::vector<std::string> uris;
  for (const auto& [uri, subscribers] : state.subscriptions)
    if (subscribers.contains(&session)) uris.push_back(uri);
  for (const auto& uri : uris) state.unsubscribe(session, uri);
}

asio::awaitable<Reply> Gateway::handle(std::shared_ptr<Session> session,
                                       mcp_server::IncomingRequest request) {
  auto state = state_;
  const auto& method = request.method;
  if (method == "tools/list") co_return co_await state->list("tools", &Catalog::tools);
  if (method == "prompts/list") co_return co_await state->list("prompts", &Catalog::prompts);
  if (method == "resources/list") co_return co_await state->list("resources", &Catalog::resources);
  if (method == "resources/templates/list")
    co_return co_await state->list("resourceTemplates", &Catalog::templates);
  if (method == "tools/call") co_return co_await state->call_tool(session, std::move(request));
  if (method == "prompts/get") co_return co_await state->get_prompt(session, std::move(request));
  if (method == "resources/read" || method == "resources/subscribe" ||
      method == "resources/unsubscribe")
    co_return co_await state->resource_request(session, std::move(request));
  if (method == "completion/complete")
    co_return co_await state->complete(session, std::move(request));
  if (method == "logging/setLevel") co_return co_await state->set_level(std::move(request));
  if (method == "tether/catalog") co_return co_await state->describe_catalog();
  co_return error_reply(jsonrpc::code::kMethodNotFound,
                        fmt::format("method not found: {}", method));
}

void Gateway::notified(const std::shared_ptr<Session>& /*session*/,
                       const jsonrpc::Notification& notification) {
  if (notification.method == "notifications/roots/list_changed")
    asio::co_spawn(state_->executor, State::roots_changed(state_), asio::detached);
}

}  // namespace tether::gateway
