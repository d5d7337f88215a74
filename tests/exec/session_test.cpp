// Executor sessions (docs/exec-protocol.md "Sessions and resume"; acceptance 18 and 19): what
// happens to a session's processes, and to every process in their groups, when the connection
// ends on purpose (close 1000, stdin EOF of `--listen stdio`), when it is lost (kept for the TTL,
// resumable with `resumeSessionId`, writes deduplicated by `writeId`), when the server gets
// SIGTERM (close 1001 to every client, exit 0) and when the executor is killed with SIGKILL
// (parent-death signal for direct children, stdin EOF for well-behaved readers below them).
//
// Every command carries a marker unique to this file and test (`sleep 302.71NN`, `...-302.71NN`)
// so that processes_matching() never sees another test's processes.
#include <chrono>
#include <map>
#include <signal.h>
#include <string>
#include <vector>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "requests.hpp"
#include "test_client.hpp"

namespace tether::testing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

// Bound for "gone": the spec says 3 s after the session ends; a loaded CI machine gets slack.
constexpr auto kGone = std::chrono::milliseconds(5s);
constexpr auto kStarted = std::chrono::milliseconds(10s);

json::object read_params(std::string id, std::int64_t after_seq, std::int64_t wait_ms) {
  return json::object{{"processId", std::move(id)},
                      {"afterSeq", after_seq},
                      {"maxBytes", nullptr},
                      {"waitMs", wait_ms}};
}

json::object initialize_params(const std::string& resume) {
  return json::object{{"clientName", "tether-session-test"}, {"resumeSessionId", resume}};
}

// The net under everything a test starts: whatever still matches one of the markers when the
// test ends (pass or fail) gets SIGKILL. Needed where nobody else owns the process, e.g.
// grandchildren re-parented after the executor was killed.
class KillLeftovers {
 public:
  explicit KillLeftovers(std::vector<std::string> markers) : markers_(std::move(markers)) {}
  ~KillLeftovers() {
    for (const auto& marker : markers_)
      for (pid_t pid : processes_matching(marker)) ::kill(pid, SIGKILL);
  }
  KillLeftovers(const KillLeftovers&) = delete;
  KillLeftovers& operator=(const KillLeftovers&) = delete;

 private:
  std::vector<std::string> markers_;
};

std::size_t count(const std::string& marker) {
  return processes_matching(marker).size();
}

// Waits until exactly `n` processes match `marker`.
asio::awaitable<bool> running(const std::string& marker, std::size_t n) {
  const bool ok = co_await eventually([&] { return count(marker) == n; }, kStarted);
  co_return ok;
}

asio::awaitable<bool> gone(const std::string& marker, std::chrono::milliseconds within = kGone) {
  const bool ok = co_await eventually([&] { return count(marker) == 0; }, within);
  co_return ok;
}

// The exit status of `child` if it exits within `deadline`.
asio::awaitable<std::optional<process::ExitStatus>> wait_child(process::Child& child,
                                                               std::chrono::milliseconds deadline) {
  asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
  boost::system::error_code ec;
  auto which =
      co_await (child.wait() || timer.async_wait(asio::redirect_error(asio::use_awaitable, ec)));
  if (which.index() == 0) co_return std::get<0>(which);
  co_return std::nullopt;
}

// Starts `sh -c "<grand> & wait"` (a shell and its backgrounded grandchild, one process group)
// and the direct child `sleep <direct>` on `client`, and waits until all three run.
asio::awaitable<bool> start_group_and_sleeper(TestClient& client, const std::string& grand_seconds,
                                              const std::string& direct_seconds) {
  auto group = start_sh("group", "sleep " + grand_seconds + " & wait");
  co_await client.call_ok("process/start", std::move(group));
  auto direct = start_sleep("direct", direct_seconds);
  co_await client.call_ok("process/start", std::move(direct));
  const bool both = co_await running("sleep " + grand_seconds, 2) &&
                    co_await running("sleep " + direct_seconds, 1);
  co_return both;
}

ExecServer::Options server_options(std::vector<std::string> extra) {
  ExecServer::Options options;
  options.args.insert(options.args.end(), extra.begin(), extra.end());
  return options;
}

