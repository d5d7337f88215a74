// Session: each request's handler runs as its own coroutine bound to a cancellation signal kept
// under the request's id, so `notifications/cancelled` and the end of the session reach it
// wherever it waits (an upstream call then sends its own cancellation on).
//
// A 2026-07-28 request's handler runs bound to its Exchange's signal instead, and each round
// (the first request, then every retry carrying the requestState it was given) waits on the
// Exchange, bound to its own request's signal: the handler survives a round that ended with
// input_required, and a round the client cancels abandons the handler.
#include <algorithm>
#include <vector>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <tether/mcp_protocol/revision.hpp>
#include <tether/mcp_server/session.hpp>

namespace tether::mcp_server {
namespace asio = boost::asio;
namespace proto = mcp_protocol;
using jsonrpc::make_error;
using jsonrpc::Reply;

namespace {

Reply error_reply(jsonrpc::Error error) {
  return Reply{boost::system::in_place_error, std::move(error)};
}

std::string_view string_at(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value && value->is_string() ? std::string_view(value->get_string()) : std::string_view();
}

bool flag_at(const json::object* object, std::string_view key) {
  const auto* value = object ? object->if_contains(key) : nullptr;
  return value && value->is_bool() && value->get_bool();
}

const json::object* object_at(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value && value->is_object() ? &value->get_object() : nullptr;
}

// What names the target of a request every round must repeat: a tool or prompt name, a URI.
std::string target_of(const json::object& params) {
  const auto name = string_at(params, "name");
  return std::string(name.empty() ? string_at(params, "uri") : name);
}

// The answer to a round whose handler asked for input: every open question, and the token of
// the next round.
json::object input_required(const std::vector<std::shared_ptr<Exchange::Ask>>& asks,
                            std::string token) {
  json::object requests;
  for (const auto& ask : asks)
    requests[ask->key] = json::object{{"method", ask->method}, {"params", ask->params}};
  return json::object{{"resultType", proto::kInputRequired},
                      {"inputRequests", std::move(requests)},
                      {"requestState", std::move(token)}};
}

json::object acknowledgement(const jsonrpc::Id& id, bool tools, bool prompts, bool resources,
                             const std::vector<std::string>& uris) {
  json::object honored;
  if (tools) honored["toolsListChanged"] = true;
  if (prompts) honored["promptsListChanged"] = true;
  if (resources) honored["resourcesListChanged"] = true;
  if (!uris.empty()) {
    json::array list;
    for (const auto& uri : uris) list.emplace_back(uri);
    honored["resourceSubscriptions"] = std::move(list);
  }
  json::object meta;
  meta[proto::meta::kSubscriptionId] = jsonrpc::to_json(id);
  return json::object{{"notifications", std::move(honored)}, {"_meta", std::move(meta)}};
}

}  // namespace

bool is_served_version(std::string_view version) {
  return std::find(std::begin(kServedProtocolVersions), std::end(kServedProtocolVersions),
                   version) != std::end(kServedProtocolVersions);
}

std::string negotiate_version(std::string_view requested) {
  return std::string(is_served_version(requested) ? requested : kLatestProtocolVersion);
}

Session::Session(asio::any_io_executor executor, std::shared_ptr<Service> service,
                 std::unique_ptr<Outbound> outbound, std::string id,
                 std::shared_ptr<Parking> parking)
    : executor_(std::move(executor)),
      service_(std::move(service)),
      outbound_(std::move(outbound)),
      id_(std::move(id)),
      last_active_(std::chrono::steady_clock::now()),
      parking_(std::move(parking)) {}

void Session::make_modern() {
  if (modern_ || is_initialized()) return;
  modern_ = true;
  protocol_version_ = proto::kModernVersion;
  service_->attach(shared_from_this());
}

Reply Session::initialize(const json::value& params) {
  if (is_initialized())
    return make_error(jsonrpc::code::kInvalidRequest, "the session is already initialized");
  const auto* object = params.if_object();
  const auto* version = object ? object->if_contains("protocolVersion") : nullptr;
  if (version == nullptr || !version->is_string())
    return make_error(jsonrpc::code::kInvalidParams,
                      "initialize: protocolVersion must be a string");
  if (const auto* capabilities = object->if_contains("capabilities");
      capabilities && capabilities->is_object())
    client_capabilities_ = capabilities->get_object();
  protocol_version_ = negotiate_version(version->get_string());
  auto result = service_->describe();
  result["protocolVersion"] = protocol_version_;
  service_->attach(shared_from_this());
  return json::value(std::move(result));
}

asio::awaitable<Reply> Session::handle_request(jsonrpc::Request request) {
  auto self = shared_from_this();
  last_active_ = std::chrono::steady_clock::now();
  if (ended_)
    co_return Reply{boost::system::in_place_error,
                    make_error(jsonrpc::code::kInvalidRequest, "the session has ended")};
  // The first request of a connection decides its revision.
  if (!modern_ && !is_initialized() &&
      (request.method == "server/discover" ||
       (request.params.is_object() && proto::request_version(request.params.get_object()))))
    make_modern();
  if (modern_) co_return co_await handle_modern(std::move(request));
  if (request.method == "initialize") co_return initialize(request.params);
  if (request.method == "ping") co_return json::value(json::object{});
  if (!request.params.is_null() && !request.params.is_object())
    co_return Reply{boost::system::in_place_error,
                    make_error(jsonrpc::code::kInvalidParams,
                               fmt::format("{}: params must be an object", request.method))};
  auto flight = enter(request.id);
  if (!flight) co_return id_in_use(request.id);
  Leave leave{this, request.id};

  IncomingRequest incoming{
      request.id, std::move(request.method),
      request.params.is_object() ? std::move(request.params.get_object()) : json::object{}};
  co_return co_await run_cancellable(flight, service_->handle(self, std::move(incoming)));
}

std::shared_ptr<Session::InFlight> Session::enter(const jsonrpc::Id& id) {
  if (in_flight_.contains(id)) return nullptr;
  auto flight = std::make_shared<InFlight>();
  in_flight_.emplace(id, flight);
  return flight;
}

Session::Leave::~Leave() {
  session->in_flight_.erase(id);
}

Reply Session::id_in_use(const jsonrpc::Id& id) {
  return error_reply(
      make_error(jsonrpc::code::kInvalidRequest,
                 fmt::format("request id {} is already in use", jsonrpc::to_string(id))));
}

asio::awaitable<Reply> Session::run_cancellable(std::shared_ptr<InFlight> flight,
                                                asio::awaitable<Reply> work) {
  Reply reply{boost::system::in_place_error,
              make_error(jsonrpc::code::kRequestCancelled, "cancelled by the client")};
  try {
    reply = co_await asio::co_spawn(
        executor_, std::move(work),
        asio::bind_cancellation_slot(flight->signal.slot(), asio::use_awaitable));
  } catch (const boost::system::system_error& error) {
    if (error.code() != asio::error::operation_aborted)
      reply = make_error(jsonrpc::code::kInternalError, error.what());
  } catch (const std::exception& error) {
    reply = make_error(jsonrpc::code::kInternalError, error.what());
  }
  // A handler that finished anyway is not answered either: the client has forgotten the id.
  if (flight->cancelled)
    reply = make_error(jsonrpc::code::kRequestCancelled, "cancelled by the client");
  co_return reply;
}

// --- 2026-07-28 ---------------------------------------------------------------------------------

asio::awaitable<Reply> Session::handle_modern(jsonrpc::Request request) {
  auto self = shared_from_this();
  json::object params =
      request.params.is_object() ? std::move(request.params.get_object()) : json::object();
  if (auto error = proto::check_request_meta(params)) co_return error_reply(std::move(*error));
  if (auto error = proto::check_request_version(params)) co_return error_reply(std::move(*error));
  if (const auto* meta = object_at(params, "_meta"))
    if (const auto* declared = object_at(*meta, proto::meta::kClientCapabilities))
      client_capabilities_ = *declared;
  const std::string method = request.method;
  if (method == "server/discover") co_return discover();
  if (proto::is_removed_method(method))
    co_return error_reply(make_error(
        jsonrpc::code::kMethodNotFound,
        fmt::format("method not found: {} (not part of MCP {})", method, proto::kModernVersion)));
  auto flight = enter(request.id);
  if (!flight) co_return id_in_use(request.id);
  Leave leave{this, request.id};
  const jsonrpc::Id& id = request.id;

  if (method == "subscriptions/listen")
    co_return co_await run_cancellable(flight, listen(id, std::move(params)));

  // A later round of a request that asked for input: its exchange goes on.
  std::shared_ptr<Exchange> exchange;
  const auto token = string_at(params, "requestState");
  if (!token.empty() && parking_ && proto::accepts_input_responses(method))
    exchange = parking_->take(token);
  if (exchange) {
    if (auto refused = resume(*exchange, method, params)) {
      exchange->abandon(refused->message);
      co_return error_reply(std::move(*refused));
    }
  } else {
    exchange = start_exchange(id, method, std::move(params));
  }
  auto reply = co_await run_cancellable(flight, settle(exchange));
  if (reply && reply->is_object()) proto::stamp_result(method, reply->get_object());
  co_return reply;
}

Reply Session::discover() {
  auto description = service_->describe();
  json::object result;
  result["supportedVersions"] = json::array{json::string(proto::kModernVersion)};
  if (const auto* capabilities = object_at(description, "capabilities"))
    result["capabilities"] = *capabilities;
  else
    result["capabilities"] = json::object();
  if (const auto* instructions = description.if_contains("instructions"))
    result["instructions"] = *instructions;
  if (const auto* info = object_at(description, "serverInfo")) {
    json::object meta;
    meta[proto::meta::kServerInfo] = *info;
    result["_meta"] = std::move(meta);
  }
  proto::stamp_result("server/discover", result);
  return json::value(std::move(result));
}

std::shared_ptr<Exchange> Session::start_exchange(const jsonrpc::Id& id, std::string method,
                                                  json::object params) {
  auto exchange = std::make_shared<Exchange>(executor_);
  exchange->method = method;
  exchange->target = target_of(params);
  exchanges_[id] = exchange;
  IncomingRequest incoming{id, std::move(method), std::move(params)};
  asio::co_spawn(
      executor_, service_->handle(shared_from_this(), std::move(incoming)),
      asio::bind_cancellation_slot(
          exchange->cancel.slot(),
          [self = shared_from_this(), exchange, id](const std::exception_ptr& error, Reply reply) {
            if (error)
              reply = make_error(jsonrpc::code::kRequestCancelled, "the request was abandoned");
            if (!exchange->done()) exchange->outcome = std::move(reply);
            exchange->expiry.cancel();
            exchange->changed.notify_all();
            self->exchanges_.erase(id);
            self->exchange_finished();
          }));
  return exchange;
}

std::optional<jsonrpc::Error> Session::resume(Exchange& exchange, const std::string& method,
                                              const json::object& params) {
  if (method != exchange.method || target_of(params) != exchange.target)
    return make_error(jsonrpc::code::kInvalidParams,
                      fmt::format("requestState belongs to {} '{}', not to this {}",
                                  exchange.method, exchange.target, method));
  const auto* responses = object_at(params, "inputResponses");
  for (const auto& ask : exchange.unanswered()) {
    const auto* response = responses ? responses->if_contains(ask->key) : nullptr;
    if (!response) continue;  // asked again in this round's answer
    if (!response->is_object())
      return make_error(jsonrpc::code::kInvalidParams,
                        fmt::format("inputResponses.{} must be an object", ask->key));
    ask->answer = *response;
  }
  exchange.changed.notify_all();
  return std::nullopt;
}

asio::awaitable<Reply> Session::settle(std::shared_ptr<Exchange> exchange) {
  // The round ends without an answer (the client cancelled it): the handler is abandoned too.
  struct AbandonUnlessSettled {
    Exchange& exchange;
    bool settled = false;
    ~AbandonUnlessSettled() {
      if (!settled) exchange.abandon("cancelled by the client");
    }
  } guard{*exchange};
  for (;;) {
    if (exchange->failure) {
      guard.settled = true;
      co_return error_reply(*exchange->failure);
    }
    if (exchange->outcome) {
      guard.settled = true;
      co_return *exchange->outcome;
    }
    if (auto open = exchange->unanswered(); !open.empty()) {
      auto token = parking_ ? parking_->park(exchange) : std::nullopt;
      if (!token) {
        exchange->failure =
            make_error(jsonrpc::code::kInternalError,
                       "too many requests are waiting for their client's input; try again later");
        continue;
      }
      guard.settled = true;
      co_return json::value(input_required(open, std::move(*token)));
    }
    co_await exchange->changed.wait();
  }
}

asio::awaitable<Reply> Session::ask(std::shared_ptr<Exchange> exchange, std::string method,
                                    json::value params, std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  const auto capability = proto::capability_for(method);
  if (!client_capabilities_.contains(capability)) {
    // The client cannot answer: the request it made fails, naming what it lacks.
    exchange->failure = proto::missing_capability(capability);
    exchange->abandon("missing client capability");
    co_return error_reply(
        make_error(jsonrpc::code::kMethodNotFound,
                   fmt::format("the MCP client does not support {} (capability '{}' not declared)",
                               method, capability)));
  }
  auto question = std::make_shared<Exchange::Ask>();
  question->key = fmt::format("input-{}", exchange->next_key++);
  question->method = std::move(method);
  question->params = std::move(params);
  exchange->asks.push_back(question);
  exchange->changed.notify_all();
  asio::steady_timer limit(executor_, timeout);
  auto timed_out = std::make_shared<bool>(false);
  limit.async_wait(
      [timed_out, weak = std::weak_ptr<Exchange>(exchange)](boost::system::error_code ec) {
        if (ec) return;
        *timed_out = true;
        if (auto waiting = weak.lock()) waiting->changed.notify_all();
      });
  while (!question->answer && !exchange->done() && !*timed_out) co_await exchange->changed.wait();
  limit.cancel();
  if (question->answer) co_return *question->answer;
  co_return error_reply(make_error(
      *timed_out ? jsonrpc::code::kRequestTimedOut : jsonrpc::code::kConnectionClosed,
      *timed_out ? "the client did not answer in time" : "the client's request has ended"));
}

asio::awaitable<Reply> Session::listen(jsonrpc::Id id, json::object params) {
  auto self = shared_from_this();
  const auto description = service_->describe();
  const auto* offered = object_at(description, "capabilities");
  const auto* wanted = object_at(params, "notifications");
  const auto offers = [&](std::string_view kind) {
    return offered && flag_at(object_at(*offered, kind), "listChanged");
  };
  Listen entry;
  entry.tools = flag_at(wanted, "toolsListChanged") && offers("tools");
  entry.prompts = flag_at(wanted, "promptsListChanged") && offers("prompts");
  entry.resources = flag_at(wanted, "resourcesListChanged") && offers("resources");
  const auto* uris = wanted ? wanted->if_contains("resourceSubscriptions") : nullptr;
  if (uris && uris->is_array()) {
    for (const auto& uri : uris->get_array()) {
      if (!uri.is_string()) continue;
      json::object subscribe;
      subscribe["uri"] = uri;
      IncomingRequest request{id, "resources/subscribe", std::move(subscribe)};
      auto subscribed = co_await service_->handle(self, std::move(request));
      if (subscribed) entry.uris.emplace_back(uri.get_string());
    }
  }
  // Unsubscribed when the listen ends (cancelled by the client, or the session ended).
  struct Unlisten {
    Session& session;
    jsonrpc::Id id;
    ~Unlisten() {
      auto it = session.listens_.find(id);
      if (it == session.listens_.end()) return;
      for (const auto& uri : it->second.uris) {
        json::object unsubscribe;
        unsubscribe["uri"] = uri;
        asio::co_spawn(session.executor_,
                       session.service_->handle(
                           session.shared_from_this(),
                           IncomingRequest{id, "resources/unsubscribe", std::move(unsubscribe)}),
                       asio::detached);
      }
      session.listens_.erase(it);
    }
  } unlisten{*this, id};
  outbound_->notify(jsonrpc::Notification{"notifications/subscriptions/acknowledged",
                                          acknowledgement(id, entry.tools, entry.prompts,
                                                          entry.resources, entry.uris)},
                    id);
  listens_[id] = std::move(entry);
  asio::steady_timer forever(executor_, asio::steady_timer::time_point::max());
  co_await forever.async_wait(asio::use_awaitable);  // until cancelled
  co_return error_reply(make_error(jsonrpc::code::kRequestCancelled, "the listen ended"));
}

void Session::exchange_finished() {
  if (closing_ && exchanges_.empty()) finish_end();
}

void Session::cancel(const jsonrpc::Id& id) {
  auto it = in_flight_.find(id);
  if (it == in_flight_.end()) return;
  auto flight = it->second;  // the handler may finish, and forget it, inside emit()
  flight->cancelled = true;
  flight->signal.emit(asio::cancellation_type::terminal);
}

void Session::handle_notification(const jsonrpc::Notification& notification) {
  last_active_ = std::chrono::steady_clock::now();
  if (ended_) return;
  if (notification.method == "notifications/initialized") {
    ready_ = true;
    return;
  }
  if (notification.method == "notifications/cancelled") {
    const auto* params = notification.params.if_object();
    const auto* request_id = params ? params->if_contains("requestId") : nullptr;
    if (request_id && request_id->is_int64()) cancel(jsonrpc::Id{request_id->get_int64()});
    if (request_id && request_id->is_string())
      cancel(jsonrpc::Id{std::string(request_id->get_string())});
    return;
  }
  service_->notified(shared_from_this(), notification);
}

void Session::end() {
  if (ended_ || closing_) return;
  closing_ = true;
  std::vector<jsonrpc::Id> ids;
  for (const auto& [id, signal] : in_flight_) ids.push_back(id);
  for (const auto& id : ids) cancel(id);
  // A 2026-07-28 request parked for its next round may come back on another connection.
  bool parked = false;
  for (const auto& [id, exchange] : exchanges_) parked = parked || exchange->parked;
  if (!parked) {
    for (const auto& [id, exchange] : exchanges_) exchange->abandon("the session ended");
    finish_end();
  }
}

void Session::finish_end() {
  if (ended_) return;
  ended_ = true;
  if (is_initialized()) service_->detach(*this);
}

void Session::notify(std::string method, json::value params) {
  if (ended_) return;
  if (!modern_) {
    if (ready_)
      outbound_->notify(jsonrpc::Notification{std::move(method), std::move(params)}, std::nullopt);
    return;
  }
  const auto* fields = params.if_object();
  const std::string uri(fields ? string_at(*fields, "uri") : std::string_view());
  for (const auto& [id, listen] : listens_) {
    const bool wanted =
        (method == "notifications/tools/list_changed" && listen.tools) ||
        (method == "notifications/prompts/list_changed" && listen.prompts) ||
        (method == "notifications/resources/list_changed" && listen.resources) ||
        (method == "notifications/resources/updated" &&
         std::find(listen.uris.begin(), listen.uris.end(), uri) != listen.uris.end());
    if (!wanted) continue;
    json::object tagged = fields ? *fields : json::object();
    auto& meta = tagged["_meta"];
    if (!meta.is_object()) meta = json::object();
    meta.get_object()[proto::meta::kSubscriptionId] = jsonrpc::to_json(id);
    outbound_->notify(jsonrpc::Notification{method, std::move(tagged)}, id);
  }
}

void Session::notify(const jsonrpc::Id& related, std::string method, json::value params) {
  if (ended_) return;
  outbound_->notify(jsonrpc::Notification{std::move(method), std::move(params)}, related);
}

asio::awaitable<Reply> Session::request(std::string method, json::value params,
                                        std::optional<jsonrpc::Id> related,
                                        std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  if (modern_) {
    // No server-to-client requests in 2026-07-28: the question goes in the answer to the
    // request it serves.
    auto exchange = related ? exchanges_.find(*related) : exchanges_.end();
    if (exchange == exchanges_.end() || exchange->second->done())
      co_return error_reply(make_error(jsonrpc::code::kConnectionClosed,
                                       "no request of the client's is waiting for this answer"));
    co_return co_await ask(exchange->second, std::move(method), std::move(params), timeout);
  }
  if (ended_)
    co_return Reply{boost::system::in_place_error,
                    make_error(jsonrpc::code::kConnectionClosed, "the client session has ended")};
  co_return co_await outbound_->request(std::move(method), std::move(params), std::move(related),
                                        timeout);
}

}  // namespace tether::mcp_server
