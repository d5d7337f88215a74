// Acceptance scenarios through the one process API (process_api.hpp), run once per placement:
// acceptance scenarios 1-8 and 14, a 1 MiB binary round trip through `cat`, a process
// killed by a signal, start errors, and the starter's destruction ending every process group.
//
// Placements are Backend objects made by make_backend(): the local one (LocalProcesses) and,
// once added, the executor one (see "ADD THE EXECUTOR BACKEND HERE"). Tests only see a
// ProcessStarter and the Process handles it returns.
//
// Cleanup: every process gets a unique marker in its command line (`sh -c <script> <marker>`,
// so the marker is $0). The body drops the starter at its end (or when it fails), which must
// end every process it started; TearDown then checks, by marker, that nothing is left.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>
#include <variant>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "exec_server.hpp"
#include <tether/exec/client.hpp>
#include <tether/exec/event_log.hpp>
#include <tether/exec/local_processes.hpp>
#include <tether/exec/process_api.hpp>

namespace tether::exec {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::eventually;
using testing::processes_matching;
using testing::run_async;
using testing::sleep_for;

using StarterPtr = std::shared_ptr<ProcessStarter>;
using ProcessPtr = std::shared_ptr<Process>;

// ---------------------------------------------------------------------------------------------
// Placements.

// One placement under test. Whatever it needs besides the starter (an executor) it starts in
// its constructor and ends in its destructor, which runs after the test body.
class Backend {
 public:
  virtual ~Backend() = default;
  // A starter on the test body's executor whose processes' EventLogs use `limits`.
  virtual asio::awaitable<StarterPtr> make_starter(EventLogLimits limits) = 0;
};

class LocalBackend final : public Backend {
 public:
  asio::awaitable<StarterPtr> make_starter(EventLogLimits limits) override {
    LocalProcessOptions options;
    options.event_limits = limits;
    co_return LocalProcesses::create(co_await asio::this_coro::executor, options);
  }
};

// A real `tether exec-server` on loopback, reached over a real WebSocket by ExecClient.
class ExecutorBackend final : public Backend {
 public:
  asio::awaitable<StarterPtr> make_starter(EventLogLimits limits) override {
    ClientOptions options;
    options.client_name = "process-api-test";
    options.event_limits = limits;
    auto ex = co_await asio::this_coro::executor;
    // A named endpoint: GCC 12 mishandles braced temporaries in co_await expressions.
    Endpoint endpoint = WebSocketEndpoint{server_.url(), {}, nullptr};
    auto client = co_await ExecClient::connect(ex, std::move(endpoint), options);
    if (!client) throw std::runtime_error("cannot connect: " + client.error().message);
    co_return *client;
  }

