// The fault matrix (docs/mcp.md, "Faults"): tether as the host (`tether mcp call`), a real
// executor (`tether exec-server`, token auth) and, on it, the test MCP server started the way
// `npx` starts one (a wrapper whose child is the server). Each fault strikes mid-call: the host
// killed with SIGKILL, the executor killed with SIGKILL, the server crashing, a reader that stops
// reading (the host's stdout, the executor's socket), and a network partition without FIN or RST
// (a private network namespace whose loopback goes down when the test runs as root, else a TCP
// proxy that stops forwarding; the test prints which ran). Every case ends with a census: no
// process carries the case's marker, and no child of this test is left but the executor.
//
// The executor runs with short keepalive settings (pings every 200 ms, a client silent for 1 s
// is lost, a lost session is kept 1 s) and the host's environment likewise, so that a lost peer
// is noticed soon; nothing asserts on wall time, every wait is bounded.
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "build_paths.hpp"
#include "cut_proxy.hpp"
#include "exec_server.hpp"
#include "mcp_fixtures.hpp"
#include "requests.hpp"
#include <tether/process/child.hpp>

namespace tether::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

const char* const kServer = testing::test_mcp_server();
constexpr std::size_t kMiB = std::size_t{1} << 20;
// Far above what the executor needs while a reader stalls, far below what an unbounded queue
// would reach.
constexpr std::size_t kRssCeiling = 256 * kMiB;

const std::vector<std::string> kExecutorKeepalive{
    "--ping-interval-ms", "200", "--idle-timeout-ms", "1000",
    "--session-ttl",      "1",   "--kill-grace-ms",   "200"};

// The host's commands, built outside the coroutines (GCC 12 miscompiles braced initializers in
// co_await expressions). The sleep outlasts every case; the large answer overfills a pipe.
const std::vector<std::string> kSleepCall{"call", "wrapped", "sleep", "--arg", "ms=300000"};
const std::vector<std::string> kEchoCall{"call", "wrapped", "echo", "--arg", "message=after"};
const std::vector<std::string> kCrashCall{"call", "wrapped", "crash"};
const std::vector<std::string> kLargeCall{"call", "wrapped", "large", "--arg", "bytes=8000000"};

// Sets the loopback interface of the calling thread's network namespace up or down.
void set_loopback(bool up) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ifreq request{};
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  ASSERT_EQ(::ioctl(fd, SIOCGIFFLAGS, &request), 0) << std::strerror(errno);
  if (up) {
    request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
  } else {
    request.ifr_flags = static_cast<short>(request.ifr_flags & ~IFF_UP);
  }
  ASSERT_EQ(::ioctl(fd, SIOCSIFFLAGS, &request), 0) << std::strerror(errno);
  ::close(fd);
}

// A partition between the host and the executor that sends neither FIN nor RST. As root: this
// thread (and so every process it starts afterwards) moves into a fresh network namespace, and
// the partition takes its loopback down; the namespace is left when the object goes. Otherwise:
// the host reaches the executor through a CutProxy, and the partition stalls it.
class Partition {
 public:
  Partition() : by_namespace_(::geteuid() == 0) {
    if (!by_namespace_) return;
    original_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    EXPECT_GE(original_, 0) << std::strerror(errno);
    EXPECT_EQ(::unshare(CLONE_NEWNET), 0) << std::strerror(errno);
    set_loopback(true);
  }
  ~Partition() {
    proxy_.reset();
    if (original_ < 0) return;
    EXPECT_EQ(::setns(original_, CLONE_NEWNET), 0) << std::strerror(errno);
    ::close(original_);
  }
  Partition(const Partition&) = delete;
  Partition& operator=(const Partition&) = delete;

  const char* mechanism() const {
    return by_namespace_ ? "a network namespace whose loopback goes down (root)"
                         : "a TCP proxy that stops forwarding (not root)";
  }
  // The port the host connects to for an executor listening on `port`.
  unsigned short route(unsigned short port) {
    if (by_namespace_) return port;
    proxy_ = std::make_unique<testing::CutProxy>(port);
    return proxy_->port();
  }
  void cut() {
    if (by_namespace_) {
      set_loopback(false);
    } else {
      proxy_->stall(true);
    }
  }
  void heal() {
    if (by_namespace_) {
      set_loopback(true);
    } else {
      proxy_->stall(false);
    }
  }

