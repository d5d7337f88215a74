// mcp::Client: the MCP session on top of jsonrpc::Peer.
//
// A request takes its id from the Peer first, so its progress token (the same id) and its
// `notifications/cancelled` can name it; its timeout is the Peer's deadline for that call, which
// progress moves (Peer::extend_deadline). The Peer's read loop runs in a detached coroutine that
// owns the State; destroying the Client aborts the Peer, which kills the server through the
// transport and ends that loop.
#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

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

namespace tether::mcp {
namespace asio = boost::asio;
using jsonrpc::format_duration;
using jsonrpc::make_error;
using namespace asio::experimental::awaitable_operators;
using std::chrono::milliseconds;

namespace {

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

json::object initialize_params(const ClientOptions& options) {
  json::object capabilities;
  if (options.handlers.roots) capabilities["roots"] = json::object{{"listChanged", true}};
  if (options.handlers.sampling) capabilities["sampling"] = json::object{};
  if (options.handlers.elicitation)
    capabilities["elicitation"] = json::object{{"form", json::object{{"applyDefaults", true}}}};
  return json::object{
      {"protocolVersion", kProtocolVersion},
      {"capabilities", std::move(capabilities)},
      {"clientInfo", json::object{{"name", options.client_name}, {"version", TETHER_VERSION}}}};
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

}  // namespace

struct Client::State : std::enable_shared_from_this<State> {
  State(asio::any_io_executor ex, ServerConnection connection, ClientOptions opts)
      : executor(std::move(ex)),
        diagnostics(std::move(connection.diagnostics)),
        description(std::move(connection.description)),
        options(std::move(opts)),
        ended(executor) {
    jsonrpc::PeerOptions peer_options;
    peer_options.answer_invalid_input = false;
    peer = jsonrpc::Peer::create(executor, std::move(connection.transport), peer_options);
  }

  // A request that asked for progress: each notification restarts its timeout.
  struct ProgressSink {
    milliseconds timeout;
    std::function<void(const json::object&)> on_progress;
  };

  asio::any_io_executor executor;
  std::shared_ptr<ServerDiagnostics> diagnostics;
  std::string description;
  ClientOptions options;
  std::shared_ptr<jsonrpc::Peer> peer;
  std::unordered_map<std::int64_t, std::shared_ptr<ProgressSink>> progress;
  bool run_ended = false;
  bool ready = false;  // the handshake succeeded: list_changed and on_closed apply from now on
  bool shutting_down = false;
  // A relisting that finishes after a newer one started is stale and not reported.
  std::map<ListKind, std::uint64_t> relist_generation;
  std::string reason;
  jsonrpc::AsyncSignal ended;

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

  static asio::awaitable<jsonrpc::Reply> answer(std::weak_ptr<State> weak,
                                                jsonrpc::Request request) {
    auto self = weak.lock();
    jsonrpc::Reply reply{boost::system::in_place_error,
                         make_error(jsonrpc::code::kMethodNotFound, "method not found")};
    if (!self) co_return reply;
    const auto& handlers = self->options.handlers;
    try {
      if (request.method == "ping") {
        reply = json::value(json::object{});
      } else if (request.method == "roots/list" && handlers.roots) {
        reply = co_await handlers.roots(std::move(request.params));
      } else if (request.method == "sampling/createMessage" && handlers.sampling) {
        reply = co_await handlers.sampling(std::move(request.params));
      } else if (request.method == "elicitation/create" && handlers.elicitation) {
        json::value params = request.params;
        reply = co_await handlers.elicitation(std::move(request.params));
        apply_elicitation_defaults(params, reply);
      }
    } catch (const std::exception& e) {
      reply = make_error(jsonrpc::code::kInternalError, e.what());
    }
    co_return reply;
  }

