// tether::exec LocalProcesses — the process API's placement on this machine.
//
// Owns: starting processes here with the executor's engine (ManagedProcess: seqs, retention,
// exited/closed ordering, the stdin queue) and the executor's validation, messages and
// environment policy; the table of process ids (an id stays reserved for the lifetime of the
// LocalProcesses, as the executor reserves it for its retention); ending every live process
// group when closed or destroyed.
// Does not own: replay and lag recovery (EventLog), spawning details (process::Child).
// Data flows: child pipes/pty -> ManagedProcess -> LocalOutlet -> the process's EventLog ->
// subscribers; Process::read reads ManagedProcess retention directly; Process::write queues on
// its stdin. Local delivery is confirmed as soon as an event is in the EventLog.
// Threading: one executor; every call runs on it.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <tether/exec/event_log.hpp>
#include <tether/exec/process_api.hpp>

namespace tether::exec {

struct LocalProcessOptions {
  // Output kept for read() (the newest bytes / chunks).
  std::size_t retained_bytes = std::size_t{1} << 20;
  std::size_t retained_chunks = 50'000;
  // write() waits while this much stdin is queued and not yet taken by the child.
  std::size_t stdin_queue_bytes = std::size_t{16} << 20;
  // SIGTERM to SIGKILL on terminate() and on close.
  std::chrono::milliseconds kill_grace{2000};
  EventLogLimits event_limits;
};

class LocalProcesses : public ProcessStarter {
 public:
  static std::shared_ptr<LocalProcesses> create(boost::asio::any_io_executor executor,
                                                LocalProcessOptions options = {});
  // Ends every live process group (SIGTERM now, SIGKILL after the grace) without waiting.
  ~LocalProcesses() override;
  LocalProcesses(const LocalProcesses&) = delete;
  LocalProcesses& operator=(const LocalProcesses&) = delete;

  // Errors as the executor's process/start: -32602 `argv must not be empty` (and the cwd and
  // env field errors), -32600 `process <id> already exists`, -32603 with the OS reason when
  // the spawn fails.
  boost::asio::awaitable<Expected<std::shared_ptr<Process>>> start(StartParams params) override;

  // Ends every live process group and waits (bounded by the kill grace plus a little) until
  // they closed. Later starts fail; later writes report unknown_process.
  boost::asio::awaitable<void> close();

  struct State;

 private:
  explicit LocalProcesses(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace tether::exec
