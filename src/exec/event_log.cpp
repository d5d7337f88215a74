// EventLog and Subscription (event_log.hpp): seq ordering, the replay history and lag recovery
// for one process.
//
// Data flow: push/catch_up → held_ (ahead of a gap) → deliver() → history_ and every live
// subscriber's queue_ → Subscription::next(). A subscriber starts with a copy of the history in
// replay_; only live offers count against its queue bound, so a late subscriber is never
// lagging because of its own replay.
//
// Lag recovery merges, by seq, everything that may hold an event after the subscriber's last
// seen seq: what it has not returned yet (replay_, queue_), the log's current history (it has
// the newest events, with their real seqs, even when the read fails) and the Recover read. Real
// events win over ones inferred from the read (an `exited` seq is a guess). A seq none of them
// has is gone: the subscriber skips it. When the log failed, the merge ends with its FailedEvent.
#include <algorithm>
#include <limits>
#include <set>
#include <utility>

#include <tether/exec/event_log.hpp>

namespace tether::exec {
namespace asio = boost::asio;

namespace {

bool is_failed(const ProcessEvent& event) {
  return std::holds_alternative<FailedEvent>(event);
}

bool is_end(const ProcessEvent& event) {
  return is_failed(event) || std::holds_alternative<ClosedEvent>(event);
}

// Seq order with FailedEvent (no seq) after everything: it is always the last event.
std::uint64_t order_key(const ProcessEvent& event) {
  return is_failed(event) ? std::numeric_limits<std::uint64_t>::max() : seq_of(event);
}

}  // namespace

std::vector<ProcessEvent> events_from_read(std::uint64_t after_seq, const ReadResult& result) {
  std::vector<ProcessEvent> events;
  std::set<std::uint64_t> used;
  for (const auto& chunk : result.chunks) {
    if (chunk.seq <= after_seq) continue;
    used.insert(chunk.seq);
    events.emplace_back(chunk);
  }
  // `closed` carries the highest seq; `exited` the highest one left free below it.
  std::uint64_t end = result.next_seq;
  if (result.closed && result.next_seq > 0) {
    end = result.next_seq - 1;
    if (end > after_seq) events.emplace_back(ClosedEvent{end});
  }
  if (result.exited) {
    for (std::uint64_t seq = end; seq > after_seq + 1;) {
      --seq;
      if (used.count(seq) == 0) {
        // A latched read may report exited without a code; -1 is "killed" (April servers).
        events.emplace_back(ExitedEvent{seq, result.exit_code.value_or(-1)});
        break;
      }
    }
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const auto& a, const auto& b) { return order_key(a) < order_key(b); });
  return events;
}

// --- EventLog ------------------------------------------------------------------------------

std::shared_ptr<EventLog> EventLog::create(asio::any_io_executor executor, EventLogLimits limits,
                                           Recover recover) {
  return std::shared_ptr<EventLog>(new EventLog(std::move(executor), limits, std::move(recover)));
}

EventLog::EventLog(asio::any_io_executor executor, EventLogLimits limits, Recover recover)
    : executor_(std::move(executor)), limits_(limits), recover_(std::move(recover)) {}

void EventLog::push(ProcessEvent event) {
  if (auto* failed = std::get_if<FailedEvent>(&event)) {
    fail(std::move(failed->message));
    return;
  }
  if (ended()) return;
  const auto seq = seq_of(event);
  if (seq <= last_seq_) return;  // duplicate
  held_.emplace(seq, std::move(event));
  deliver_contiguous();
}

void EventLog::catch_up(const ReadResult& result) {
  if (ended()) return;
  auto events = events_from_read(last_seq_, result);
  if (events.empty()) return;
  const auto read_end = seq_of(events.back());
  for (auto& event : events) held_.emplace(seq_of(event), std::move(event));
  // Up to the read's end, a seq that neither the read nor a push brought is gone from the
  // server: deliver what there is in order, skipping the gaps. Beyond it, wait as usual.
  while (!ended() && !held_.empty() && held_.begin()->first <= read_end) {
    auto node = held_.extract(held_.begin());
    deliver(std::move(node.mapped()));
  }
  deliver_contiguous();
}

void EventLog::fail(std::string message) {
  if (ended()) return;
  failure_ = std::move(message);
  held_.clear();
  offer_all(FailedEvent{*failure_});
}