// Output chunks by seq, decoded; a second sighting of a seq must carry the same bytes.
void merge_chunk(std::map<std::int64_t, std::string>& by_seq, std::int64_t seq, std::string bytes) {
  auto [it, inserted] = by_seq.emplace(seq, bytes);
  if (!inserted) {
    EXPECT_EQ(it->second, bytes) << "seq " << seq << " carried different bytes";
  }
}

std::string concat(const std::map<std::int64_t, std::string>& by_seq) {
  std::string out;
  for (const auto& [seq, bytes] : by_seq) out += bytes;
  return out;
}

void merge_events(std::map<std::int64_t, std::string>& by_seq, const TestClient& client,
                  const std::string& process_id) {
  for (const auto& e : client.events(process_id)) {
    if (e.at("method") != "process/output") continue;
    merge_chunk(by_seq, e.at("seq").as_int64(), unb64(e.at("chunk").as_string()));
  }
}

TEST(ExecSession, Close1000EndsEveryProcessAndItsGroup) {
  const std::string grand = "302.7101", direct = "302.7102";
  KillLeftovers guard({"sleep " + grand, "sleep " + direct});
  ExecServer server;
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await TestClient::connect(server.port());
    co_await client->initialize();
    CO_ASSERT_TRUE(co_await start_group_and_sleeper(*client, grand, direct));

    client->close(jsonrpc::close_code::kNormal);
    EXPECT_TRUE(co_await client->wait_disconnected());
    EXPECT_TRUE(co_await gone("sleep " + grand)) << "the group of sh -c 'sleep & wait' outlived "
                                                    "a session closed with 1000";
    EXPECT_TRUE(co_await gone("sleep " + direct)) << "a direct child outlived its session";
  });
}

TEST(ExecSession, StdioEofEndsEveryProcessAndTheExecutorExitsZero) {
  const std::string grand = "302.7111", direct = "302.7112";
  KillLeftovers guard({"sleep " + grand, "sleep " + direct});
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto child = spawn_stdio_server(executor);
    auto client = TestClient::over(executor, stdio_transport(*child));
    co_await client->initialize();
    CO_ASSERT_TRUE(co_await start_group_and_sleeper(*client, grand, direct));

    client->close();  // closes the executor's stdin: EOF ends the session on purpose
    auto status = co_await wait_child(*child, 10s);
    CO_ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->code, 0);
    EXPECT_FALSE(status->signal.has_value());
    EXPECT_TRUE(co_await gone("sleep " + grand));
    EXPECT_TRUE(co_await gone("sleep " + direct));
  });
}

TEST(ExecSession, LostConnectionKeepsProcessesForTheTtlThenEndsThem) {
  const std::string grand = "302.7121", direct = "302.7122";
  KillLeftovers guard({"sleep " + grand, "sleep " + direct});
  ExecServer server(server_options({"--session-ttl", "2"}));
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await TestClient::connect(server.port());
    auto init = co_await client->initialize();
    const std::string session_id(init.at("sessionId").as_string());
    CO_ASSERT_TRUE(co_await start_group_and_sleeper(*client, grand, direct));

    client->abort();  // no close frame: the session is lost, not ended
    // Wait until the server has noticed (its log says so), then the processes must still run.
    const std::string detached = "session " + session_id + " detached";
    EXPECT_TRUE(
        co_await eventually([&] { return server.log().find(detached) != std::string::npos; }, 5s))
        << server.log();
    EXPECT_EQ(count("sleep " + grand), 2u) << "processes of a lost session ended before the TTL";
    EXPECT_EQ(count("sleep " + direct), 1u);

    EXPECT_TRUE(co_await gone("sleep " + grand, 2s + kGone)) << "the group outlived the TTL";
    EXPECT_TRUE(co_await gone("sleep " + direct, 2s + kGone)) << "a process outlived the TTL";
  });
}

std::string raw_message(std::string id, std::string method, json::object params) {
  return json::serialize(json::object{
      {"id", std::move(id)}, {"method", std::move(method)}, {"params", std::move(params)}});
}

std::string raw_initialize() {
  return raw_message("1", "initialize",
                     json::object{{"clientName", "silent"}, {"resumeSessionId", nullptr}});
}