 private:
  testing::ExecServer server_;
};

enum class Placement { local, executor };

std::unique_ptr<Backend> make_backend(Placement placement) {
  switch (placement) {
    case Placement::local:
      return std::make_unique<LocalBackend>();
    case Placement::executor:
      return std::make_unique<ExecutorBackend>();
  }
  return nullptr;
}

std::string placement_name(const ::testing::TestParamInfo<Placement>& info) {
  switch (info.param) {
    case Placement::local:
      return "Local";
    case Placement::executor:
      return "Executor";
  }
  return "Unknown";
}

// ---------------------------------------------------------------------------------------------
// Events and reads.

// A compact, comparable rendering of an event.
std::string describe(const ProcessEvent& event) {
  if (const auto* e = std::get_if<OutputEvent>(&event))
    return "out" + std::to_string(e->seq) + ":" + e->stream + ":" + e->bytes;
  if (const auto* e = std::get_if<ExitedEvent>(&event))
    return "exit" + std::to_string(e->seq) + ":" + std::to_string(e->exit_code);
  if (const auto* e = std::get_if<ClosedEvent>(&event)) return "closed" + std::to_string(e->seq);
  return "failed:" + std::get<FailedEvent>(event).message;
}

std::vector<std::string> describe_all(const std::vector<ProcessEvent>& events) {
  std::vector<std::string> out;
  for (const auto& event : events) out.push_back(describe(event));
  return out;
}

// Every event up to the subscription's end (closed or failed).
asio::awaitable<std::vector<ProcessEvent>> collect(std::shared_ptr<Subscription> subscription) {
  std::vector<ProcessEvent> events;
  for (;;) {
    std::optional<ProcessEvent> event = co_await subscription->next();
    if (!event) break;
    events.push_back(std::move(*event));
  }
  co_return events;
}

// The bytes of every output event (of `stream`, when given), in order.
std::string output_of(const std::vector<ProcessEvent>& events,
                      std::optional<std::string> stream = {}) {
  std::string out;
  for (const auto& event : events) {
    const auto* e = std::get_if<OutputEvent>(&event);
    if (e && (!stream || e->stream == *stream)) out += e->bytes;
  }
  return out;
}

std::optional<int> exit_code_of(const std::vector<ProcessEvent>& events) {
  for (const auto& event : events)
    if (const auto* e = std::get_if<ExitedEvent>(&event)) return e->exit_code;
  return std::nullopt;
}

// Seqs 1, 2, 3, ... with `closed` last.
void expect_complete(const std::vector<ProcessEvent>& events) {
  for (std::size_t i = 0; i < events.size(); ++i)
    EXPECT_EQ(seq_of(events[i]), i + 1) << "event " << i << ": " << describe(events[i]);
  EXPECT_TRUE(!events.empty() && std::holds_alternative<ClosedEvent>(events.back()))
      << "the last event is not closed";
}

struct ReadToEnd {
  std::string output;
  std::optional<int> exit_code;
  bool closed = false;
  std::optional<std::string> error;
};

// Long-polls read() from seq 0 until the process is closed.
asio::awaitable<ReadToEnd> read_to_end(ProcessPtr process) {
  ReadToEnd out;
  std::uint64_t after = 0;
  while (!out.closed) {
    Expected<ReadResult> result = co_await process->read(after, std::nullopt, 1s);
    if (!result) {
      out.error = result.error().message;
      break;
    }
    for (const auto& chunk : result->chunks) out.output += chunk.bytes;
    if (result->exit_code) out.exit_code = result->exit_code;
    out.closed = result->closed;
    after = result->next_seq - 1;
  }
  co_return out;
}

// Writes `bytes` in pieces of `piece` bytes; every write must be accepted.
asio::awaitable<bool> write_in_pieces(ProcessPtr process, std::string bytes, std::size_t piece) {
  for (std::size_t at = 0; at < bytes.size(); at += piece) {
    Expected<WriteStatus> status = co_await process->write(bytes.substr(at, piece));
    if (!status || *status != WriteStatus::accepted) {
      ADD_FAILURE() << "write at " << at << " failed: "
                    << (status ? std::string(to_string(*status)) : status.error().message);
      co_return false;
    }
  }
  co_return true;
}

// ---------------------------------------------------------------------------------------------
// The fixture.

class ProcessApi : public ::testing::TestWithParam<Placement> {
 protected:
  // The body gets the starter by reference so it can drop it early (destruction tests).
  using Body = std::function<asio::awaitable<void>(StarterPtr&)>;

  // Makes the placement and its starter, runs `body`, drops the starter (which must end every
  // process it started), then ends the placement.
  void run(const Body& body, EventLogLimits limits = {}) {
    auto backend = make_backend(GetParam());
    ASSERT_NE(backend, nullptr);
    run_async(
        [&]() -> asio::awaitable<void> {
          StarterPtr starter = co_await backend->make_starter(limits);
          CO_ASSERT_TRUE(starter != nullptr);
          co_await body(starter);
        },
        60s, "process API test body");
    backend.reset();
  }

  void TearDown() override {
    // Bounded: the starter was dropped, so its processes get SIGTERM at most a grace ago.
    const auto end = std::chrono::steady_clock::now() + 5s;
    for (const auto& marker : markers_) {
      while (!processes_matching(marker).empty() && std::chrono::steady_clock::now() < end)
        std::this_thread::sleep_for(20ms);
      EXPECT_TRUE(processes_matching(marker).empty())
          << "processes marked '" << marker << "' outlived the test";
    }
  }

