// The client's connection: reaching the executor (WebSocket, or a command's stdin/stdout),
// the initialize handshake, resume after a loss, the latched disconnect, and closing.
//
// A connection is a Peer plus the coroutine that runs it; when that coroutine sees the
// connection end without our asking, the client either resumes (WebSocket with a session id:
// reconnect with resumeSessionId inside the window, then catch every open process up with
// process/read) or latches the disconnect (client_impl.hpp has the states).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <spdlog/spdlog.h>

#include "client_impl.hpp"
#include <tether/jsonrpc/duration.hpp>

extern char** environ;

namespace tether::exec {
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kMaxMessageBytes = std::size_t{64} << 20;
constexpr auto kCloseWait = 2s;

asio::awaitable<void> log_command_stderr(std::shared_ptr<process::Child> child) {
  auto* err = child->stderr_stream();
  if (!err) co_return;
  co_await process::read_lines(
      *err, [](std::string_view line) { spdlog::info("exec-server command stderr: {}", line); });
}

asio::awaitable<void> wait_exit(std::shared_ptr<process::Child> child) {
  try {
    co_await child->wait();
  } catch (const boost::system::system_error&) {
    // Cancelled: the grace ran out first.
  }
}

}  // namespace

Error rejected(const Error& error) {
  return Error{error.code,
               fmt::format("exec-server rejected request ({}): {}", error.code, error.message),
               error.data};
}

bool is_local_failure(const Error& error) {
  return error.code == jsonrpc::code::kConnectionClosed;
}

ExecClient::Impl::Impl(asio::any_io_executor executor, Endpoint endpoint, ClientOptions options)
    : executor_(std::move(executor)),
      endpoint_(std::move(endpoint)),
      options_(std::move(options)),
      state_changed_(executor_),
      connection_ended_(executor_) {}

asio::awaitable<Expected<std::shared_ptr<ExecClient>>> ExecClient::Impl::connect(
    std::shared_ptr<Impl> impl) {
  auto peer = co_await impl->open("");
  if (!peer) {
    if (impl->command_) impl->command_->terminate(kCloseWait);
    co_return peer.error();
  }
  impl->attach(std::move(*peer));
  co_return std::shared_ptr<ExecClient>(new ExecClient(std::move(impl)));
}

asio::awaitable<Expected<std::shared_ptr<jsonrpc::Peer>>> ExecClient::Impl::open(
    const std::string& resume) {
  std::unique_ptr<jsonrpc::Transport> transport;
  if (const auto* ws = std::get_if<WebSocketEndpoint>(&endpoint_)) {
    jsonrpc::ConnectOptions connect;
    if (ws->bearer_token)
      connect.headers.emplace_back("Authorization", "Bearer " + *ws->bearer_token);
    connect.timeout = options_.connect_timeout;
    connect.limits.max_message_bytes = kMaxMessageBytes;
    connect.limits.idle_timeout = options_.idle_timeout;
    connect.tls = ws->tls;
    auto connected = co_await jsonrpc::connect_websocket(ws->url, connect);
    if (!connected) {
      last_connect_error_ = connected.error().code;
      if (connected.error().code == boost::beast::error::timeout)
        co_return jsonrpc::make_error(
            jsonrpc::code::kConnectionClosed,
            fmt::format("timed out connecting to exec-server websocket '{}' after {}", ws->url,
                        jsonrpc::format_duration(options_.connect_timeout)));
      co_return jsonrpc::make_error(
          jsonrpc::code::kConnectionClosed,
          fmt::format("failed to connect to exec-server websocket '{}': {}", ws->url,
                      connected.error().message));
    }
    transport = std::move(*connected);
  } else {
    auto spawned = spawn_command(std::get<CommandEndpoint>(endpoint_));
    if (!spawned) co_return spawned.error();
    transport = std::move(*spawned);
  }
  last_connect_error_ = {};

  jsonrpc::PeerOptions peer_options;
  peer_options.ping_interval = options_.ping_interval;
  auto peer = jsonrpc::Peer::create(executor_, std::move(transport), peer_options);
  std::weak_ptr<Impl> weak = weak_from_this();
  peer->on_notification([weak](const jsonrpc::Notification& n) {
    if (auto self = weak.lock()) self->route(n);
  });
  peer->on_request([weak, raw = peer.get()](jsonrpc::Request) -> asio::awaitable<jsonrpc::Reply> {
    // A request from the server is a protocol violation: the connection is broken.
    if (auto self = weak.lock()) self->broken_by_server_ = true;
    raw->abort("the executor sent a request");
    co_return jsonrpc::Reply{
        boost::system::in_place_error,
        jsonrpc::make_error(jsonrpc::code::kInvalidRequest, "unexpected request")};
  });
  asio::co_spawn(executor_, run_connection(shared_from_this(), peer), asio::detached);

  InitializeParams initialize{options_.client_name, std::nullopt};
  if (!resume.empty()) initialize.resume_session_id = resume;
  auto reply = co_await peer->call(std::string(kInitialize.name), to_json(initialize),
                                   options_.initialize_timeout);
  if (!reply) {
    peer->abort("initialize failed");
    if (reply.error().code == jsonrpc::code::kRequestTimedOut)
      co_return jsonrpc::make_error(
          jsonrpc::code::kConnectionClosed,
          fmt::format("timed out waiting for exec-server initialize handshake after {}",
                      jsonrpc::format_duration(options_.initialize_timeout)));
    if (is_local_failure(reply.error()))
      co_return jsonrpc::make_error(
          jsonrpc::code::kConnectionClosed,
          "exec-server connection ended during the initialize handshake: " + reply.error().message);
    co_return rejected(reply.error());
  }
  auto result = decode_result<InitializeResult>(kInitialize.name, *reply);
  if (!result) {
    peer->abort("initialize failed");
    co_return result.error();
  }
  session_id_ = std::move(result->session_id);
  environment_info_ = std::move(result->environment_info);
  peer->notify(std::string(kInitialized.name), to_json(Empty{}));
  co_return peer;
}