std::string raw_start_sleep(const std::string& seconds) {
  return raw_message("2", "process/start", start_sleep("silent", seconds));
}

// Keepalive (tether extension): a client that goes silent without a FIN (a partition, a frozen
// peer) answers no pings; after the idle timeout the executor treats it as lost. A client that
// is idle but alive answers the pings (Beast does while reading) and stays connected.
TEST(ExecSession, SilentClientIsLostAfterTheIdleTimeoutWhileALiveOneStays) {
  const std::string marker = "302.7161";
  KillLeftovers guard({"sleep " + marker});
  ExecServer server(server_options(
      {"--session-ttl", "0", "--ping-interval-ms", "100", "--idle-timeout-ms", "500"}));
  run_async([&]() -> asio::awaitable<void> {
    auto alive = co_await TestClient::connect(server.port());
    co_await alive->initialize();

    // The silent client writes its requests and then never reads again: no pongs, no FIN.
    auto silent = co_await ws_connect(server.port());
    const std::string init = raw_initialize();
    co_await silent.async_write(asio::buffer(init), asio::use_awaitable);
    const std::string initialized = R"({"method":"initialized","params":{}})";
    co_await silent.async_write(asio::buffer(initialized), asio::use_awaitable);
    const std::string start = raw_start_sleep(marker);
    co_await silent.async_write(asio::buffer(start), asio::use_awaitable);
    CO_ASSERT_TRUE(co_await eventually(
        [&] { return !processes_matching("sleep " + marker).empty(); }, kStarted));

    // Lost after the idle timeout: with TTL 0 its session ends and the process with it.
    EXPECT_TRUE(co_await gone("sleep " + marker)) << "the silent client's process outlived it";
    EXPECT_NE(server.log().find(" closed after "), std::string::npos) << server.log();

    // The live client, idle but answering pings, outlives two more idle timeouts and still works
    // (an idle timer that fired regardless of traffic would have cut it by now).
    co_await sleep_for(1000ms);
    EXPECT_FALSE(alive->closed());
    auto status = co_await alive->call_ok("environment/status", json::object());
    EXPECT_EQ(status.at("status"), "ready");
    alive->close();
  });
}

TEST(ExecSession, ZeroTtlEndsALostSessionAtOnceAndItCannotBeResumed) {
  const std::string grand = "302.7131", direct = "302.7132";
  KillLeftovers guard({"sleep " + grand, "sleep " + direct});
  ExecServer server(server_options({"--session-ttl", "0"}));
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await TestClient::connect(server.port());
    auto init = co_await client->initialize();
    const std::string session_id(init.at("sessionId").as_string());
    CO_ASSERT_TRUE(co_await start_group_and_sleeper(*client, grand, direct));

    client->abort();
    EXPECT_TRUE(co_await gone("sleep " + grand));
    EXPECT_TRUE(co_await gone("sleep " + direct));

    // The session was forgotten with its processes: resuming it is an unknown session.
    auto second = co_await TestClient::connect(server.port());
    auto reply = co_await second->call("initialize", initialize_params(session_id));
    CO_ASSERT_TRUE(!reply);
    EXPECT_EQ(reply.error().code, -32600);
    EXPECT_EQ(reply.error().message, "unknown session id " + session_id);
    second->close();
  });
}