  // A marker no other test (or test process) uses.
  std::string marker() {
    static std::atomic<int> counter{0};
    markers_.push_back("tether-papi-" + std::to_string(::getpid()) + "-" +
                       std::to_string(++counter));
    return markers_.back();
  }

  // `sh -c <script> <marker>` with PATH from this process; the marker is the script's $0.
  StartParams sh(std::string id, std::string script) {
    StartParams params;
    params.process_id = std::move(id);
    params.argv = {"sh", "-c", std::move(script), marker()};
    params.env = base_env();
    return params;
  }

  static std::map<std::string, std::string> base_env() {
    const char* path = std::getenv("PATH");
    return {{"PATH", path ? path : "/usr/bin:/bin"}};
  }

 private:
  std::vector<std::string> markers_;
};

INSTANTIATE_TEST_SUITE_P(Placements, ProcessApi,
                         ::testing::Values(Placement::local, Placement::executor), placement_name);

// Starts a process; fails the test (and returns null) on an error.
asio::awaitable<ProcessPtr> start_ok(ProcessStarter& starter, StartParams params) {
  const std::string id = params.process_id;
  Expected<ProcessPtr> process = co_await starter.start(std::move(params));
  if (!process) {
    ADD_FAILURE() << "starting " << id << " failed: " << process.error().message;
    co_return nullptr;
  }
  co_return *process;
}

constexpr const char* kEchoStdin = "IFS= read line; printf 'from-stdin:%s\\n' \"$line\"";

// ---------------------------------------------------------------------------------------------
// Acceptance scenarios 1-8 and 14.

// 1. `true` as proc-1 exits 0 and closes; the handle reports its id.
TEST_P(ProcessApi, TrueExitsZeroAndCloses) {
  run([this](StarterPtr& starter) -> asio::awaitable<void> {
    StartParams params;
    params.process_id = "proc-1";
    params.argv = {"true", marker()};
    params.env = base_env();
    ProcessPtr process = co_await start_ok(*starter, std::move(params));
    CO_ASSERT_TRUE(process != nullptr);
    EXPECT_EQ(process->id(), "proc-1");
    auto events = co_await collect(process->subscribe());
    EXPECT_EQ(describe_all(events), (std::vector<std::string>{"exit1:0", "closed2"}));
  });
}

// 2. The collected output is exact.
TEST_P(ProcessApi, CollectsOutputExactly) {
  run([this](StarterPtr& starter) -> asio::awaitable<void> {
    ProcessPtr process =
        co_await start_ok(*starter, sh("proc-1", "sleep 0.05; printf 'session output\\n'"));
    CO_ASSERT_TRUE(process != nullptr);
    auto events = co_await collect(process->subscribe());
    EXPECT_EQ(output_of(events), "session output\n");
    EXPECT_EQ(exit_code_of(events), 0);
    expect_complete(events);
  });
}

// 3. Exactly output(1, stdout), output(2, stderr), exited(3, 7), closed(4).
TEST_P(ProcessApi, EventsAreExact) {
  run([this](StarterPtr& starter) -> asio::awaitable<void> {
    ProcessPtr process = co_await start_ok(
        *starter, sh("proc-1",
                     "printf 'event output\\n'; sleep .1; printf 'event err\\n' >&2; sleep .1; "
                     "exit 7"));
    CO_ASSERT_TRUE(process != nullptr);
    auto events = co_await collect(process->subscribe());
    EXPECT_EQ(describe_all(events),
              (std::vector<std::string>{"out1:stdout:event output\n", "out2:stderr:event err\n",
                                        "exit3:7", "closed4"}));
  });
}

// 4. Read to the end, then subscribe: the replay still has both lines, exit 0 and closed.
TEST_P(ProcessApi, SubscribeAfterReadingToTheEndReplays) {
  run([this](StarterPtr& starter) -> asio::awaitable<void> {
    ProcessPtr process = co_await start_ok(
        *starter, sh("proc-1", "printf 'line one\\n'; sleep 0.05; printf 'line two\\n'"));
    CO_ASSERT_TRUE(process != nullptr);
    ReadToEnd read = co_await read_to_end(process);
    EXPECT_EQ(read.error, std::nullopt);
    EXPECT_EQ(read.output, "line one\nline two\n");
    EXPECT_EQ(read.exit_code, 0);
    EXPECT_TRUE(read.closed);

    auto events = co_await collect(process->subscribe());
    EXPECT_EQ(output_of(events), "line one\nline two\n");
    EXPECT_EQ(exit_code_of(events), 0);
    expect_complete(events);
  });
}

// 5. tty: a line written after 200 ms reaches the script's `read`.
TEST_P(ProcessApi, TtyReadsStdin) {
  run([this](StarterPtr& starter) -> asio::awaitable<void> {
    StartParams params = sh("proc-1", kEchoStdin);
    params.tty = true;
    ProcessPtr process = co_await start_ok(*starter, std::move(params));
    CO_ASSERT_TRUE(process != nullptr);
    auto subscription = process->subscribe();
    co_await sleep_for(200ms);
    Expected<WriteStatus> status = co_await process->write("hello\n");
    CO_ASSERT_TRUE(status.has_value());
    EXPECT_EQ(*status, WriteStatus::accepted);
    auto events = co_await collect(subscription);
    EXPECT_NE(output_of(events, "pty").find("from-stdin:hello"), std::string::npos)
        << "pty output: " << output_of(events);
    EXPECT_EQ(exit_code_of(events), 0);
    expect_complete(events);
  });
}

// 6. Piped stdin: the write is accepted and the output is exact.
TEST_P(ProcessApi, PipedStdin) {
  run([this](StarterPtr& starter) -> asio::awaitable<void> {
    StartParams params = sh("proc-1", kEchoStdin);
    params.pipe_stdin = true;
    ProcessPtr process = co_await start_ok(*starter, std::move(params));
    CO_ASSERT_TRUE(process != nullptr);
    auto subscription = process->subscribe();
    Expected<WriteStatus> status = co_await process->write("hello\n");
    CO_ASSERT_TRUE(status.has_value());
    EXPECT_EQ(*status, WriteStatus::accepted);
    auto events = co_await collect(subscription);
    EXPECT_EQ(output_of(events), "from-stdin:hello\n");
    EXPECT_EQ(exit_code_of(events), 0);
    expect_complete(events);
  });
}

// 7. No stdin: the write reports stdinClosed and the script's `read` sees EOF.
TEST_P(ProcessApi, ClosedStdin) {
  run([this](StarterPtr& starter) -> asio::awaitable<void> {
    ProcessPtr process = co_await start_ok(
        *starter,
        sh("proc-1", "if IFS= read line; then printf 'line:%s\\n' \"$line\"; else echo eof; fi"));
    CO_ASSERT_TRUE(process != nullptr);
    auto subscription = process->subscribe();
    Expected<WriteStatus> status = co_await process->write("hello\n");
    CO_ASSERT_TRUE(status.has_value());
    EXPECT_EQ(*status, WriteStatus::stdin_closed);
    auto events = co_await collect(subscription);
    EXPECT_EQ(output_of(events), "eof\n");
    EXPECT_EQ(exit_code_of(events), 0);
    expect_complete(events);
  });
}

// 8. Output produced 200 ms before anyone reads or subscribes is still delivered, to both.
TEST_P(ProcessApi, EarlyOutputIsDelivered) {
  run([this](StarterPtr& starter) -> asio::awaitable<void> {
    ProcessPtr process =
        co_await start_ok(*starter, sh("proc-1", "printf 'early output\\n'; sleep 0.4"));
    CO_ASSERT_TRUE(process != nullptr);
    co_await sleep_for(200ms);
    auto subscription = process->subscribe();
    Expected<ReadResult> read = co_await process->read(0, std::nullopt, 5s);
    CO_ASSERT_TRUE(read.has_value());
    CO_ASSERT_EQ(read->chunks.size(), 1u);
    EXPECT_EQ(read->chunks[0].seq, 1u);
    EXPECT_EQ(read->chunks[0].bytes, "early output\n");
    auto events = co_await collect(subscription);
    EXPECT_EQ(describe_all(events),
              (std::vector<std::string>{"out1:stdout:early output\n", "exit2:0", "closed3"}));
  });
}

// 14. With a tiny history byte budget, a late subscriber replays only the newest output that
// fits, still in seq order and still ending with exited and closed.
constexpr std::size_t kBudget = 16;

TEST_P(ProcessApi, ReplayHistoryIsBounded) {
  EventLogLimits limits;
  limits.history_bytes = kBudget;
  run(
      [this](StarterPtr& starter) -> asio::awaitable<void> {
        // Separate 7-byte chunks: at most two fit.
        ProcessPtr process = co_await start_ok(
            *starter,
            sh("proc-1", "for i in 1 2 3 4 5; do printf 'line-%s\\n' $i; sleep 0.1; done"));
        CO_ASSERT_TRUE(process != nullptr);
        ReadToEnd read = co_await read_to_end(process);
        const std::string all = "line-1\nline-2\nline-3\nline-4\nline-5\n";
        CO_ASSERT_EQ(read.output, all);

        auto events = co_await collect(process->subscribe());
        const std::string replayed = output_of(events);
        EXPECT_LE(replayed.size(), kBudget);
        EXPECT_LT(replayed.size(), all.size());
        EXPECT_TRUE(all.ends_with(replayed)) << "replayed: " << replayed;
        CO_ASSERT_TRUE(events.size() >= 2);
        EXPECT_GT(seq_of(events.front()), 1u) << "the oldest events should be gone";
        for (std::size_t i = 1; i < events.size(); ++i)
          EXPECT_EQ(seq_of(events[i]), seq_of(events[i - 1]) + 1) << describe(events[i]);
        EXPECT_EQ(exit_code_of(events), 0);
        EXPECT_TRUE(std::holds_alternative<ClosedEvent>(events.back()));
      },
      limits);
}

// ---------------------------------------------------------------------------------------------
// Bytes, signals, errors and cleanup.

// 1 MiB of random bytes written in pieces through `cat` come out identical and in order.
TEST_P(ProcessApi, BinaryRoundTripThroughCat) {
  run([this](StarterPtr& starter) -> asio::awaitable<void> {
    std::string bytes(std::size_t{1} << 20, '\0');
    std::mt19937 random(4711);
    for (auto& byte : bytes) byte = static_cast<char>(random() & 0xff);

    StartParams params = sh("proc-1", "cat; :");
    params.pipe_stdin = true;
    ProcessPtr process = co_await start_ok(*starter, std::move(params));
    CO_ASSERT_TRUE(process != nullptr);
    auto subscription = process->subscribe();
    const bool written = co_await write_in_pieces(process, bytes, 64 * 1024 + 7);
    CO_ASSERT_TRUE(written);

    std::string received;
    std::uint64_t last_seq = 0;
    while (received.size() < bytes.size()) {
      std::optional<ProcessEvent> event = co_await subscription->next();
      CO_ASSERT_TRUE(event.has_value());
      const auto* output = std::get_if<OutputEvent>(&*event);
      CO_ASSERT_TRUE(output != nullptr);
      EXPECT_EQ(output->seq, last_seq + 1);
      last_seq = output->seq;
      received += output->bytes;
    }
    EXPECT_EQ(received.size(), bytes.size());
    EXPECT_TRUE(received == bytes) << "the bytes out differ from the bytes in";

    Expected<bool> running = co_await process->terminate();
    CO_ASSERT_TRUE(running.has_value());
    EXPECT_TRUE(*running);
    std::vector<ProcessEvent> rest = co_await collect(subscription);
    EXPECT_EQ(exit_code_of(rest), 128 + SIGTERM);
  });
}

// A process killed by signal N reports 128 + N.
TEST_P(ProcessApi, KilledBySignalReportsShellExitCode) {
  run([this](StarterPtr& starter) -> asio::awaitable<void> {
    ProcessPtr process = co_await start_ok(*starter, sh("proc-1", "kill -KILL $$"));
    CO_ASSERT_TRUE(process != nullptr);
    auto events = co_await collect(process->subscribe());
    EXPECT_EQ(describe_all(events), (std::vector<std::string>{"exit1:137", "closed2"}));
    // terminate() after exit reports that it was not running (scenario 13).
    Expected<bool> running = co_await process->terminate();
    CO_ASSERT_TRUE(running.has_value());
    EXPECT_FALSE(*running);
  });
}

// The executor's start errors: empty argv, a live duplicate id, a program that does not exist.
TEST_P(ProcessApi, StartErrors) {
  run([this](StarterPtr& starter) -> asio::awaitable<void> {
    StartParams empty;
    empty.process_id = "proc-empty";
    Expected<ProcessPtr> result = co_await starter->start(std::move(empty));
    CO_ASSERT_TRUE(result.has_error());
    EXPECT_EQ(result.error().code, -32602);
    // The executor client words it as the spec's client texts say: `exec-server rejected
    // request (<code>): <message>`; the message itself is the same on both placements.
    EXPECT_TRUE(result.error().message.ends_with("argv must not be empty"))
        << result.error().message;

    ProcessPtr process = co_await start_ok(*starter, sh("proc-1", "sleep 301; :"));
    CO_ASSERT_TRUE(process != nullptr);
    StartParams duplicate = sh("proc-1", "true");
    result = co_await starter->start(std::move(duplicate));
    CO_ASSERT_TRUE(result.has_error());
    EXPECT_EQ(result.error().code, -32600);
    EXPECT_EQ(result.error().message, "process proc-1 already exists");

    StartParams missing;
    missing.process_id = "proc-missing";
    missing.argv = {"/nonexistent/tether-no-such-program"};
    result = co_await starter->start(std::move(missing));
    CO_ASSERT_TRUE(result.has_error());
    EXPECT_EQ(result.error().code, -32603);
    EXPECT_NE(result.error().message.find("No such file or directory"), std::string::npos)
        << result.error().message;
  });
}

// `base` with a NUL byte in each place that reaches execve, one per case (built outside the
// coroutine: GCC 12 miscompiles braced JSON inside coroutine bodies).
std::vector<StartParams> nul_cases(const StartParams& base) {
  const std::string nul("a\0b", 3);
  std::vector<StartParams> cases(6, base);
  cases[0].argv.push_back(nul);
  cases[1].arg0 = nul;
  cases[2].env = {{nul, "x"}};
  cases[3].env = {{"NAME", nul}};
  for (std::size_t i : {4, 5}) {
    EnvPolicy policy{.inherit = EnvPolicy::Inherit::none};
    policy.set[i == 4 ? std::string("NAME") : nul] = i == 4 ? nul : std::string("x");
    cases[i].env_policy = std::move(policy);
  }
  return cases;
}

// A NUL byte in an argv element, arg0, an environment name or value (env or envPolicy.set) is
// refused with -32602 (the OS would cut the string there), and nothing starts.
TEST_P(ProcessApi, NulBytesAreRefused) {
  run([this](StarterPtr& starter) -> asio::awaitable<void> {
    const std::vector<StartParams> cases = nul_cases(sh("proc-nul", "true"));
    for (std::size_t i = 0; i < cases.size(); ++i) {
      Expected<ProcessPtr> result = co_await starter->start(cases[i]);
      CO_ASSERT_TRUE(result.has_error());
      EXPECT_EQ(result.error().code, -32602) << "case " << i << ": " << result.error().message;
      EXPECT_NE(result.error().message.find("NUL"), std::string::npos)
          << "case " << i << ": " << result.error().message;
    }
    // Nothing was started under the id.
    ProcessPtr process = co_await start_ok(*starter, sh("proc-nul", "true"));
    EXPECT_TRUE(process != nullptr);
  });
}

// Outside the coroutine, like nul_cases.
EnvPolicy home_excluded_policy() {
  return EnvPolicy{
      .inherit = EnvPolicy::Inherit::core, .exclude = {"HOME"}, .set = {{"FROM_SET", "set-value"}}};
}

// envPolicy runs through the executor's policy code; `env` is applied on top.
TEST_P(ProcessApi, EnvironmentPolicy) {
  run([this](StarterPtr& starter) -> asio::awaitable<void> {
    StartParams params =
        sh("proc-1", "printf '%s|%s|%s' \"$FROM_SET\" \"$FROM_ENV\" \"${HOME+x}\"");
    params.env = {{"FROM_ENV", "env-value"}};
    params.env_policy = home_excluded_policy();
    ProcessPtr process = co_await start_ok(*starter, std::move(params));
    CO_ASSERT_TRUE(process != nullptr);
    auto events = co_await collect(process->subscribe());
    EXPECT_EQ(output_of(events), "set-value|env-value|");
    EXPECT_EQ(exit_code_of(events), 0);
  });
}

// Dropping the starter ends every process it started, their whole groups included.
TEST_P(ProcessApi, DroppingTheStarterEndsItsProcessGroups) {
  run([this](StarterPtr& starter) -> asio::awaitable<void> {
    // Unique to this test process; the background sleep is in the group, not a direct child.
    const std::string sleep = "sleep 302." + std::to_string(::getpid());
    ProcessPtr process =
        co_await start_ok(*starter, sh("proc-1", sleep + " & " + sleep + "; wait"));
    CO_ASSERT_TRUE(process != nullptr);
    const bool both_running =
        co_await eventually([&] { return processes_matching(sleep).size() >= 2; }, 5s);
    CO_ASSERT_TRUE(both_running);
    starter.reset();
    const bool gone = co_await eventually([&] { return processes_matching(sleep).empty(); }, 5s);
    EXPECT_TRUE(gone) << "the processes outlived their starter";
  });
}

// ---------------------------------------------------------------------------------------------
// Local only: close() and id reservation.

TEST(LocalProcesses, CloseEndsProcessesAndRefusesNewOnes) {
  const std::string needle = "303." + std::to_string(::getpid());
  run_async([&]() -> asio::awaitable<void> {
    auto starter = LocalProcesses::create(co_await asio::this_coro::executor);
    StartParams params;
    params.process_id = "proc-1";
    params.argv = {"sleep", needle};
    params.pipe_stdin = true;
    ProcessPtr process = co_await start_ok(*starter, params);
    CO_ASSERT_TRUE(process != nullptr);
    auto subscription = process->subscribe();
    co_await starter->close();
    EXPECT_TRUE(processes_matching(needle).empty());
    auto events = co_await collect(subscription);
    EXPECT_EQ(exit_code_of(events), 128 + SIGTERM);
    Expected<WriteStatus> status = co_await process->write("late");
    CO_ASSERT_TRUE(status.has_value());
    EXPECT_EQ(*status, WriteStatus::unknown_process);
    params.process_id = "proc-2";
    Expected<ProcessPtr> late = co_await starter->start(params);
    EXPECT_TRUE(late.has_error());
  });
  EXPECT_TRUE(processes_matching(needle).empty());
}

TEST(LocalProcesses, ClosedProcessIdStaysReserved) {
  run_async([&]() -> asio::awaitable<void> {
    auto starter = LocalProcesses::create(co_await asio::this_coro::executor);
    StartParams params;
    params.process_id = "proc-1";
    params.argv = {"true"};
    ProcessPtr process = co_await start_ok(*starter, params);
    CO_ASSERT_TRUE(process != nullptr);
    auto events = co_await collect(process->subscribe());
    EXPECT_EQ(describe_all(events), (std::vector<std::string>{"exit1:0", "closed2"}));
    Expected<ProcessPtr> again = co_await starter->start(params);
    CO_ASSERT_TRUE(again.has_error());
    EXPECT_EQ(again.error().message, "process proc-1 already exists");
    // The handle still reads the closed process's retention.
    Expected<ReadResult> read = co_await process->read(0);
    CO_ASSERT_TRUE(read.has_value());
    EXPECT_TRUE(read->closed);
    EXPECT_EQ(read->exit_code, 0);
  });
}

}  // namespace
}  // namespace tether::exec
