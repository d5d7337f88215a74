// ExecClient: one Impl per executor, living on one executor (no locks). A connection is a Peer
// plus the coroutine that runs it; when that coroutine sees the connection end without our
// asking, the client either resumes (WebSocket with a session id: reconnect with
// resumeSessionId inside the window, then catch every open process up with process/read) or
// latches the disconnect. Calls wait while a resume is under way and are re-sent on the new
// connection; registration and the latch happen between suspensions, so no call can slip past
// the drain and wait forever.
#include <algorithm>
#include <set>
#include <unordered_map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <tether/exec/client.hpp>
#include <tether/jsonrpc/duration.hpp>
#include <tether/jsonrpc/peer.hpp>
#include <tether/jsonrpc/transport.hpp>
#include <tether/process/child.hpp>

extern char** environ;

namespace tether::exec {
namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

// Largest stdin piece per process/write: its base64 stays under codex's 16 MiB frame limit.
constexpr std::size_t kWritePiece = std::size_t{8} << 20;
constexpr std::size_t kMaxMessageBytes = std::size_t{64} << 20;
constexpr auto kCloseWait = 2s;

Error rejected(const Error& error) {
  return Error{error.code,
               fmt::format("exec-server rejected request ({}): {}", error.code, error.message),
               error.data};
}

bool is_local_failure(const Error& error) {
  return error.code == jsonrpc::code::kConnectionClosed;
}

// A process notification as the event for its process's log; nullopt when it is not one (or
// is malformed: the catch-up read recovers what it carried).
std::optional<std::pair<std::string, ProcessEvent>> event_from(const jsonrpc::Notification& n) {
  if (n.method == kProcessOutput.name) {
    auto notice = decode<OutputNotice>(n.params);
    if (!notice) return std::nullopt;
    return std::pair{std::move(notice->process_id), ProcessEvent{std::move(notice->output)}};
  }
  if (n.method == kProcessExited.name) {
    auto notice = decode<ExitedNotice>(n.params);
    if (!notice) return std::nullopt;
    return std::pair{std::move(notice->process_id),
                     ProcessEvent{ExitedEvent{notice->seq, notice->exit_code}}};
  }
  if (n.method == kProcessClosed.name) {
    auto notice = decode<ClosedNotice>(n.params);
    if (!notice) return std::nullopt;
    return std::pair{std::move(notice->process_id), ProcessEvent{ClosedEvent{notice->seq}}};
  }
  return std::nullopt;
}

// What a result that does not decode answers: the executor broke the protocol.
template <class R>
Expected<R> decode_result(std::string_view method, const json::value& result) {
  auto decoded = decode<R>(result);
  if (!decoded)
    return jsonrpc::make_error(
        jsonrpc::code::kInternalError,
        fmt::format("malformed {} result: {}", method, decoded.error().message));
  return decoded;
}

std::string default_cwd_of(const json::object& info) {
  if (const auto* cwd = info.if_contains("cwd"); cwd && cwd->is_string()) {
    if (auto path = parse_path(cwd->get_string())) return *path;
  }
  return "/";
}

}  // namespace

class ExecClient::Impl : public std::enable_shared_from_this<Impl> {
 public:
  struct Entry {
    std::shared_ptr<EventLog> log;
    std::uint64_t next_write_id = 1;
  };

  Impl(asio::any_io_executor executor, Endpoint endpoint, ClientOptions options)
      : executor_(std::move(executor)),
        endpoint_(std::move(endpoint)),
        options_(std::move(options)),
        state_changed_(executor_),
        connection_ended_(executor_) {}

  // --- connections ---------------------------------------------------------------------------

