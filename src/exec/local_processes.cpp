// LocalProcesses (local_processes.hpp): the executor's ManagedProcess run in this process, its
// events fed into an EventLog instead of a connection.
//
// Ownership: the State (shared; handles and callbacks hold it weakly) has the live processes
// and every id ever started. A LocalProcess handle owns its ManagedProcess and EventLog, so a
// handle keeps reading a closed process's retention. ManagedProcess -> LocalOutlet -> EventLog
// -> Recover -> weak ManagedProcess: no cycle.
#include <algorithm>
#include <map>
#include <set>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "managed_process.hpp"
#include "start.hpp"
#include <tether/exec/local_processes.hpp>

extern char** environ;

namespace tether::exec {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

// Keeps a long-poll's timer arithmetic far from overflow; callers poll again after it.
constexpr auto kMaxWait = std::chrono::hours(24);
// close() waits this long past the kill grace (ManagedProcess::end stops waiting for pipes
// held by daemonized grandchildren one second after the grace).
constexpr auto kCloseSlack = std::chrono::seconds(2);

// Events go straight into the process's EventLog; being there is delivery, so output is
// confirmed at once and nothing ever waits for a consumer.
class LocalOutlet final : public Outlet {
 public:
  LocalOutlet(const asio::any_io_executor& executor, std::shared_ptr<EventLog> log)
      : Outlet(executor), log_(std::move(log)) {}

  void output(const ManagedProcess&, std::uint64_t seq, std::string_view stream,
              std::string_view bytes, std::function<void()> on_delivered) override {
    log_->push(OutputEvent{seq, std::string(stream), std::string(bytes)});
    on_delivered();
  }
  void exited(const ManagedProcess&, std::uint64_t seq,
              const process::ExitStatus& status) override {
    log_->push(ExitedEvent{seq, status.code});
  }
  void closed(const ManagedProcess&, std::uint64_t seq) override { log_->push(ClosedEvent{seq}); }
  bool attached() const override { return true; }
  asio::awaitable<void> wait_writable() override { co_return; }

 private:
  std::shared_ptr<EventLog> log_;
};

// The EventLog's lag recovery: what retention holds after `after_seq`.
asio::awaitable<Expected<ReadResult>> read_retained(std::weak_ptr<ManagedProcess> weak,
                                                    std::uint64_t after_seq) {
  auto process = weak.lock();
  if (!process)
    co_return Expected<ReadResult>(
        boost::system::in_place_error,
        jsonrpc::make_error(jsonrpc::code::kInternalError, "the local process is gone"));
  co_return process->read(after_seq, std::nullopt);
}

ProcessLimits process_limits(const LocalProcessOptions& options) {
  ProcessLimits limits;
  limits.retained_bytes = options.retained_bytes;
  limits.retained_chunks = options.retained_chunks;
  limits.stdin_queue_bytes = options.stdin_queue_bytes;
  limits.kill_grace = options.kill_grace;
  return limits;
}

}  // namespace

struct LocalProcesses::State : std::enable_shared_from_this<State> {
  State(asio::any_io_executor ex, const LocalProcessOptions& options)
      : executor(std::move(ex)),
        limits(process_limits(options)),
        event_limits(options.event_limits),
        changed(executor) {}

  Expected<std::shared_ptr<Process>> start(StartParams params);
  // SIGTERM to every live group now, SIGKILL after the grace.
  void end_all() {
    for (auto& [id, process] : live) process->end();
  }

  asio::any_io_executor executor;
  ProcessLimits limits;
  EventLogLimits event_limits;
  std::map<std::string, std::shared_ptr<ManagedProcess>> live;  // started, not yet closed
  std::set<std::string> used_ids;                               // reserved for our lifetime
  jsonrpc::AsyncSignal changed;                                 // a process closed
  bool closed = false;
};

namespace {

class LocalProcess final : public Process, public std::enable_shared_from_this<LocalProcess> {
 public:
  LocalProcess(std::weak_ptr<LocalProcesses::State> owner, std::shared_ptr<ManagedProcess> process,
               std::shared_ptr<EventLog> log, asio::any_io_executor executor)
      : owner_(std::move(owner)),
        process_(std::move(process)),
        log_(std::move(log)),
        executor_(std::move(executor)) {}

  const std::string& id() const override { return process_->id(); }

