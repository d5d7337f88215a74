// mcp::Client: the MCP session on top of jsonrpc::Peer.
//
// A request takes its id from the Peer first, so its progress token (the same id) and its
// `notifications/cancelled` can name it; its timeout is the Peer's deadline for that call, which
// progress moves (Peer::extend_deadline). The Peer's read loop runs in a detached coroutine that
// owns the State; destroying the Client aborts the Peer, which kills the server through the
// transport and ends that loop.
//
// The handshake runs `server/discover` and `initialize` as attempts of their own (discover
// first, initialize once discover failed or went unanswered for discover_timeout, or the other
// way round for a server remembered as legacy); the first success decides the era. A 2026-07-28
// session keeps one `subscriptions/listen` open (list changes and resource subscriptions),
// restarted with backoff when it ends and replaced when the subscriptions change.
#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <tether/jsonrpc/async_signal.hpp>
#include <tether/jsonrpc/duration.hpp>
#include <tether/jsonrpc/peer.hpp>
#include <tether/mcp/client.hpp>
#include <tether/mcp_protocol/http_headers.hpp>
#include <tether/mcp_protocol/revision.hpp>

namespace tether::mcp {
namespace asio = boost::asio;
using jsonrpc::format_duration;
using jsonrpc::make_error;
using namespace asio::experimental::awaitable_operators;
using boost::system::error_code;
using std::chrono::milliseconds;

namespace {

namespace proto = mcp_protocol;

// A 2026-07-28 `subscriptions/listen` that ended is opened again after this, doubling up to
// kMaxListenBackoff while it keeps failing.
constexpr milliseconds kListenBackoff{500};
constexpr milliseconds kMaxListenBackoff{30'000};

std::string_view kind_name(const json::value& value) {
  switch (value.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return "number";
    case json::kind::string:
      return "string";
    case json::kind::array:
      return "array";
    case json::kind::object:
      return "object";
  }
  return "value";
}

json::object uri_params(std::string_view uri) {
  json::object params;
  params["uri"] = uri;
  return params;
}

struct ListMethod {
  std::string_view method;
  std::string_view key;
};
constexpr ListMethod kTools{"tools/list", "tools"};
constexpr ListMethod kResources{"resources/list", "resources"};
constexpr ListMethod kTemplates{"resources/templates/list", "resourceTemplates"};
constexpr ListMethod kPrompts{"prompts/list", "prompts"};

json::object client_capabilities(const ClientHandlers& handlers) {
  json::object capabilities;
  if (handlers.roots) capabilities["roots"] = json::object{{"listChanged", true}};
  if (handlers.sampling) capabilities["sampling"] = json::object{};
  if (handlers.elicitation)
    capabilities["elicitation"] = json::object{{"form", json::object{{"applyDefaults", true}}}};
  return capabilities;
}

json::object client_info(const ClientOptions& options) {
  return json::object{{"name", options.client_name}, {"version", TETHER_VERSION}};
}

json::object initialize_params(const ClientOptions& options) {
  return json::object{{"protocolVersion", kProtocolVersion},
                      {"capabilities", client_capabilities(options.handlers)},
                      {"clientInfo", client_info(options)}};
}

const json::object* object_at(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value && value->is_object() ? &value->as_object() : nullptr;
}

bool flag_at(const json::object* object, std::string_view key) {
  const auto* value = object ? object->if_contains(key) : nullptr;
  return value && value->is_bool() && value->as_bool();
}

bool lists_version(const json::value* versions, std::string_view version) {
  if (!versions || !versions->is_array()) return false;
  const auto& list = versions->as_array();
  return std::any_of(list.begin(), list.end(), [&](const json::value& v) {
    return v.is_string() && v.as_string() == version;
  });
}

// A server/discover answer this client can use: one that lists 2026-07-28.
bool is_modern_discovery(const Expected<json::value>& answer) {
  if (!answer || !answer->is_object()) return false;
  return lists_version(answer->as_object().if_contains("supportedVersions"), proto::kModernVersion);
}

// -32022 naming 2026-07-28 among the versions the server supports: the request may be sent
// again as it was (the server refused some other version, or a version it briefly did not).
bool is_retryable_version_error(const jsonrpc::Error& error) {
  if (error.code != proto::code::kUnsupportedProtocolVersion || !error.data ||
      !error.data->is_object())
    return false;
  return lists_version(error.data->as_object().if_contains("supported"), proto::kModernVersion);
}

// The discover result in the shape of an initialize result, so hosts read both alike.
json::object handshake_from_discovery(const json::object& discovery) {
  json::object result;
  result["protocolVersion"] = proto::kModernVersion;
  if (const auto* caps = object_at(discovery, "capabilities")) result["capabilities"] = *caps;
  const auto* meta = object_at(discovery, "_meta");
  if (const auto* info = meta ? object_at(*meta, proto::meta::kServerInfo) : nullptr)
    result["serverInfo"] = *info;
  else if (const auto* legacy_info = object_at(discovery, "serverInfo"))
    result["serverInfo"] = *legacy_info;
  if (const auto* instructions = discovery.if_contains("instructions"))
    result["instructions"] = *instructions;
  return result;
}

// form.applyDefaults: an accepted answer gets the requested schema's defaults for the fields
// the user left out.
void apply_elicitation_defaults(const json::value& params, jsonrpc::Reply& reply) {
  if (!reply || !reply->is_object() || !params.is_object()) return;
  auto& result = reply->as_object();
  const auto* action = result.if_contains("action");
  if (!action || *action != "accept") return;
  const auto* schema = params.as_object().if_contains("requestedSchema");
  const auto* properties =
      schema && schema->is_object() ? schema->as_object().if_contains("properties") : nullptr;
  if (!properties || !properties->is_object()) return;
  auto* content = result.if_contains("content");
  if (!content || !content->is_object()) content = &(result["content"] = json::object{});
  for (const auto& [name, property] : properties->as_object()) {
    const auto* fallback =
        property.is_object() ? property.as_object().if_contains("default") : nullptr;
    if (fallback && !content->as_object().contains(name)) content->as_object()[name] = *fallback;
  }
}

// `ttlMs` of a 2026-07-28 listing page (0, not cached, when absent or invalid).
milliseconds ttl_of(const json::object& page) {
  const auto* ttl = page.if_contains("ttlMs");
  if (!ttl || !ttl->is_number()) return milliseconds(0);
  error_code ec;
  const auto value = ttl->to_number<std::int64_t>(ec);
  return ec || value < 0 ? milliseconds(0) : milliseconds(value);
}

// One handshake request running on its own; its answer lands here.
struct Attempt {
  bool started = false;
  bool succeeded = false;
  std::optional<Expected<json::value>> answer;
  bool failed() const { return answer && !succeeded; }
};

}  // namespace

std::optional<ProtocolEra> EraMemory::recall(const std::string& key) const {
  std::lock_guard lock(mutex_);
  auto it = eras_.find(key);
  if (it == eras_.end()) return std::nullopt;
  return it->second;
}

void EraMemory::remember(const std::string& key, ProtocolEra era) {
  std::lock_guard lock(mutex_);
  eras_[key] = era;
}

struct Client::State : std::enable_shared_from_this<State> {
  State(asio::any_io_executor ex, ServerConnection connection, ClientOptions opts)
      : executor(std::move(ex)),
        diagnostics(std::move(connection.diagnostics)),
        description(std::move(connection.description)),
        options(std::move(opts)),
        capabilities(client_capabilities(options.handlers)),
        info(client_info(options)),
        ended(executor),
        handshake_progress(executor),
        listen_progress(executor) {
    jsonrpc::PeerOptions peer_options;
    peer_options.answer_invalid_input = false;
    peer = jsonrpc::Peer::create(executor, std::move(connection.transport), peer_options);
  }

