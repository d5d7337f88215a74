// Unit tests of EventLog and Subscription (event_log.hpp), no processes or sockets: strict seq
// order with out-of-order pushes and duplicates, the replay history (late subscribers, event and
// byte bounds), catch_up after a gap (filled or skipped), events_from_read's reconstruction of
// exited/closed seqs, the final failed event, and lag recovery through a fake Recover built from
// the pushed events (no duplicates, events pushed during the read, a failing read, and a slow
// subscriber not affecting a fast one).
#include <async_test.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <gtest/gtest.h>

#include <tether/exec/event_log.hpp>

namespace tether::exec {
namespace {

namespace asio = boost::asio;
using testing::run_async;
using testing::sleep_for;
using Events = std::vector<std::string>;

constexpr auto kDeadline = std::chrono::seconds(10);

OutputEvent output(std::uint64_t seq, std::string bytes = "x") {
  return OutputEvent{seq, "stdout", std::move(bytes)};
}

// A compact, comparable rendering of an event.
std::string describe(const ProcessEvent& event) {
  if (const auto* e = std::get_if<OutputEvent>(&event)) {
    return "out" + std::to_string(e->seq) + ":" + e->bytes;
  }
  if (const auto* e = std::get_if<ExitedEvent>(&event)) {
    return "exit" + std::to_string(e->seq) + ":" + std::to_string(e->exit_code);
  }
  if (const auto* e = std::get_if<ClosedEvent>(&event)) return "closed" + std::to_string(e->seq);
  return "failed:" + std::get<FailedEvent>(event).message;
}

Events describe_all(const std::vector<ProcessEvent>& events) {
  Events out;
  for (const auto& event : events) out.push_back(describe(event));
  return out;
}

// Every event up to the end (nullopt), then checks that next() stays at nullopt.
asio::awaitable<Events> collect(std::shared_ptr<Subscription> subscription) {
  Events events;
  for (;;) {
    std::optional<ProcessEvent> event = co_await subscription->next();
    if (!event) break;
    events.push_back(describe(*event));
  }
  std::optional<ProcessEvent> after = co_await subscription->next();
  if (after) events.push_back("after end: " + describe(*after));
  co_return events;
}

// The process side of a fake backend: what was pushed, and a read over it (like process/read
// with waitMs 0 and unbounded retention) for Recover.
struct FakeBackend {
  std::vector<ProcessEvent> pushed;
  int reads = 0;

  void push(EventLog& log, ProcessEvent event) {
    pushed.push_back(event);
    log.push(std::move(event));
  }

  ReadResult read(std::uint64_t after_seq) const {
    ReadResult result;
    for (const auto& event : pushed) {
      result.next_seq = std::max(result.next_seq, seq_of(event) + 1);
      if (const auto* chunk = std::get_if<OutputEvent>(&event)) {
        if (chunk->seq > after_seq) result.chunks.push_back(*chunk);
      } else if (const auto* exited = std::get_if<ExitedEvent>(&event)) {
        result.exited = true;
        result.exit_code = exited->exit_code;
      } else if (std::holds_alternative<ClosedEvent>(event)) {
        result.closed = true;
      }
    }
    return result;
  }