TEST(ExecSession, ResumeCatchesUpWithReadAndLosesNothing) {
  ExecServer server(server_options({"--session-ttl", "30"}));
  run_async([&]() -> asio::awaitable<void> {
    auto a = co_await TestClient::connect(server.port());
    auto init = co_await a->initialize();
    const std::string session_id(init.at("sessionId").as_string());
    auto lines =
        start_sh("lines", "i=0; while [ $i -lt 50 ]; do echo line$i; i=$((i+1)); sleep 0.02; done");
    co_await a->call_ok("process/start", std::move(lines));
    // Drop the connection mid-stream (the script runs for about a second).
    EXPECT_TRUE(co_await a->wait_output("lines", "line5\n"));
    a->abort();

    std::map<std::int64_t, std::string> by_seq;
    merge_events(by_seq, *a, "lines");
    CO_ASSERT_TRUE(!by_seq.empty());
    std::int64_t last = by_seq.rbegin()->first;

    auto b = co_await TestClient::connect(server.port());
    auto resumed = co_await b->initialize(session_id);
    EXPECT_EQ(std::string(resumed.at("sessionId").as_string()), session_id);

    // Catch up with process/read from the highest seq seen, until the process closed.
    bool closed = false;
    std::optional<std::int64_t> exit_code;
    std::size_t caught_up = 0;  // chunks only B's reads delivered
    const auto end = std::chrono::steady_clock::now() + 20s;
    while (!closed && std::chrono::steady_clock::now() < end) {
      auto result =
          (co_await b->call_ok("process/read", read_params("lines", last, 1000))).as_object();
      for (const auto& item : result.at("chunks").as_array()) {
        const auto& chunk = item.as_object();
        const std::int64_t seq = chunk.at("seq").as_int64();
        EXPECT_GT(seq, last) << "process/read returned a chunk at or before afterSeq";
        ++caught_up;
        merge_chunk(by_seq, seq, unb64(chunk.at("chunk").as_string()));
        last = std::max(last, seq);
      }
      closed = result.at("closed").as_bool();
      if (result.at("exited").as_bool()) exit_code = result.at("exitCode").as_int64();
    }
    CO_ASSERT_TRUE(closed);
    EXPECT_EQ(exit_code, 0);
    EXPECT_GT(caught_up, 0u) << "the drop came too late to exercise the catch-up";
    merge_events(by_seq, *b, "lines");  // events pushed after the resume, if any

    std::string expected;
    for (int i = 0; i < 50; ++i) expected += "line" + std::to_string(i) + "\n";
    EXPECT_EQ(concat(by_seq), expected);
    b->close();
  });
}

// Requests in the codex 0.169 dialect, exactly as codex sends them: no "jsonrpc" member,
// string ids, file: URIs, envPolicy, writeId counters.
json::object codex_request(std::string id, std::string method, json::object params) {
  return json::object{
      {"id", std::move(id)}, {"method", std::move(method)}, {"params", std::move(params)}};
}

json::object codex_initialize(std::string id, const std::optional<std::string>& resume) {
  json::object params{{"clientName", "codex-environment"}};
  params["resumeSessionId"] = resume ? json::value(*resume) : json::value(nullptr);
  return codex_request(std::move(id), "initialize", std::move(params));
}

json::object codex_start_cat(std::string id) {
  return codex_request(std::move(id), "process/start",
                       codex_envpolicy_start("mcp-stdio-1", "file:///tmp", json::array{"cat"}));
}

json::object codex_write(std::string id, std::string_view bytes, std::string write_id) {
  return codex_request(
      std::move(id), "process/write",
      json::object{
          {"processId", "mcp-stdio-1"}, {"chunk", b64(bytes)}, {"writeId", std::move(write_id)}});
}

json::object codex_read(std::string id, std::int64_t after_seq) {
  return codex_request(std::move(id), "process/read",
                       json::object{{"processId", "mcp-stdio-1"},
                                    {"afterSeq", after_seq},
                                    {"maxBytes", nullptr},
                                    {"waitMs", 0}});
}

constexpr std::string_view kCodexInitialized = R"({"method":"initialized","params":{}})";