Expected<std::unique_ptr<jsonrpc::Transport>> ExecClient::Impl::spawn_command(
    const CommandEndpoint& command) {
  // The command may die before it reads what is written to it (e.g. the initialize request).
  process::ignore_sigpipe_unless_handled();
  process::SpawnOptions spawn;
  spawn.argv = command.argv;
  if (command.env) {
    for (const auto& [name, value] : *command.env) {
      std::string entry = name;
      entry += '=';
      entry += value;
      spawn.env.push_back(std::move(entry));
    }
  } else {
    for (char** e = environ; *e; ++e) spawn.env.emplace_back(*e);
  }
  if (command.cwd) spawn.cwd = *command.cwd;
  spawn.stdin_mode = process::StdinMode::pipe;
  spawn.die_with_parent = true;
  auto child = process::Child::spawn(executor_, spawn);
  if (!child)
    return jsonrpc::make_error(jsonrpc::code::kConnectionClosed,
                               "failed to start exec-server command: " + child.error().message);
  command_ = *child;
  asio::co_spawn(executor_, log_command_stderr(command_), asio::detached);
  // The transport takes the descriptors; the Child keeps the process (and kills its group when
  // it goes).
  auto* in = command_->stdout_stream();
  auto* out = command_->stdin_stream();
  return jsonrpc::make_line_transport(asio::posix::stream_descriptor(executor_, in->release()),
                                      asio::posix::stream_descriptor(executor_, out->release()),
                                      kMaxMessageBytes);
}

asio::awaitable<void> ExecClient::Impl::run_connection(std::shared_ptr<Impl> self,
                                                       std::shared_ptr<jsonrpc::Peer> peer) {
  co_await peer->run();
  self->connection_ended_.notify_all();
  // A connection that never got attached (initialize failed) or was already replaced;
  // one that ends before attach() runs is caught there.
  self->connection_lost(peer);
}

// Makes `peer` the current connection. It may already have ended (the executor answered
// initialize and hung up before we got here): then it is lost like any other.
void ExecClient::Impl::attach(std::shared_ptr<jsonrpc::Peer> peer) {
  link_ = Link::connected;
  peer_ = std::move(peer);
  // Every call in flight was sent on an older connection: they go again, in their order.
  stale_ = in_flight_;
  state_changed_.notify_all();
  if (peer_->is_closed()) connection_lost(peer_);
}

// Runs once per attached connection (peer_ is reset here, so a second report is ignored).
void ExecClient::Impl::connection_lost(const std::shared_ptr<jsonrpc::Peer>& peer) {
  if (link_ != Link::connected || peer_ != peer) return;
  peer_.reset();
  std::string reason = peer->end_reason();
  fail_body_routes(std::string(kDisconnected) + (reason.empty() ? "" : ": " + reason));
  const bool can_resume = std::holds_alternative<WebSocketEndpoint>(endpoint_) &&
                          !session_id_.empty() && !peer->remote_close_code() &&
                          !broken_by_server_ && options_.resume_window.count() > 0;
  if (!can_resume) {
    latch(reason);
    return;
  }
  spdlog::info("exec client: connection lost ({}); resuming session {}", reason, session_id_);
  link_ = Link::resuming;
  state_changed_.notify_all();
  asio::co_spawn(executor_, resume(shared_from_this(), std::move(reason)), asio::detached);
}

