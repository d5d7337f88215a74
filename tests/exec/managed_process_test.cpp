// The executor's process methods (process/start, read, write, terminate, signal and their
// notifications) against the real `tether exec-server`.
//
// Most scenarios are parameterized over the two transports the executor serves: a real
// WebSocket on loopback (ExecServer + TestClient::connect) and `--listen stdio` (the executor as
// a child with piped stdin/stdout). They follow docs/exec-protocol.md "Processes" and the executor
// side of the acceptance scenarios 1-8, 12, 13 and 15. Scenario 21 (a slow reader must not grow
// the executor's memory, and loses nothing) needs a WebSocket whose reads the test controls, so
// it runs on a raw beast WebSocket only.
//
// Every process a test starts belongs to the test's executor session; ending the session (close
// 1000 / stdin EOF) terminates their groups, and tests whose processes would outlive them check
// afterwards, by a unique marker, that nothing is left.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <signal.h>
#include <sstream>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "requests.hpp"
#include "test_client.hpp"

namespace tether::testing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

// ---------------------------------------------------------------------------------------------
// Small awaitable helpers.

asio::awaitable<std::string> write_status(TestClient& c, std::string id, std::string bytes,
                                          std::optional<std::string> write_id = {}) {
  auto result = co_await c.call_ok("process/write", write_params(std::move(id), bytes, write_id));
  co_return std::string(result.at("status").as_string());
}

// Events of `method` for the process (the TestClient adds "method" to each event).
std::vector<json::object> events_of(const TestClient& c, const std::string& id,
                                    std::string_view method) {
  std::vector<json::object> found;
  for (auto& e : c.events(id))
    if (e.at("method").as_string() == method) found.push_back(e);
  return found;
}

asio::awaitable<bool> wait_event(TestClient& c, const std::string& id, std::string_view method,
                                 std::chrono::milliseconds timeout = 20s) {
  co_return co_await eventually([&] { return !events_of(c, id, method).empty(); }, timeout);
}

// The process's `exited` event; an empty object when none arrived.
json::object exited_event(const TestClient& c, const std::string& id) {
  auto exited = events_of(c, id, "process/exited");
  return exited.empty() ? json::object{} : exited.front();
}

// Every event's seq, in arrival order.
std::vector<std::int64_t> seqs(const std::vector<json::object>& events) {
  std::vector<std::int64_t> out;
  for (const auto& e : events) out.push_back(e.at("seq").as_int64());
  return out;
}

// The seqs of all events of a closed process are exactly 1..N, `closed` carries N, and
// `process/exited` and `process/closed` each arrived once.
void expect_contiguous_seqs(const TestClient& c, const std::string& id) {
  auto events = c.events(id);
  auto numbers = seqs(events);
  std::sort(numbers.begin(), numbers.end());
  for (std::size_t i = 0; i < numbers.size(); ++i)
    EXPECT_EQ(numbers[i], static_cast<std::int64_t>(i + 1)) << "seqs of " << id << " not 1..N";
  EXPECT_EQ(events_of(c, id, "process/exited").size(), 1u);
  auto closed = events_of(c, id, "process/closed");
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed.front().at("seq").as_int64(), static_cast<std::int64_t>(numbers.size()))
      << "closed must carry the highest seq";
}

std::string error_text(const jsonrpc::Reply& reply) {
  if (reply) return "success: " + json::serialize(*reply);
  return std::to_string(reply.error().code) + " " + reply.error().message;
}

// Waits (bounded) until no live process has `needle` in its command line.
asio::awaitable<void> expect_no_process(std::string needle) {
  const bool gone = co_await eventually([&] { return processes_matching(needle).empty(); }, 5s);
  EXPECT_TRUE(gone) << "processes matching '" << needle << "' are still running";
}

// process/start params with a NUL byte in each place that reaches execve (id "proc-nul").
std::vector<json::object> nul_start_params() {
  const std::string nul("a\0b", 3);
  std::vector<json::object> all;
  all.push_back(start_argv("proc-nul", json::array{"/bin/echo", nul}));
  StartOptions with_arg0;
  with_arg0.arg0 = nul;
  all.push_back(start_argv("proc-nul", json::array{"/bin/echo"}, with_arg0));
  StartOptions bad_name;
  bad_name.env[nul] = "x";
  all.push_back(start_argv("proc-nul", json::array{"/bin/echo"}, bad_name));
  StartOptions bad_value;
  bad_value.env["NAME"] = nul;
  all.push_back(start_argv("proc-nul", json::array{"/bin/echo"}, bad_value));
  auto policy = start_argv("proc-nul", json::array{"/bin/echo"});
  policy["envPolicy"] = json::object{{"inherit", "none"},
                                     {"ignoreDefaultExcludes", false},
                                     {"exclude", json::array{}},
                                     {"includeOnly", json::array{}},
                                     {"set", json::object{{"NAME", nul}}}};
  all.push_back(policy);
  return all;
}

// ---------------------------------------------------------------------------------------------
// The parameterized fixture: one executor per test, over the transport under test.

enum class Via { websocket, stdio };

std::string via_name(const ::testing::TestParamInfo<Via>& info) {
  return info.param == Via::websocket ? "WebSocket" : "Stdio";
}

class ExecProcess : public ::testing::TestWithParam<Via> {
 protected:
  using Body = std::function<asio::awaitable<void>(TestClient&)>;

