// One process run by the executor for a client: the protocol's view of a process::Child.
//
// Owns: the per-process seq counter, output retention (newest 1 MiB / 50 000 chunks), the
// `exited` / `closed` events and their ordering, long-poll wake-ups, the stdin queue with
// writeId de-duplication, and flow control on the output pipes.
// Does not own: the process table or session lifetime (session.hpp), JSON-RPC dispatch
// (connection.cpp), spawning details (process::Child).
// Data flows: pipe/pty -> reader coroutine -> retained chunk + `process/output` pushed through
// the Outlet; child exit -> `process/exited`; all streams at EOF after exit -> `process/closed`.
// Flow control and retention: a chunk leaves retention (beyond the newest 1 MiB) only once the
// client confirmed it: the connection's pong to a ping sent after its notification or after a
// process/read answer that carried it, or a process/read past its seq. Bytes merely written to a
// socket are not confirmed: a lost connection can take them with it, and the resuming client reads
// them with process/read. A reader waits before each read while the attached connection's send
// queue is over its bound, or while retention holds its full allowance of unconfirmed output
// (attached or detached); the child then blocks on its pipe instead of the executor buffering
// without bound.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include <tether/exec/process_api.hpp>
#include <tether/exec/protocol.hpp>
#include <tether/jsonrpc/async_signal.hpp>
#include <tether/jsonrpc/peer.hpp>
#include <tether/process/child.hpp>

namespace tether::exec {

class ManagedProcess;

// Where a process's events go: the executor session's connection (serialized notifications,
// nowhere while detached), or a local process's EventLog.
class Outlet {
 public:
  explicit Outlet(const boost::asio::any_io_executor& executor) : changed(executor) {}
  virtual ~Outlet() = default;

  // `on_delivered` runs once the consumer confirmed the chunk (see "Flow control" above).
  virtual void output(const ManagedProcess& process, std::uint64_t seq, std::string_view stream,
                      std::string_view bytes, std::function<void()> on_delivered) = 0;
  virtual void exited(const ManagedProcess& process, std::uint64_t seq,
                      const process::ExitStatus& status) = 0;
  virtual void closed(const ManagedProcess& process, std::uint64_t seq) = 0;
  // Whether a consumer takes events now; while not, retention is all there is.
  virtual bool attached() const = 0;
  // Returns once the attached consumer can take more.
  virtual boost::asio::awaitable<void> wait_writable() = 0;

  jsonrpc::AsyncSignal changed;  // attach, detach
};

struct ProcessLimits {
  std::size_t retained_bytes = std::size_t{1} << 20;
  std::size_t retained_chunks = 50'000;
  // Unconfirmed output retention may hold beyond the above before the readers pause: room for
  // what is on its way to the client (a send queue's worth) without stalling the process.
  std::size_t unconfirmed_bytes = std::size_t{4} << 20;
  std::size_t unconfirmed_chunks = 50'000;
  std::size_t remembered_write_ids = 4096;
  std::size_t stdin_queue_bytes = std::size_t{16} << 20;
  std::chrono::milliseconds kill_grace{2000};
};

class ManagedProcess : public std::enable_shared_from_this<ManagedProcess> {
 public:
  using ClosedCallback = std::function<void(const std::string& process_id)>;

  static Expected<std::shared_ptr<ManagedProcess>> start(
      const boost::asio::any_io_executor& executor, std::string id,
      const process::SpawnOptions& options, bool stdin_open, std::shared_ptr<Outlet> outlet,
      const ProcessLimits& limits, ClosedCallback on_closed);

  const std::string& id() const { return id_; }
  // The id as a JSON string literal, for hand-built notifications.
  const std::string& id_json() const { return id_json_; }
  pid_t pid() const { return child_->pid(); }
  std::chrono::steady_clock::time_point started_at() const { return started_at_; }
  bool exited() const { return exit_.has_value(); }
  bool closed() const { return closed_; }

  // Queues bytes for stdin in call order, each write once the queue is at or under its bound:
  // pipelined writes wait here, in line, instead of growing the queue. Returns once the bytes
  // are queued. A repeated writeId is accepted and writes nothing. Takes its place in line
  // before it first suspends, so callers keep request order by calling it before they wait.
  boost::asio::awaitable<WriteStatus> write(std::string bytes, std::optional<std::string> write_id);
  // The writer's connection is gone: writes still waiting for room are dropped unwritten (they
  // answer stdinClosed to nobody) and their writeIds forgotten, so a resumed client's retry
  // writes them.
  void drop_waiting_writes();

