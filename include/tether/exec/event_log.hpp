// tether::exec EventLog — one process's events as subscribers see them, for every placement.
//
// Owns: delivery in strict seq order (out-of-order events are held until the gap fills;
// duplicates, seq <= last delivered, are dropped), the bounded replay history (256 events /
// 1 MiB of output by default) that late subscribers receive first, even after `closed`,
// per-subscriber queues bounded by events, and lag recovery: a subscriber that fell behind
// catches up through the backend's read from its last seen seq, deduplicating by seq.
// Does not own: where events come from (a local process or executor notifications) or how a
// read is done (the Recover callback).
// Threading: one executor; push/catch_up/fail and the subscribers' next() all run on it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <tether/exec/process_api.hpp>
#include <tether/jsonrpc/async_signal.hpp>

namespace tether::exec {

struct EventLogLimits {
  std::size_t history_events = 256;
  std::size_t history_bytes = std::size_t{1} << 20;
  // A subscriber with this many undelivered events is lagging: its queue is dropped and it
  // recovers through Recover (codex's broadcast capacity).
  std::size_t subscriber_queue_events = 4096;
};

// The events a read result stands for, after `after_seq`: its chunks, then `exited` and
// `closed` when the result reports them (their seqs are the ones the chunks leave free).
std::vector<ProcessEvent> events_from_read(std::uint64_t after_seq, const ReadResult& result);

class EventLog : public std::enable_shared_from_this<EventLog> {
 public:
  // Reads retained output after a seq (process/read with waitMs 0, or the local equivalent).
  using Recover = std::function<boost::asio::awaitable<Expected<ReadResult>>(std::uint64_t)>;

  static std::shared_ptr<EventLog> create(boost::asio::any_io_executor executor,
                                          EventLogLimits limits, Recover recover);

  // An event from the backend, in any order.
  void push(ProcessEvent event);
  // Events the backend could not push (a resumed connection's gap), from a read after
  // last_seq(). Delivered like pushes; a seq the read no longer has is skipped.
  void catch_up(const ReadResult& result);
  // The final event: the process can no longer be observed. Later pushes are ignored.
  void fail(std::string message);

  std::shared_ptr<Subscription> subscribe();

  // Highest seq delivered (0 before any).
  std::uint64_t last_seq() const { return last_seq_; }
  bool exited() const { return exit_code_.has_value(); }
  std::optional<int> exit_code() const { return exit_code_; }
  // `closed` was delivered, or the log failed.
  bool ended() const { return closed_ || failure_.has_value(); }
  const std::optional<std::string>& failure() const { return failure_; }

 private:
  friend class Subscription;
  EventLog(boost::asio::any_io_executor executor, EventLogLimits limits, Recover recover);
  // Delivers held events while they continue last_seq_.
  void deliver_contiguous();
  void deliver(ProcessEvent event);
  void offer_all(const ProcessEvent& event);
  void trim_history();

  boost::asio::any_io_executor executor_;
  EventLogLimits limits_;
  Recover recover_;
  std::uint64_t last_seq_ = 0;
  std::map<std::uint64_t, ProcessEvent> held_;  // arrived ahead of a gap
  std::deque<ProcessEvent> history_;
  std::size_t history_bytes_ = 0;
  std::vector<std::weak_ptr<Subscription>> subscribers_;
  std::optional<int> exit_code_;
  bool closed_ = false;
  std::optional<std::string> failure_;
};

class Subscription {
 public:
  // The next event in seq order; nullopt once `closed` or `failed` has been returned.
  boost::asio::awaitable<std::optional<ProcessEvent>> next();

 private:
  friend class EventLog;
  Subscription(std::shared_ptr<EventLog> log, const boost::asio::any_io_executor& executor);
  void offer(const ProcessEvent& event);
  // Refills replay_ after a lag (the merge is described in event_log.cpp).
  boost::asio::awaitable<void> recover();

  std::shared_ptr<EventLog> log_;
  // Returned before queue_: the history copy at subscribe, then what a recovery merged. Not
  // bounded by subscriber_queue_events, which counts only live offers (queue_).
  std::deque<ProcessEvent> replay_;
  std::deque<ProcessEvent> queue_;
  jsonrpc::AsyncSignal arrived_;
  std::uint64_t last_seen_ = 0;
  bool lagging_ = false;
  bool finished_ = false;
};

}  // namespace tether::exec