  // Starts an executor (with `server_args`), connects and initializes a client over the
  // transport under test, runs `body`, then ends the session on purpose, whatever the body did.
  void run(const Body& body, std::vector<std::string> server_args = {},
           std::chrono::milliseconds deadline = 60s) {
    std::unique_ptr<ExecServer> server;
    if (GetParam() == Via::websocket) {
      ExecServer::Options options;
      options.args.insert(options.args.end(), server_args.begin(), server_args.end());
      server = std::make_unique<ExecServer>(options);
    }
    run_async(
        [&]() -> asio::awaitable<void> {
          auto executor = co_await asio::this_coro::executor;
          std::shared_ptr<process::Child> child;
          std::shared_ptr<TestClient> client;
          if (server) {
            client = co_await TestClient::connect(server->port());
          } else {
            child = spawn_stdio_server(executor, server_args);
            client = TestClient::over(executor, stdio_transport(*child));
          }
          std::exception_ptr failure;
          try {
            co_await client->initialize();
            co_await body(*client);
          } catch (...) {
            failure = std::current_exception();
          }
          co_await end_session(*client, child);
          if (failure) std::rethrow_exception(failure);
        },
        deadline, "process test body");
  }

 private:
  // Close 1000 (WebSocket) or stdin EOF (stdio): the executor terminates the session's groups.
  static asio::awaitable<void> end_session(TestClient& client,
                                           std::shared_ptr<process::Child> child) {
    client.close();
    if (!child) {
      EXPECT_TRUE(co_await client.wait_disconnected(10s)) << "the executor did not close";
      co_return;
    }
    asio::steady_timer timer(co_await asio::this_coro::executor, 10s);
    auto which = co_await (child->wait() || timer.async_wait(asio::use_awaitable));
    if (which.index() != 0) {
      ADD_FAILURE() << "tether exec-server --listen stdio did not exit after stdin EOF";
      co_return;  // the Child's destructor kills its group
    }
    EXPECT_EQ(std::get<0>(which).code, 0);
  }
};

INSTANTIATE_TEST_SUITE_P(Transports, ExecProcess, ::testing::Values(Via::websocket, Via::stdio),
                         via_name);

// ---------------------------------------------------------------------------------------------
// Acceptance scenarios 1-8.

// 1. `true` as proc-1: the start response is exactly the documented shape; exit 0; closed.
TEST_P(ExecProcess, TrueExitsZeroAndCloses) {
  run([](TestClient& c) -> asio::awaitable<void> {
    auto start = start_argv("proc-1", json::array{"true"});
    auto result = co_await c.call_ok("process/start", std::move(start));
    const json::value expected = json::object{{"processId", "proc-1"}, {"sandboxType", "none"}};
    EXPECT_EQ(result, expected);
    CO_ASSERT_TRUE(co_await c.wait_closed("proc-1"));
    EXPECT_EQ(exited_event(c, "proc-1").at("exitCode"), 0);
    EXPECT_EQ(c.output("proc-1"), "");
    expect_contiguous_seqs(c, "proc-1");
  });
}

// 2. Collected output is exact.
TEST_P(ExecProcess, CollectsOutputExactly) {
  run([](TestClient& c) -> asio::awaitable<void> {
    co_await c.call_ok("process/start",
                       start_sh("proc-1", "sleep 0.05; printf 'session output\\n'"));
    CO_ASSERT_TRUE(co_await c.wait_closed("proc-1"));
    EXPECT_EQ(c.output("proc-1"), "session output\n");
    EXPECT_EQ(c.output("proc-1", "stderr"), "");
    EXPECT_EQ(exited_event(c, "proc-1").at("exitCode"), 0);
    expect_contiguous_seqs(c, "proc-1");
  });
}

// 3. The events are exactly output(1, stdout), output(2, stderr), exited(3, 7), closed(4).
TEST_P(ExecProcess, EventsAreExactlyOutputOutputExitedClosed) {
  run([](TestClient& c) -> asio::awaitable<void> {
    co_await c.call_ok("process/start",
                       start_sh("proc-1",
                                "printf 'event output\\n'; sleep .1; printf 'event err\\n' >&2; "
                                "sleep .1; exit 7"));
    CO_ASSERT_TRUE(co_await c.wait_closed("proc-1"));
    auto events = c.events("proc-1");
    CO_ASSERT_EQ(events.size(), 4u);

    const json::object out{{"processId", "proc-1"},
                           {"seq", 1},
                           {"stream", "stdout"},
                           {"chunk", b64("event output\n")},
                           {"method", "process/output"}};
    const json::object err{{"processId", "proc-1"},
                           {"seq", 2},
                           {"stream", "stderr"},
                           {"chunk", b64("event err\n")},
                           {"method", "process/output"}};
    // No "signal": the process was not killed by one.
    const json::object exited{{"processId", "proc-1"},
                              {"seq", 3},
                              {"exitCode", 7},
                              {"sandboxDenied", false},
                              {"method", "process/exited"}};
    const json::object closed{{"processId", "proc-1"}, {"seq", 4}, {"method", "process/closed"}};
    EXPECT_EQ(events[0], out);
    EXPECT_EQ(events[1], err);
    EXPECT_EQ(events[2], exited);
    EXPECT_EQ(events[3], closed);
  });
}