// Acceptance 38 / docs/exec-protocol.md "Example session" (codex 0.169): a codex client loses its
// connection, reconnects at once with resumeSessionId, catches up with process/read from its last
// seq, then re-sends a write with its writeId: nothing is lost and nothing is written twice.
TEST(ExecSession, CodexDialectResumeCatchesUpAndDeduplicatesWrites) {
  ExecServer server(server_options({"--session-ttl", "30"}));
  run_async([&]() -> asio::awaitable<void> {
    auto a = co_await TestClient::connect(server.port());
    auto init = co_await a->raw_call(codex_initialize("init-a", std::nullopt));
    CO_ASSERT_TRUE(init.reply.has_value());
    const std::string session_id(init.reply->at("sessionId").as_string());
    a->send_text(std::string(kCodexInitialized));
    auto started = co_await a->raw_call(codex_start_cat("start"));
    CO_ASSERT_TRUE(started.reply.has_value());
    auto w1 = co_await a->raw_call(codex_write("w1", "one\n", "1"));
    EXPECT_EQ(w1.reply->at("status"), "accepted");
    EXPECT_TRUE(co_await a->wait_output("mcp-stdio-1", "one\n"));
    // The second write is sent and the connection dies before its answer is read.
    a->send_text(json::serialize(codex_write("w2", "two\n", "2")));
    a->abort();
    std::int64_t last_seq = 0;
    for (const auto& e : a->events("mcp-stdio-1"))
      last_seq = std::max(last_seq, e.at("seq").as_int64());

    auto b = co_await TestClient::connect(server.port());
    auto resumed = co_await b->raw_call(codex_initialize("init-b", session_id));
    CO_ASSERT_TRUE(resumed.reply.has_value());
    EXPECT_EQ(std::string(resumed.reply->at("sessionId").as_string()), session_id);
    b->send_text(std::string(kCodexInitialized));
    // Re-send the write whose answer was lost (same writeId), then a new one.
    auto again = co_await b->raw_call(codex_write("w2-again", "two\n", "2"));
    EXPECT_EQ(again.reply->at("status"), "accepted");
    auto w3 = co_await b->raw_call(codex_write("w3", "three\n", "3"));
    EXPECT_EQ(w3.reply->at("status"), "accepted");

    // Catch up from the last seq A saw, then take what is pushed live.
    std::string caught_up;
    const auto end = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < end) {
      auto read = co_await b->raw_call(codex_read("read-" + std::to_string(last_seq), last_seq));
      CO_ASSERT_TRUE(read.reply.has_value());
      for (const auto& chunk : read.reply->at("chunks").as_array()) {
        caught_up += unb64(chunk.at("chunk").as_string());
        last_seq = std::max(last_seq, chunk.at("seq").as_int64());
      }
      if (caught_up.find("three\n") != std::string::npos) break;
      co_await sleep_for(20ms);
    }
    EXPECT_EQ(a->output("mcp-stdio-1") + caught_up, "one\ntwo\nthree\n");
    b->close();
  });
}

// What `seq 1 <count>` prints.
std::string seq_output(int count) {
  std::string text;
  for (int i = 1; i <= count; ++i) text += std::to_string(i) + "\n";
  return text;
}

// A client starts `seq 1 <count>` as "flood" and is lost at once (no close frame); what it
// received goes into `by_seq`. Returns the session id to resume.
asio::awaitable<std::string> flood_then_lose(ExecServer& server, int count,
                                             std::map<std::int64_t, std::string>& by_seq) {
  auto a = co_await TestClient::connect(server.port());
  auto init = co_await a->initialize();
  std::string session_id(init.at("sessionId").as_string());
  auto start = start_argv("flood", json::array{"seq", "1", std::to_string(count)});
  co_await a->call_ok("process/start", std::move(start));
  a->abort();
  merge_events(by_seq, *a, "flood");
  co_await sleep_for(500ms);  // the producer runs into the paused reader meanwhile
  co_return session_id;
}

// Merges a process/read answer's chunks; returns the highest seq seen so far.
std::int64_t merge_read(std::map<std::int64_t, std::string>& by_seq, const json::object& result,
                        std::int64_t last) {
  for (const auto& item : result.at("chunks").as_array()) {
    const auto& chunk = item.as_object();
    const std::int64_t seq = chunk.at("seq").as_int64();
    merge_chunk(by_seq, seq, unb64(chunk.at("chunk").as_string()));
    last = std::max(last, seq);
  }
  return last;
}

