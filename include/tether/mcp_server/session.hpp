// tether::mcp_server Session — one MCP client session, as the server side sees it.
//
// Owns: the session's protocol rules per docs/gateway.md ("Protocol served"): initialize and
// version negotiation, the client's declared capabilities, ping, cancellation of a request in
// flight (`notifications/cancelled`: its handler is cancelled and nothing is answered), and the
// way back to the client (notifications, related or not to a request, and server-to-client
// requests), whatever the transport. For a 2026-07-28 client (the first request of a stdio
// connection claims it; each stateless HTTP request has a session of its own): the `_meta`
// checks, server/discover, the removed methods, results stamped with resultType and caching
// fields, `subscriptions/listen` (the session's notifications go to the listens that asked for
// them, tagged with their subscription id), and server-to-client requests turned into
// input_required results whose answers come with the client's next round (exchange.hpp).
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
#include <tether/mcp_server/exchange.hpp>

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
  // `parking`: where 2026-07-28 requests wait between rounds (shared by a transport's sessions);
  // without one, a server-to-client request of a 2026-07-28 session fails.
  Session(boost::asio::any_io_executor executor, std::shared_ptr<Service> service,
          std::unique_ptr<Outbound> outbound, std::string id,
          std::shared_ptr<Parking> parking = nullptr);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // From the transport. A reply with code kRequestCancelled is not to be sent.
  boost::asio::awaitable<jsonrpc::Reply> handle_request(jsonrpc::Request request);
  void handle_notification(const jsonrpc::Notification& notification);
  // The transport ended: every request in flight is cancelled and the service lets go (for a
  // 2026-07-28 session, once its requests waiting for the client's next round are done).
  void end();
  // Serves 2026-07-28 from now on (the HTTP transport's stateless requests).
  void make_modern();
  bool is_modern() const { return modern_; }

  // To the client. Notifications not related to a request wait for `initialized`: until then
  // they are dropped (the client lists after initializing anyway). In a 2026-07-28 session they
  // go to the listens that asked for them, and others are dropped; a server-to-client request
  // becomes part of the input_required answer to `related`.
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
  struct InFlight;
  // What a `subscriptions/listen` asked for.
  struct Listen {
    bool tools = false;
    bool prompts = false;
    bool resources = false;
    std::vector<std::string> uris;
  };

  jsonrpc::Reply initialize(const json::value& params);
  void cancel(const jsonrpc::Id& id);
  // A request in flight under `id` until its Leave ends (null when the id is in use).
  std::shared_ptr<InFlight> enter(const jsonrpc::Id& id);
  struct Leave {
    Session* session;
    jsonrpc::Id id;
    ~Leave();
  };
  static jsonrpc::Reply id_in_use(const jsonrpc::Id& id);
  boost::asio::awaitable<jsonrpc::Reply> handle_modern(jsonrpc::Request request);
  jsonrpc::Reply discover();
  boost::asio::awaitable<jsonrpc::Reply> run_cancellable(std::shared_ptr<InFlight> flight,
                                                         boost::asio::awaitable<jsonrpc::Reply>);
  boost::asio::awaitable<jsonrpc::Reply> listen(jsonrpc::Id id, json::object params);
  std::shared_ptr<Exchange> start_exchange(const jsonrpc::Id& id, std::string method,
                                           json::object params);
  std::optional<jsonrpc::Error> resume(Exchange& exchange, const std::string& method,
                                       const json::object& params);
  boost::asio::awaitable<jsonrpc::Reply> settle(std::shared_ptr<Exchange> exchange);
  boost::asio::awaitable<jsonrpc::Reply> ask(std::shared_ptr<Exchange> exchange, std::string method,
                                             json::value params, std::chrono::milliseconds timeout);
  void exchange_finished();
  void finish_end();

  boost::asio::any_io_executor executor_;
  std::shared_ptr<Service> service_;
  std::unique_ptr<Outbound> outbound_;
  std::string id_;
  std::string protocol_version_;  // empty until initialize
  json::object client_capabilities_;
  bool ready_ = false;  // notifications/initialized arrived
  bool ended_ = false;
  bool modern_ = false;
  bool closing_ = false;  // end() was called; a 2026-07-28 session waits for its exchanges
  std::chrono::steady_clock::time_point last_active_;
  struct InFlight {
    boost::asio::cancellation_signal signal;
    bool cancelled = false;
  };
  std::map<jsonrpc::Id, std::shared_ptr<InFlight>> in_flight_;
  std::shared_ptr<Parking> parking_;
  std::map<jsonrpc::Id, Listen> listens_;
  // The exchange of each 2026-07-28 request by the id that started it (the id the service knows
  // it by), until it is done.
  std::map<jsonrpc::Id, std::shared_ptr<Exchange>> exchanges_;
};

}  // namespace tether::mcp_server