// 4. (executor side of replay) A process read to the end is still readable from afterSeq 0:
// every chunk, exit status and closed; nextSeq is the process's next seq (closed seq + 1).
TEST_P(ExecProcess, ReadAfterCloseReturnsEverything) {
  run([](TestClient& c) -> asio::awaitable<void> {
    co_await c.call_ok("process/start",
                       start_sh("proc-1", "printf 'line one\\n'; sleep 0.1; printf 'line two\\n'"));
    CO_ASSERT_TRUE(co_await c.wait_closed("proc-1"));
    auto result = co_await c.call_ok("process/read", read_params("proc-1", 0));
    const auto& r = result.as_object();

    // The chunks are exactly the output notifications, in order.
    auto outputs = events_of(c, "proc-1", "process/output");
    const auto& chunks = r.at("chunks").as_array();
    CO_ASSERT_EQ(chunks.size(), outputs.size());
    std::string joined;
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      const auto& chunk = chunks[i].as_object();
      EXPECT_EQ(chunk.at("seq"), outputs[i].at("seq"));
      EXPECT_EQ(chunk.at("stream"), "stdout");
      EXPECT_EQ(chunk.at("chunk"), outputs[i].at("chunk"));
      joined += unb64(chunk.at("chunk").as_string());
    }
    EXPECT_EQ(joined, "line one\nline two\n");
    EXPECT_EQ(r.at("exited"), true);
    EXPECT_EQ(r.at("exitCode"), 0);
    EXPECT_EQ(r.at("closed"), true);
    EXPECT_TRUE(r.at("failure").is_null());
    EXPECT_EQ(r.at("sandboxDenied"), false);
    const auto closed = events_of(c, "proc-1", "process/closed");
    CO_ASSERT_EQ(closed.size(), 1u);
    EXPECT_EQ(r.at("nextSeq").as_int64(), closed.front().at("seq").as_int64() + 1);
    expect_contiguous_seqs(c, "proc-1");
  });
}

constexpr const char* kEchoStdin = "IFS= read line; printf 'from-stdin:%s\\n' \"$line\"";

// 5. tty: stdin is the terminal, output arrives on stream "pty".
TEST_P(ExecProcess, TtyReadsWrittenLine) {
  run([](TestClient& c) -> asio::awaitable<void> {
    StartOptions options;
    options.tty = true;
    co_await c.call_ok("process/start", start_sh("proc-1", kEchoStdin, options));
    co_await sleep_for(200ms);
    EXPECT_EQ(co_await write_status(c, "proc-1", "hello\n", "1"), "accepted");
    EXPECT_TRUE(co_await c.wait_output("proc-1", "from-stdin:hello"))
        << "output so far: " << c.output("proc-1");
    CO_ASSERT_TRUE(co_await c.wait_closed("proc-1"));
    for (const auto& e : events_of(c, "proc-1", "process/output")) EXPECT_EQ(e.at("stream"), "pty");
    EXPECT_EQ(exited_event(c, "proc-1").at("exitCode"), 0);
    expect_contiguous_seqs(c, "proc-1");
  });
}

// 6. Piped stdin: the write is accepted and the output is exact.
TEST_P(ExecProcess, PipedStdinReadsWrittenLine) {
  run([](TestClient& c) -> asio::awaitable<void> {
    StartOptions options;
    options.pipe_stdin = true;
    co_await c.call_ok("process/start", start_sh("proc-1", kEchoStdin, options));
    co_await sleep_for(200ms);
    EXPECT_EQ(co_await write_status(c, "proc-1", "hello\n", "1"), "accepted");
    CO_ASSERT_TRUE(co_await c.wait_closed("proc-1"));
    EXPECT_EQ(c.output("proc-1"), "from-stdin:hello\n");
    EXPECT_EQ(exited_event(c, "proc-1").at("exitCode"), 0);
  });
}

// 7. Without pipeStdin, stdin is closed: writes report stdinClosed, `read` sees EOF.
TEST_P(ExecProcess, ClosedStdinSeesEof) {
  run([](TestClient& c) -> asio::awaitable<void> {
    co_await c.call_ok(
        "process/start",
        start_sh("proc-1", "if IFS= read -r line; then echo got; else echo eof; fi"));
    EXPECT_EQ(co_await write_status(c, "proc-1", "hello\n", "1"), "stdinClosed");
    CO_ASSERT_TRUE(co_await c.wait_closed("proc-1"));
    EXPECT_EQ(c.output("proc-1"), "eof\n");
    EXPECT_EQ(exited_event(c, "proc-1").at("exitCode"), 0);
  });
}

// 8. Output produced well before anyone reads is retained and delivered.
TEST_P(ExecProcess, EarlyOutputIsRetainedForRead) {
  run([](TestClient& c) -> asio::awaitable<void> {
    auto start = start_argv("proc-1", json::array{"printf", "early"});
    co_await c.call_ok("process/start", std::move(start));
    co_await sleep_for(200ms);
    // waitMs only bounds a slow machine; normally the chunk is long retained by now.
    auto result = co_await c.call_ok("process/read", read_params("proc-1", 0, {}, 5000));
    const auto& chunks = result.at("chunks").as_array();
    CO_ASSERT_TRUE(!chunks.empty());
    EXPECT_EQ(chunks[0].at("seq"), 1);
    EXPECT_EQ(chunks[0].at("stream"), "stdout");
    EXPECT_EQ(unb64(chunks[0].at("chunk").as_string()), "early");
    // The pushed notification carried it too.
    CO_ASSERT_TRUE(co_await c.wait_closed("proc-1"));
    EXPECT_EQ(c.output("proc-1"), "early");
  });
}

// ---------------------------------------------------------------------------------------------
// Acceptance 12, 13 and 15.

// 12. Two starts of one id sent back to back: exactly one succeeds.
TEST_P(ExecProcess, ConcurrentStartsOfOneIdOnlyOneSucceeds) {
  run([](TestClient& c) -> asio::awaitable<void> {
    json::value first = start_argv("proc-1", json::array{"true"});
    json::value second = start_argv("proc-1", json::array{"true"});
    // Both requests are sent before either response is awaited.
    auto [a, b] = co_await (c.call("process/start", std::move(first)) &&
                            c.call("process/start", std::move(second)));
    CO_ASSERT_TRUE(static_cast<bool>(a) != static_cast<bool>(b));
    const auto& failed = a ? b : a;
    EXPECT_EQ(failed.error().code, -32600) << error_text(failed);
    EXPECT_EQ(failed.error().message, "process proc-1 already exists");
    CO_ASSERT_TRUE(co_await c.wait_closed("proc-1"));
    expect_contiguous_seqs(c, "proc-1");  // one process: one exited, one closed
    // The id stays reserved after the process closed.
    auto start = start_argv("proc-1", json::array{"true"});
    auto again = co_await c.call("process/start", std::move(start));
    CO_ASSERT_TRUE(!again);
    EXPECT_EQ(again.error().code, -32600);
    EXPECT_EQ(again.error().message, "process proc-1 already exists");
  });
}

