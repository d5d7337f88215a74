// The client's calls and processes: sending a call across a resume, process/* with their
// event routes, and the public ExecClient, which forwards to its Impl (client_impl.hpp).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "client_impl.hpp"

namespace tether::exec {
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// Largest stdin piece per process/write: its base64 stays under codex's 16 MiB frame limit.
constexpr std::size_t kWritePiece = std::size_t{8} << 20;

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

// What a call that the connection dropped under gets when it must not be sent again.
jsonrpc::Reply interrupted() {
  return jsonrpc::Reply{boost::system::in_place_error,
                        jsonrpc::make_error(jsonrpc::code::kConnectionClosed,
                                            "the connection ended with the request in flight")};
}

std::string default_cwd_of(const json::object& info) {
  if (const auto* cwd = info.if_contains("cwd"); cwd && cwd->is_string()) {
    if (auto path = parse_path(cwd->get_string())) return *path;
  }
  return "/";
}

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

// Ends a process whose starter gave up while its start was in flight.
asio::awaitable<void> terminate_abandoned(std::shared_ptr<ExecClient::Impl> impl, std::string id) {
  co_await impl->terminate(std::move(id));
}

}  // namespace

void ExecClient::Impl::route(const jsonrpc::Notification& n) {
  if (n.method == kHttpBodyDelta.name) {
    route_body_delta(n);
    return;
  }
  auto event = event_from(n);
  if (!event) return;
  auto it = processes_.find(event->first);
  if (it != processes_.end()) it->second.log->push(std::move(event->second));
}

asio::awaitable<jsonrpc::Reply> ExecClient::Impl::send(std::string method, json::value params,
                                                       bool resend) {
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
    if (link_ == Link::closing)
      co_return jsonrpc::Reply{boost::system::in_place_error,
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
    while (link_ == Link::connected && peer_ == peer) co_await state_changed_.wait();
    if (!resend && !disconnected_ && link_ != Link::closing) co_return interrupted();
  }
}

asio::awaitable<Expected<ReadResult>> ExecClient::Impl::read(std::string id, std::uint64_t after,
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

asio::awaitable<Expected<WriteStatus>> ExecClient::Impl::write(std::string id, std::string bytes) {
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

asio::awaitable<Expected<bool>> ExecClient::Impl::terminate(std::string id) {
  ProcessRef params{std::move(id)};
  auto result = co_await call(kProcessTerminate, std::move(params));
  if (!result) co_return result.error();
  co_return Expected<bool>(boost::system::in_place_value, result->running);
}

asio::awaitable<Expected<ReadResult>> ExecClient::Impl::recover_read(std::weak_ptr<Impl> weak,
                                                                     std::string id,
                                                                     std::uint64_t after) {
  auto self = weak.lock();
  if (!self)
    co_return jsonrpc::make_error(jsonrpc::code::kConnectionClosed,
                                  std::string(kDisconnected) + ": client closed");
  co_return co_await self->read(id, after, std::nullopt, 0ms);
}

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
      asio::co_spawn(impl->executor_, terminate_abandoned(impl, id), asio::detached);
    }
  } abandon{shared_from_this(), id};
  for (;;) {
    auto started = co_await call(kProcessStart, params, /*resend=*/false);
    if (started) break;
    if (started.error().code != jsonrpc::code::kConnectionClosed || disconnected_ ||
        link_ == Link::closing) {
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

const std::string& ExecClient::session_id() const {
  return impl_->session_id();
}

const json::object& ExecClient::initial_environment_info() const {
  return impl_->environment_info();
}

std::string ExecClient::default_cwd() const {
  return default_cwd_of(impl_->environment_info());
}

asio::awaitable<void> ExecClient::close() {
  co_await impl_->close();
}

const std::optional<std::string>& ExecClient::disconnected() const {
  return impl_->disconnected();
}

}  // namespace tether::exec