 private:
  bool by_namespace_;
  int original_ = -1;
  std::unique_ptr<testing::CutProxy> proxy_;
};

// `tether mcp ...` as a child of the test. stdout is drained unless the test keeps it full.
struct Host {
  std::shared_ptr<process::Child> child;
  std::string out;
  std::string err;
  int open_streams = 0;
};

asio::awaitable<void> drain(std::shared_ptr<Host> host, asio::posix::stream_descriptor* stream,
                            std::string* into) {
  co_await process::read_lines(*stream, [into](std::string_view line) {
    into->append(line);
    into->push_back('\n');
  });
  --host->open_streams;
}

class FaultMatrix : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    home_ = fs::temp_directory_path() / testing::unique_marker("fault-matrix");
    fs::create_directories(home_ / "home");
    std::ofstream(home_ / "token") << token_ << "\n";
    env_ = testing::host_environment((home_ / "home").string());
  }
  void TearDown() override {
    executor_.reset();
    testing::expect_no_children({}, 15s, "at the end of the test");
    std::error_code ignored;
    fs::remove_all(home_, ignored);
  }

  void start_executor() {
    testing::ExecServer::Options options;
    options.args = {"--listen", "ws://127.0.0.1:0"};
    options.args.insert(options.args.end(), kExecutorKeepalive.begin(), kExecutorKeepalive.end());
    options.extra_env = {"TETHER_EXEC_SERVER_TOKEN=" + token_};
    executor_ = std::make_unique<testing::ExecServer>(options);
  }

  // A config with the executor at 127.0.0.1:`port` and the wrapped test server on it, its
  // command line carrying `mark`.
  std::string config(unsigned short port, const std::string& mark) {
    const auto path = home_ / "config.toml";
    std::ofstream(path) << "[environments.box]\nurl = \"ws://127.0.0.1:" << port
                        << "\"\ntoken_file = \"" << (home_ / "token").string()
                        << "\"\nconnect_timeout_sec = 1\nping_interval_sec = 0.2\n"
                           "idle_timeout_sec = 1\nresume_window_sec = 1\n\n"
                           "[mcp_servers.wrapped]\ncommand = \"/bin/sh\"\n"
                           "args = [\"-c\", \"\\\"$0\\\" \\\"$@\\\"; exit $?\", \""
                        << kServer << "\", \"--stderr-line\", \"" << mark
                        << "\"]\nenvironment = \"box\"\n";
    return path.string();
  }

  // Starts `tether mcp --config <config> args...`; its stderr is always drained, its stdout
  // unless `drain_stdout` is false.
  asio::awaitable<std::shared_ptr<Host>> start_host(const std::string& config,
                                                    std::vector<std::string> args,
                                                    bool drain_stdout) {
    auto host = std::make_shared<Host>();
    process::SpawnOptions options;
    options.argv = {testing::tether_binary(), "mcp", "--config", config};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.env = env_;
    options.stdin_mode = process::StdinMode::closed;
    options.contain = false;  // only tether's own mechanisms may end what it started
    const auto executor = co_await asio::this_coro::executor;
    auto child = process::Child::spawn(executor, options);
    EXPECT_TRUE(child.has_value()) << (child ? "" : child.error().message);
    if (!child) co_return nullptr;
    host->child = *child;
    host->open_streams = drain_stdout ? 2 : 1;
    if (drain_stdout)
      asio::co_spawn(executor, drain(host, host->child->stdout_stream(), &host->out),
                     asio::detached);
    asio::co_spawn(executor, drain(host, host->child->stderr_stream(), &host->err), asio::detached);
    co_return host;
  }

  // The host's exit code once it exited by itself (128 + n for a signal), after its streams
  // ended; -1 (and a test failure) when it did not within 60 s: then it is killed.
  static asio::awaitable<int> exit_code(std::shared_ptr<Host> host, std::string what) {
    asio::steady_timer deadline(co_await asio::this_coro::executor, 60s);
    auto ended = co_await (host->child->wait() || deadline.async_wait(asio::use_awaitable));
    if (ended.index() == 1) {
      ADD_FAILURE() << "tether did not exit by itself: " << what << "\nstderr so far:\n"
                    << host->err;
      host->child->signal_group(SIGKILL);
      co_await host->child->wait();
      co_return -1;
    }
    const auto status = std::get<0>(ended);
    const std::function<bool()> streams_ended = [host] { return host->open_streams == 0; };
    EXPECT_TRUE(co_await testing::eventually(streams_ended, 10s)) << what;
    co_return status.signal ? 128 + *status.signal : status.code;
  }

  // Both processes of the wrapped server (wrapper and server carry the marker) are running.
  static asio::awaitable<bool> server_running(std::string mark) {
    const std::function<bool()> both = [mark] {
      return testing::processes_matching(mark).size() == 2;
    };
    co_return co_await testing::eventually(both, 30s);
  }

  // One fault: the host runs `call` against the executor at 127.0.0.1:`port`; once the server
  // runs (unless the case does not wait for it) and `ready` holds, `fault` strikes. Then the
  // census: no process carries the case's marker, no child is left but the executor.
  struct Case {
    std::string name;  // the marker's prefix, and what failures say
    std::vector<std::string> call = kSleepCall;
    bool drain_stdout = true;
    bool wait_for_server = true;
    std::function<bool(Host&)> ready;
    std::function<void(Host&)> fault;
  };
  struct Ending {
    int code = -1;  // -1: the host did not exit by itself (the test has failed)
    std::string err;
    std::string out;
  };
  Ending strike(const Case& c, unsigned short port) {
    const auto mark = testing::unique_marker(c.name);
    testing::MarkerReaper reaper(mark);
    const auto path = config(port, mark);
    Ending ending;
    testing::run_async(
        [&]() -> asio::awaitable<void> {
          auto host = co_await start_host(path, c.call, c.drain_stdout);
          CO_ASSERT_TRUE(host != nullptr);
          if (c.wait_for_server) CO_ASSERT_TRUE(co_await server_running(mark));
          if (c.ready) {
            const std::function<bool()> ready = [&] { return c.ready(*host); };
            CO_ASSERT_TRUE(co_await testing::eventually(ready, 60s));
          }
          if (c.fault) c.fault(*host);
          ending.code = co_await exit_code(host, c.name);
          ending.err = host->err;
          ending.out = host->out;
        },
        120s, c.name);
    // The executor notices a lost host within its idle timeout and keeps the session for its
    // --session-ttl before it ends the processes: 15 s is far beyond both.
    reaper.expect_none_left(15s);
    testing::expect_no_children({executor_ ? executor_->pid() : -1}, 15s, "after " + c.name);
    return ending;
  }

  // The executor still starts and calls a server after the fault. The echo call may end before
  // anything could see its server run, so nothing waits for it.
  void expect_executor_serves(unsigned short port) {
    const auto after =
        strike({.name = "fault-after", .call = kEchoCall, .wait_for_server = false}, port);
    EXPECT_EQ(after.code, 0) << after.err;
    EXPECT_NE(after.out.find("after"), std::string::npos) << after.out;
  }

  const std::string token_ = "fault-matrix-token-" + std::to_string(::getpid());
  fs::path home_;
  std::vector<std::string> env_;
  std::unique_ptr<testing::ExecServer> executor_;
};