// 13. terminate after exit: running false.
TEST_P(ExecProcess, TerminateAfterExitReportsNotRunning) {
  run([](TestClient& c) -> asio::awaitable<void> {
    auto start = start_argv("proc-1", json::array{"true"});
    co_await c.call_ok("process/start", std::move(start));
    CO_ASSERT_TRUE(co_await c.wait_closed("proc-1"));
    auto result = co_await c.call_ok("process/terminate", id_params("proc-1"));
    const json::value expected = json::object{{"running", false}};
    EXPECT_EQ(result, expected);
    // An unknown id is not running either.
    auto unknown = co_await c.call_ok("process/terminate", id_params("nope"));
    EXPECT_EQ(unknown, expected);
  });
}

// A NUL byte in argv, arg0 or an environment name or value is -32602 on the wire, not a
// silently shortened string; nothing starts.
TEST_P(ExecProcess, NulBytesInArgvAndEnvironmentAreInvalidParams) {
  run([](TestClient& c) -> asio::awaitable<void> {
    for (const auto& params : nul_start_params()) {
      auto reply = co_await c.call("process/start", params);
      CO_ASSERT_TRUE(!reply);
      EXPECT_EQ(reply.error().code, -32602) << json::serialize(params);
    }
    auto start = start_argv("proc-nul", json::array{"true"});
    co_await c.call_ok("process/start", std::move(start));
  });
}

// 13. terminate of a running process: running true, then SIGTERM's exit (143, signal 15), closed.
TEST_P(ExecProcess, TerminateRunningProcessSendsSigterm) {
  run([](TestClient& c) -> asio::awaitable<void> {
    auto start = start_argv("proc-1", json::array{"sleep", "301.13"});
    co_await c.call_ok("process/start", std::move(start));
    auto result = co_await c.call_ok("process/terminate", id_params("proc-1"));
    const json::value expected = json::object{{"running", true}};
    EXPECT_EQ(result, expected);
    CO_ASSERT_TRUE(co_await c.wait_closed("proc-1"));
    auto exited = exited_event(c, "proc-1");
    EXPECT_EQ(exited.at("exitCode"), 143);
    EXPECT_EQ(exited.at("signal"), 15);
    EXPECT_EQ(exited.at("sandboxDenied"), false);
    expect_contiguous_seqs(c, "proc-1");
    co_await expect_no_process("sleep 301.13 ");
  });
}

// 13. A process group that ignores SIGTERM gets SIGKILL after the grace (--kill-grace-ms 200).
TEST_P(ExecProcess, TerminateEscalatesToSigkillAfterGrace) {
  run(
      [](TestClient& c) -> asio::awaitable<void> {
        co_await c.call_ok("process/start",
                           start_sh("proc-1", "trap '' TERM; printf ready; sleep 301.14"));
        // Only once "ready" is out is the trap installed.
        CO_ASSERT_TRUE(co_await c.wait_output("proc-1", "ready"));
        auto result = co_await c.call_ok("process/terminate", id_params("proc-1"));
        EXPECT_EQ(result.at("running"), true);
        CO_ASSERT_TRUE(co_await c.wait_closed("proc-1"));
        auto exited = exited_event(c, "proc-1");
        EXPECT_EQ(exited.at("exitCode"), 137);
        EXPECT_EQ(exited.at("signal"), 9);
        co_await expect_no_process("sleep 301.14 ");
      },
      {"--kill-grace-ms", "200"});
}

// Deterministic pseudo-random bytes containing every byte value.
std::string binary_payload(std::size_t size) {
  std::string data(size, '\0');
  std::mt19937_64 random(20260415);
  for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>(random() & 0xff);
  for (std::size_t i = 0; i < 256 && i < size; ++i) data[i * 7919 % size] = static_cast<char>(i);
  return data;
}