// Flow control while detached (docs/exec-server.md): a lost client's processes keep running,
// but their readers pause at the unconfirmed allowance instead of evicting, so a client that
// resumes reads every byte, even when far more than the 1 MiB retention was produced while it
// was away.
TEST(ExecSession, OutputProducedWhileDetachedIsAllThereAfterResume) {
  ExecServer server(server_options({"--session-ttl", "30"}));
  const std::string expected = seq_output(400000);  // about 2.7 MB
  run_async([&]() -> asio::awaitable<void> {
    std::map<std::int64_t, std::string> by_seq;
    const std::string session_id = co_await flood_then_lose(server, 400000, by_seq);
    auto b = co_await TestClient::connect(server.port());
    co_await b->initialize(session_id);
    std::int64_t last = by_seq.empty() ? 0 : by_seq.rbegin()->first;
    bool closed = false;
    const auto end = std::chrono::steady_clock::now() + 30s;
    while (!closed && std::chrono::steady_clock::now() < end) {
      auto result =
          (co_await b->call_ok("process/read", read_params("flood", last, 1000))).as_object();
      last = merge_read(by_seq, result, last);
      closed = result.at("closed").as_bool();
    }
    CO_ASSERT_TRUE(closed);
    merge_events(by_seq, *b, "flood");
    const std::string got = concat(by_seq);
    EXPECT_EQ(got.size(), expected.size());
    EXPECT_TRUE(got == expected) << "the resumed output differs from what seq printed";
    b->close();
  });
}

// A resumed client that catches up with one read and then only listens must not stall the
// process: the chunks that read returned count as confirmed once its answer is delivered, so
// retention can drop them and the reader (paused at the unconfirmed allowance while detached)
// goes on.
TEST(ExecSession, OneCatchUpReadThenListeningDoesNotStallTheProcess) {
  ExecServer server(server_options({"--session-ttl", "30"}));
  const std::string expected = seq_output(1500000);  // about 10.9 MB
  run_async([&]() -> asio::awaitable<void> {
    std::map<std::int64_t, std::string> by_seq;
    const std::string session_id = co_await flood_then_lose(server, 1500000, by_seq);
    auto b = co_await TestClient::connect(server.port());
    co_await b->initialize(session_id);
    const std::int64_t last = by_seq.empty() ? 0 : by_seq.rbegin()->first;
    auto caught_up =
        (co_await b->call_ok("process/read", read_params("flood", last, 0))).as_object();
    merge_read(by_seq, caught_up, last);
    // From here on only pushed events: the process must run to its end.
    CO_ASSERT_TRUE(co_await b->wait_closed("flood"));
    merge_events(by_seq, *b, "flood");
    const std::string got = concat(by_seq);
    EXPECT_EQ(got.size(), expected.size());
    EXPECT_TRUE(got == expected) << "the output differs from what seq printed";
    b->close();
  });
}

TEST(ExecSession, ResumedWritesWithAKnownWriteIdWriteNothing) {
  ExecServer server(server_options({"--session-ttl", "30"}));
  run_async([&]() -> asio::awaitable<void> {
    auto a = co_await TestClient::connect(server.port());
    auto init = co_await a->initialize();
    const std::string session_id(init.at("sessionId").as_string());
    auto cat = start_argv("cat", json::array{"cat"}, piped_stdin());
    co_await a->call_ok("process/start", std::move(cat));
    auto first = co_await a->call_ok("process/write", write_params("cat", "a\n", "1"));
    EXPECT_EQ(first.at("status"), "accepted");
    EXPECT_TRUE(co_await a->wait_output("cat", "a\n"));
    a->abort();

    auto b = co_await TestClient::connect(server.port());
    auto resumed = co_await b->initialize(session_id);
    EXPECT_EQ(std::string(resumed.at("sessionId").as_string()), session_id);
    // The client re-sends the write it cannot know landed, then carries on counting.
    auto again = co_await b->call_ok("process/write", write_params("cat", "a\n", "1"));
    EXPECT_EQ(again.at("status"), "accepted");
    auto next = co_await b->call_ok("process/write", write_params("cat", "b\n", "2"));
    EXPECT_EQ(next.at("status"), "accepted");

    // Everything cat printed, from the start; stdin order means a duplicate "a" would come
    // before "b", so once "b" is out the output is complete.
    std::map<std::int64_t, std::string> by_seq;
    std::int64_t last = 0;
    const auto end = std::chrono::steady_clock::now() + 20s;
    while (concat(by_seq).find("b\n") == std::string::npos &&
           std::chrono::steady_clock::now() < end) {
      auto result =
          (co_await b->call_ok("process/read", read_params("cat", last, 1000))).as_object();
      for (const auto& item : result.at("chunks").as_array()) {
        const auto& chunk = item.as_object();
        merge_chunk(by_seq, chunk.at("seq").as_int64(), unb64(chunk.at("chunk").as_string()));
        last = std::max(last, chunk.at("seq").as_int64());
      }
    }
    EXPECT_EQ(concat(by_seq), "a\nb\n");
    json::object terminate{{"processId", "cat"}};
    co_await b->call_ok("process/terminate", std::move(terminate));
    EXPECT_TRUE(co_await b->wait_closed("cat"));
    b->close();
  });
}

