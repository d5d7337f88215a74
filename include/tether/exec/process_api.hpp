// tether::exec process API — "a process somewhere", the same for this machine and an executor.
//
// Owns: the events every placement produces, and the two interfaces MCP code is written against:
// ProcessStarter (where processes start) and Process (one running process: stdin, output,
// lifetime). Start parameters, read results and write statuses are the protocol's types.
// Does not own: how a backend runs the process (local_processes.hpp, client.hpp) or the replay
// rules behind subscribe() (event_log.hpp).
// Data flows: a backend produces events (output/exited/closed, or failed when its executor is
// gone) into the process's EventLog; subscribers and read() consume them.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include <tether/exec/protocol.hpp>

namespace tether::exec {

class Subscription;

struct ExitedEvent {
  std::uint64_t seq = 0;
  int exit_code = 0;  // 128 + N when killed by signal N
};
struct ClosedEvent {
  std::uint64_t seq = 0;
};
// The process can no longer be observed (its executor is gone); always the last event.
struct FailedEvent {
  std::string message;
};
using ProcessEvent = std::variant<OutputEvent, ExitedEvent, ClosedEvent, FailedEvent>;

// The seq of an event; 0 for FailedEvent, which has none.
std::uint64_t seq_of(const ProcessEvent& event);

class Process {
 public:
  virtual ~Process() = default;
  virtual const std::string& id() const = 0;

  // Queues bytes for stdin, in call order.
  virtual boost::asio::awaitable<Expected<WriteStatus>> write(std::string bytes) = 0;
  // Retained output after `after_seq` (at most `max_bytes` decoded bytes, at least one chunk when
  // any is available), waiting up to `wait` for something new.
  virtual boost::asio::awaitable<Expected<ReadResult>> read(
      std::uint64_t after_seq, std::optional<std::size_t> max_bytes = {},
      std::chrono::milliseconds wait = {}) = 0;
  // SIGTERM to the process group, SIGKILL after the grace; returns whether it was running.
  virtual boost::asio::awaitable<Expected<bool>> terminate() = 0;
  // Events in seq order: the replay history first, then live ones, up to `closed` or `failed`.
  virtual std::shared_ptr<Subscription> subscribe() = 0;
};

class ProcessStarter {
 public:
  virtual ~ProcessStarter() = default;
  // Starts a process. Its events are captured from the very first one, so a subscriber that
  // comes later still sees all of them (within the replay bound).
  virtual boost::asio::awaitable<Expected<std::shared_ptr<Process>>> start(StartParams params) = 0;
};

}  // namespace tether::exec