// 15. 16 MiB of binary through `cat`, written in 256 KiB writes, arrives identical and in order.
TEST_P(ExecProcess, BinaryRoundTripThroughCat) {
  run(
      [](TestClient& c) -> asio::awaitable<void> {
        constexpr std::size_t kSize = 16 * 1024 * 1024;
        constexpr std::size_t kWrite = 256 * 1024;
        const std::string data = binary_payload(kSize);
        CO_ASSERT_EQ(std::set<char>(data.begin(), data.end()).size(), 256u);

        // TestClient keeps every event and re-decodes all output per wake-up; for 16 MiB, collect
        // the decoded chunks here instead (this replaces the client's notification handler).
        struct Sink {
          std::map<std::int64_t, std::string> chunks;
          std::size_t bytes = 0;
          bool non_stdout = false;
          std::optional<json::object> exited;
          std::optional<std::int64_t> closed_seq;
        };
        auto sink = std::make_shared<Sink>();
        c.peer().on_notification([sink](jsonrpc::Notification n) {
          const auto& p = n.params.as_object();
          if (p.at("processId") != "cat") return;
          const auto seq = p.at("seq").as_int64();
          if (n.method == "process/output") {
            if (p.at("stream") != "stdout") sink->non_stdout = true;
            auto bytes = unb64(p.at("chunk").as_string());
            sink->bytes += bytes.size();
            sink->chunks.emplace(seq, std::move(bytes));
          } else if (n.method == "process/exited") {
            sink->exited = p;
          } else if (n.method == "process/closed") {
            sink->closed_seq = seq;
          }
        });

        StartOptions options;
        options.pipe_stdin = true;
        auto start = start_argv("cat", json::array{"cat"}, options);
        co_await c.call_ok("process/start", std::move(start));
        for (std::size_t offset = 0, n = 1; offset < kSize; offset += kWrite, ++n) {
          auto status =
              co_await write_status(c, "cat", data.substr(offset, kWrite), std::to_string(n));
          CO_ASSERT_EQ(status, "accepted");
        }
        const bool all = co_await eventually([&] { return sink->bytes >= kSize; }, 60s);
        EXPECT_TRUE(all) << "received " << sink->bytes << " of " << kSize << " bytes";
        // cat has no end of input (the protocol cannot close stdin): terminate it.
        co_await c.call_ok("process/terminate", id_params("cat"));
        CO_ASSERT_TRUE(co_await eventually([&] { return sink->closed_seq.has_value(); }, 20s));

        std::string out;
        std::int64_t expected_seq = 1;
        for (auto& [seq, bytes] : sink->chunks) {
          EXPECT_EQ(seq, expected_seq) << "gap in output seqs";
          expected_seq = seq + 1;
          out += bytes;
        }
        EXPECT_FALSE(sink->non_stdout);
        EXPECT_EQ(out.size(), data.size());
        const auto mismatch = std::mismatch(out.begin(), out.end(), data.begin(), data.end());
        EXPECT_TRUE(out == data) << "first difference at byte " << (mismatch.first - out.begin());
        CO_ASSERT_TRUE(sink->exited.has_value());
        EXPECT_EQ(sink->exited->at("seq").as_int64(), expected_seq);
        EXPECT_EQ(*sink->closed_seq, expected_seq + 1);
      },
      {}, 180s);
}

// ---------------------------------------------------------------------------------------------
// process/signal, process/read details, process/write details.

TEST_P(ExecProcess, SignalInterruptReachesTheGroup) {
  run([](TestClient& c) -> asio::awaitable<void> {
    co_await c.call_ok(
        "process/start",
        start_sh("proc-1", "trap 'echo INT; exit 3' INT; echo ready; sleep 301.2 & wait"));
    CO_ASSERT_TRUE(co_await c.wait_output("proc-1", "ready\n"));
    json::object params{{"processId", "proc-1"}, {"signal", "interrupt"}};
    auto result = co_await c.call_ok("process/signal", std::move(params));
    EXPECT_EQ(result, json::value(json::object{}));
    // The background sleep (SIGINT ignored in a non-interactive shell's async list) keeps the
    // pipes open, so wait for `exited`, not `closed`; ending the session kills the group.
    CO_ASSERT_TRUE(co_await wait_event(c, "proc-1", "process/exited"));
    EXPECT_EQ(exited_event(c, "proc-1").at("exitCode"), 3);
    EXPECT_TRUE(co_await c.wait_output("proc-1", "INT\n"));
    EXPECT_EQ(c.output("proc-1"), "ready\nINT\n");
    // Signalling an exited or unknown process is a no-op answered {}.
    json::object again{{"processId", "nope"}, {"signal", "interrupt"}};
    EXPECT_EQ(co_await c.call_ok("process/signal", std::move(again)), json::value(json::object{}));
  });
  // The session ended (close 1000 / stdin EOF): the group's background sleep is gone too.
  run_async([]() -> asio::awaitable<void> { co_await expect_no_process("sleep 301.2 "); });
}

TEST_P(ExecProcess, SignalRejectsUnknownSignalName) {
  run([](TestClient& c) -> asio::awaitable<void> {
    json::object params{{"processId", "proc-1"}, {"signal", "kill"}};
    auto reply = co_await c.call("process/signal", std::move(params));
    CO_ASSERT_TRUE(!reply);
    EXPECT_EQ(reply.error().code, -32602);
    EXPECT_EQ(reply.error().message, "unknown variant `kill`, expected `interrupt`");
  });
}

// A read with waitMs long-polls until output arrives instead of returning empty.
TEST_P(ExecProcess, ReadWithWaitMsLongPollsForOutput) {
  run([](TestClient& c) -> asio::awaitable<void> {
    StartOptions options;
    options.pipe_stdin = true;  // `cat` keeps the process running after it printed
    co_await c.call_ok("process/start",
                       start_sh("proc-1", "sleep 0.3; printf late; cat >/dev/null", options));
    auto result = co_await c.call_ok("process/read", read_params("proc-1", 0, {}, 5000));
    const auto& r = result.as_object();
    const auto& chunks = r.at("chunks").as_array();
    CO_ASSERT_EQ(chunks.size(), 1u);
    EXPECT_EQ(unb64(chunks[0].at("chunk").as_string()), "late");
    EXPECT_EQ(chunks[0].at("seq"), 1);
    EXPECT_EQ(r.at("exited"), false);
    EXPECT_TRUE(r.at("exitCode").is_null());
    EXPECT_EQ(r.at("closed"), false);
    EXPECT_EQ(r.at("nextSeq"), 2);
    // A read with nothing new and no wait answers at once, empty.
    auto empty = co_await c.call_ok("process/read", read_params("proc-1", 1));
    EXPECT_TRUE(empty.at("chunks").as_array().empty());
    EXPECT_EQ(empty.at("nextSeq"), 2);
    co_await c.call_ok("process/terminate", id_params("proc-1"));
    EXPECT_TRUE(co_await c.wait_closed("proc-1"));
  });
}