  // A request that asked for progress: each notification restarts its timeout.
  struct ProgressSink {
    std::optional<milliseconds> timeout;
    std::function<void(const json::object&)> on_progress;
  };

  struct CachedList {
    json::array items;
    std::chrono::steady_clock::time_point expires;
  };

  asio::any_io_executor executor;
  std::shared_ptr<ServerDiagnostics> diagnostics;
  std::string description;
  ClientOptions options;
  json::object capabilities;
  json::object info;
  std::shared_ptr<jsonrpc::Peer> peer;
  std::unordered_map<std::int64_t, std::shared_ptr<ProgressSink>> progress;
  bool run_ended = false;
  bool ready = false;  // the handshake succeeded: list_changed and on_closed apply from now on
  bool shutting_down = false;
  ProtocolEra era = ProtocolEra::legacy;
  json::object server_capabilities;
  // A relisting that finishes after a newer one started is stale and not reported.
  std::map<ListKind, std::uint64_t> relist_generation;
  std::string reason;
  jsonrpc::AsyncSignal ended;
  jsonrpc::AsyncSignal handshake_progress;  // an Attempt got its answer

  // 2026-07-28 only.
  std::optional<std::string> log_level;
  std::map<std::string_view, CachedList> list_cache;  // by list method
  std::set<std::string> subscribed;
  // The listen in force: its generation, the signal that cancels it, whether the server
  // acknowledged it, and whether it ended for good (the server does not offer it).
  std::uint64_t listen_generation = 0;
  // Shared with the listen's completion handler: the coroutine's frames refer to it until the
  // handler is gone.
  std::shared_ptr<asio::cancellation_signal> listen_cancel;
  std::optional<std::int64_t> listen_id;
  bool listen_acknowledged = false;
  std::optional<jsonrpc::Error> listen_failure;
  jsonrpc::AsyncSignal listen_progress;

  bool modern() const { return era == ProtocolEra::modern; }

  void start() {
    auto self = shared_from_this();
    peer->on_request([weak = weak_from_this()](jsonrpc::Request request) {
      return answer(weak, std::move(request));
    });
    peer->on_notification([raw = this](const jsonrpc::Notification& notification) {
      raw->on_notification(notification);
    });
    asio::co_spawn(executor, run(self), asio::detached);
  }

  static asio::awaitable<void> run(std::shared_ptr<State> self) {
    try {
      co_await self->peer->run();
    } catch (const std::exception& e) {
      // A host callback threw inside the read loop: the session cannot go on, but it must end
      // properly (pending requests failed, the server ended, waiters woken).
      self->peer->abort(std::string("MCP client callback failed: ") + e.what());
    }
    self->run_ended = true;
    self->reason = self->end_reason();
    self->progress.clear();
    self->ended.notify_all();
    self->handshake_progress.notify_all();
    self->listen_progress.notify_all();
    if (self->ready && !self->shutting_down && self->options.handlers.on_closed)
      guarded("on_closed", [&] { self->options.handlers.on_closed(self->reason); });
  }

