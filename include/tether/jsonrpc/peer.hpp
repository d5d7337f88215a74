// tether::jsonrpc Peer — one JSON-RPC connection, either side.
//
// Owns: the read loop (parse, answer invalid input, dispatch), correlation of our calls with
// their responses (any order) and their timeouts, the single writer that sequences messages,
// pings and the close frame, a byte-bounded send queue with a writable signal for flow control,
// delivery confirmation (a message is delivered once the remote answered a ping written after
// it: the remote has then read every byte before the ping), and failing every pending call once
// the connection ends.
// Does not own: method semantics (handlers), reconnecting, or anything about processes.
// Threading: a Peer lives on one executor and is used from that executor only.
// Data flows: Transport::read -> parse -> {request handler -> respond, notification handler,
// pending call} ; call/notify/respond/send -> queue -> writer -> Transport::write.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <tether/jsonrpc/async_signal.hpp>
#include <tether/jsonrpc/message.hpp>
#include <tether/jsonrpc/transport.hpp>

namespace tether::jsonrpc {

struct PeerOptions {
  // wait_writable() suspends while more than this many bytes are queued for sending.
  std::size_t send_high_water = std::size_t{4} << 20;
  // Backpressure for the serving side: while this many request handlers run, or while more than
  // send_high_water bytes are queued, the read loop reads no further message, so a remote that
  // pipelines requests and does not read the answers fills its own socket, not our memory.
  // 0 turns it off (a client must keep reading, or two peers could wait on each other).
  std::size_t max_in_flight_requests = 0;
  // The same pause while the requests read and not yet answered add up to this many bytes (their
  // message sizes): while none is unanswered a message of any size is read, so one large request
  // never waits on itself. 0 turns it off.
  std::size_t max_in_flight_request_bytes = 0;
  // Keepalive pings on transports that have them.
  std::chrono::milliseconds ping_interval{10'000};
  // Input that is not a JSON-RPC message is answered with an error (a server's duty); when
  // false it is logged and skipped (an MCP client facing a server's stray output).
  bool answer_invalid_input = true;
};

class Peer : public std::enable_shared_from_this<Peer> {
 public:
  using RequestHandler = std::function<boost::asio::awaitable<Reply>(Request)>;
  using NotificationHandler = std::function<void(Notification)>;
  using ResponseHandler = std::function<void(Response)>;

  static std::shared_ptr<Peer> create(boost::asio::any_io_executor executor,
                                      std::unique_ptr<Transport> transport, PeerOptions options);

  // Each request runs in its own coroutine, started inline (co_spawn dispatches on the peer's
  // executor); notification handlers run inline too. So handlers start in arrival order, and a
  // handler that acts before its first suspension observes messages in order.
  // Without a request handler, requests are answered -32601. A reply with the error code
  // code::kRequestCancelled is not sent at all.
  void on_request(RequestHandler handler) { on_request_ = std::move(handler); }
  void on_notification(NotificationHandler handler) { on_notification_ = std::move(handler); }
  // Responses that match no pending call.
  void on_unmatched_response(ResponseHandler handler) { on_unmatched_ = std::move(handler); }

  // Reads and dispatches until the connection ends; then every pending call fails with
  // kConnectionClosed. Call once.
  boost::asio::awaitable<void> run();

  // Sends a request (ids count from 1) and waits for its response, the timeout
  // (kRequestTimedOut) or the end of the connection (kConnectionClosed).
  boost::asio::awaitable<Reply> call(std::string method, json::value params,
                                     std::optional<std::chrono::milliseconds> timeout = {}) {
    return call_with_id(reserve_id(), std::move(method), std::move(params), timeout);
  }
  // For callers that must know a request's id before it is sent (to cancel it, or to match
  // progress to it): take an id, then call with it.
  std::int64_t reserve_id() { return next_id_++; }
  boost::asio::awaitable<Reply> call_with_id(std::int64_t id, std::string method,
                                             json::value params,
                                             std::optional<std::chrono::milliseconds> timeout);
  // Moves the deadline of pending call `id` to `timeout` from now (e.g. on progress); false
  // when no such call is waiting.
  bool extend_deadline(std::int64_t id, std::chrono::milliseconds timeout);
  void notify(std::string method, json::value params);
  void respond(const Response& response);
  // Queues an already serialized message. `on_delivered` runs once the remote confirmed having
  // read it (a pong to a ping written after it; on transports without pings, once written), and
  // never when the connection ends first: bytes written to a socket can still be lost with it.
  void send(std::string text, std::function<void()> on_delivered = {});