// maxBytes bounds the decoded bytes but returns at least one chunk; a cut answer's nextSeq is
// the last returned chunk's seq + 1.
// Retention keeps the newest 1 MiB of a process's output: after 3 MB, a read from the start
// returns at most 1 MiB, ending with the last bytes written, and the gap shows in the seq numbers.
TEST_P(ExecProcess, RetentionKeepsTheNewestMebibyte) {
  run([](TestClient& c) -> asio::awaitable<void> {
    auto start = start_sh("big", "head -c 3000000 /dev/zero; printf END");
    co_await c.call_ok("process/start", std::move(start));
    CO_ASSERT_TRUE(co_await c.wait_closed("big"));
    // Retention drops only what the client confirmed; the pong for the last chunks may still be
    // on its way, so confirm everything the explicit way: a read past the closed seq.
    const auto closed_seq = events_of(c, "big", "process/closed").front().at("seq").as_int64();
    co_await c.call_ok("process/read", read_params("big", closed_seq));
    auto result = co_await c.call_ok("process/read", read_params("big", 0));
    const auto& chunks = result.at("chunks").as_array();
    CO_ASSERT_TRUE(!chunks.empty());
    std::string retained;
    for (const auto& chunk : chunks) retained += unb64(chunk.at("chunk").as_string());
    EXPECT_LE(retained.size(), std::size_t{1} << 20);
    EXPECT_TRUE(retained.ends_with("END")) << "the newest bytes were not retained";
    EXPECT_GT(chunks.front().at("seq").as_int64(), 1) << "nothing was dropped after 3 MB";
    // The notifications carried everything (nothing is evicted before it is sent).
    EXPECT_EQ(c.output("big").size(), 3000003u);
  });
}

TEST_P(ExecProcess, ReadMaxBytesReturnsAtLeastOneChunk) {
  run([](TestClient& c) -> asio::awaitable<void> {
    co_await c.call_ok("process/start", start_sh("proc-1",
                                                 "printf aaaa; sleep 0.2; printf bbbb; sleep 0.2; "
                                                 "printf cccc"));
    CO_ASSERT_TRUE(co_await c.wait_closed("proc-1"));
    auto outputs = events_of(c, "proc-1", "process/output");
    // Three separate chunks are needed to see the cut (the sleeps make them separate).
    CO_ASSERT_EQ(outputs.size(), 3u);
    const auto seq1 = outputs[0].at("seq").as_int64();
    const auto seq2 = outputs[1].at("seq").as_int64();
    const auto closed_seq = events_of(c, "proc-1", "process/closed").front().at("seq").as_int64();

    // 1 byte < first chunk: still one chunk, cut.
    auto one = co_await c.call_ok("process/read", read_params("proc-1", 0, 1));
    CO_ASSERT_EQ(one.at("chunks").as_array().size(), 1u);
    EXPECT_EQ(one.at("chunks").as_array()[0].at("seq").as_int64(), seq1);
    EXPECT_EQ(one.at("nextSeq").as_int64(), seq1 + 1);

    // Exactly two chunks fit.
    auto two = co_await c.call_ok("process/read", read_params("proc-1", 0, 8));
    const auto& two_chunks = two.at("chunks").as_array();
    CO_ASSERT_EQ(two_chunks.size(), 2u);
    EXPECT_EQ(unb64(two_chunks[0].at("chunk").as_string()), "aaaa");
    EXPECT_EQ(unb64(two_chunks[1].at("chunk").as_string()), "bbbb");
    EXPECT_EQ(two.at("nextSeq").as_int64(), seq2 + 1);

    // Resuming after the first chunk.
    auto rest = co_await c.call_ok("process/read", read_params("proc-1", seq1, 4));
    CO_ASSERT_EQ(rest.at("chunks").as_array().size(), 1u);
    EXPECT_EQ(unb64(rest.at("chunks").as_array()[0].at("chunk").as_string()), "bbbb");
    EXPECT_EQ(rest.at("nextSeq").as_int64(), seq2 + 1);

    // Everything fits: not cut, nextSeq is the process's next seq.
    auto all = co_await c.call_ok("process/read", read_params("proc-1", 0, 12));
    EXPECT_EQ(all.at("chunks").as_array().size(), 3u);
    EXPECT_EQ(all.at("nextSeq").as_int64(), closed_seq + 1);
  });
}

TEST_P(ExecProcess, ReadOfUnknownProcessIsInvalidRequest) {
  run([](TestClient& c) -> asio::awaitable<void> {
    auto reply = co_await c.call("process/read", read_params("nope", 0));
    CO_ASSERT_TRUE(!reply);
    EXPECT_EQ(reply.error().code, -32600);
    EXPECT_EQ(reply.error().message, "unknown process id nope");
  });
}

TEST_P(ExecProcess, WriteToUnknownProcessReportsUnknownProcess) {
  run([](TestClient& c) -> asio::awaitable<void> {
    EXPECT_EQ(co_await write_status(c, "nope", "x", "1"), "unknownProcess");
    EXPECT_EQ(co_await write_status(c, "nope", "x"), "unknownProcess");
  });
}

// A repeated writeId is accepted and writes nothing; writes reach stdin in request order.
TEST_P(ExecProcess, RepeatedWriteIdWritesOnce) {
  run([](TestClient& c) -> asio::awaitable<void> {
    StartOptions options;
    options.pipe_stdin = true;
    auto start = start_argv("cat", json::array{"cat"}, options);
    co_await c.call_ok("process/start", std::move(start));
    EXPECT_EQ(co_await write_status(c, "cat", "once\n", "1"), "accepted");
    EXPECT_EQ(co_await write_status(c, "cat", "once\n", "1"), "accepted");
    EXPECT_EQ(co_await write_status(c, "cat", "end\n", "2"), "accepted");
    EXPECT_EQ(co_await write_status(c, "cat", "end\n", "2"), "accepted");
    EXPECT_TRUE(co_await c.wait_output("cat", "end\n"));
    co_await c.call_ok("process/terminate", id_params("cat"));
    CO_ASSERT_TRUE(co_await c.wait_closed("cat"));
    EXPECT_EQ(c.output("cat"), "once\nend\n");
    // After exit, stdin is closed.
    EXPECT_EQ(co_await write_status(c, "cat", "late\n", "3"), "stdinClosed");
  });
}