  // Host callbacks run inside the read loop; one that throws is logged, not fatal.
  template <class F>
  static void guarded(std::string_view what, F&& callback) {
    try {
      callback();
    } catch (const std::exception& e) {
      spdlog::error("MCP client: the host's {} callback threw: {}", what, e.what());
    }
  }

  // Why the session ended: what the launcher knows beats what the Peer saw (EOF, broken pipe).
  std::string end_reason() const {
    if (!reason.empty()) return reason;
    if (diagnostics->end_reason()) return *diagnostics->end_reason();
    return peer->end_reason().empty() ? std::string("MCP session closed") : peer->end_reason();
  }

  bool is_closed() const { return run_ended || peer->is_closed(); }

  // What a request fails with once the session ended: why, and, for a session that was ready,
  // the server's last stderr lines (a failed handshake appends them itself).
  jsonrpc::Error closed_error() const {
    auto message = end_reason();
    if (const auto tail = diagnostics->stderr_tail(); ready && !tail.empty())
      message += "\nMCP server stderr (last lines):\n" + tail;
    return make_error(jsonrpc::code::kConnectionClosed, std::move(message));
  }

  // What the server asks of the host, by request (session revisions) or in an input_required
  // result (2026-07-28).
  static asio::awaitable<jsonrpc::Reply> serve(std::shared_ptr<State> self, std::string method,
                                               json::value params) {
    jsonrpc::Reply reply{boost::system::in_place_error,
                         make_error(jsonrpc::code::kMethodNotFound, "method not found")};
    const auto& handlers = self->options.handlers;
    try {
      if (method == "ping") {
        reply = json::value(json::object{});
      } else if (method == "roots/list" && handlers.roots) {
        reply = co_await handlers.roots(std::move(params));
      } else if (method == "sampling/createMessage" && handlers.sampling) {
        reply = co_await handlers.sampling(std::move(params));
      } else if (method == "elicitation/create" && handlers.elicitation) {
        json::value asked = params;
        reply = co_await handlers.elicitation(std::move(params));
        apply_elicitation_defaults(asked, reply);
      }
    } catch (const std::exception& e) {
      reply = make_error(jsonrpc::code::kInternalError, e.what());
    }
    co_return reply;
  }

  static asio::awaitable<jsonrpc::Reply> answer(std::weak_ptr<State> weak,
                                                jsonrpc::Request request) {
    auto self = weak.lock();
    if (!self)
      co_return jsonrpc::Reply{boost::system::in_place_error,
                               make_error(jsonrpc::code::kMethodNotFound, "method not found")};
    co_return co_await serve(self, std::move(request.method), std::move(request.params));
  }

  void on_notification(const jsonrpc::Notification& notification) {
    const auto& method = notification.method;
    if (method == "notifications/progress") {
      guarded("progress", [&] { on_progress(notification.params); });
    } else if (!ready) {
      // Before the handshake completed there is no listing to refresh and no session to report
      // to.
      spdlog::debug("MCP server ({}) sent {} during the handshake", description, method);
    } else if (method == "notifications/tools/list_changed") {
      relist(ListKind::tools, kTools);
    } else if (method == "notifications/resources/list_changed") {
      relist(ListKind::resources, kResources);
    } else if (method == "notifications/prompts/list_changed") {
      relist(ListKind::prompts, kPrompts);
    } else if (method == "notifications/subscriptions/acknowledged") {
      on_listen_acknowledged(notification.params);
    } else if (method == "notifications/cancelled") {
      // Our handlers answer quickly or not at all; nothing to stop.
      spdlog::debug("MCP server ({}) cancelled a request it sent", description);
    } else if (options.handlers.on_notification) {
      guarded(method, [&] { options.handlers.on_notification(method, notification.params); });
    }
  }

  void on_progress(const json::value& params) {
    if (!params.is_object()) return;
    const auto* token = params.as_object().if_contains("progressToken");
    if (!token || !token->is_int64()) return;
    auto it = progress.find(token->as_int64());
    if (it == progress.end()) return;
    auto sink = it->second;  // the callback may end the request
    if (sink->timeout) peer->extend_deadline(it->first, *sink->timeout);
    sink->on_progress(params.as_object());
  }

  void relist(ListKind kind, ListMethod list) {
    list_cache.erase(list.method);
    if (kind == ListKind::resources) list_cache.erase(kTemplates.method);
    const std::uint64_t generation = ++relist_generation[kind];
    asio::co_spawn(executor, relist_now(shared_from_this(), kind, list, generation),
                   asio::detached);
  }

  static asio::awaitable<void> relist_now(std::shared_ptr<State> self, ListKind kind,
                                          ListMethod list, std::uint64_t generation) {
    auto items = co_await self->list_all(list);
    if (self->relist_generation[kind] != generation) co_return;
    if (!items) {
      // A session that ended meanwhile is reported once, by on_closed (or was shut down).
      const auto level = self->is_closed() ? spdlog::level::debug : spdlog::level::warn;
      spdlog::log(level, "MCP server ({}): listing after {} changed failed: {}", self->description,
                  list.key, items.error().message);
      co_return;
    }
    if (self->options.handlers.on_list_changed)
      guarded("list_changed", [&] { self->options.handlers.on_list_changed(kind, *items); });
  }