  asio::awaitable<Expected<WriteStatus>> write(std::string bytes) override {
    auto self = shared_from_this();
    auto owner = owner_.lock();
    // Closing ended the processes and forgot them, like an ended executor session.
    if (!owner || owner->closed) co_return WriteStatus::unknown_process;
    co_return co_await process_->write(std::move(bytes), std::nullopt);
  }

  asio::awaitable<Expected<ReadResult>> read(std::uint64_t after_seq,
                                             std::optional<std::size_t> max_bytes,
                                             std::chrono::milliseconds wait) override {
    auto self = shared_from_this();
    process_->acknowledge(after_seq);
    if (wait.count() > 0 && !process_->has_news(after_seq)) {
      asio::steady_timer timer(executor_, std::min<std::chrono::milliseconds>(wait, kMaxWait));
      bool timed_out = false;
      while (!timed_out && !process_->has_news(after_seq)) {
        boost::system::error_code ec;
        auto which = co_await (process_->changed().wait() ||
                               timer.async_wait(asio::redirect_error(asio::use_awaitable, ec)));
        timed_out = which.index() == 1;
      }
    }
    co_return process_->read(after_seq, max_bytes);
  }

  asio::awaitable<Expected<bool>> terminate() override {
    co_return Expected<bool>(boost::system::in_place_value, process_->terminate());
  }

  std::shared_ptr<Subscription> subscribe() override { return log_->subscribe(); }

 private:
  std::weak_ptr<LocalProcesses::State> owner_;
  std::shared_ptr<ManagedProcess> process_;
  std::shared_ptr<EventLog> log_;
  asio::any_io_executor executor_;
};

}  // namespace

Expected<std::shared_ptr<Process>> LocalProcesses::State::start(StartParams params) {
  if (closed) return invalid_request("local processes are closed");
  // The executor's start path and order of checks, then the id.
  auto spawn = spawn_options_for(params, environ);
  if (!spawn) return spawn.error();
  if (used_ids.contains(params.process_id)) return process_exists_error(params.process_id);

  // The log exists before the process, so not even its first event can be missed; its
  // recovery reads the process, which exists only after the spawn.
  auto recover_from = std::make_shared<std::weak_ptr<ManagedProcess>>();
  auto log = EventLog::create(executor, event_limits, [recover_from](std::uint64_t after_seq) {
    return read_retained(*recover_from, after_seq);
  });
  auto outlet = std::make_shared<LocalOutlet>(executor, log);
  auto on_closed = [weak = weak_from_this()](const std::string& process_id) {
    if (auto self = weak.lock()) {
      self->live.erase(process_id);
      self->changed.notify_all();
    }
  };
  auto process = ManagedProcess::start(executor, params.process_id, *spawn, params.pipe_stdin,
                                       std::move(outlet), limits, std::move(on_closed));
  if (!process) return process.error();
  *recover_from = *process;
  used_ids.insert(params.process_id);
  live.emplace(params.process_id, *process);
  return std::make_shared<LocalProcess>(weak_from_this(), std::move(*process), std::move(log),
                                        executor);
}

std::shared_ptr<LocalProcesses> LocalProcesses::create(asio::any_io_executor executor,
                                                       LocalProcessOptions options) {
  return std::shared_ptr<LocalProcesses>(
      new LocalProcesses(std::make_shared<State>(std::move(executor), options)));
}

LocalProcesses::LocalProcesses(std::shared_ptr<State> state) : state_(std::move(state)) {}

LocalProcesses::~LocalProcesses() {
  state_->closed = true;
  state_->end_all();
}

asio::awaitable<Expected<std::shared_ptr<Process>>> LocalProcesses::start(StartParams params) {
  co_return state_->start(std::move(params));
}

asio::awaitable<void> LocalProcesses::close() {
  auto state = state_;
  state->closed = true;
  state->end_all();
  asio::steady_timer timer(state->executor, state->limits.kill_grace + kCloseSlack);
  bool timed_out = false;
  while (!timed_out && !state->live.empty()) {
    boost::system::error_code ec;
    auto which = co_await (state->changed.wait() ||
                           timer.async_wait(asio::redirect_error(asio::use_awaitable, ec)));
    timed_out = which.index() == 1;
  }
}

}  // namespace tether::exec