// ---------------------------------------------------------------------------------------------
// process/start details: env, cwd, arg0, spawn failures.

std::multiset<std::string> lines_of(const std::string& text) {
  std::multiset<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.insert(line);
  return lines;
}

// Without envPolicy, `env` is the child's entire environment: nothing inherited.
TEST_P(ExecProcess, EnvIsExactlyWhatWasGiven) {
  run([](TestClient& c) -> asio::awaitable<void> {
    StartOptions options;
    options.env = json::object{{"PATH", "/usr/bin:/bin"},
                               {"TETHER_PROC_TEST", "1"},
                               {"WITH_SPACES", "a b=c"},
                               {"EMPTY", ""}};
    auto start = start_argv("env", json::array{"env"}, options);
    co_await c.call_ok("process/start", std::move(start));
    CO_ASSERT_TRUE(co_await c.wait_closed("env"));
    const std::multiset<std::string> expected{"PATH=/usr/bin:/bin", "TETHER_PROC_TEST=1",
                                              "WITH_SPACES=a b=c", "EMPTY="};
    EXPECT_EQ(lines_of(c.output("env")), expected) << c.output("env");
    EXPECT_EQ(exited_event(c, "env").at("exitCode"), 0);
  });
}

// A directory of our own (removed at the end of the test).
struct TempDir {
  TempDir() {
    path = std::filesystem::temp_directory_path() /
           ("tether-proc-test " + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path);
    path = std::filesystem::canonical(path);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::filesystem::path path;
  static inline int counter = 0;
};

TEST_P(ExecProcess, CwdIsHonoured) {
  TempDir dir;
  run([&](TestClient& c) -> asio::awaitable<void> {
    StartOptions options;
    options.cwd = dir.path.string();
    co_await c.call_ok("process/start", start_sh("pwd", "pwd -P", options));
    CO_ASSERT_TRUE(co_await c.wait_closed("pwd"));
    EXPECT_EQ(c.output("pwd"), dir.path.string() + "\n");
  });
}

TEST_P(ExecProcess, Arg0ReplacesArgvZero) {
  run([](TestClient& c) -> asio::awaitable<void> {
    StartOptions options;
    options.arg0 = "custom-arg0";
    auto start = start_argv("cmdline", json::array{"cat", "/proc/self/cmdline"}, options);
    co_await c.call_ok("process/start", std::move(start));
    CO_ASSERT_TRUE(co_await c.wait_closed("cmdline"));
    EXPECT_EQ(c.output("cmdline"), std::string("custom-arg0\0/proc/self/cmdline\0", 31));
    EXPECT_EQ(exited_event(c, "cmdline").at("exitCode"), 0);
  });
}

TEST_P(ExecProcess, SpawnFailureIsInternalErrorWithOsReason) {
  run([](TestClient& c) -> asio::awaitable<void> {
    auto start = start_argv("p1", json::array{"/nonexistent/tether-no-such-program"});
    auto missing = co_await c.call("process/start", std::move(start));
    CO_ASSERT_TRUE(!missing);
    EXPECT_EQ(missing.error().code, -32603);
    EXPECT_NE(missing.error().message.find("No such file or directory"), std::string::npos)
        << missing.error().message;

    StartOptions options;
    options.cwd = "/nonexistent/tether-no-such-dir";
    auto start_bad_cwd = start_argv("p2", json::array{"true"}, options);
    auto bad_cwd = co_await c.call("process/start", std::move(start_bad_cwd));
    CO_ASSERT_TRUE(!bad_cwd);
    EXPECT_EQ(bad_cwd.error().code, -32603);
    EXPECT_NE(bad_cwd.error().message.find("No such file or directory"), std::string::npos)
        << bad_cwd.error().message;

    auto start_empty = start_argv("p3", json::array{});
    auto empty = co_await c.call("process/start", std::move(start_empty));
    CO_ASSERT_TRUE(!empty);
    EXPECT_EQ(empty.error().code, -32602);
    EXPECT_EQ(empty.error().message, "argv must not be empty");
  });
}

// A process killed by SIGKILL from outside the executor: exitCode 128 + 9, signal 9.
TEST_P(ExecProcess, ExternalSigkillReports137) {
  run([](TestClient& c) -> asio::awaitable<void> {
    co_await c.call_ok("process/start", start_sh("victim", "printf '%s\\n' $$; exec sleep 301.22"));
    CO_ASSERT_TRUE(co_await c.wait_output("victim", "\n"));
    const pid_t pid = std::stoi(c.output("victim"));
    CO_ASSERT_TRUE(pid > 1);
    // Wait for the exec so the kill hits `sleep`, not the shell before it.
    CO_ASSERT_TRUE(co_await eventually(
        [&] {
          std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
          std::string cmdline((std::istreambuf_iterator<char>(in)), {});
          return cmdline.starts_with(std::string("sleep\0", 6));
        },
        10s));
    CO_ASSERT_EQ(::kill(pid, SIGKILL), 0);
    CO_ASSERT_TRUE(co_await c.wait_closed("victim"));
    auto exited = exited_event(c, "victim");
    EXPECT_EQ(exited.at("exitCode"), 137);
    EXPECT_EQ(exited.at("signal"), 9);
    expect_contiguous_seqs(c, "victim");
  });
}

// One counter across output (both streams), exited and closed: 1..N with no gap.
TEST_P(ExecProcess, SeqsAreContiguousAcrossAllEvents) {
  run([](TestClient& c) -> asio::awaitable<void> {
    co_await c.call_ok("process/start",
                       start_sh("noisy",
                                "for i in 1 2 3 4 5 6; do echo out$i; echo err$i >&2; sleep 0.02; "
                                "done; exit 4"));
    CO_ASSERT_TRUE(co_await c.wait_closed("noisy"));
    expect_contiguous_seqs(c, "noisy");
    EXPECT_EQ(c.output("noisy", "stdout"), "out1\nout2\nout3\nout4\nout5\nout6\n");
    EXPECT_EQ(c.output("noisy", "stderr"), "err1\nerr2\nerr3\nerr4\nerr5\nerr6\n");
    EXPECT_EQ(exited_event(c, "noisy").at("exitCode"), 4);
    // Notifications leave in seq order on one connection.
    auto numbers = seqs(c.events("noisy"));
    EXPECT_TRUE(std::is_sorted(numbers.begin(), numbers.end()));
  });
}

// ---------------------------------------------------------------------------------------------
// 21. Slow reader, on a raw WebSocket whose reads the test controls.

std::size_t rss_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

asio::awaitable<void> send_json(jsonrpc::WebSocket& ws, const json::value& message) {
  ws.text(true);
  co_await ws.async_write(asio::buffer(json::serialize(message)), asio::use_awaitable);
}

asio::awaitable<json::object> receive_json(jsonrpc::WebSocket& ws) {
  boost::beast::flat_buffer buffer;
  co_await ws.async_read(buffer, asio::use_awaitable);
  co_return json::parse(boost::beast::buffers_to_string(buffer.data())).as_object();
}

json::object request(std::int64_t id, std::string method, json::object params) {
  return json::object{
      {"jsonrpc", "2.0"}, {"id", id}, {"method", std::move(method)}, {"params", std::move(params)}};
}

TEST(ExecProcessSlowReader, FloodDoesNotGrowExecutorMemoryAndLosesNothing) {
  ExecServer server;
  run_async(
      [&]() -> asio::awaitable<void> {
        auto ws = co_await ws_connect(server.port());
        const json::value initialize =
            request(1, "initialize", json::object{{"clientName", "slow"}});
        co_await send_json(ws, initialize);
        auto init = co_await receive_json(ws);
        CO_ASSERT_TRUE(init.contains("result"));
        json::value initialized =
            json::object{{"jsonrpc", "2.0"}, {"method", "initialized"}, {"params", json::object{}}};
        co_await send_json(ws, initialized);

        co_await sleep_for(100ms);
        const std::size_t baseline = rss_bytes(server.pid());
        CO_ASSERT_TRUE(baseline > 0);
        const json::value start =
            request(2, "process/start",
                    start_argv("flood", json::array{"head", "-c", "200000021", "/dev/zero"}));
        co_await send_json(ws, start);
        // Stop reading for 3 s while the process floods; the executor must pause the pipe.
        std::size_t peak = 0;
        for (int i = 0; i < 30; ++i) {
          co_await sleep_for(100ms);
          peak = std::max(peak, rss_bytes(server.pid()));
        }
        constexpr std::size_t kSlack = 64 * 1024 * 1024;
        EXPECT_LT(peak, baseline + kSlack)
            << "executor RSS grew from " << baseline << " to " << peak << " bytes";
        EXPECT_FALSE(processes_matching("head -c 200000021 ").empty())
            << "the flood should still be running (blocked on its pipe)";

        // Resume reading: every event's seq continues the previous one, from 1.
        std::int64_t next_seq = 1;
        std::size_t received = 0;
        bool terminate_sent = false;
        bool terminate_answered = false;
        bool started = false;
        std::optional<json::object> exited;
        bool closed = false;
        while (!closed) {
          auto message = co_await receive_json(ws);
          if (message.contains("id")) {
            if (message.at("id") == 2) started = message.contains("result");
            if (message.at("id") == 3) {
              EXPECT_EQ(message.at("result").at("running"), true);
              terminate_answered = true;
            }
            continue;
          }
          const auto& method = message.at("method").as_string();
          const auto& params = message.at("params").as_object();
          const auto seq = params.at("seq").as_int64();
          CO_ASSERT_EQ(seq, next_seq);
          next_seq = seq + 1;
          if (method == "process/output") {
            received += unb64(params.at("chunk").as_string()).size();
          } else if (method == "process/exited") {
            exited = params;
          } else if (method == "process/closed") {
            closed = true;
          }
          // Enough to prove the flood streamed and resumed; then end it.
          if (!terminate_sent && received >= 32 * 1024 * 1024) {
            const json::value terminate = request(3, "process/terminate", id_params("flood"));
            co_await send_json(ws, terminate);
            terminate_sent = true;
          }
        }
        EXPECT_TRUE(started);
        EXPECT_TRUE(terminate_sent);
        CO_ASSERT_TRUE(exited.has_value());
        EXPECT_EQ(exited->at("exitCode"), 143);
        // The terminate answer may trail the events; read until it came.
        while (!terminate_answered) {
          auto message = co_await receive_json(ws);
          if (message.contains("id") && message.at("id") == 3) terminate_answered = true;
        }
        EXPECT_LT(rss_bytes(server.pid()), baseline + kSlack);
        co_await ws.async_close(jsonrpc::close_code::kNormal, asio::use_awaitable);
        co_await expect_no_process("head -c 200000021 ");
      },
      180s, "slow reader test");
}

}  // namespace
}  // namespace tether::testing