  // `_meta` as this client's revision wants it: the 2026-07-28 keys set on every request of a
  // modern session, and removed from a legacy one's (a gateway may forward a request that a
  // 2026-07-28 host made).
  void stamp_meta(json::object& params, bool modern_request,
                  const std::optional<json::object>& declared) const {
    auto* meta = params.if_contains("_meta");
    if (!modern_request) {
      if (!meta || !meta->is_object()) return;
      auto& fields = meta->as_object();
      for (auto key : {proto::meta::kProtocolVersion, proto::meta::kClientCapabilities,
                       proto::meta::kClientInfo, proto::meta::kLogLevel})
        fields.erase(key);
      if (fields.empty()) params.erase("_meta");
      return;
    }
    if (!meta || !meta->is_object()) meta = &(params["_meta"] = json::object{});
    auto& fields = meta->as_object();
    fields[proto::meta::kProtocolVersion] = proto::kModernVersion;
    fields[proto::meta::kClientCapabilities] = declared ? *declared : capabilities;
    fields[proto::meta::kClientInfo] = info;
    if (log_level) fields[proto::meta::kLogLevel] = *log_level;
  }

  // One request and its answer. `modern_request`: carries the 2026-07-28 `_meta` (the
  // session's era, or the handshake's server/discover). No timeout when neither `call` nor
  // `default_timeout` sets one.
  asio::awaitable<Expected<json::value>> request(std::string method, json::object params,
                                                 CallOptions call,
                                                 std::optional<milliseconds> default_timeout,
                                                 bool modern_request) {
    auto self = shared_from_this();
    stamp_meta(params, modern_request, call.client_capabilities);
    const std::optional<milliseconds> timeout = call.timeout ? call.timeout : default_timeout;
    for (bool retried = false;; retried = true) {
      auto reply = co_await request_once(method, params, call, timeout);
      // A 2026-07-28 server that refused the version while listing it as supported gets the
      // request once more.
      if (!reply && modern_request && !retried && is_retryable_version_error(reply.error()))
        continue;
      co_return reply;
    }
  }

  asio::awaitable<Expected<json::value>> request_once(const std::string& method,
                                                      json::object params, const CallOptions& call,
                                                      std::optional<milliseconds> timeout) {
    auto self = shared_from_this();
    if (is_closed()) co_return Expected<json::value>{boost::system::in_place_error, closed_error()};
    const std::int64_t id = peer->reserve_id();
    if (call.on_progress) {
      auto& meta = params["_meta"];
      if (!meta.is_object()) meta.emplace_object();
      meta.as_object()["progressToken"] = id;
      progress[id] = std::make_shared<ProgressSink>(ProgressSink{timeout, call.on_progress});
    }
    struct Unregister {
      State* state;
      std::int64_t id;
      ~Unregister() { state->progress.erase(id); }
    } unregister{this, id};

    // A caller that stops waiting (Asio cancellation unwinds this frame) cancels the request on
    // the server too. The MCP spec forbids cancelling initialize; its caller ends the server.
    struct CancelUnlessAnswered {
      State* state;
      std::int64_t id;
      bool active;
      ~CancelUnlessAnswered() {
        if (active) state->cancel(id, "abandoned by the caller");
      }
    } cancel_unless_answered{this, id, method != "initialize"};

    if (method == "subscriptions/listen") listen_id = id;
    json::value body(std::move(params));
    auto reply = co_await peer->call_with_id(id, method, std::move(body), timeout);
    cancel_unless_answered.active = false;
    if (!reply && reply.error().code == jsonrpc::code::kRequestTimedOut) {
      if (method != "initialize") cancel(id, "timed out");
      co_return Expected<json::value>{
          boost::system::in_place_error,
          make_error(jsonrpc::code::kRequestTimedOut,
                     fmt::format("timed out awaiting {} after {}", method,
                                 format_duration(timeout.value_or(milliseconds(0)))))};
    }
    if (!reply && reply.error().code == jsonrpc::code::kConnectionClosed)
      co_return Expected<json::value>{boost::system::in_place_error, closed_error()};
    if (!reply) co_return Expected<json::value>{boost::system::in_place_error, reply.error()};
    co_return Expected<json::value>{std::move(*reply)};
  }

  void cancel(std::int64_t id, std::string_view reason) {
    if (!is_closed())
      peer->notify("notifications/cancelled", json::object{{"requestId", id}, {"reason", reason}});
  }

  static Expected<json::object> invalid_result(std::string_view method, const json::value& got) {
    return Expected<json::object>{
        boost::system::in_place_error,
        make_error(jsonrpc::code::kInvalidParams,
                   fmt::format("invalid result for {}: expected an object, got {}", method,
                               kind_name(got)))};
  }

  // A request in the session's era and its result object; a 2026-07-28 input_required result
  // is answered through the handlers and the request sent again, up to kMaxInputRounds times.
  asio::awaitable<Expected<json::object>> request_object(std::string method, json::object params,
                                                         CallOptions call,
                                                         std::optional<milliseconds> timeout) {
    auto self = shared_from_this();
    for (int round = 0;; ++round) {
      auto result = co_await request(method, params, call, timeout, modern());
      if (!result) co_return Expected<json::object>{boost::system::in_place_error, result.error()};
      if (!result->is_object()) co_return invalid_result(method, *result);
      auto& object = result->as_object();
      const auto type = modern() ? proto::result_type(object) : proto::kComplete;
      if (type == proto::kComplete || (type == proto::kInputRequired && call.relay_input_required))
        co_return Expected<json::object>{std::move(object)};
      auto failure = input_round_failure(method, type, round);
      if (!failure) {
        auto responses = co_await answer_input_requests(method, object);
        if (responses) {
          params["inputResponses"] = std::move(*responses);
          if (const auto* state = object.if_contains("requestState"))
            params["requestState"] = *state;
          else
            params.erase("requestState");
          continue;
        }
        failure = responses.error();
      }
      co_return Expected<json::object>{boost::system::in_place_error, std::move(*failure)};
    }
  }