TEST_F(FaultMatrix, HostKilledMidCall) {
  start_executor();
  const auto end = strike(
      {.name = "fault-host-kill", .fault = [](Host& host) { host.child->signal_group(SIGKILL); }},
      executor_->port());
  EXPECT_EQ(end.code, 128 + SIGKILL);
  expect_executor_serves(executor_->port());
}

TEST_F(FaultMatrix, ExecutorKilledMidCall) {
  start_executor();
  const auto end = strike(
      {.name = "fault-executor-kill", .fault = [this](Host&) { executor_->signal(SIGKILL); }},
      executor_->port());
  // The call fails as a server failure, saying why, instead of waiting for the executor; the
  // servers went with the executor, though nothing could tell them to.
  EXPECT_EQ(end.code, 3) << end.err;
  EXPECT_NE(end.err.find("error: "), std::string::npos) << end.err;
  EXPECT_TRUE(executor_->wait_exit(10s).has_value());
}

TEST_F(FaultMatrix, ServerCrashesMidCall) {
  start_executor();
  const auto end =
      strike({.name = "fault-server-crash", .call = kCrashCall, .wait_for_server = false},
             executor_->port());
  EXPECT_EQ(end.code, 3) << end.err;
  EXPECT_NE(end.err.find("MCP server stderr (last lines):"), std::string::npos) << end.err;
  EXPECT_NE(end.err.find("test server: crashing on purpose"), std::string::npos) << end.err;
  expect_executor_serves(executor_->port());
}