std::shared_ptr<Subscription> EventLog::subscribe() {
  std::shared_ptr<Subscription> subscription(new Subscription(shared_from_this(), executor_));
  subscription->replay_.assign(history_.begin(), history_.end());
  if (failure_) subscription->replay_.emplace_back(FailedEvent{*failure_});
  std::erase_if(subscribers_, [](const auto& weak) { return weak.expired(); });
  subscribers_.push_back(subscription);
  return subscription;
}

void EventLog::deliver_contiguous() {
  while (!ended() && !held_.empty() && held_.begin()->first == last_seq_ + 1) {
    auto node = held_.extract(held_.begin());
    deliver(std::move(node.mapped()));
  }
  // Nothing follows `closed`: whatever is still held is bogus.
  if (ended()) held_.clear();
}

void EventLog::deliver(ProcessEvent event) {
  last_seq_ = seq_of(event);
  if (const auto* output = std::get_if<OutputEvent>(&event)) {
    history_bytes_ += output->bytes.size();
  } else if (const auto* exited = std::get_if<ExitedEvent>(&event)) {
    exit_code_ = exited->exit_code;
  } else if (std::holds_alternative<ClosedEvent>(event)) {
    closed_ = true;
  }
  history_.push_back(event);
  trim_history();
  offer_all(event);
}

void EventLog::offer_all(const ProcessEvent& event) {
  std::erase_if(subscribers_, [&event](const auto& weak) {
    const auto subscriber = weak.lock();
    if (!subscriber) return true;
    subscriber->offer(event);
    return false;
  });
}

void EventLog::trim_history() {
  while (!history_.empty() &&
         (history_.size() > limits_.history_events || history_bytes_ > limits_.history_bytes)) {
    if (const auto* output = std::get_if<OutputEvent>(&history_.front())) {
      history_bytes_ -= output->bytes.size();
    }
    history_.pop_front();
  }
}

// --- Subscription --------------------------------------------------------------------------

Subscription::Subscription(std::shared_ptr<EventLog> log, const asio::any_io_executor& executor)
    : log_(std::move(log)), arrived_(executor) {}

void Subscription::offer(const ProcessEvent& event) {
  if (finished_) return;
  queue_.push_back(event);
  if (queue_.size() > log_->limits_.subscriber_queue_events) {
    // Recovery reads everything after last_seen_, so the queued events are not needed.
    queue_.clear();
    lagging_ = true;
  }
  arrived_.notify_all();
}

asio::awaitable<std::optional<ProcessEvent>> Subscription::next() {
  for (;;) {
    if (finished_) co_return std::nullopt;
    if (lagging_) {
      co_await recover();
      continue;
    }
    auto& source = replay_.empty() ? queue_ : replay_;
    if (source.empty()) {
      co_await arrived_.wait();
      continue;
    }
    ProcessEvent event = std::move(source.front());
    source.pop_front();
    if (!is_failed(event)) {
      if (seq_of(event) <= last_seen_) continue;  // already returned
      last_seen_ = seq_of(event);
    }
    if (is_end(event)) finished_ = true;
    co_return event;
  }
}

asio::awaitable<void> Subscription::recover() {
  lagging_ = false;  // offers during the read queue up again (and may overflow again)
  const auto log = log_;
  const auto from = last_seen_;
  std::vector<ProcessEvent> read_events;
  if (log->recover_) {
    Expected<ReadResult> result = co_await log->recover_(from);
    // A failed read (or a latched result) contributes nothing: the gap is skipped, or the
    // merge ends with the log's FailedEvent below.
    if (result && !result->failure) read_events = events_from_read(from, *result);
  }
  // Real events first, so that the stable sort and dedup keep them over inferred ones.
  std::vector<ProcessEvent> merged(replay_.begin(), replay_.end());
  merged.insert(merged.end(), queue_.begin(), queue_.end());
  merged.insert(merged.end(), log->history_.begin(), log->history_.end());
  merged.insert(merged.end(), read_events.begin(), read_events.end());
  if (log->failure_) merged.emplace_back(FailedEvent{*log->failure_});
  std::erase_if(merged, [from](const ProcessEvent& event) {
    return !is_failed(event) && seq_of(event) <= from;
  });
  std::stable_sort(merged.begin(), merged.end(),
                   [](const auto& a, const auto& b) { return order_key(a) < order_key(b); });
  merged.erase(
      std::unique(merged.begin(), merged.end(),
                  [](const auto& a, const auto& b) { return order_key(a) == order_key(b); }),
      merged.end());
  replay_.assign(merged.begin(), merged.end());
  queue_.clear();
}

}  // namespace tether::exec