  void on_notification(const jsonrpc::Notification& notification) {
    const auto& method = notification.method;
    if (method == "notifications/progress") {
      guarded("progress", [&] { on_progress(notification.params); });
    } else if (!ready) {
      // Before initialize completed there is no listing to refresh and no session to report to.
      spdlog::debug("MCP server ({}) sent {} during the handshake", description, method);
    } else if (method == "notifications/tools/list_changed") {
      relist(ListKind::tools, kTools);
    } else if (method == "notifications/resources/list_changed") {
      relist(ListKind::resources, kResources);
    } else if (method == "notifications/prompts/list_changed") {
      relist(ListKind::prompts, kPrompts);
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
    peer->extend_deadline(it->first, sink->timeout);
    sink->on_progress(params.as_object());
  }

  void relist(ListKind kind, ListMethod list) {
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

  asio::awaitable<Expected<json::value>> request(std::string method, json::object params,
                                                 CallOptions call, milliseconds default_timeout) {
    auto self = shared_from_this();
    if (is_closed()) co_return Expected<json::value>{boost::system::in_place_error, closed_error()};
    const std::int64_t id = peer->reserve_id();
    const milliseconds timeout = call.timeout.value_or(default_timeout);
    if (call.on_progress) {
      auto& meta = params["_meta"];
      if (!meta.is_object()) meta.emplace_object();
      meta.as_object()["progressToken"] = id;
      progress[id] =
          std::make_shared<ProgressSink>(ProgressSink{timeout, std::move(call.on_progress)});
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

    json::value body(std::move(params));
    auto reply = co_await peer->call_with_id(id, method, std::move(body), timeout);
    cancel_unless_answered.active = false;
    if (!reply && reply.error().code == jsonrpc::code::kRequestTimedOut) {
      if (method != "initialize") cancel(id, "timed out");
      co_return Expected<json::value>{boost::system::in_place_error,
                                      make_error(jsonrpc::code::kRequestTimedOut,
                                                 fmt::format("timed out awaiting {} after {}",
                                                             method, format_duration(timeout)))};
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

  asio::awaitable<Expected<json::object>> request_object(std::string method, json::object params,
                                                         CallOptions call,
                                                         milliseconds default_timeout) {
    auto result = co_await request(method, std::move(params), std::move(call), default_timeout);
    if (!result) co_return Expected<json::object>{boost::system::in_place_error, result.error()};
    if (!result->is_object())
      co_return Expected<json::object>{
          boost::system::in_place_error,
          make_error(jsonrpc::code::kInvalidParams,
                     fmt::format("invalid result for {}: expected an object, got {}", method,
                                 kind_name(*result)))};
    co_return Expected<json::object>{std::move(result->as_object())};
  }

  asio::awaitable<Expected<json::array>> list_all(ListMethod list) {
    auto self = shared_from_this();
    json::array items;
    std::set<std::string> cursors;
    std::optional<std::string> cursor;
    for (;;) {
      json::object params;
      if (cursor) params["cursor"] = *cursor;
      CallOptions plain;
      auto page = co_await request_object(std::string(list.method), std::move(params),
                                          std::move(plain), options.startup_timeout);
      if (!page) co_return Expected<json::array>{boost::system::in_place_error, page.error()};
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
    co_return Expected<json::array>{std::move(items)};
  }

  // Ends the server through the transport's orderly close, bounded: a Peer whose writer is
  // stuck on a server that stopped reading is aborted (which kills the server).
  asio::awaitable<void> close() {
    auto self = shared_from_this();
    shutting_down = true;
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
  CallOptions plain;
  auto answer = co_await state->request("initialize", initialize_params(state->options),
                                        std::move(plain), startup);

  std::optional<std::string> failure;
  const bool timed_out = !answer && answer.error().code == jsonrpc::code::kRequestTimedOut;
  if (timed_out) {
    failure =
        fmt::format("timed out handshaking with MCP server after {}", format_duration(startup));
  } else if (!answer) {
    failure = "handshaking with MCP server failed: " + answer.error().message;
  } else if (!answer->is_object()) {
    failure = "handshaking with MCP server failed: initialize result is not an object";
  } else if (state->is_closed()) {
    failure = "handshaking with MCP server failed: " + state->end_reason();
  }
  std::string version;
  if (!failure) {
    const auto* v = answer->as_object().if_contains("protocolVersion");
    version = v && v->is_string() ? std::string(v->as_string()) : std::string();
    const auto& supported = kSupportedProtocolVersions;
    if (std::find(std::begin(supported), std::end(supported), version) == std::end(supported))
      failure = fmt::format("unsupported MCP protocol version '{}'", version);
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
  state->ready = true;
  state->peer->notify("notifications/initialized", json::object{});
  auto client = std::shared_ptr<Client>(new Client(state));
  client->initialize_result_ = std::move(answer->as_object());
  if (const auto* caps = client->initialize_result_.if_contains("capabilities");
      caps && caps->is_object())
    client->server_capabilities_ = caps->as_object();
  client->protocol_version_ = std::move(version);
  client->description_ = state->description;
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

asio::awaitable<Expected<json::object>> Client::request(std::string method, json::object params,
                                                        CallOptions options) {
  return state_->request_object(std::move(method), std::move(params), std::move(options),
                                state_->options.startup_timeout);
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
  if (!state_->is_closed())
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
