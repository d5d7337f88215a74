// ExecClient::Impl — what the client's parts share: the connection and its resume
// (client_connection.cpp), calls and processes (client.cpp), the fs/* and environment/* calls
// (client_fs.cpp), and http/request with its streamed bodies (client_http.cpp).
//
// One Impl per executor, living on one executor (no locks). Its state is one Link: connecting
// (before the first connection), connected (peer_ is the connection; it may just have ended,
// and connection_lost() follows), resuming (no connection; resume() runs), disconnected (the
// loss is latched), closing (close() or abort() began; for good). The latch also records why in
// disconnected_, which closing sets too. Calls wait while a resume is under way and are re-sent
// on the new connection; registration and the latch happen between suspensions, so no call can
// slip past the drain and wait forever.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

#include <tether/exec/client.hpp>
#include <tether/jsonrpc/async_signal.hpp>
#include <tether/jsonrpc/peer.hpp>
#include <tether/jsonrpc/transport.hpp>
#include <tether/process/child.hpp>

namespace tether::exec {

// A result that does not decode: the executor broke the protocol.
template <class R>
Expected<R> decode_result(std::string_view method, const json::value& result) {
  auto decoded = decode<R>(result);
  if (!decoded)
    return jsonrpc::make_error(
        jsonrpc::code::kInternalError,
        fmt::format("malformed {} result: {}", method, decoded.error().message));
  return decoded;
}

// The executor's own error, worded as its rejection of the request.
Error rejected(const Error& error);
// The connection failed under the call (as opposed to the executor answering with an error).
bool is_local_failure(const Error& error);

class ExecClient::Impl : public std::enable_shared_from_this<Impl> {
 public:
  enum class Link { connecting, connected, resuming, closing, disconnected };
  struct Entry {
    std::shared_ptr<EventLog> log;
    std::uint64_t next_write_id = 1;
  };

  Impl(boost::asio::any_io_executor executor, Endpoint endpoint, ClientOptions options);

  // --- the connection (client_connection.cpp) -----------------------------------------------

  static boost::asio::awaitable<Expected<std::shared_ptr<ExecClient>>> connect(
      std::shared_ptr<Impl> impl);
  // Terminates every live process, then closes (see ExecClient::close).
  boost::asio::awaitable<void> close();
  // The ExecClient went away without close().
  void abort();

  // --- calls and processes (client.cpp) -----------------------------------------------------

  // A typed call (see send).
  template <class P, class R>
  boost::asio::awaitable<Expected<R>> call(const Method<P, R>& method, P params,
                                           bool resend = true) {
    auto reply = co_await send(std::string(method.name), to_json(params), resend);
    if (!reply) co_return reply.error();
    co_return decode_result<R>(method.name, *reply);
  }
  // Sends a request on the current connection. Across a lost connection it waits for the
  // resume and sends the request again (`resend`: every method but process/start is safe to
  // repeat), in the order the calls were first made, so writes reach stdin in order.
  boost::asio::awaitable<jsonrpc::Reply> send(std::string method, json::value params, bool resend);

  boost::asio::awaitable<Expected<std::shared_ptr<Process>>> start(StartParams params);
  boost::asio::awaitable<Expected<ReadResult>> read(std::string id, std::uint64_t after,
                                                    std::optional<std::size_t> max_bytes,
                                                    std::chrono::milliseconds wait);
  boost::asio::awaitable<Expected<WriteStatus>> write(std::string id, std::string bytes);
  boost::asio::awaitable<Expected<bool>> terminate(std::string id);
  // Routes a process notification to its process's log, a bodyDelta to its stream.
  void route(const jsonrpc::Notification& notification);

  // --- http/request (client_http.cpp) -------------------------------------------------------

  // Where one streamed body's deltas wait for its reader.
  struct BodyRoute {
    explicit BodyRoute(const boost::asio::any_io_executor& executor) : changed(executor) {}
    std::deque<std::string> pieces;
    std::size_t buffered = 0;
    std::uint64_t next_seq = 1;
    bool done = false;
    std::optional<std::string> failure;
    jsonrpc::AsyncSignal changed;
  };
  // A fresh request id with its route, registered before the request is sent.
  std::pair<std::string, std::shared_ptr<BodyRoute>> open_body_route();
  void close_body_route(const std::string& request_id);
  const boost::asio::any_io_executor& executor() const { return executor_; }

  const std::string& session_id() const { return session_id_; }
  const json::object& environment_info() const { return environment_info_; }
  const std::optional<std::string>& disconnected() const { return disconnected_; }

 private:
  boost::asio::awaitable<Expected<std::shared_ptr<jsonrpc::Peer>>> open(const std::string& resume);
  Expected<std::unique_ptr<jsonrpc::Transport>> spawn_command(const CommandEndpoint& command);
  static boost::asio::awaitable<void> run_connection(std::shared_ptr<Impl> self,
                                                     std::shared_ptr<jsonrpc::Peer> peer);
  void attach(std::shared_ptr<jsonrpc::Peer> peer);
  void connection_lost(const std::shared_ptr<jsonrpc::Peer>& peer);
  static boost::asio::awaitable<void> resume(std::shared_ptr<Impl> self, std::string reason);
  boost::asio::awaitable<void> catch_up();
  void latch(const std::string& reason);
  void route_body_delta(const jsonrpc::Notification& notification);
  // Every open stream fails: streams are not resumed with the session.
  void fail_body_routes(const std::string& reason);
  // A subscriber's lag recovery (a named coroutine: its arguments live in its frame).
  static boost::asio::awaitable<Expected<ReadResult>> recover_read(std::weak_ptr<Impl> weak,
                                                                   std::string id,
                                                                   std::uint64_t after);

  boost::asio::any_io_executor executor_;
  Endpoint endpoint_;
  ClientOptions options_;
  Link link_ = Link::connecting;
  std::optional<std::string> disconnected_;  // the latch: why
  std::shared_ptr<jsonrpc::Peer> peer_;      // set with Link::connected
  bool broken_by_server_ = false;            // the executor sent a request: no resume
  std::shared_ptr<process::Child> command_;
  std::string session_id_;
  json::object environment_info_;
  std::unordered_map<std::string, Entry> processes_;
  std::unordered_map<std::string, std::shared_ptr<BodyRoute>> body_routes_;
  std::uint64_t next_http_id_ = 1;
  boost::system::error_code last_connect_error_;
  jsonrpc::AsyncSignal state_changed_;
  jsonrpc::AsyncSignal connection_ended_;
  // Calls not yet answered, by the order they were made; stale_: those not yet sent on the
  // current connection (all of them right after a resume).
  std::set<std::uint64_t> in_flight_;
  std::set<std::uint64_t> stale_;
  std::uint64_t next_ordinal_ = 1;
};

}  // namespace tether::exec
