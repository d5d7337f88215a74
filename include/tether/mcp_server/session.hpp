// tether::mcp_server Session — one MCP client session, as the server side sees it.
//
// Owns: the session's protocol rules per docs/gateway.md ("Protocol served"): initialize and
// version negotiation, the client's declared capabilities, ping, cancellation of a request in
// flight (`notifications/cancelled`: its handler is cancelled and nothing is answered), and the
// way back to the client (notifications, related or not to a request, and server-to-client
// requests), whatever the transport.
// Does not own: what requests mean (Service), how messages travel (Outbound: stdio.hpp for a
// jsonrpc::Peer; the HTTP transport keeps one per session).
// Data flows: transport -> handle_request / handle_notification -> Service; Service ->
// notify / request -> Outbound -> transport.
// Threading: one executor; every call runs on it.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/json/object.hpp>

#include <tether/jsonrpc/message.hpp>

namespace tether::mcp_server {

namespace json = boost::json;
using jsonrpc::Expected;

inline constexpr std::string_view kLatestProtocolVersion = "2025-11-25";
// The versions served, newest first.
inline constexpr std::string_view kServedProtocolVersions[] = {"2025-11-25", "2025-06-18",
                                                               "2025-03-26"};
// The client's version when it is served, else the latest.
std::string negotiate_version(std::string_view requested);
bool is_served_version(std::string_view version);

// A request from the client, as a Service sees it.
struct IncomingRequest {
  jsonrpc::Id id;
  std::string method;
  json::object params;  // {} when absent
};

class Session;

// The server behind the sessions.
class Service {
 public:
  virtual ~Service() = default;
  // The initialize result without protocolVersion: serverInfo, capabilities, instructions.
  virtual json::object describe() = 0;
  // The session completed initialize / ended; between the two it may be told things.
  virtual void attach(const std::shared_ptr<Session>& session) = 0;
  virtual void detach(Session& session) = 0;
  // Every request but initialize and ping. Asio cancellation of the returned awaitable means the
  // client cancelled the request or ended the session.
  virtual boost::asio::awaitable<jsonrpc::Reply> handle(std::shared_ptr<Session> session,
                                                        IncomingRequest request) = 0;
  // Notifications other than initialized and cancelled (roots/list_changed, ...).
  virtual void notified(const std::shared_ptr<Session>& session,
                        const jsonrpc::Notification& notification) = 0;
};

// How a session reaches its client; each transport provides one.
class Outbound {
 public:
  virtual ~Outbound() = default;
  // `related`: the client request the message belongs to (a transport with one stream per
  // request sends it there).
  virtual void notify(jsonrpc::Notification notification,
                      const std::optional<jsonrpc::Id>& related) = 0;
  virtual boost::asio::awaitable<jsonrpc::Reply> request(std::string method, json::value params,
                                                         std::optional<jsonrpc::Id> related,
                                                         std::chrono::milliseconds timeout) = 0;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(boost::asio::any_io_executor executor, std::shared_ptr<Service> service,
          std::unique_ptr<Outbound> outbound, std::string id);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // From the transport. A reply with code kRequestCancelled is not to be sent.
  boost::asio::awaitable<jsonrpc::Reply> handle_request(jsonrpc::Request request);
  void handle_notification(const jsonrpc::Notification& notification);
  // The transport ended: every request in flight is cancelled and the service lets go.
  void end();

  // To the client. Notifications not related to a request wait for `initialized`: until then
  // they are dropped (the client lists after initializing anyway).
  void notify(std::string method, json::value params);
  void notify(const jsonrpc::Id& related, std::string method, json::value params);
  boost::asio::awaitable<jsonrpc::Reply> request(std::string method, json::value params,
                                                 std::optional<jsonrpc::Id> related,
                                                 std::chrono::milliseconds timeout);

  const std::string& id() const { return id_; }
  const std::string& protocol_version() const { return protocol_version_; }
  const json::object& client_capabilities() const { return client_capabilities_; }
  bool declares(std::string_view capability) const {
    return client_capabilities_.contains(capability);
  }
  bool is_initialized() const { return !protocol_version_.empty(); }
  bool is_ended() const { return ended_; }
  // The last time the client sent anything.
  std::chrono::steady_clock::time_point last_active() const { return last_active_; }

 private:
  jsonrpc::Reply initialize(const json::value& params);
  void cancel(const jsonrpc::Id& id);

  boost::asio::any_io_executor executor_;
  std::shared_ptr<Service> service_;
  std::unique_ptr<Outbound> outbound_;
  std::string id_;
  std::string protocol_version_;  // empty until initialize
  json::object client_capabilities_;
  bool ready_ = false;  // notifications/initialized arrived
  bool ended_ = false;
  std::chrono::steady_clock::time_point last_active_;
  struct InFlight {
    boost::asio::cancellation_signal signal;
    bool cancelled = false;
  };
  std::map<jsonrpc::Id, std::shared_ptr<InFlight>> in_flight_;
};

}  // namespace tether::mcp_server