TEST(ExecSession, ResumeErrorsDoNotUseUpInitialize) {
  ExecServer server(server_options({"--session-ttl", "30"}));
  run_async([&]() -> asio::awaitable<void> {
    auto a = co_await TestClient::connect(server.port());
    auto init = co_await a->initialize();
    const std::string session_id(init.at("sessionId").as_string());

    auto b = co_await TestClient::connect(server.port());
    const std::string unknown = "00000000-0000-4000-8000-000000000000";
    auto reply = co_await b->call("initialize", initialize_params(unknown));
    CO_ASSERT_TRUE(!reply);
    EXPECT_EQ(reply.error().code, -32600);
    EXPECT_EQ(reply.error().message, "unknown session id " + unknown);

    // A is still attached to the session.
    reply = co_await b->call("initialize", initialize_params(session_id));
    CO_ASSERT_TRUE(!reply);
    EXPECT_EQ(reply.error().code, -32010);
    EXPECT_EQ(reply.error().message,
              "session " + session_id + " is already attached to another connection");

    // Neither failure counted as the one initialize: a plain one works and starts a new session.
    auto fresh = co_await b->initialize();
    EXPECT_NE(std::string(fresh.at("sessionId").as_string()), session_id);
    json::object no_params;
    auto status = co_await b->call_ok("environment/status", no_params);
    EXPECT_EQ(status.at("status"), "ready");
    // A was not disturbed.
    auto a_status = co_await a->call_ok("environment/status", no_params);
    EXPECT_EQ(a_status.at("status"), "ready");
    a->close();
    b->close();
  });
}

TEST(ExecSession, SigtermClosesEveryClientWith1001EndsAllProcessesAndExitsZero) {
  const std::string grand1 = "302.7141", direct1 = "302.7142";
  const std::string grand2 = "302.7143", direct2 = "302.7144";
  KillLeftovers guard(
      {"sleep " + grand1, "sleep " + direct1, "sleep " + grand2, "sleep " + direct2});
  ExecServer server;
  run_async([&]() -> asio::awaitable<void> {
    auto c1 = co_await TestClient::connect(server.port());
    co_await c1->initialize();
    CO_ASSERT_TRUE(co_await start_group_and_sleeper(*c1, grand1, direct1));
    auto c2 = co_await TestClient::connect(server.port());
    co_await c2->initialize();
    CO_ASSERT_TRUE(co_await start_group_and_sleeper(*c2, grand2, direct2));

    server.signal(SIGTERM);
    EXPECT_TRUE(co_await c1->wait_disconnected(10s));
    EXPECT_TRUE(co_await c2->wait_disconnected(10s));
    EXPECT_EQ(c1->peer().remote_close_code(), std::optional<std::uint16_t>(1001))
        << c1->peer().end_reason();
    EXPECT_EQ(c2->peer().remote_close_code(), std::optional<std::uint16_t>(1001))
        << c2->peer().end_reason();
    const std::vector<std::string> all{grand1, direct1, grand2, direct2};
    for (const auto& seconds : all)
      EXPECT_TRUE(co_await gone("sleep " + seconds)) << "sleep " << seconds << " outlived SIGTERM";

    auto status = server.wait_exit(10s);
    CO_ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->code, 0) << server.log();
    EXPECT_FALSE(status->signal.has_value());
  });
}