  asio::awaitable<Expected<std::shared_ptr<jsonrpc::Peer>>> open(const std::string& resume) {
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
    peer->on_notification([weak](jsonrpc::Notification n) {
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
            "exec-server connection ended during the initialize handshake: " +
                reply.error().message);
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

  Expected<std::unique_ptr<jsonrpc::Transport>> spawn_command(const CommandEndpoint& command) {
    process::SpawnOptions spawn;
    spawn.argv = command.argv;
    if (command.env) {
      for (const auto& [name, value] : *command.env) spawn.env.push_back(name + "=" + value);
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

  static asio::awaitable<void> log_command_stderr(std::shared_ptr<process::Child> child) {
    auto* err = child->stderr_stream();
    if (!err) co_return;
    co_await process::read_lines(
        *err, [](std::string_view line) { spdlog::info("exec-server command stderr: {}", line); });
  }

  static asio::awaitable<void> run_connection(std::shared_ptr<Impl> self,
                                              std::shared_ptr<jsonrpc::Peer> peer) {
    co_await peer->run();
    self->connection_ended_.notify_all();
    // A connection that never got attached (initialize failed) or was already replaced;
    // one that ends before attach() runs is caught there.
    self->connection_lost(peer);
  }

  // Makes `peer` the current connection. It may already have ended (the executor answered
  // initialize and hung up before we got here): then it is lost like any other.
  void attach(std::shared_ptr<jsonrpc::Peer> peer) {
    peer_ = std::move(peer);
    // Every call in flight was sent on an older connection: they go again, in their order.
    stale_ = in_flight_;
    state_changed_.notify_all();
    if (peer_->is_closed()) connection_lost(peer_);
  }

  // Runs once per attached connection (peer_ is reset here, so a second report is ignored).
  void connection_lost(const std::shared_ptr<jsonrpc::Peer>& peer) {
    if (peer_ != peer || closing_ || disconnected_) return;
    peer_.reset();
    std::string reason = peer->end_reason();
    const bool can_resume = std::holds_alternative<WebSocketEndpoint>(endpoint_) &&
                            !session_id_.empty() && !peer->remote_close_code() &&
                            !broken_by_server_ && options_.resume_window.count() > 0;
    if (!can_resume) {
      latch(reason);
      return;
    }
    spdlog::info("exec client: connection lost ({}); resuming session {}", reason, session_id_);
    resuming_ = true;
    state_changed_.notify_all();
    asio::co_spawn(executor_, resume(shared_from_this(), std::move(reason)), asio::detached);
  }

  static asio::awaitable<void> resume(std::shared_ptr<Impl> self, std::string reason) {
    const auto deadline = std::chrono::steady_clock::now() + self->options_.resume_window;
    auto backoff = self->options_.resume_backoff;
    asio::steady_timer timer(self->executor_);
    while (!self->closing_ && !self->disconnected_) {
      auto peer = co_await self->open(self->session_id_);
      if (self->closing_ || self->disconnected_) {
        if (peer) (*peer)->abort("client closed");
        break;
      }
      if (peer) {
        self->resuming_ = false;
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
    self->resuming_ = false;
    self->latch(reason);
  }

  asio::awaitable<void> catch_up() {
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
  void latch(const std::string& reason) {
    if (disconnected_) return;
    disconnected_ = std::string(kDisconnected);
    if (!reason.empty()) *disconnected_ += ": " + reason;
    if (!closing_) spdlog::warn("{}", *disconnected_);
    if (peer_) peer_->abort(*disconnected_);
    for (auto& [id, entry] : processes_) entry.log->fail(*disconnected_);
    state_changed_.notify_all();
  }

  void route(const jsonrpc::Notification& n) {
    auto event = event_from(n);
    if (!event) return;
    auto it = processes_.find(event->first);
    if (it != processes_.end()) it->second.log->push(std::move(event->second));
  }

  // --- calls -------------------------------------------------------------------------------

  // What a call that the connection dropped under gets when it must not be sent again.
  static jsonrpc::Reply interrupted() {
    return jsonrpc::Reply{boost::system::in_place_error,
                          jsonrpc::make_error(jsonrpc::code::kConnectionClosed,
                                              "the connection ended with the request in flight")};
  }

  // A typed call (see send).
  template <class P, class R>
  asio::awaitable<Expected<R>> call(const Method<P, R>& method, P params, bool resend = true) {
    auto reply = co_await send(std::string(method.name), to_json(params), resend);
    if (!reply) co_return reply.error();
    co_return decode_result<R>(method.name, *reply);
  }

  // Sends a request on the current connection. Across a lost connection it waits for the
  // resume and sends the request again (`resend`: every method but process/start is safe to
  // repeat), in the order the calls were first made, so writes reach stdin in order.
  asio::awaitable<jsonrpc::Reply> send(std::string method, json::value params, bool resend) {
    const std::uint64_t ordinal = next_ordinal_++;
    in_flight_.insert(ordinal);
    struct Done {
      Impl* impl;
      std::uint64_t ordinal;
      ~Done() {
        impl->in_flight_.erase(ordinal);
        if (impl->stale_.erase(ordinal)) impl->state_changed_.notify_all();
      }
    } done{this, ordinal};
    for (;;) {
      if (disconnected_)
        co_return jsonrpc::Reply{
            boost::system::in_place_error,
            jsonrpc::make_error(jsonrpc::code::kConnectionClosed, *disconnected_)};
      if (closing_)
        co_return jsonrpc::Reply{
            boost::system::in_place_error,
            jsonrpc::make_error(jsonrpc::code::kConnectionClosed,
                                std::string(kDisconnected) + ": client closed")};
      // Wait for a connection, and for every older call to have been sent on it.
      if (!peer_ || (!stale_.empty() && *stale_.begin() < ordinal)) {
        co_await state_changed_.wait();
        continue;
      }
      auto peer = peer_;
      if (stale_.erase(ordinal)) state_changed_.notify_all();
      auto reply = co_await peer->call(method, params);
      if (reply) co_return reply;
      if (!is_local_failure(reply.error()))
        co_return jsonrpc::Reply{boost::system::in_place_error, rejected(reply.error())};
      // The connection ended under the call: wait until it is replaced or given up.
      while (peer_ == peer && !disconnected_ && !closing_) co_await state_changed_.wait();
      if (!resend && !disconnected_ && !closing_) co_return interrupted();
    }
  }

  asio::awaitable<Expected<ReadResult>> read(std::string id, std::uint64_t after,
                                             std::optional<std::size_t> max_bytes,
                                             std::chrono::milliseconds wait) {
    auto it = processes_.find(id);
    if (disconnected_ && it != processes_.end()) {
      ReadResult result;
      result.exited = true;
      result.closed = true;
      result.failure = *disconnected_;
      result.next_seq = it->second.log->last_seq() + 1;
      co_return result;
    }
    ReadParams params{id, after, max_bytes, static_cast<std::uint64_t>(wait.count())};
    auto result = co_await call(kProcessRead, std::move(params));
    if (!result && disconnected_ && processes_.contains(id))
      co_return co_await read(id, after, max_bytes, wait);
    co_return result;
  }

  asio::awaitable<Expected<WriteStatus>> write(std::string id, std::string bytes) {
    auto it = processes_.find(id);
    std::size_t offset = 0;
    do {
      const auto piece = std::string_view(bytes).substr(offset, kWritePiece);
      offset += piece.size();
      std::string write_id = "1";
      if (it != processes_.end()) write_id = std::to_string(it->second.next_write_id++);
      WriteParams params{id, std::string(piece), std::move(write_id)};
      auto result = co_await call(kProcessWrite, std::move(params));
      if (!result) co_return result.error();
      if (result->status != WriteStatus::accepted) co_return result->status;
    } while (offset < bytes.size());
    co_return WriteStatus::accepted;
  }

  asio::awaitable<Expected<bool>> terminate(std::string id) {
    ProcessRef params{std::move(id)};
    auto result = co_await call(kProcessTerminate, std::move(params));
    if (!result) co_return result.error();
    co_return Expected<bool>(boost::system::in_place_value, result->running);
  }

  asio::awaitable<Expected<std::shared_ptr<Process>>> start(StartParams params);

  static asio::awaitable<Expected<std::shared_ptr<ExecClient>>> connect(
      std::shared_ptr<Impl> impl) {
    auto peer = co_await impl->open("");
    if (!peer) {
      if (impl->command_) impl->command_->terminate(kCloseWait);
      co_return peer.error();
    }
    impl->attach(std::move(*peer));
    co_return std::shared_ptr<ExecClient>(new ExecClient(std::move(impl)));
  }

  // A subscriber's lag recovery (a named coroutine: its arguments live in its frame).
  static asio::awaitable<Expected<ReadResult>> recover_read(std::weak_ptr<Impl> weak,
                                                            std::string id, std::uint64_t after) {
    auto self = weak.lock();
    if (!self)
      co_return jsonrpc::make_error(jsonrpc::code::kConnectionClosed,
                                    std::string(kDisconnected) + ": client closed");
    co_return co_await self->read(id, after, std::nullopt, 0ms);
  }

  asio::awaitable<void> close() {
    if (closing_) co_return;
    // Terminate every live process first: an executor keeps a lost session's processes.
    std::vector<std::string> live;
    for (const auto& [id, entry] : processes_)
      if (!entry.log->ended()) live.push_back(id);
    for (const auto& id : live) co_await terminate(id);
    closing_ = true;
    state_changed_.notify_all();
    auto peer = peer_;
    asio::steady_timer timer(executor_, kCloseWait);
    boost::system::error_code ec;
    if (peer && !peer->is_closed()) {
      using namespace asio::experimental::awaitable_operators;
      peer->close(jsonrpc::close_code::kNormal);
      while (!peer->is_closed() && timer.expiry() > std::chrono::steady_clock::now()) {
        co_await (connection_ended_.wait() ||
                  timer.async_wait(asio::redirect_error(asio::use_awaitable, ec)));
      }
    }
    if (command_) {
      // stdin EOF ends the command's session; give it the rest of the grace to exit.
      using namespace asio::experimental::awaitable_operators;
      auto command = command_;
      if (!command->exit_status() && timer.expiry() > std::chrono::steady_clock::now())
        co_await (wait_exit(command) ||
                  timer.async_wait(asio::redirect_error(asio::use_awaitable, ec)));
      command->terminate(kCloseWait);
    }
    latch("client closed");
  }

  static asio::awaitable<void> wait_exit(std::shared_ptr<process::Child> child) {
    try {
      co_await child->wait();
    } catch (const boost::system::system_error&) {
      // Cancelled: the grace ran out first.
    }
  }

  // The ExecClient went away without close(): close 1000 (the executor ends the session and
  // its processes), and no subscriber waits forever.
  void abort() {
    if (closing_) return;
    closing_ = true;
    // Not aborted by the latch: the close goes out while the loop runs (and stdin EOF ends a
    // command's session).
    auto peer = std::move(peer_);
    if (peer) peer->close(jsonrpc::close_code::kNormal);
    latch("client closed");
  }

  asio::any_io_executor executor_;
  Endpoint endpoint_;
  ClientOptions options_;
  std::shared_ptr<jsonrpc::Peer> peer_;
  std::shared_ptr<process::Child> command_;
  std::string session_id_;
  json::object environment_info_;
  std::unordered_map<std::string, Entry> processes_;
  std::optional<std::string> disconnected_;
  boost::system::error_code last_connect_error_;
  jsonrpc::AsyncSignal state_changed_;
  jsonrpc::AsyncSignal connection_ended_;
  // Calls not yet answered, by the order they were made; stale_: those not yet sent on the
  // current connection (all of them right after a resume).
  std::set<std::uint64_t> in_flight_;
  std::set<std::uint64_t> stale_;
  std::uint64_t next_ordinal_ = 1;
  bool resuming_ = false;
  bool closing_ = false;
  bool broken_by_server_ = false;
};

namespace {

class RemoteProcess final : public Process {
 public:
  RemoteProcess(std::shared_ptr<ExecClient::Impl> impl, std::string id,
                std::shared_ptr<EventLog> log)
      : impl_(std::move(impl)), id_(std::move(id)), log_(std::move(log)) {}

  const std::string& id() const override { return id_; }
  // Plain functions, not coroutines: the Impl coroutines own copies of their arguments, so a
  // caller's temporaries (e.g. write("x") inside co_await) never live in a coroutine frame
  // (GCC 12 mishandles those).
  asio::awaitable<Expected<WriteStatus>> write(std::string bytes) override {
    return impl_->write(id_, std::move(bytes));
  }
  asio::awaitable<Expected<ReadResult>> read(std::uint64_t after_seq,
                                             std::optional<std::size_t> max_bytes,
                                             std::chrono::milliseconds wait) override {
    return impl_->read(id_, after_seq, max_bytes, wait);
  }
  asio::awaitable<Expected<bool>> terminate() override { return impl_->terminate(id_); }
  std::shared_ptr<Subscription> subscribe() override { return log_->subscribe(); }

 private:
  std::shared_ptr<ExecClient::Impl> impl_;
  std::string id_;
  std::shared_ptr<EventLog> log_;
};

}  // namespace

asio::awaitable<Expected<std::shared_ptr<Process>>> ExecClient::Impl::start(StartParams params) {
  if (disconnected_)
    co_return jsonrpc::make_error(jsonrpc::code::kConnectionClosed, *disconnected_);
  const std::string id = params.process_id;
  if (processes_.contains(id))
    co_return jsonrpc::make_error(jsonrpc::code::kInvalidRequest,
                                  fmt::format("process {} already exists", id));
  // The route exists before the request leaves, so output that beats the response is kept.
  std::weak_ptr<Impl> weak = weak_from_this();
  auto log = EventLog::create(executor_, options_.event_limits, [weak, id](std::uint64_t after) {
    return recover_read(weak, id, after);
  });
  processes_.emplace(id, Entry{log});

  if (!params.cwd) params.cwd = default_cwd_of(environment_info_);
  // A caller that gives up (cancellation) while the start is in flight must not leave the
  // process running there unowned: its entry goes and a terminate follows it.
  struct AbandonGuard {
    std::shared_ptr<Impl> impl;
    std::string id;
    bool active = true;
    ~AbandonGuard() {
      if (!active || !impl->processes_.contains(id)) return;
      impl->processes_.erase(id);
      asio::co_spawn(
          impl->executor_,
          [](std::shared_ptr<Impl> self, std::string process) -> asio::awaitable<void> {
            co_await self->terminate(std::move(process));
          }(impl, id),
          asio::detached);
    }
  } abandon{shared_from_this(), id};
  for (;;) {
    auto started = co_await call(kProcessStart, params, /*resend=*/false);
    if (started) break;
    if (started.error().code != jsonrpc::code::kConnectionClosed || disconnected_ || closing_) {
      abandon.active = false;
      processes_.erase(id);
      co_return started.error();
    }
    // The start was in flight when the connection went and the session resumed: a read tells
    // whether it happened; only if not is it sent again.
    ReadParams probe_params{id, 0, 1, 0};
    auto probe = co_await call(kProcessRead, std::move(probe_params));
    if (probe) break;
    if (probe.error().code == jsonrpc::code::kConnectionClosed) {
      abandon.active = false;
      processes_.erase(id);
      co_return probe.error();
    }
  }
  abandon.active = false;
  co_return std::make_shared<RemoteProcess>(shared_from_this(), id, log);
}

// --- ExecClient ----------------------------------------------------------------------------

ExecClient::ExecClient(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

ExecClient::~ExecClient() {
  impl_->abort();
}

asio::awaitable<Expected<std::shared_ptr<ExecClient>>> ExecClient::connect(
    asio::any_io_executor executor, Endpoint endpoint, ClientOptions options) {
  return Impl::connect(
      std::make_shared<Impl>(std::move(executor), std::move(endpoint), std::move(options)));
}

asio::awaitable<Expected<std::shared_ptr<ExecClient>>> ExecClient::connect(
    asio::any_io_executor executor, Endpoint endpoint) {
  return connect(std::move(executor), std::move(endpoint), ClientOptions{});
}

// The public entry points forward to Impl coroutines (see RemoteProcess for why).
asio::awaitable<Expected<std::shared_ptr<Process>>> ExecClient::start(StartParams params) {
  return impl_->start(std::move(params));
}

asio::awaitable<Expected<ReadResult>> ExecClient::read(const std::string& process_id,
                                                       std::uint64_t after_seq,
                                                       std::optional<std::size_t> max_bytes,
                                                       std::chrono::milliseconds wait) {
  return impl_->read(process_id, after_seq, max_bytes, wait);
}

asio::awaitable<Expected<WriteStatus>> ExecClient::write(const std::string& process_id,
                                                         std::string bytes) {
  return impl_->write(process_id, std::move(bytes));
}

asio::awaitable<Expected<bool>> ExecClient::terminate(const std::string& process_id) {
  return impl_->terminate(process_id);
}

namespace {

template <class R>
Expected<void> ok_or_error(const Expected<R>& result) {
  if (!result) return result.error();
  return {};
}

}  // namespace

asio::awaitable<Expected<void>> ExecClient::interrupt(const std::string& process_id) {
  SignalParams params{process_id};
  co_return ok_or_error(co_await impl_->call(kProcessSignal, std::move(params)));
}

asio::awaitable<Expected<std::string>> ExecClient::read_file(const std::string& path) {
  ReadFileParams params{path, std::nullopt};
  auto result = co_await impl_->call(kFsReadFile, std::move(params));
  if (!result) co_return result.error();
  co_return std::move(result->bytes);
}

asio::awaitable<Expected<void>> ExecClient::write_file(const std::string& path, std::string bytes) {
  WriteFileParams params{path, std::move(bytes)};
  co_return ok_or_error(co_await impl_->call(kFsWriteFile, std::move(params)));
}

asio::awaitable<Expected<void>> ExecClient::create_directory(const std::string& path,
                                                             bool recursive) {
  CreateDirectoryParams params{path, recursive};
  co_return ok_or_error(co_await impl_->call(kFsCreateDirectory, std::move(params)));
}

asio::awaitable<Expected<FileMetadata>> ExecClient::get_metadata(const std::string& path) {
  PathParams params{path};
  co_return co_await impl_->call(kFsGetMetadata, std::move(params));
}

asio::awaitable<Expected<std::vector<DirectoryEntry>>> ExecClient::read_directory(
    const std::string& path) {
  PathParams params{path};
  auto result = co_await impl_->call(kFsReadDirectory, std::move(params));
  if (!result) co_return result.error();
  co_return std::move(result->entries);
}

asio::awaitable<Expected<void>> ExecClient::remove(const std::string& path, bool recursive,
                                                   bool force) {
  RemoveParams params{path, recursive, force};
  co_return ok_or_error(co_await impl_->call(kFsRemove, std::move(params)));
}

asio::awaitable<Expected<void>> ExecClient::copy(const std::string& source,
                                                 const std::string& destination, bool recursive) {
  CopyParams params{source, destination, recursive};
  co_return ok_or_error(co_await impl_->call(kFsCopy, std::move(params)));
}

asio::awaitable<Expected<std::string>> ExecClient::canonicalize(const std::string& path) {
  PathParams params{path};
  auto result = co_await impl_->call(kFsCanonicalize, std::move(params));
  if (!result) co_return result.error();
  co_return std::move(result->path);
}

asio::awaitable<Expected<std::string>> ExecClient::environment_status() {
  auto result = co_await impl_->call(kEnvironmentStatus, Empty());
  if (!result) co_return result.error();
  co_return std::move(result->status);
}

asio::awaitable<Expected<json::object>> ExecClient::environment_info() {
  co_return co_await impl_->call(kEnvironmentInfo, Empty());
}

const std::string& ExecClient::session_id() const {
  return impl_->session_id_;
}

const json::object& ExecClient::initial_environment_info() const {
  return impl_->environment_info_;
}

std::string ExecClient::default_cwd() const {
  return default_cwd_of(impl_->environment_info_);
}

asio::awaitable<void> ExecClient::close() {
  co_await impl_->close();
}

const std::optional<std::string>& ExecClient::disconnected() const {
  return impl_->disconnected_;
}

}  // namespace tether::exec