asio::awaitable<void> ExecClient::Impl::resume(std::shared_ptr<Impl> self, std::string reason) {
  const auto deadline = std::chrono::steady_clock::now() + self->options_.resume_window;
  auto backoff = self->options_.resume_backoff;
  asio::steady_timer timer(self->executor_);
  while (self->link_ == Link::resuming) {
    auto peer = co_await self->open(self->session_id_);
    if (self->link_ != Link::resuming) {
      if (peer) (*peer)->abort("client closed");
      co_return;
    }
    if (peer) {
      spdlog::info("exec client: session {} resumed", self->session_id_);
      self->attach(*peer);
      co_await self->catch_up();
      co_return;
    }
    // Give up at once when nothing listens (the executor is gone, and its sessions with it)
    // or the server says the session is gone; keep trying only through timeouts and a
    // session the server still thinks attached (-32010: it has not seen the loss yet).
    const bool refused = self->last_connect_error_ == asio::error::connection_refused;
    if (refused || peer.error().code == jsonrpc::code::kInvalidRequest ||
        std::chrono::steady_clock::now() + backoff >= deadline) {
      reason += "; resume failed: " + peer.error().message;
      break;
    }
    timer.expires_after(backoff);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, 1s);
  }
  if (self->link_ == Link::resuming) self->latch(reason);
}

asio::awaitable<void> ExecClient::Impl::catch_up() {
  // Events of the gap were not pushed again: read every open process from its last seq.
  std::vector<std::pair<std::string, std::shared_ptr<EventLog>>> open;
  for (const auto& [id, entry] : processes_)
    if (!entry.log->ended()) open.emplace_back(id, entry.log);
  for (const auto& [id, log] : open) {
    const auto from = log->last_seq();
    auto result = co_await read(id, from, std::nullopt, 0ms);
    if (!result) continue;
    log->catch_up(*result);
    // A read confirms only the chunks before its afterSeq, and the executor pauses a process
    // whose unconfirmed output fills its allowance: acknowledge what this read brought.
    if (log->ended() || log->last_seq() <= from) continue;
    auto acknowledged = co_await read(id, log->last_seq(), 1, 0ms);
    if (acknowledged) log->catch_up(*acknowledged);
  }
}

// The disconnect: every pending call fails with it (they wake on state_changed_), later calls
// fail at once, every open process gets its final `failed` event.
void ExecClient::Impl::latch(const std::string& reason) {
  if (disconnected_) return;
  disconnected_ = std::string(kDisconnected);
  if (!reason.empty()) *disconnected_ += ": " + reason;
  if (link_ != Link::closing) {
    spdlog::warn("{}", *disconnected_);
    link_ = Link::disconnected;
  }
  if (peer_) peer_->abort(*disconnected_);
  for (auto& [id, entry] : processes_) entry.log->fail(*disconnected_);
  fail_body_routes(*disconnected_);
  state_changed_.notify_all();
}

asio::awaitable<void> ExecClient::Impl::close() {
  if (link_ == Link::closing) co_return;
  // Terminate every live process first: an executor keeps a lost session's processes.
  std::vector<std::string> live;
  for (const auto& [id, entry] : processes_)
    if (!entry.log->ended()) live.push_back(id);
  for (const auto& id : live) co_await terminate(id);
  // Also after a disconnect: a command executor still has to be ended.
  link_ = Link::closing;
  state_changed_.notify_all();
  auto peer = peer_;
  asio::steady_timer timer(executor_, kCloseWait);
  boost::system::error_code ec;
  using namespace asio::experimental::awaitable_operators;
  if (peer && !peer->is_closed()) {
    peer->close(jsonrpc::close_code::kNormal);
    while (!peer->is_closed() && timer.expiry() > std::chrono::steady_clock::now()) {
      co_await (connection_ended_.wait() ||
                timer.async_wait(asio::redirect_error(asio::use_awaitable, ec)));
    }
  }
  if (command_) {
    // stdin EOF ends the command's session; give it the rest of the grace to exit.
    auto command = command_;
    if (!command->exit_status() && timer.expiry() > std::chrono::steady_clock::now())
      co_await (wait_exit(command) ||
                timer.async_wait(asio::redirect_error(asio::use_awaitable, ec)));
    command->terminate(kCloseWait);
  }
  latch("client closed");
}

// Close 1000 (the executor ends the session and its processes), and no subscriber waits
// forever.
void ExecClient::Impl::abort() {
  if (link_ == Link::closing) return;
  link_ = Link::closing;
  // Not aborted by the latch: the close goes out while the loop runs (and stdin EOF ends a
  // command's session).
  auto peer = std::move(peer_);
  if (peer) peer->close(jsonrpc::close_code::kNormal);
  latch("client closed");
}

}  // namespace tether::exec