  // Retained chunks after `after_seq`, at most `max_bytes` decoded bytes (but at least one chunk
  // when any is available).
  ReadResult read(std::uint64_t after_seq, std::optional<std::size_t> max_bytes) const;
  // The client has every chunk up to `seq` (it asked to read after it).
  void acknowledge(std::uint64_t seq);
  // The client received the retained chunks with seqs in [first, last] (a read's answer).
  void confirm_range(std::uint64_t first, std::uint64_t last);
  // True when read(after_seq) would return a chunk, or the process has exited.
  bool has_news(std::uint64_t after_seq) const;
  // Wakes on new output, exit or close.
  jsonrpc::AsyncSignal& changed() { return changed_; }

  // SIGTERM the group, SIGKILL after the grace. Returns whether it was still running.
  bool terminate();
  void interrupt();
  // Session end: signal the whole group even when the leader already exited (its group may
  // live on), then after the grace stop reading whatever still holds the pipes open.
  void end();

 private:
  ManagedProcess(const boost::asio::any_io_executor& executor, std::string id,
                 std::shared_ptr<Outlet> outlet, const ProcessLimits& limits,
                 ClosedCallback on_closed);

  struct Chunk {
    std::uint64_t seq;
    std::string_view stream;
    std::string bytes;
    bool confirmed = false;  // the client confirmed receiving its notification
  };

  struct Stream {
    boost::asio::posix::stream_descriptor* descriptor = nullptr;
    std::string_view name;  // "stdout", "stderr" or "pty"
    bool open = false;      // until its reader saw the end
  };

  boost::asio::awaitable<void> read_stream(Stream& stream);
  // Reads what the stream holds now (never waits) and relays it; returns the end or error seen.
  boost::system::error_code read_available(Stream& stream);
  boost::asio::awaitable<void> wait_for_capacity();
  boost::asio::awaitable<void> wait_exit();
  // After end(): stops waiting for EOF once the grace is over.
  static boost::asio::awaitable<void> release_pipes_later(std::shared_ptr<ManagedProcess> self);
  boost::asio::awaitable<void> write_stdin();
  void add_output(std::string_view stream, std::string_view bytes);
  void evict();
  bool retention_full() const;
  void maybe_close();
  void remember_write_id(const std::string& write_id);
  void forget_write_id(const std::string& write_id);

  boost::asio::any_io_executor executor_;
  std::string id_;
  std::string id_json_;
  std::shared_ptr<Outlet> outlet_;
  ProcessLimits limits_;
  ClosedCallback on_closed_;
  std::shared_ptr<process::Child> child_;
  std::chrono::steady_clock::time_point started_at_ = std::chrono::steady_clock::now();

  std::uint64_t next_seq_ = 1;
  std::deque<Chunk> retained_;
  std::size_t retained_bytes_ = 0;
  std::uint64_t acknowledged_seq_ = 0;  // the client has every chunk up to here
  jsonrpc::AsyncSignal room_;           // retention made room, or the readers must stop waiting
  std::array<Stream, 2> streams_;       // stdout (or pty), stderr
  std::optional<process::ExitStatus> exit_;
  bool closed_ = false;
  bool terminating_ = false;
  jsonrpc::AsyncSignal changed_;

  bool stdin_open_ = false;
  bool stdin_writing_ = false;
  std::deque<std::string> stdin_queue_;
  std::size_t stdin_queued_bytes_ = 0;
  // Writers take numbers in call order; the one whose number is stdin_turn_ queues next.
  // Numbers under stdin_dropped_below_ were dropped unwritten.
  std::uint64_t stdin_next_number_ = 0;
  std::uint64_t stdin_turn_ = 0;
  std::uint64_t stdin_dropped_below_ = 0;
  jsonrpc::AsyncSignal stdin_drained_;
  std::deque<std::string> write_id_order_;
  std::unordered_set<std::string> write_ids_;
};

}  // namespace tether::exec