  std::optional<jsonrpc::Error> input_round_failure(std::string_view method, std::string_view type,
                                                    int round) const {
    if (type != proto::kInputRequired)
      return make_error(jsonrpc::code::kInvalidParams,
                        fmt::format("MCP server ({}) answered {} with resultType '{}', which "
                                    "this client does not support",
                                    description, method, type));
    if (!proto::accepts_input_responses(method))
      return make_error(jsonrpc::code::kInvalidParams,
                        fmt::format("MCP server ({}) answered {} with input_required, which only "
                                    "tools/call, prompts/get and resources/read may",
                                    description, method));
    if (round + 1 >= kMaxInputRounds)
      return make_error(jsonrpc::code::kInvalidParams,
                        fmt::format("MCP server ({}) still required input for {} after {} rounds",
                                    description, method, kMaxInputRounds));
    return std::nullopt;
  }

  // inputRequests -> inputResponses, each through the host's handler for its method.
  asio::awaitable<Expected<json::object>> answer_input_requests(std::string_view call,
                                                                const json::object& result) {
    auto self = shared_from_this();
    const std::string call_method(call);
    json::object responses;
    const auto* requests = object_at(result, "inputRequests");
    if (!requests || requests->empty())
      co_return Expected<json::object>{
          boost::system::in_place_error,
          make_error(jsonrpc::code::kInvalidParams,
                     fmt::format("MCP server ({}) answered {} with input_required but no "
                                 "inputRequests",
                                 description, call_method))};
    for (const auto& [key, asked] : *requests) {
      const auto* method = asked.is_object() ? asked.as_object().if_contains("method") : nullptr;
      const std::string name = method && method->is_string() ? std::string(method->as_string())
                                                             : std::string("(no method)");
      const auto* params = asked.is_object() ? asked.as_object().if_contains("params") : nullptr;
      json::value given = params ? *params : json::value(json::object());
      auto reply = co_await serve(self, name, std::move(given));
      if (!reply) {
        auto error = reply.error();
        error.message = fmt::format("MCP server ({}) asked for {} during {}: {}", description, name,
                                    call_method,
                                    error.code == jsonrpc::code::kMethodNotFound
                                        ? std::string("this host does not provide it")
                                        : error.message);
        co_return Expected<json::object>{boost::system::in_place_error, std::move(error)};
      }
      responses[key] = std::move(*reply);
    }
    co_return Expected<json::object>{std::move(responses)};
  }

  asio::awaitable<Expected<json::array>> list_all(ListMethod list) {
    auto self = shared_from_this();
    const auto now = std::chrono::steady_clock::now();
    if (auto cached = list_cache.find(list.method);
        cached != list_cache.end() && now < cached->second.expires)
      co_return Expected<json::array>{cached->second.items};
    json::array items;
    std::set<std::string> cursors;
    std::optional<std::string> cursor;
    std::optional<milliseconds> ttl;
    for (;;) {
      json::object params;
      if (cursor) params["cursor"] = *cursor;
      CallOptions plain;
      auto page = co_await request_object(std::string(list.method), std::move(params),
                                          std::move(plain), options.startup_timeout);
      if (!page) co_return Expected<json::array>{boost::system::in_place_error, page.error()};
      ttl = std::min(ttl.value_or(milliseconds::max()), ttl_of(*page));
      if (auto* found = page->if_contains(list.key); found && found->is_array()) {
        for (auto& item : found->as_array()) items.push_back(std::move(item));
      }
      const auto* next = page->if_contains("nextCursor");
      if (!next || !next->is_string()) break;
      std::string value(next->as_string());
      if (!cursors.insert(value).second)
        co_return Expected<json::array>{
            boost::system::in_place_error,
            make_error(jsonrpc::code::kInvalidParams,
                       fmt::format("{} returned duplicate cursor", list.method))};
      cursor = std::move(value);
    }
    if (modern() && list.method == kTools.method) drop_invalid_header_tools(items);
    if (modern() && ttl && *ttl > milliseconds(0))
      list_cache[list.method] = CachedList{items, std::chrono::steady_clock::now() + *ttl};
    co_return Expected<json::array>{std::move(items)};
  }

  // A tool whose x-mcp-header declarations break the rules cannot be called over HTTP as the
  // 2026-07-28 revision requires: it is left out, the others kept.
  void drop_invalid_header_tools(json::array& tools) const {
    const auto invalid = [&](const json::value& tool) {
      if (!tool.is_object()) return false;
      auto params = proto::header_params(tool.as_object());
      if (params) return false;
      const auto* name = tool.as_object().if_contains("name");
      spdlog::warn("MCP server ({}): leaving out tool {}: {}", description,
                   name ? json::serialize(*name) : std::string("(unnamed)"),
                   params.error().message);
      return true;
    };
    tools.erase(std::remove_if(tools.begin(), tools.end(), invalid), tools.end());
  }

  // --- 2026-07-28 subscriptions/listen -------------------------------------------------------