// The host's stdout is a pipe nobody reads while it writes a large result: the host blocks, and
// must still end on SIGTERM, with its servers.
TEST_F(FaultMatrix, HostOutputNeverRead) {
  start_executor();
  const auto pipe_full = [](Host& host) {
    const int out = host.child->stdout_stream()->native_handle();
    int queued = 0;
    return ::ioctl(out, FIONREAD, &queued) == 0 && queued >= ::fcntl(out, F_GETPIPE_SZ);
  };
  const auto end = strike({.name = "fault-host-reader",
                           .call = kLargeCall,
                           .drain_stdout = false,
                           .ready = pipe_full,
                           .fault = [](Host& host) { ::kill(host.child->pid(), SIGTERM); }},
                          executor_->port());
  EXPECT_EQ(end.code, 130) << end.err;
}

std::string initialize_text() {
  return json::serialize(json::object{{"jsonrpc", "2.0"},
                                      {"id", 0},
                                      {"method", "initialize"},
                                      {"params", json::object{{"clientName", "stalled"}}}});
}
std::string initialized_text() {
  return json::serialize(json::object{{"jsonrpc", "2.0"}, {"method", "initialized"}});
}
std::string start_flood_text(const std::string& mark) {
  json::object params = testing::start_sh("flood", "exec yes \"$0\"");
  params["argv"].as_array().push_back(json::value(mark));
  return json::serialize(json::object{
      {"jsonrpc", "2.0"}, {"id", 1}, {"method", "process/start"}, {"params", std::move(params)}});
}

// A client starts a process that writes without end, then reads nothing more from its socket:
// the executor pauses the output instead of queueing it, and ends the process once the client
// is gone.
TEST_F(FaultMatrix, ExecutorOutputNeverRead) {
  start_executor();
  const auto mark = testing::unique_marker("fault-executor-reader");
  testing::MarkerReaper reaper(mark);
  std::size_t peak = 0;
  const testing::Headers auth{{"Authorization", "Bearer " + token_}};
  testing::run_async(
      [&]() -> asio::awaitable<void> {
        auto ws = co_await testing::ws_connect(executor_->port(), auth);
        ws.text(true);
        beast::flat_buffer answer;
        co_await ws.async_write(asio::buffer(initialize_text()), asio::use_awaitable);
        co_await ws.async_read(answer, asio::use_awaitable);
        co_await ws.async_write(asio::buffer(initialized_text()), asio::use_awaitable);
        co_await ws.async_write(asio::buffer(start_flood_text(mark)), asio::use_awaitable);
        const std::function<bool()> flooding = [&mark] {
          return testing::processes_matching(mark).size() == 1;
        };
        CO_ASSERT_TRUE(co_await testing::eventually(flooding, 30s));
        // The bound is on memory, not time: the flood runs a fixed while, cut short past the
        // ceiling so that a regression does not exhaust the machine.
        const auto end = std::chrono::steady_clock::now() + 3s;
        while (std::chrono::steady_clock::now() < end && peak <= kRssCeiling) {
          peak = std::max(peak, testing::status_bytes(executor_->pid(), "VmHWM"));
          co_await testing::sleep_for(50ms);
        }
        std::cout << "peak executor RSS with a reader that stopped: " << peak / kMiB << " MiB\n";
        EXPECT_LE(peak, kRssCeiling) << "peak executor RSS " << peak / kMiB << " MiB";
        boost::system::error_code ignored;
        beast::get_lowest_layer(ws).socket().close(ignored);
      },
      90s, "a reader that stopped");
  reaper.expect_none_left(15s);
  testing::expect_no_children({executor_->pid()}, 15s, "after a reader that stopped");
  expect_executor_serves(executor_->port());
}

TEST_F(FaultMatrix, PartitionWithoutFin) {
  Partition partition;
  std::cout << "partition: " << partition.mechanism() << "\n";
  RecordProperty("partition", partition.mechanism());
  start_executor();
  const auto port = partition.route(executor_->port());
  // The host hears nothing, gives the executor its resume window, then fails the call; the
  // executor heard nothing either, and ends the session once its TTL ran out.
  const auto end =
      strike({.name = "fault-partition", .fault = [&partition](Host&) { partition.cut(); }}, port);
  EXPECT_EQ(end.code, 3) << end.err;
  EXPECT_NE(end.err.find("error: "), std::string::npos) << end.err;
  partition.heal();
  expect_executor_serves(port);
}

}  // namespace
}  // namespace tether::cli
