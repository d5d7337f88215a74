// One client connection to the executor: the JSON-RPC method surface.
//
// Owns: the connection lifecycle (initialize once, then initialized), resume into an existing
// session, the route table from each method to its typed handler (process/* and environment/*
// here, fs/* in fs_methods), and what happens to the session when the connection ends (closed
// on purpose: end it; lost: detach).
// Does not own: the HTTP gate and listening (server.cpp), process state (ManagedProcess),
// session lifetime rules (Session).
// Data flows: Peer -> handle() -> route -> decode -> handler -> encode -> Reply -> Peer.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <boost/asio/thread_pool.hpp>
#include <boost/json/object.hpp>

#include "repeated_log.hpp"
#include "session.hpp"
#include <tether/exec/protocol.hpp>
#include <tether/exec/server.hpp>
#include <tether/fetch/fetch.hpp>
#include <tether/jsonrpc/peer.hpp>

namespace tether::exec {

class Connection;

// What every connection of one server shares. Lives on the server's single I/O thread; shared
// ownership because coroutine frames that refer to it may outlive run_server's scope until the
// io_context is destroyed.
struct ServerContext {
  ServerContext(const ServerOptions& options, const boost::asio::any_io_executor& executor);

  const ServerOptions& options;
  boost::asio::any_io_executor executor;
  SessionRegistry sessions;
  // fs/* runs here, off the I/O thread. Several threads, so that one slow call (a hung network
  // mount) does not hold up every client; each connection may use max_fs_calls of them.
  boost::asio::thread_pool blocking_pool;
  boost::json::object environment_info;
  std::shared_ptr<fetch::Client> http;  // http/request, made from here
  ProcessLimits limits;
  std::unordered_set<Connection*> connections;
  std::uint64_t next_connection_id = 1;  // names connections in the log
  std::size_t pending_connections = 0;   // accepted, WebSocket upgrade not completed
  RepeatedLog accept_failures{spdlog::level::warn};
  RepeatedLog refusals{spdlog::level::info};
  std::size_t live_processes = 0;  // started and not yet closed
  jsonrpc::AsyncSignal changed;    // a process closed or a connection ended
  bool shutting_down = false;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `peer`: the client's address as logs show it ("stdio" for --listen stdio).
  Connection(std::shared_ptr<ServerContext> context, std::unique_ptr<jsonrpc::Transport> transport,
             std::string peer);
  ~Connection();

  // Serves until the connection ends, then ends or detaches its session.
  boost::asio::awaitable<void> run();
  // The server is going away: close 1001.
  void go_away() { peer_->close(jsonrpc::close_code::kGoingAway); }

 private:
  enum class State { fresh, initialize_answered, ready };
  // What a method needs the connection to have done first (named in the refusal).
  enum class Needs { nothing, exec, filesystem };
  struct Route;
  static const Route* find_route(std::string_view method);

  // Every handler owns the connection until it returns: one still suspended (a long-poll
  // read, an fs call) resumes after the connection ended, and must find its members alive.
  static boost::asio::awaitable<jsonrpc::Reply> handle(std::shared_ptr<Connection> self,
                                                       jsonrpc::Request request);
  // A method's route: decodes its params, runs `Handler`, encodes its result.
  template <const auto& M, auto Handler>
  static boost::asio::awaitable<jsonrpc::Reply> serve(std::shared_ptr<Connection> self,
                                                      jsonrpc::Request request);
  // An fs/* method's route: `Fn` runs on the blocking pool.
  template <const auto& M, auto Fn>
  static boost::asio::awaitable<jsonrpc::Reply> serve_fs(std::shared_ptr<Connection> self,
                                                         jsonrpc::Request request);
  boost::asio::awaitable<jsonrpc::Reply> run_blocking(
      boost::asio::awaitable<Expected<jsonrpc::json::value>> work);
  void handle_notification(const jsonrpc::Notification& notification);
  void protocol_violation(std::string message);

  // The handlers, one per method (docs/exec-protocol.md).
  boost::asio::awaitable<Expected<InitializeResult>> initialize(InitializeParams params);
  boost::asio::awaitable<Expected<EnvironmentStatus>> environment_status(Empty params);
  boost::asio::awaitable<Expected<json::object>> environment_info(Empty params);
  boost::asio::awaitable<Expected<StartResult>> start_process(StartParams params);
  boost::asio::awaitable<Expected<ReadResult>> read_process(ReadParams params,
                                                            jsonrpc::Id request_id);
  boost::asio::awaitable<Expected<WriteResult>> write_process(WriteParams params);
  boost::asio::awaitable<Expected<TerminateResult>> terminate_process(ProcessRef params);
  boost::asio::awaitable<Expected<Empty>> signal_process(SignalParams params);
  boost::asio::awaitable<Expected<HttpResponse>> http_request(HttpRequestParams params,
                                                              jsonrpc::Id request_id);
  boost::asio::awaitable<Expected<Empty>> http_cancel(HttpCancelParams params);
  // Sends a streamed body as bodyDelta notifications, never more than the send queue takes.
  static boost::asio::awaitable<void> stream_body(std::shared_ptr<Connection> self,
                                                  std::string request_id,
                                                  std::shared_ptr<fetch::Exchange> exchange);
  std::size_t open_http_requests() const { return http_calls_.size() + streams_.size(); }

  std::shared_ptr<ServerContext> context_;
  std::uint64_t id_;
  std::string peer_address_;
  std::chrono::steady_clock::time_point accepted_at_ = std::chrono::steady_clock::now();
  std::size_t requests_ = 0;  // for the closing log line
  std::shared_ptr<jsonrpc::Peer> peer_;
  std::shared_ptr<Session> session_;
  State state_ = State::fresh;
  jsonrpc::AsyncSignal ended_;  // wakes long-poll reads when the connection ends
  std::size_t fs_running_ = 0;
  jsonrpc::AsyncSignal fs_room_;  // an fs/* call finished, or the connection ended
  // http/request calls not yet answered, and streamed bodies by request id: what a lost
  // connection cancels.
  std::vector<std::pair<std::string, std::shared_ptr<fetch::Exchange>>> http_calls_;
  std::unordered_map<std::string, std::shared_ptr<fetch::Exchange>> streams_;
};

}  // namespace tether::exec