  json::object listen_params() const {
    json::object wanted;
    const auto* tools = object_at(server_capabilities, "tools");
    const auto* prompts = object_at(server_capabilities, "prompts");
    const auto* resources = object_at(server_capabilities, "resources");
    if (flag_at(tools, "listChanged")) wanted["toolsListChanged"] = true;
    if (flag_at(prompts, "listChanged")) wanted["promptsListChanged"] = true;
    if (flag_at(resources, "listChanged")) wanted["resourcesListChanged"] = true;
    if (!subscribed.empty()) {
      json::array uris;
      for (const auto& uri : subscribed) uris.emplace_back(uri);
      wanted["resourceSubscriptions"] = std::move(uris);
    }
    json::object params;
    if (!wanted.empty()) params["notifications"] = std::move(wanted);
    return params;
  }

  // Replaces the listen in force (if any) by one for the current wishes; none when there is
  // nothing to listen for.
  void restart_listen() {
    if (listen_cancel) listen_cancel->emit(asio::cancellation_type::terminal);
    listen_cancel.reset();
    listen_id.reset();
    listen_acknowledged = false;
    listen_failure.reset();
    const std::uint64_t generation = ++listen_generation;
    auto params = listen_params();
    if (params.empty() || is_closed()) {
      listen_progress.notify_all();
      return;
    }
    listen_cancel = std::make_shared<asio::cancellation_signal>();
    asio::co_spawn(
        executor, keep_listening(shared_from_this(), std::move(params), generation),
        asio::bind_cancellation_slot(listen_cancel->slot(),
                                     [signal = listen_cancel](const std::exception_ptr&) {}));
  }

  static asio::awaitable<void> keep_listening(std::shared_ptr<State> self, json::object params,
                                              std::uint64_t generation) {
    milliseconds backoff = kListenBackoff;
    while (!self->is_closed() && self->listen_generation == generation) {
      CallOptions plain;
      auto ended = co_await self->request("subscriptions/listen", params, std::move(plain),
                                          std::nullopt, true);
      if (self->listen_generation != generation) co_return;
      self->listen_acknowledged = false;
      if (!ended && ended.error().code == jsonrpc::code::kMethodNotFound) {
        spdlog::warn(
            "MCP server ({}) does not offer subscriptions/listen: no list changes or "
            "resource updates will arrive",
            self->description);
        self->listen_failure = ended.error();
        self->listen_progress.notify_all();
        co_return;
      }
      if (!ended) self->listen_failure = ended.error();
      self->listen_progress.notify_all();
      if (self->is_closed()) co_return;
      spdlog::debug("MCP server ({}): subscriptions/listen ended ({}); listening again in {}",
                    self->description, ended ? std::string("answered") : ended.error().message,
                    format_duration(backoff));
      asio::steady_timer wait(self->executor, backoff);
      error_code ignored;
      co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      backoff = std::min(backoff * 2, kMaxListenBackoff);
    }
  }

  void on_listen_acknowledged(const json::value& params) {
    // The acknowledgement names the listen request it belongs to; one of a listen already
    // replaced is stale.
    const auto* meta = params.is_object() ? object_at(params.as_object(), "_meta") : nullptr;
    const auto* id = meta ? meta->if_contains(proto::meta::kSubscriptionId) : nullptr;
    if (id && listen_id && !(id->is_int64() && id->as_int64() == *listen_id) &&
        !(id->is_string() && id->as_string() == std::to_string(*listen_id)))
      return;
    listen_acknowledged = true;
    listen_failure.reset();
    listen_progress.notify_all();
  }

  // After restart_listen(): the acknowledgement, or why there is none.
  asio::awaitable<Expected<void>> wait_listening() {
    auto self = shared_from_this();
    const std::uint64_t generation = listen_generation;
    asio::steady_timer limit(executor, options.startup_timeout);
    auto timed_out = std::make_shared<bool>(false);
    limit.async_wait([weak = weak_from_this(), timed_out](error_code ec) {
      if (ec) return;
      *timed_out = true;
      if (auto self = weak.lock()) self->listen_progress.notify_all();
    });
    while (!listen_acknowledged && !listen_failure && !is_closed() && !*timed_out &&
           listen_generation == generation && listen_cancel)
      co_await listen_progress.wait();
    limit.cancel();
    if (is_closed()) co_return Expected<void>{boost::system::in_place_error, closed_error()};
    if (listen_failure) co_return Expected<void>{boost::system::in_place_error, *listen_failure};
    if (*timed_out)
      co_return Expected<void>{
          boost::system::in_place_error,
          make_error(jsonrpc::code::kRequestTimedOut,
                     fmt::format("timed out awaiting subscriptions/listen acknowledgement after {}",
                                 format_duration(options.startup_timeout)))};
    co_return Expected<void>{};
  }

  asio::awaitable<Expected<void>> change_subscription(std::string uri, bool subscribe) {
    auto self = shared_from_this();
    const bool changed = subscribe ? subscribed.insert(uri).second : subscribed.erase(uri) > 0;
    if (!changed) co_return Expected<void>{};
    restart_listen();
    co_return co_await wait_listening();
  }

  // --- the handshake --------------------------------------------------------------------------

  void attempt(std::shared_ptr<Attempt> slot, std::string method, json::object params,
               bool modern_request) {
    slot->started = true;
    asio::co_spawn(executor,
                   run_attempt(shared_from_this(), std::move(slot), std::move(method),
                               std::move(params), modern_request),
                   asio::detached);
  }

  static asio::awaitable<void> run_attempt(std::shared_ptr<State> self,
                                           std::shared_ptr<Attempt> slot, std::string method,
                                           json::object params, bool modern_request) {
    CallOptions plain;
    const bool discover = method == "server/discover";
    auto answer = co_await self->request(std::move(method), std::move(params), std::move(plain),
                                         self->options.startup_timeout, modern_request);
    slot->succeeded = discover ? is_modern_discovery(answer) : answer && answer->is_object();
    slot->answer = std::move(answer);
    self->handshake_progress.notify_all();
  }