// Acceptance 19. A direct child dies with the executor (parent-death signal). Below it, an
// MCP-like process that reads stdin is no direct child (no parent-death signal reaches it), so
// it only ends because the executor's end of its stdin pipe closed: that shows stdin EOF is
// enough for a well-behaved server.
TEST(ExecSession, SigkillOfTheExecutorEndsDirectChildrenAndStdinReaders) {
  const std::string sleeper = "sleep 302.7151";
  const std::string reader = "stdin-reader-302.7152";    // direct child reading stdin
  const std::string eof_reader = "eof-reader-302.7153";  // grandchild reading the same stdin
  KillLeftovers guard({sleeper, reader, eof_reader});
  ExecServer server;
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await TestClient::connect(server.port());
    co_await client->initialize();
    auto direct = start_sleep("sleeper", "302.7151");
    co_await client->call_ok("process/start", std::move(direct));
    auto read_loop = start_argv(
        "reader", json::array{"/bin/sh", "-c", "while read l; do :; done", reader}, piped_stdin());
    co_await client->call_ok("process/start", std::move(read_loop));
    // fd 3 keeps the stdin pipe for the background job (sh gives `&` jobs /dev/null otherwise).
    auto mcp_like = start_sh(
        "mcp", "exec 3<&0; sh -c 'while read l; do :; done' " + eof_reader + " <&3 3<&- & wait",
        piped_stdin());
    co_await client->call_ok("process/start", std::move(mcp_like));
    CO_ASSERT_TRUE(co_await running(sleeper, 1));
    CO_ASSERT_TRUE(co_await running(reader, 1));
    // The outer shell's command line names the marker too: outer sh + the reader.
    CO_ASSERT_TRUE(co_await running(eof_reader, 2));

    server.signal(SIGKILL);
    auto status = server.wait_exit(10s);
    CO_ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->signal, std::optional<int>(SIGKILL));

    EXPECT_TRUE(co_await gone(sleeper)) << "a direct child outlived the executor";
    EXPECT_TRUE(co_await gone(reader)) << "a direct stdin reader outlived the executor";
    EXPECT_TRUE(co_await gone(eof_reader)) << "a stdin reader below the executor's child did "
                                              "not see EOF when the executor died";
    EXPECT_TRUE(co_await client->wait_disconnected());
  });
}

// Containment (docs/process-api.md): descendants that left the process group, by setsid() or
// by a double fork, still end with the session, and with an executor killed by SIGKILL.
TEST(ExecSession, Close1000EndsDescendantsThatLeftTheGroup) {
  const std::string escaped = "sleep 302.7161", orphaned = "sleep 302.7162";
  KillLeftovers guard({escaped, orphaned});
  ExecServer server;
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await TestClient::connect(server.port());
    co_await client->initialize();
    // The numbers come from variables so that the shell's own command line matches neither.
    auto tree = start_sh("tree", "a=302.7161 b=302.7162; setsid sleep $a & ( sleep $b & ); wait");
    co_await client->call_ok("process/start", std::move(tree));
    CO_ASSERT_TRUE(co_await running(escaped, 1));
    CO_ASSERT_TRUE(co_await running(orphaned, 1));

    client->close(jsonrpc::close_code::kNormal);
    EXPECT_TRUE(co_await client->wait_disconnected());
    EXPECT_TRUE(co_await gone(escaped)) << "a setsid() grandchild outlived its session";
    EXPECT_TRUE(co_await gone(orphaned)) << "a double-forked grandchild outlived its session";
  });
}

TEST(ExecSession, SigkillOfTheExecutorEndsEveryDescendant) {
  const std::string grandchild = "sleep 302.7171", escaped = "sleep 302.7172";
  KillLeftovers guard({grandchild, escaped});
  ExecServer server;
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await TestClient::connect(server.port());
    co_await client->initialize();
    // Neither sleep reads stdin nor is a direct child: only containment can end them.
    auto tree = start_sh("tree", "a=302.7171 b=302.7172; sleep $a & setsid sleep $b & wait");
    co_await client->call_ok("process/start", std::move(tree));
    CO_ASSERT_TRUE(co_await running(grandchild, 1));
    CO_ASSERT_TRUE(co_await running(escaped, 1));

    server.signal(SIGKILL);
    auto status = server.wait_exit(10s);
    CO_ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(co_await gone(grandchild)) << "a grandchild outlived the executor";
    EXPECT_TRUE(co_await gone(escaped)) << "a setsid() grandchild outlived the executor";
  });
}

}  // namespace
}  // namespace tether::testing
