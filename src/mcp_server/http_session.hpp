// One MCP session over streamable HTTP: the Session, its streams of SSE events (one per request
// the client POSTed, and stream 0, the session's own that a GET reads), the history kept for
// replay after Last-Event-ID, and the requests sent to the client that wait for the answer it
// POSTs back. The connections that write the streams are http_server.cpp's.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <tether/jsonrpc/async_signal.hpp>
#include <tether/jsonrpc/message.hpp>
#include <tether/mcp_server/session.hpp>

namespace tether::mcp_server {

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  struct Event {
    std::uint64_t seq;    // in its stream
    std::uint64_t order;  // in the session, across streams: which is older
    std::string data;     // one JSON-RPC message
  };
  struct Stream {
    explicit Stream(const boost::asio::any_io_executor& executor, std::uint64_t id)
        : id(id), changed(executor) {}
    std::uint64_t id;
    std::deque<Event> events;  // kept for writers and replay, oldest first
    std::uint64_t next_seq = 1;
    bool done = false;          // the response is the last event (never for stream 0)
    bool delivered = false;     // a writer wrote the response
    std::uint64_t writer = 0;   // the latest writer attached; an older one stops
    int readers = 0;            // writers attached now
    std::uint64_t written = 0;  // the last seq a writer wrote
    jsonrpc::AsyncSignal changed;
  };

  HttpSession(boost::asio::any_io_executor executor, std::string id,
              std::shared_ptr<Service> service, std::size_t replay_bytes,
              std::shared_ptr<Parking> parking);
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;
  // Makes the Session (it needs a weak pointer to this).
  void open();

  const std::string& id() const { return id_; }
  const std::shared_ptr<Session>& session() const { return session_; }
  const std::shared_ptr<Service>& service() const { return service_; }

  // A request the client POSTed: its stream, which ends with the response once the handler
  // answered (a cancelled request's stream ends without one). The POST counts as its reader
  // from the start: write it with json_allowed (http_server.cpp).
  std::shared_ptr<Stream> begin_request(jsonrpc::Request request);
  // An answer the client POSTed to a request this session sent.
  void deliver(jsonrpc::Response response);
  void notify(const jsonrpc::Notification& notification);

  const std::shared_ptr<Stream>& own_stream() const { return own_stream_; }
  // The stream and sequence number a Last-Event-ID names (nullopt when that stream is not kept,
  // or no longer holds every event after it).
  std::optional<std::pair<std::shared_ptr<Stream>, std::uint64_t>> find_event(
      std::string_view event_id) const;
  static std::string event_id(const Stream& stream, const Event& event);

  // Ends the session: requests in flight cancelled, requests sent to the client failed, every
  // writer woken to finish.
  void end();
  bool is_ended() const { return ended_; }

  // Activity, for idle expiry: the last request of the client, and the streams being written.
  void touch() { last_active_ = std::chrono::steady_clock::now(); }
  std::chrono::steady_clock::time_point last_active() const { return last_active_; }
  int writers = 0;

  // A writer wrote `stream` up to `seq` (and its response, when `delivered`).
  void mark_written(Stream& stream, std::uint64_t seq, bool delivered);
  // The stream was answered as plain JSON: no event id was given out, so nothing can be
  // replayed and it is not kept.
  void forget(const Stream& stream);

  // Outbound, for the Session.
  void push(const std::optional<jsonrpc::Id>& related, std::string text);
  boost::asio::awaitable<jsonrpc::Reply> request(std::string method, json::value params,
                                                 std::optional<jsonrpc::Id> related,
                                                 std::chrono::milliseconds timeout);

 private:
  struct Pending {
    explicit Pending(const boost::asio::any_io_executor& executor) : timer(executor) {}
    std::optional<jsonrpc::Reply> reply;
    boost::asio::steady_timer timer;
  };

  static boost::asio::awaitable<void> run_request(std::shared_ptr<HttpSession> self,
                                                  std::shared_ptr<Stream> stream,
                                                  jsonrpc::Request request);
  void append(Stream& stream, std::string text);
  void trim();
  // Drops the oldest event `droppable` allows (never a response) while more than `budget` bytes
  // are kept.
  void drop_oldest(std::size_t budget, bool (*droppable)(const Stream&, const Event&));

  boost::asio::any_io_executor executor_;
  std::string id_;
  std::shared_ptr<Service> service_;
  std::size_t replay_bytes_;
  std::shared_ptr<Parking> parking_;
  std::shared_ptr<Session> session_;
  std::shared_ptr<Stream> own_stream_;
  std::map<std::uint64_t, std::shared_ptr<Stream>> streams_;        // by id, oldest first
  std::map<jsonrpc::Id, std::shared_ptr<Stream>> request_streams_;  // requests in flight
  std::uint64_t next_stream_ = 1;
  std::size_t retained_ = 0;  // bytes of every kept event
  std::uint64_t next_order_ = 0;
  bool warned_lagging_ = false;
  std::int64_t next_request_id_ = 1;
  std::unordered_map<std::int64_t, std::shared_ptr<Pending>> pending_;
  std::chrono::steady_clock::time_point last_active_;
  bool ended_ = false;
};

}  // namespace tether::mcp_server