  // Waits for the next Attempt answer, or until `until`.
  asio::awaitable<void> wait_handshake(std::chrono::steady_clock::time_point until) {
    asio::steady_timer limit(executor, until);
    limit.async_wait([weak = weak_from_this()](error_code ec) {
      if (auto self = weak.lock(); self && !ec) self->handshake_progress.notify_all();
    });
    co_await handshake_progress.wait();
    limit.cancel();
  }

  // Ends the server through the transport's orderly close, bounded: a Peer whose writer is
  // stuck on a server that stopped reading is aborted (which kills the server).
  asio::awaitable<void> close() {
    auto self = shared_from_this();
    shutting_down = true;
    if (listen_cancel) listen_cancel->emit(asio::cancellation_type::terminal);
    listen_cancel.reset();
    if (!run_ended) {
      peer->close();
      asio::steady_timer limit(executor);
      // A safety net only: every transport's close() is bounded by its own kill grace.
      limit.expires_after(milliseconds(10'000));
      boost::system::error_code ignored;
      auto timed_out = limit.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      auto done = wait_ended();
      auto which = co_await (std::move(done) || std::move(timed_out));
      if (which.index() == 1) peer->abort("MCP client shut down");
      if (!run_ended) co_await wait_ended();  // abort() ends the read loop at once
    }
  }

  asio::awaitable<void> wait_ended() {
    while (!run_ended) co_await ended.wait();
  }
};

asio::awaitable<Expected<std::shared_ptr<Client>>> Client::connect(asio::any_io_executor executor,
                                                                   ServerConnection connection,
                                                                   ClientOptions options) {
  using Result = Expected<std::shared_ptr<Client>>;
  using Clock = std::chrono::steady_clock;
  auto state = std::make_shared<State>(executor, std::move(connection), std::move(options));
  state->start();
  // A connect that is cancelled or throws must not leave the server running.
  struct EndUnlessConnected {
    std::shared_ptr<State> state;
    bool active = true;
    ~EndUnlessConnected() {
      if (active && !state->is_closed()) state->peer->abort("MCP handshake abandoned");
    }
  } end_unless_connected{state};
  const milliseconds startup = state->options.startup_timeout;
  const auto started = Clock::now();
  const auto deadline = started + startup;
  const auto& eras = state->options.eras;
  const auto remembered = eras ? eras->recall(state->options.era_key) : std::nullopt;
  // Unknown servers race: initialize joins a discover left unanswered for discover_timeout.
  const bool race = !remembered;
  auto discover = std::make_shared<Attempt>();
  auto initialize = std::make_shared<Attempt>();
  const auto start_discover = [&] {
    state->attempt(discover, "server/discover", json::object(), true);
  };
  const auto start_initialize = [&] {
    state->attempt(initialize, "initialize", initialize_params(state->options), false);
  };
  if (remembered == ProtocolEra::legacy)
    start_initialize();
  else
    start_discover();
  for (;;) {
    if (discover->succeeded || initialize->succeeded || state->is_closed()) break;
    const auto now = Clock::now();
    if (!initialize->started &&
        (discover->failed() || (race && now >= started + state->options.discover_timeout))) {
      start_initialize();
      continue;
    }
    if (!discover->started && initialize->failed()) {
      start_discover();
      continue;
    }
    const bool pending =
        (discover->started && !discover->answer) || (initialize->started && !initialize->answer);
    if (!pending || now >= deadline) break;
    auto until = deadline;
    if (race && !initialize->started)
      until = std::min(until, started + state->options.discover_timeout);
    co_await state->wait_handshake(until);
  }

  std::optional<std::string> failure;
  bool timed_out = false;
  std::string version;
  if (discover->succeeded) {
    version = proto::kModernVersion;
  } else if (initialize->succeeded) {
    const auto* v = (*initialize->answer)->as_object().if_contains("protocolVersion");
    version = v && v->is_string() ? std::string(v->as_string()) : std::string();
    const auto& supported = proto::kLegacyVersions;
    if (std::find(std::begin(supported), std::end(supported), version) == std::end(supported))
      failure = fmt::format("unsupported MCP protocol version '{}'", version);
  } else if (state->is_closed()) {
    failure = "handshaking with MCP server failed: " + state->end_reason();
  } else {
    // What the session revision's handshake said, when it ran; else the probe's.
    const auto& last = initialize->answer ? initialize->answer : discover->answer;
    timed_out = !last || (!*last && last->error().code == jsonrpc::code::kRequestTimedOut);
    if (timed_out)
      failure =
          fmt::format("timed out handshaking with MCP server after {}", format_duration(startup));
    else if (!*last && last->error().code == jsonrpc::code::kMethodNotFound)
      failure = fmt::format(
          "handshaking with MCP server failed: the program is not an MCP server (it answered {} "
          "with method not found: {})",
          initialize->answer ? "initialize" : "server/discover", last->error().message);
    else if (!*last)
      failure = "handshaking with MCP server failed: " + last->error().message;
    else
      failure = "handshaking with MCP server failed: initialize result is not an object";
  }
  if (failure) {
    co_await state->close();
    if (const auto tail = state->diagnostics->stderr_tail(); !tail.empty())
      *failure += "\nMCP server stderr (last lines):\n" + tail;
    co_return Result{
        boost::system::in_place_error,
        make_error(timed_out ? jsonrpc::code::kRequestTimedOut : jsonrpc::code::kHandshakeFailed,
                   std::move(*failure))};
  }

  end_unless_connected.active = false;
  auto client = std::shared_ptr<Client>(new Client(state));
  if (discover->succeeded) {
    state->era = ProtocolEra::modern;
    client->handshake_result_ = handshake_from_discovery((*discover->answer)->as_object());
  } else {
    state->peer->notify("notifications/initialized", json::object{});
    client->handshake_result_ = std::move((*initialize->answer)->as_object());
  }
  state->ready = true;
  if (const auto* caps = object_at(client->handshake_result_, "capabilities"))
    client->server_capabilities_ = *caps;
  state->server_capabilities = client->server_capabilities_;
  client->era_ = state->era;
  client->protocol_version_ = std::move(version);
  client->description_ = state->description;
  if (eras) eras->remember(state->options.era_key, state->era);
  if (state->modern()) state->restart_listen();
  co_return Result{std::move(client)};
}

Client::Client(std::shared_ptr<State> state) : state_(std::move(state)) {}

Client::~Client() {
  if (!state_->is_closed()) {
    state_->shutting_down = true;
    state_->peer->abort("MCP client dropped");
  }
}

asio::awaitable<Expected<json::array>> Client::list_tools() {
  return state_->list_all(kTools);
}
asio::awaitable<Expected<json::array>> Client::list_resources() {
  return state_->list_all(kResources);
}
asio::awaitable<Expected<json::array>> Client::list_resource_templates() {
  return state_->list_all(kTemplates);
}
asio::awaitable<Expected<json::array>> Client::list_prompts() {
  return state_->list_all(kPrompts);
}

asio::awaitable<Expected<json::object>> Client::call_tool(std::string name, json::value arguments,
                                                          CallOptions options) {
  if (!arguments.is_object() && !arguments.is_null())
    co_return Expected<json::object>{
        boost::system::in_place_error,
        make_error(
            jsonrpc::code::kInvalidArguments,
            fmt::format("MCP tool arguments must be a JSON object, got {}", kind_name(arguments)))};
  json::object params;
  params["name"] = name;
  if (arguments.is_object()) params["arguments"] = std::move(arguments);
  co_return co_await state_->request_object("tools/call", std::move(params), std::move(options),
                                            state_->options.tool_timeout);
}

namespace {

std::string string_param(const json::object& params, std::string_view key) {
  const auto* value = params.if_contains(key);
  return value && value->is_string() ? std::string(value->as_string()) : std::string();
}

}  // namespace

asio::awaitable<Expected<json::object>> Client::request(std::string method, json::object params,
                                                        CallOptions options) {
  auto state = state_;
  if (state->modern()) {
    // The session revisions' methods the 2026-07-28 revision carries out otherwise.
    if (method == "logging/setLevel") {
      state->log_level = string_param(params, "level");
      co_return Expected<json::object>{json::object()};
    }
    const bool subscribing = method == "resources/subscribe";
    if (subscribing || method == "resources/unsubscribe") {
      auto changed = co_await state->change_subscription(string_param(params, "uri"), subscribing);
      if (!changed)
        co_return Expected<json::object>{boost::system::in_place_error, changed.error()};
      co_return Expected<json::object>{json::object()};
    }
    if (method == "ping") method = "server/discover";
  }
  co_return co_await state->request_object(std::move(method), std::move(params), std::move(options),
                                           state->options.startup_timeout);
}

asio::awaitable<Expected<json::object>> Client::read_resource(std::string_view uri) {
  return request("resources/read", uri_params(uri));
}

asio::awaitable<Expected<json::object>> Client::get_prompt(std::string_view name,
                                                           json::object arguments) {
  json::object params;
  params["name"] = name;
  params["arguments"] = std::move(arguments);
  return request("prompts/get", std::move(params));
}

asio::awaitable<Expected<json::object>> Client::complete(json::object params) {
  return request("completion/complete", std::move(params));
}

namespace {
asio::awaitable<Expected<void>> discard_result(asio::awaitable<Expected<json::object>> pending) {
  auto result = co_await std::move(pending);
  if (!result) co_return Expected<void>{boost::system::in_place_error, result.error()};
  co_return Expected<void>{};
}

}  // namespace

asio::awaitable<Expected<void>> Client::set_logging_level(std::string_view level) {
  json::object params;
  params["level"] = level;
  return discard_result(request("logging/setLevel", std::move(params)));
}

asio::awaitable<Expected<void>> Client::ping() {
  return discard_result(request("ping", json::object{}));
}

asio::awaitable<Expected<void>> Client::subscribe(std::string_view uri) {
  return discard_result(request("resources/subscribe", uri_params(uri)));
}

asio::awaitable<Expected<void>> Client::unsubscribe(std::string_view uri) {
  return discard_result(request("resources/unsubscribe", uri_params(uri)));
}

void Client::notify_roots_changed() {
  if (!state_->is_closed() && !state_->modern())
    state_->peer->notify("notifications/roots/list_changed", json::object{});
}

asio::awaitable<void> Client::shutdown() {
  return state_->close();
}

bool Client::is_closed() const {
  return state_->is_closed();
}

std::string Client::close_reason() const {
  return state_->is_closed() ? state_->end_reason() : std::string();
}

std::string Client::stderr_tail() const {
  return state_->diagnostics->stderr_tail();
}

}  // namespace tether::mcp