  EventLog::Recover recover() {
    return [this](std::uint64_t after_seq) -> asio::awaitable<Expected<ReadResult>> {
      ++reads;
      ReadResult result = read(after_seq);
      co_await sleep_for(std::chrono::milliseconds(20));  // pushes may happen meanwhile
      co_return result;
    };
  }
};

EventLog::Recover failing_recover(int* reads) {
  return [reads](std::uint64_t) -> asio::awaitable<Expected<ReadResult>> {
    ++*reads;
    co_return Error{-32600, "unknown process id p1"};
  };
}

asio::awaitable<void> push_later(std::shared_ptr<EventLog> log) {
  co_await sleep_for(std::chrono::milliseconds(10));
  log->push(output(1, "a"));
  co_await sleep_for(std::chrono::milliseconds(10));
  log->push(ClosedEvent{2});
}

using LogTest = std::function<asio::awaitable<void>(std::shared_ptr<EventLog>)>;

// Runs `body` with a fresh log (these limits and Recover) on the test's io_context.
void run_with_log(const LogTest& body, EventLogLimits limits = {}, EventLog::Recover recover = {}) {
  run_async(
      [&]() -> asio::awaitable<void> {
        auto log = EventLog::create(co_await asio::this_coro::executor, limits, recover);
        co_await body(log);
      },
      kDeadline);
}

// A process/read answer: `chunks` up to next_seq, the exit code once exited, and closed.
ReadResult read_result(std::vector<OutputEvent> chunks, std::uint64_t next_seq,
                       std::optional<int> exit_code = std::nullopt, bool closed = false) {
  ReadResult read;
  read.chunks = std::move(chunks);
  read.next_seq = next_seq;
  read.exited = exit_code.has_value();
  read.exit_code = exit_code;
  read.closed = closed;
  return read;
}

// --- delivery order --------------------------------------------------------------------------

TEST(EventLog, DeliversInOrder) {
  run_with_log([](std::shared_ptr<EventLog> log) -> asio::awaitable<void> {
    auto subscription = log->subscribe();
    log->push(output(1, "a"));
    log->push(output(2, "b"));
    log->push(ExitedEvent{3, 7});
    EXPECT_TRUE(log->exited());
    EXPECT_EQ(log->exit_code(), std::optional<int>(7));
    EXPECT_FALSE(log->ended());
    log->push(ClosedEvent{4});
    EXPECT_TRUE(log->ended());
    EXPECT_EQ(log->last_seq(), 4u);
    Events events = co_await collect(subscription);
    EXPECT_EQ(events, (Events{"out1:a", "out2:b", "exit3:7", "closed4"}));
  });
}

TEST(EventLog, OutOfOrderEventsAreHeldUntilTheGapFills) {
  run_with_log([](std::shared_ptr<EventLog> log) -> asio::awaitable<void> {
    auto subscription = log->subscribe();
    log->push(ClosedEvent{4});
    log->push(output(1, "a"));
    EXPECT_EQ(log->last_seq(), 1u);
    log->push(ExitedEvent{3, 0});
    EXPECT_FALSE(log->exited());  // held behind seq 2
    log->push(output(2, "b"));
    EXPECT_EQ(log->last_seq(), 4u);
    EXPECT_TRUE(log->ended());
    Events events = co_await collect(subscription);
    EXPECT_EQ(events, (Events{"out1:a", "out2:b", "exit3:0", "closed4"}));
  });
}

TEST(EventLog, DuplicatesAreDropped) {
  run_with_log([](std::shared_ptr<EventLog> log) -> asio::awaitable<void> {
    auto subscription = log->subscribe();
    log->push(output(1, "a"));
    log->push(output(1, "again"));
    log->push(output(3, "c"));
    log->push(output(3, "held twice"));
    log->push(output(2, "b"));
    log->push(output(2, "late"));
    log->push(output(0, "no seq"));
    log->push(ClosedEvent{4});
    log->push(output(5, "after closed"));
    Events events = co_await collect(subscription);
    EXPECT_EQ(events, (Events{"out1:a", "out2:b", "out3:c", "closed4"}));
  });
}

TEST(EventLog, NextWaitsForALaterPush) {
  run_with_log([](std::shared_ptr<EventLog> log) -> asio::awaitable<void> {
    auto subscription = log->subscribe();
    asio::co_spawn(co_await asio::this_coro::executor, push_later(log), asio::detached);
    Events events = co_await collect(subscription);
    EXPECT_EQ(events, (Events{"out1:a", "closed2"}));
  });
}

// --- replay history --------------------------------------------------------------------------

TEST(EventLog, LateSubscriberAfterClosedGetsTheWholeHistory) {
  run_with_log([](std::shared_ptr<EventLog> log) -> asio::awaitable<void> {
    log->push(output(1, "a"));
    log->push(ExitedEvent{2, 143});
    log->push(output(3, "b"));
    log->push(ClosedEvent{4});
    const Events expected{"out1:a", "exit2:143", "out3:b", "closed4"};
    Events first = co_await collect(log->subscribe());
    EXPECT_EQ(first, expected);
    Events second = co_await collect(log->subscribe());
    EXPECT_EQ(second, expected);
  });
}

TEST(EventLog, HistoryKeepsOnlyTheNewestBytes) {
  EventLogLimits limits;
  limits.history_bytes = 10;
  run_with_log(
      [](std::shared_ptr<EventLog> log) -> asio::awaitable<void> {
        auto early = log->subscribe();
        log->push(output(1, "aaaa"));
        log->push(output(2, "bbbb"));
        log->push(output(3, "cccc"));
        log->push(output(4, "dddd"));
        log->push(ExitedEvent{5, 0});
        log->push(ClosedEvent{6});
        Events late = co_await collect(log->subscribe());
        EXPECT_EQ(late, (Events{"out3:cccc", "out4:dddd", "exit5:0", "closed6"}));
        // The bound is on the replay only: an early subscriber saw everything.
        Events all = co_await collect(early);
        EXPECT_EQ(all.size(), 6u);
      },
      limits);
}

TEST(EventLog, HistoryKeepsOnlyTheNewestEvents) {
  EventLogLimits limits;
  limits.history_events = 2;
  run_with_log(
      [](std::shared_ptr<EventLog> log) -> asio::awaitable<void> {
        for (std::uint64_t seq = 1; seq <= 5; ++seq) log->push(output(seq));
        log->push(ClosedEvent{6});
        Events late = co_await collect(log->subscribe());
        EXPECT_EQ(late, (Events{"out5:x", "closed6"}));
      },
      limits);
}

// --- catch_up --------------------------------------------------------------------------------

TEST(EventLog, CatchUpFillsAGap) {
  run_with_log([](std::shared_ptr<EventLog> log) -> asio::awaitable<void> {
    auto subscription = log->subscribe();
    log->push(output(1, "a"));
    log->push(output(4, "d"));  // 2 and 3 were lost with the connection
    log->catch_up(read_result({output(1, "a"), output(2, "b"), output(3, "c")}, 4));
    EXPECT_EQ(log->last_seq(), 4u);
    log->push(ClosedEvent{5});
    Events events = co_await collect(subscription);
    EXPECT_EQ(events, (Events{"out1:a", "out2:b", "out3:c", "out4:d", "closed5"}));
  });
}

TEST(EventLog, CatchUpSkipsWhatTheServerNoLongerHas) {
  run_with_log([](std::shared_ptr<EventLog> log) -> asio::awaitable<void> {
    auto subscription = log->subscribe();
    log->push(output(1, "a"));
    log->push(output(3, "c"));  // held; 2 and 4 are gone from the server's retention
    log->catch_up(read_result({output(5, "e"), output(6, "f")}, 7));
    EXPECT_EQ(log->last_seq(), 6u);
    log->push(output(6, "duplicate"));
    log->push(ClosedEvent{7});
    Events events = co_await collect(subscription);
    // The held event in the skipped range is still delivered, in order.
    EXPECT_EQ(events, (Events{"out1:a", "out3:c", "out5:e", "out6:f", "closed7"}));
  });
}

TEST(EventLog, CatchUpDeliversExitedAndClosed) {
  run_with_log([](std::shared_ptr<EventLog> log) -> asio::awaitable<void> {
    log->push(output(1, "a"));
    log->catch_up(read_result({output(1, "a"), output(2, "b")}, 5, 3, true));
    EXPECT_TRUE(log->ended());
    EXPECT_EQ(log->exit_code(), std::optional<int>(3));
    Events events = co_await collect(log->subscribe());
    EXPECT_EQ(events, (Events{"out1:a", "out2:b", "exit3:3", "closed4"}));
  });
}

// --- events_from_read ------------------------------------------------------------------------

TEST(EventsFromRead, ExitedTakesTheHighestFreeSeqBelowClosed) {
  const ReadResult read = read_result({output(1, "a"), output(2, "b"), output(4, "d")}, 6, 7, true);
  EXPECT_EQ(describe_all(events_from_read(0, read)),
            (Events{"out1:a", "out2:b", "exit3:7", "out4:d", "closed5"}));
  EXPECT_EQ(describe_all(events_from_read(2, read)), (Events{"exit3:7", "out4:d", "closed5"}));
  EXPECT_EQ(describe_all(events_from_read(4, read)), (Events{"closed5"}));
  EXPECT_EQ(describe_all(events_from_read(5, read)), Events{});
}

TEST(EventsFromRead, ExitedBeforeClosedWithoutOutputAfterIt) {
  const ReadResult read = read_result({output(1, "a")}, 4, 0, true);
  EXPECT_EQ(describe_all(events_from_read(0, read)), (Events{"out1:a", "exit2:0", "closed3"}));
}

TEST(EventsFromRead, ExitedButNotClosedUsesNextSeq) {
  const ReadResult read = read_result({output(1, "a")}, 3, 1);
  EXPECT_EQ(describe_all(events_from_read(0, read)), (Events{"out1:a", "exit2:1"}));
}

TEST(EventsFromRead, ExitedWithNoFreeSeqIsSkipped) {
  const ReadResult read = read_result({output(3, "c"), output(4, "d")}, 5, 0);
  // The exit was seen already (seq <= 2).
  EXPECT_EQ(describe_all(events_from_read(2, read)), (Events{"out3:c", "out4:d"}));
}

TEST(EventsFromRead, ClosedAloneAndRunningProcess) {
  const ReadResult closed = read_result({}, 4, std::nullopt, true);
  EXPECT_EQ(describe_all(events_from_read(0, closed)), (Events{"closed3"}));

  const ReadResult running = read_result({output(1, "a"), output(2, "b")}, 3);
  EXPECT_EQ(describe_all(events_from_read(1, running)), (Events{"out2:b"}));
  EXPECT_EQ(describe_all(events_from_read(0, ReadResult{})), Events{});
}

// --- failure ---------------------------------------------------------------------------------

TEST(EventLog, FailIsTheLastEvent) {
  run_with_log([](std::shared_ptr<EventLog> log) -> asio::awaitable<void> {
    auto subscription = log->subscribe();
    log->push(output(1, "a"));
    log->push(output(3, "held, never delivered"));
    log->fail("exec-server transport disconnected");
    log->fail("second failure is ignored");
    log->push(output(2, "after failure"));
    log->push(FailedEvent{"pushed failure is ignored too"});
    EXPECT_TRUE(log->ended());
    EXPECT_EQ(log->failure(), std::optional<std::string>("exec-server transport disconnected"));
    EXPECT_EQ(log->last_seq(), 1u);
    const Events expected{"out1:a", "failed:exec-server transport disconnected"};
    Events live = co_await collect(subscription);
    EXPECT_EQ(live, expected);
    Events late = co_await collect(log->subscribe());
    EXPECT_EQ(late, expected);
  });
}

TEST(EventLog, FailedPushIsFail) {
  run_with_log([](std::shared_ptr<EventLog> log) -> asio::awaitable<void> {
    log->push(FailedEvent{"gone"});
    EXPECT_EQ(log->failure(), std::optional<std::string>("gone"));
    Events events = co_await collect(log->subscribe());
    EXPECT_EQ(events, (Events{"failed:gone"}));
  });
}

TEST(EventLog, FailAfterClosedIsIgnored) {
  run_with_log([](std::shared_ptr<EventLog> log) -> asio::awaitable<void> {
    log->push(ClosedEvent{1});
    log->fail("too late");
    EXPECT_FALSE(log->failure().has_value());
    Events events = co_await collect(log->subscribe());
    EXPECT_EQ(events, (Events{"closed1"}));
  });
}

// --- lag recovery ----------------------------------------------------------------------------

EventLogLimits small_limits() {
  EventLogLimits limits;
  limits.history_events = 2;  // so that recovery needs the read, not just the history
  limits.subscriber_queue_events = 4;
  return limits;
}

// The default outputs from `first` to `last`, then `rest`.
Events outputs(std::uint64_t first, std::uint64_t last, const Events& rest = {}) {
  Events events;
  for (auto seq = first; seq <= last; ++seq) events.push_back("out" + std::to_string(seq) + ":x");
  events.insert(events.end(), rest.begin(), rest.end());
  return events;
}

TEST(EventLog, LaggingSubscriberRecoversThroughRead) {
  FakeBackend backend;
  run_with_log(
      [&backend](std::shared_ptr<EventLog> log) -> asio::awaitable<void> {
        auto subscription = log->subscribe();
        for (std::uint64_t seq = 1; seq <= 9; ++seq) backend.push(*log, output(seq));
        backend.push(*log, ClosedEvent{10});
        Events events = co_await collect(subscription);
        EXPECT_EQ(events, outputs(1, 9, {"closed10"}));
        EXPECT_EQ(backend.reads, 1);
      },
      small_limits(), backend.recover());
}

asio::awaitable<void> push_during_read(FakeBackend& backend, std::shared_ptr<EventLog> log) {
  co_await sleep_for(std::chrono::milliseconds(5));  // the read (20 ms) is in flight
  backend.push(*log, output(11));
  backend.push(*log, ExitedEvent{12, 0});
  backend.push(*log, ClosedEvent{13});
}

TEST(EventLog, EventsPushedDuringRecoveryAreNotLostOrRepeated) {
  FakeBackend backend;
  run_with_log(
      [&backend](std::shared_ptr<EventLog> log) -> asio::awaitable<void> {
        auto subscription = log->subscribe();
        for (std::uint64_t seq = 1; seq <= 10; ++seq) backend.push(*log, output(seq));
        asio::co_spawn(co_await asio::this_coro::executor, push_during_read(backend, log),
                       asio::detached);
        Events events = co_await collect(subscription);
        EXPECT_EQ(events, outputs(1, 11, {"exit12:0", "closed13"}));
        EXPECT_EQ(backend.reads, 1);
      },
      small_limits(), backend.recover());
}

TEST(EventLog, FailedRecoverySkipsTheGap) {
  int reads = 0;
  run_with_log(
      [&reads](std::shared_ptr<EventLog> log) -> asio::awaitable<void> {
        auto subscription = log->subscribe();
        for (std::uint64_t seq = 1; seq <= 10; ++seq) log->push(output(seq));
        log->push(ClosedEvent{11});
        Events events = co_await collect(subscription);
        // What the history still has (the newest two events); the rest is skipped.
        EXPECT_EQ(events, (Events{"out10:x", "closed11"}));
        EXPECT_EQ(reads, 1);
      },
      small_limits(), failing_recover(&reads));
}

TEST(EventLog, LaggingSubscriberOfAFailedLogEndsWithTheFailure) {
  int reads = 0;
  run_with_log(
      [&reads](std::shared_ptr<EventLog> log) -> asio::awaitable<void> {
        auto subscription = log->subscribe();
        for (std::uint64_t seq = 1; seq <= 9; ++seq) log->push(output(seq));
        log->fail("gone");
        Events events = co_await collect(subscription);
        CO_ASSERT_TRUE(!events.empty());
        EXPECT_EQ(events.back(), "failed:gone");
        EXPECT_EQ(reads, 1);
      },
      small_limits(), failing_recover(&reads));
}

TEST(EventLog, SlowSubscriberDoesNotAffectAFastOne) {
  FakeBackend backend;
  run_with_log(
      [&backend](std::shared_ptr<EventLog> log) -> asio::awaitable<void> {
        auto fast = log->subscribe();
        auto slow = log->subscribe();
        Events fast_events;
        for (std::uint64_t seq = 1; seq <= 10; ++seq) {
          backend.push(*log, output(seq));
          std::optional<ProcessEvent> event = co_await fast->next();
          CO_ASSERT_TRUE(event.has_value());
          fast_events.push_back(describe(*event));
        }
        EXPECT_EQ(backend.reads, 0);  // the fast one never lagged
        backend.push(*log, ClosedEvent{11});
        Events fast_rest = co_await collect(fast);
        EXPECT_EQ(fast_rest, (Events{"closed11"}));
        EXPECT_EQ(fast_events, outputs(1, 10));

        Events slow_events = co_await collect(slow);
        EXPECT_EQ(slow_events, outputs(1, 10, {"closed11"}));
        EXPECT_EQ(backend.reads, 1);
      },
      small_limits(), backend.recover());
}

}  // namespace
}  // namespace tether::exec