  // `on_delivered` runs once the response to request `id` is delivered (as for send()). For a
  // request handler that must know its answer arrived; register before the handler returns.
  void on_response_delivered(const Id& id, std::function<void()> on_delivered);

  std::size_t queued_bytes() const { return queued_bytes_; }
  // Request handlers started and not yet answered.
  std::size_t requests_in_flight() const { return in_flight_; }
  // Returns once the send queue is at or under the high-water mark, or the connection ended.
  boost::asio::awaitable<void> wait_writable();

  // Sends what is queued, then a close with `code`; the connection then ends.
  void close(std::uint16_t code = close_code::kNormal);
  // Ends the connection now, dropping what is queued.
  void abort(std::string reason);

  bool is_closed() const { return closed_; }
  // Why the connection ended (empty while open).
  const std::string& end_reason() const { return end_reason_; }
  // The remote's close code when it closed on purpose (see Transport::remote_close_code).
  std::optional<std::uint16_t> remote_close_code() const { return transport_->remote_close_code(); }

  const boost::asio::any_io_executor& get_executor() const { return executor_; }

 private:
  Peer(boost::asio::any_io_executor executor, std::unique_ptr<Transport> transport,
       PeerOptions options);

  // The timer is both the deadline and the wake-up: it expires at the deadline, and is
  // cancelled when the reply arrives or the deadline moves (one wait per call, no racing).
  struct Pending {
    explicit Pending(const boost::asio::any_io_executor& ex) : timer(ex) {}
    std::optional<Reply> reply;
    std::chrono::steady_clock::time_point deadline;
    boost::asio::steady_timer timer;
  };
  struct Outgoing {
    std::string text;
    bool is_ping = false;
    std::function<void()> on_delivered;
  };
  struct Unconfirmed {
    std::uint64_t written_index;  // written_ right after this message was written
    std::function<void()> on_delivered;
  };

  void dispatch(const std::string& text);
  bool reading_paused() const;
  void finish(std::string reason);
  boost::asio::awaitable<void> write_loop();
  boost::asio::awaitable<void> keepalive_loop();
  void queue_ping();
  void confirm(std::string_view pong_payload);

  boost::asio::any_io_executor executor_;
  std::unique_ptr<Transport> transport_;
  PeerOptions options_;
  RequestHandler on_request_;
  NotificationHandler on_notification_;
  ResponseHandler on_unmatched_;

  std::int64_t next_id_ = 1;
  std::unordered_map<std::int64_t, std::shared_ptr<Pending>> pending_;

  std::deque<Outgoing> queue_;
  std::size_t queued_bytes_ = 0;
  AsyncSignal queue_changed_;  // wakes the writer
  AsyncSignal writable_;       // wakes wait_writable()
  AsyncSignal readable_;       // wakes a read loop paused by backpressure
  std::size_t in_flight_ = 0;
  std::size_t in_flight_bytes_ = 0;  // message sizes of the requests counted by in_flight_
  std::uint64_t written_ = 0;        // messages written so far
  std::uint64_t pinged_at_ = 0;      // written_ when the latest ping was written (its payload)
  std::deque<Unconfirmed> unconfirmed_;
  std::map<Id, std::function<void()>> response_hooks_;
  bool confirming_ = false;  // a ping for unconfirmed_ is queued or awaits its pong
  boost::asio::steady_timer keepalive_timer_;
  std::optional<std::uint16_t> close_requested_;
  bool closed_ = false;
  std::string end_reason_;
};

}  // namespace tether::jsonrpc
