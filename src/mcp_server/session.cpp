// Session: each request's handler runs as its own coroutine bound to a cancellation signal kept
// under the request's id, so `notifications/cancelled` and the end of the session reach it
// wherever it waits (an upstream call then sends its own cancellation on).
#include <algorithm>
#include <vector>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <tether/mcp_server/session.hpp>

namespace tether::mcp_server {
namespace asio = boost::asio;
using jsonrpc::make_error;
using jsonrpc::Reply;

bool is_served_version(std::string_view version) {
  return std::find(std::begin(kServedProtocolVersions), std::end(kServedProtocolVersions),
                   version) != std::end(kServedProtocolVersions);
}

std::string negotiate_version(std::string_view requested) {
  return std::string(is_served_version(requested) ? requested : kLatestProtocolVersion);
}

Session::Session(asio::any_io_executor executor, std::shared_ptr<Service> service,
                 std::unique_ptr<Outbound> outbound, std::string id)
    : executor_(std::move(executor)),
      service_(std::move(service)),
      outbound_(std::move(outbound)),
      id_(std::move(id)),
      last_active_(std::chrono::steady_clock::now()) {}

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
  if (request.method == "initialize") co_return initialize(request.params);
  if (request.method == "ping") co_return json::value(json::object{});
  if (!request.params.is_null() && !request.params.is_object())
    co_return Reply{boost::system::in_place_error,
                    make_error(jsonrpc::code::kInvalidParams,
                               fmt::format("{}: params must be an object", request.method))};
  if (in_flight_.contains(request.id))
    co_return Reply{
        boost::system::in_place_error,
        make_error(jsonrpc::code::kInvalidRequest,
                   fmt::format("request id {} is already in use", jsonrpc::to_string(request.id)))};

  auto flight = std::make_shared<InFlight>();
  const jsonrpc::Id id = request.id;
  in_flight_.emplace(id, flight);
  struct Forget {
    Session* session;
    const jsonrpc::Id& id;
    ~Forget() { session->in_flight_.erase(id); }
  } forget{this, id};

  IncomingRequest incoming{
      request.id, std::move(request.method),
      request.params.is_object() ? std::move(request.params.get_object()) : json::object{}};
  Reply reply{boost::system::in_place_error,
              make_error(jsonrpc::code::kRequestCancelled, "cancelled by the client")};
  try {
    reply = co_await asio::co_spawn(
        executor_, service_->handle(self, std::move(incoming)),
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
  if (ended_) return;
  ended_ = true;
  std::vector<jsonrpc::Id> ids;
  for (const auto& [id, signal] : in_flight_) ids.push_back(id);
  for (const auto& id : ids) cancel(id);
  if (is_initialized()) service_->detach(*this);
}

void Session::notify(std::string method, json::value params) {
  if (!ready_ || ended_) return;
  outbound_->notify(jsonrpc::Notification{std::move(method), std::move(params)}, std::nullopt);
}

void Session::notify(const jsonrpc::Id& related, std::string method, json::value params) {
  if (ended_) return;
  outbound_->notify(jsonrpc::Notification{std::move(method), std::move(params)}, related);
}

asio::awaitable<Reply> Session::request(std::string method, json::value params,
                                        std::optional<jsonrpc::Id> related,
                                        std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  if (ended_)
    co_return Reply{boost::system::in_place_error,
                    make_error(jsonrpc::code::kConnectionClosed, "the client session has ended")};
  co_return co_await outbound_->request(std::move(method), std::move(params), std::move(related),
                                        timeout);
}

}  // namespace tether::mcp_server
