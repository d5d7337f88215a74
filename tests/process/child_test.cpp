// Tests for tether::process::Child against real processes (sh, cat, env, sleep, stty).
//
// Owns: checks of the spawn contract (exact env, PATH, arg0, cwd, stdio modes, pty), of error
// reporting, of reaping and of group signalling. Every process a test starts is killed on the
// way out, also when an assertion fails: Child's destructor kills its group, and GroupGuard
// covers processes that outlive their Child. Every wait is bounded by a deadline with a message;
// nothing asserts on elapsed time.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <optional>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <variant>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <tether/process/child.hpp>
#include <tether/process/containment.hpp>

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using tether::process::Child;
using tether::process::containment;
using tether::process::ExitStatus;
using tether::process::is_end_of_stream;
using tether::process::SpawnOptions;
using tether::process::StdinMode;

constexpr auto kDeadline = 20s;

// The embedding program ignores SIGPIPE (writing to a dead child must not kill the tests), and
// that disposition must not reach children.
[[maybe_unused]] const bool sigpipe_ignored = [] {
  ::signal(SIGPIPE, SIG_IGN);
  return true;
}();

// True once `pid` no longer runs: gone, or a zombie waiting for a parent that is not us.
bool process_gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const std::size_t paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return true;
  const char state = line[paren + 2];
  return state == 'Z' || state == 'X';
}

// Polls without an event loop; for processes whose death needs no timer of ours.
bool wait_gone_blocking(pid_t pid) {
  const auto until = std::chrono::steady_clock::now() + kDeadline;
  while (std::chrono::steady_clock::now() < until) {
    if (process_gone(pid)) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// SIGKILLs a process group on scope exit: for processes that may outlive their Child.
class GroupGuard {
 public:
  explicit GroupGuard(pid_t pgid) : pgid_(pgid) {}
  GroupGuard(const GroupGuard&) = delete;
  GroupGuard& operator=(const GroupGuard&) = delete;
  ~GroupGuard() {
    if (pgid_ > 0) ::kill(-pgid_, SIGKILL);
  }

 private:
  pid_t pgid_;
};

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tether-process-XXXXXX");
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = std::filesystem::canonical(pattern);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

  void write_file(const std::string& name, const std::string& content, bool executable) const {
    const auto file = path_ / name;
    std::ofstream(file) << content;
    std::filesystem::permissions(
        file, executable ? std::filesystem::perms(0755) : std::filesystem::perms(0644));
  }

 private:
  std::filesystem::path path_;
};

// An io_context plus a bounded way to run one coroutine to completion on it. Declare the Harness
// before any Child so children (and their descriptors) go before the io_context.
class Harness {
 public:
  asio::any_io_executor executor() { return io_.get_executor(); }

  std::shared_ptr<Child> spawn(const SpawnOptions& options) {
    auto result = Child::spawn(executor(), options);
    if (!result) {
      ADD_FAILURE() << "spawn failed: " << result.error().message;
      return nullptr;
    }
    return *result;
  }

  // Runs `op` until it finishes or kDeadline passes; nullopt (and a test failure naming `what`)
  // when it timed out or threw.
  template <class T>
  std::optional<T> run(asio::awaitable<T> op, const std::string& what) {
    // Shared so that a completion arriving after a timeout has somewhere valid to land.
    struct Outcome {
      bool done = false;
      std::optional<T> value;
      std::exception_ptr error;
    };
    auto outcome = std::make_shared<Outcome>();
    asio::co_spawn(io_, std::move(op), [outcome](std::exception_ptr error, T value) {
      outcome->done = true;
      if (error) {
        outcome->error = error;
      } else {
        outcome->value = std::move(value);
      }
    });
    io_.restart();
    const auto until = std::chrono::steady_clock::now() + kDeadline;
    while (!outcome->done && std::chrono::steady_clock::now() < until) {
      if (io_.run_one_until(until) == 0 && io_.stopped()) break;
    }
    if (!outcome->done) {
      ADD_FAILURE() << what << ": did not finish within " << kDeadline.count() << "s";
      return std::nullopt;
    }
    if (outcome->error) {
      try {
        std::rethrow_exception(outcome->error);
      } catch (const std::exception& e) {
        ADD_FAILURE() << what << ": threw " << e.what();
      }
      return std::nullopt;
    }
    return std::move(outcome->value);
  }

 private:
  asio::io_context io_;
};

asio::awaitable<std::string> read_all(asio::posix::stream_descriptor& stream) {
  std::string out;
  char buffer[4096];
  while (true) {
    auto [ec, n] =
        co_await stream.async_read_some(asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
    out.append(buffer, n);
    if (is_end_of_stream(ec)) co_return out;
    if (ec) throw boost::system::system_error(ec, "read");
  }
}

asio::awaitable<std::string> read_line(asio::posix::stream_descriptor& stream) {
  std::string line;
  const std::size_t n = co_await asio::async_read_until(stream, asio::dynamic_buffer(line), '\n',
                                                        asio::use_awaitable);
  line.resize(n - 1);
  co_return line;
}

struct Output {
  std::string out;
  std::string err;
  ExitStatus status;
};

asio::awaitable<Output> collect(Child& child) {
  auto [out, err] = co_await (read_all(*child.stdout_stream()) && read_all(*child.stderr_stream()));
  ExitStatus status = co_await child.wait();
  co_return Output{std::move(out), std::move(err), status};
}

// Lets the event loop run (the terminate timer lives there) while polling for `pid` to die.
asio::awaitable<bool> gone_soon(pid_t pid) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const auto until = std::chrono::steady_clock::now() + kDeadline;
  while (std::chrono::steady_clock::now() < until) {
    if (process_gone(pid)) co_return true;
    timer.expires_after(20ms);
    co_await timer.async_wait(asio::use_awaitable);
  }
  co_return false;
}

std::optional<Output> run_to_end(const SpawnOptions& options) {
  Harness h;
  auto child = h.spawn(options);
  if (!child) return std::nullopt;
  return h.run(collect(*child), "collecting output of " + options.argv.front());
}

SpawnOptions sh(const std::string& script) {
  SpawnOptions options;
  options.argv = {"/bin/sh", "-c", script};
  options.env = {"PATH=/usr/bin:/bin"};
  return options;
}

TEST(Child, TrueExitsZero) {
  SpawnOptions options;
  options.argv = {"true"};  // resolved against this process's PATH: env has none
  const auto result = run_to_end(options);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status.code, 0);
  EXPECT_FALSE(result->status.signal);
}

TEST(Child, ExitCode) {
  const auto result = run_to_end(sh("exit 7"));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status.code, 7);
  EXPECT_FALSE(result->status.signal);
}

TEST(Child, KilledBySignal) {
  const auto result = run_to_end(sh("kill -TERM $$"));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status.code, 143);
  EXPECT_EQ(result->status.signal, SIGTERM);
}

TEST(Child, SignalGroup) {
  Harness h;
  auto child = h.spawn(sh("exec sleep 300"));
  ASSERT_TRUE(child);
  child->signal_group(SIGUSR1);
  const auto status = h.run(child->wait(), "exit after SIGUSR1");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->code, 128 + SIGUSR1);
  EXPECT_EQ(status->signal, SIGUSR1);
}

TEST(Child, StdoutAndStderrAreSeparate) {
  const auto result = run_to_end(sh("head -c 300000 /dev/zero; echo oops >&2"));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->out, std::string(300000, '\0'));
  EXPECT_EQ(result->err, "oops\n");
}

TEST(Child, EnvironmentIsExact) {
  SpawnOptions options;
  options.argv = {"/usr/bin/env"};
  options.env = {"A=1"};
  auto result = run_to_end(options);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->out, "A=1\n");

  options.env = {};
  result = run_to_end(options);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->out, "");
}

TEST(Child, ResolvesAgainstChildPath) {
  TempDir first, second;
  first.write_file("tether-tool", "#!/bin/sh\necho not-executable\n", false);
  second.write_file("tether-tool", "#!/bin/sh\necho second\n", true);
  SpawnOptions options;
  options.argv = {"tether-tool"};
  options.env = {"PATH=/nonexistent:" + first.path().string() + ":" + second.path().string()};
  const auto result = run_to_end(options);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->out, "second\n");
  EXPECT_EQ(result->status.code, 0);
}

// No child may be left unreaped after a failed spawn.
void expect_no_exited_children() {
  siginfo_t info{};
  const int rc = ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT);
  EXPECT_TRUE((rc == -1 && errno == ECHILD) || (rc == 0 && info.si_pid == 0))
      << "a zombie child was left: pid " << info.si_pid;
}

TEST(Child, ProgramNotFoundOnPath) {
  Harness h;
  SpawnOptions options;
  options.argv = {"tether-no-such-program"};
  options.env = {"PATH=/nonexistent:/usr/bin"};
  const auto result = Child::spawn(h.executor(), options);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code.value(), ENOENT);
  EXPECT_EQ(result.error().message,
            "failed to start 'tether-no-such-program': No such file or directory (os error 2)");
}

TEST(Child, ExecFailureIsReportedAndReaped) {
  Harness h;
  SpawnOptions options;
  options.argv = {"/nonexistent/program"};
  auto result = Child::spawn(h.executor(), options);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().message,
            "failed to start '/nonexistent/program': No such file or directory (os error 2)");
  expect_no_exited_children();

  options.argv = {"/etc/passwd"};
  result = Child::spawn(h.executor(), options);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code.value(), EACCES);
  EXPECT_EQ(result.error().message,
            "failed to start '/etc/passwd': Permission denied (os error 13)");
  expect_no_exited_children();
}

TEST(Child, BadCwdIsReported) {
  Harness h;
  SpawnOptions options;
  options.argv = {"pwd"};
  options.cwd = "/tether/missing";
  const auto result = Child::spawn(h.executor(), options);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code.value(), ENOENT);
  EXPECT_EQ(result.error().message,
            "failed to start 'pwd': cannot change directory to '/tether/missing': No such file or "
            "directory (os error 2)");
  expect_no_exited_children();
}

TEST(Child, CwdIsHonoured) {
  TempDir dir;
  SpawnOptions options;
  options.argv = {"/bin/pwd"};
  options.cwd = dir.path().string();
  const auto result = run_to_end(options);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->out, dir.path().string() + "\n");
}

TEST(Child, Arg0ReplacesWhatTheChildSees) {
  SpawnOptions options;
  options.argv = {"/bin/cat", "/proc/self/cmdline"};
  options.arg0 = "custom";
  const auto result = run_to_end(options);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->out, std::string("custom\0/proc/self/cmdline\0", 26));
}

TEST(Child, SignalStateIsReset) {
  sigset_t usr1, previous;
  ::sigemptyset(&usr1);
  ::sigaddset(&usr1, SIGUSR1);
  ::sigprocmask(SIG_BLOCK, &usr1, &previous);
  SpawnOptions options;
  options.argv = {"/bin/grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"};
  const auto result = run_to_end(options);
  ::sigprocmask(SIG_SETMASK, &previous, nullptr);
  struct sigaction pipe_action {};
  ::sigaction(SIGPIPE, nullptr, &pipe_action);
  ASSERT_EQ(pipe_action.sa_handler, SIG_IGN) << "precondition: SIGPIPE ignored here";
  ASSERT_TRUE(result);
  EXPECT_EQ(result->out, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}

TEST(Child, OnlyStdioIsInherited) {
  const int leaked = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(leaked, 0);
  SpawnOptions options;
  options.argv = {"/bin/ls", "/proc/self/fd"};
  const auto result = run_to_end(options);
  ::close(leaked);
  ASSERT_TRUE(result);
  // 3 is ls's own handle on the directory it lists.
  EXPECT_EQ(result->out, "0\n1\n2\n3\n");
}

TEST(Child, StdinPipeRoundTrip) {
  Harness h;
  auto child = h.spawn({.argv = {"/bin/cat"}});
  ASSERT_TRUE(child);
  std::string payload;
  for (int i = 0; payload.size() < 256 * 1024; ++i) payload += "line " + std::to_string(i) + "\n";

  auto feed = [](Child& c, const std::string& data) -> asio::awaitable<bool> {
    co_await asio::async_write(*c.stdin_stream(), asio::buffer(data), asio::use_awaitable);
    c.close_stdin();
    co_return true;
  };
  // Written and read concurrently: cat blocks once its output pipe fills.
  auto echoed = h.run(
      [](Child& c, auto feeder) -> asio::awaitable<std::string> {
        auto [written, out] = co_await (std::move(feeder) && read_all(*c.stdout_stream()));
        co_return out;
      }(*child, feed(*child, payload)),
      "cat round trip");
  ASSERT_TRUE(echoed);
  EXPECT_EQ(*echoed, payload);
  EXPECT_EQ(child->stdin_stream(), nullptr);
  const auto status = h.run(child->wait(), "cat exit");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->code, 0);
}

TEST(Child, StdinClosedReadsEof) {
  Harness h;
  SpawnOptions options = sh("read l || echo eof");
  options.stdin_mode = StdinMode::closed;
  auto child = h.spawn(options);
  ASSERT_TRUE(child);
  EXPECT_EQ(child->stdin_stream(), nullptr);
  const auto result = h.run(collect(*child), "sh with closed stdin");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->out, "eof\n");
}

TEST(Child, PipeBufferSize) {
  Harness h;
  SpawnOptions options = sh("echo hi");
  options.pipe_buffer_bytes = 256 * 1024;
  auto child = h.spawn(options);
  ASSERT_TRUE(child);
  EXPECT_EQ(::fcntl(child->stdout_stream()->native_handle(), F_GETPIPE_SZ), 256 * 1024);
  const auto result = h.run(collect(*child), "sh with big pipes");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->out, "hi\n");
}

TEST(Child, PtyCarriesStdinAndStdout) {
  Harness h;
  SpawnOptions options =
      sh("test -t 0 && test -t 1 && test -t 2 && echo all-tty; "
         "IFS= read line; printf 'from-stdin:%s\\n' \"$line\"");
  options.tty = true;
  auto child = h.spawn(options);
  ASSERT_TRUE(child);
  EXPECT_TRUE(child->is_tty());
  EXPECT_EQ(child->stderr_stream(), nullptr);
  ASSERT_NE(child->stdin_stream(), nullptr);
  ASSERT_NE(child->stdout_stream(), nullptr);
  EXPECT_NE(child->stdin_stream()->native_handle(), child->stdout_stream()->native_handle());

  const auto out = h.run(
      [](Child& c) -> asio::awaitable<std::string> {
        co_await asio::async_write(*c.stdin_stream(), asio::buffer("hello\n", 6),
                                   asio::use_awaitable);
        co_return co_await read_all(*c.stdout_stream());  // ends with EIO
      }(*child),
      "pty session");
  ASSERT_TRUE(out);
  EXPECT_NE(out->find("all-tty"), std::string::npos) << *out;
  EXPECT_NE(out->find("from-stdin:hello"), std::string::npos) << *out;
  const auto status = h.run(child->wait(), "pty child exit");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->code, 0);
}

TEST(Child, PtyWindowSize) {
  Harness h;
  SpawnOptions options = sh("stty size");
  options.tty = true;
  options.tty_rows = 30;
  options.tty_cols = 100;
  auto child = h.spawn(options);
  ASSERT_TRUE(child);
  const auto out = h.run(read_all(*child->stdout_stream()), "stty size");
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, "30 100\r\n");
}

TEST(Child, TerminateReachesTheWholeGroup) {
  Harness h;
  auto child = h.spawn(sh("sleep 300 & echo $!; wait"));
  ASSERT_TRUE(child);
  const auto line = h.run(read_line(*child->stdout_stream()), "reading the grandchild pid");
  ASSERT_TRUE(line);
  const pid_t grandchild = std::stoi(*line);

  child->terminate(2s);
  const auto status = h.run(child->wait(), "sh exit after SIGTERM");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->code, 143);
  EXPECT_EQ(status->signal, SIGTERM);
  const auto gone = h.run(gone_soon(grandchild), "grandchild exit");
  ASSERT_TRUE(gone);
  EXPECT_TRUE(*gone) << "grandchild " << grandchild << " survived terminate()";
}

TEST(Child, TerminateEscalatesToSigkill) {
  Harness h;
  auto child = h.spawn(sh("trap '' TERM; echo ready; exec sleep 300"));
  ASSERT_TRUE(child);
  const auto line = h.run(read_line(*child->stdout_stream()), "waiting for the TERM trap");
  ASSERT_TRUE(line);
  ASSERT_EQ(*line, "ready");

  child->terminate(200ms);
  child->terminate(200ms);  // idempotent
  const auto status = h.run(child->wait(), "exit after SIGKILL");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->code, 137);
  EXPECT_EQ(status->signal, SIGKILL);
}

TEST(Child, TerminateOutlivesChildAndLeader) {
  Harness h;
  auto child = h.spawn(sh("trap '' TERM; sleep 300 & echo $!"));
  ASSERT_TRUE(child);
  const GroupGuard guard(child->pgid());
  const auto line = h.run(read_line(*child->stdout_stream()), "reading the grandchild pid");
  ASSERT_TRUE(line);
  const pid_t grandchild = std::stoi(*line);
  const auto status = h.run(child->wait(), "leader exit");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->code, 0);

  // The leader is reaped and the Child gone; the timer alone must kill the TERM-proof sleep.
  child->terminate(200ms);
  child.reset();
  const auto gone = h.run(gone_soon(grandchild), "grandchild exit");
  ASSERT_TRUE(gone);
  EXPECT_TRUE(*gone) << "grandchild " << grandchild << " survived the SIGKILL timer";
}

TEST(Child, DestroyingARunningChildKillsAndReapsIt) {
  Harness h;
  auto child = h.spawn(sh("sleep 300 & echo $!; wait"));
  ASSERT_TRUE(child);
  const auto line = h.run(read_line(*child->stdout_stream()), "reading the grandchild pid");
  ASSERT_TRUE(line);
  const pid_t grandchild = std::stoi(*line);
  const pid_t leader = child->pid();

  child.reset();
  siginfo_t info{};
  EXPECT_EQ(::waitid(P_PID, static_cast<id_t>(leader), &info, WEXITED | WNOHANG | WNOWAIT), -1)
      << "leader " << leader << " was not reaped";
  EXPECT_EQ(errno, ECHILD);
  EXPECT_TRUE(wait_gone_blocking(grandchild)) << "grandchild " << grandchild << " survived";
}

TEST(Child, DestroyingTheChildAbortsAPendingWait) {
  Harness h;
  auto child = h.spawn(sh("exec sleep 300"));
  ASSERT_TRUE(child);
  const pid_t pid = child->pid();
  const auto outcome = h.run(
      [](std::shared_ptr<Child>& c) -> asio::awaitable<std::string> {
        auto waiter = [](asio::awaitable<ExitStatus> wait) -> asio::awaitable<std::string> {
          try {
            co_await std::move(wait);
            co_return "completed";
          } catch (const boost::system::system_error& e) {
            co_return e.code() == asio::error::operation_aborted ? "aborted" : e.what();
          }
        };
        auto destroyer = [](std::shared_ptr<Child>& c) -> asio::awaitable<std::string> {
          co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
          c.reset();
          co_return "";
        };
        auto [waited, ignored] = co_await (waiter(c->wait()) && destroyer(c));
        co_return waited;
      }(child),
      "wait() racing the Child's destruction");
  ASSERT_TRUE(outcome);
  EXPECT_EQ(*outcome, "aborted");
  EXPECT_FALSE(child);
  siginfo_t info{};
  EXPECT_EQ(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT), -1)
      << "child " << pid << " was not reaped";
}

TEST(Child, WaitIsCancellableAndRepeatable) {
  Harness h;
  auto child = h.spawn(sh("read x; exit 3"));
  ASSERT_TRUE(child);
  const auto raced = h.run(
      [](Child& c) -> asio::awaitable<int> {
        asio::steady_timer timer(co_await asio::this_coro::executor, 50ms);
        auto winner = co_await (c.wait() || timer.async_wait(asio::use_awaitable));
        co_return static_cast<int>(winner.index());
      }(*child),
      "racing wait against a timer");
  ASSERT_TRUE(raced);
  EXPECT_EQ(*raced, 1) << "wait() completed although the child was blocked on stdin";
  EXPECT_FALSE(child->exit_status());

  child->close_stdin();
  const auto first = h.run(child->wait(), "exit after stdin EOF");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->code, 3);
  const auto second = h.run(child->wait(), "second wait");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->code, 3);
  ASSERT_TRUE(child->exit_status());
  EXPECT_EQ(child->exit_status()->code, 3);
}

// Several reactor threads race each other for the pidfd's exit notification.
TEST(Child, WaitOnAThreadPool) {
  constexpr int kChildren = 64;
  asio::thread_pool pool(4);
  std::vector<std::shared_ptr<Child>> children;
  std::atomic<int> exited_ok{0};
  std::atomic<int> finished{0};
  for (int i = 0; i < kChildren; ++i) {
    auto strand = asio::make_strand(pool);
    auto child = Child::spawn(strand, {.argv = {"/bin/true"}});
    if (!child) {
      ADD_FAILURE() << "spawn failed: " << child.error().message;
      break;
    }
    children.push_back(*child);
    asio::co_spawn(strand, (*child)->wait(), [&](std::exception_ptr error, ExitStatus status) {
      if (!error && status.code == 0) ++exited_ok;
      ++finished;
    });
  }
  const auto until = std::chrono::steady_clock::now() + kDeadline;
  while (finished < static_cast<int>(children.size()) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(finished.load(), kChildren) << "some wait() never completed";
  EXPECT_EQ(exited_ok.load(), kChildren);
  // The reactor threads go before the children they serve.
  pool.stop();
  pool.join();
}

TEST(Child, DiesWithItsParent) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  const pid_t helper = ::fork();
  ASSERT_GE(helper, 0);
  if (helper == 0) {
    // The spawning process vanishes without any cleanup: only PDEATHSIG can kill the sleep.
    ::close(fds[0]);
    asio::io_context io;
    auto child = Child::spawn(io.get_executor(), {.argv = {"/bin/sleep", "300"}});
    const pid_t pid = child ? (*child)->pid() : -1;
    [[maybe_unused]] const ssize_t n = ::write(fds[1], &pid, sizeof pid);
    ::syscall(SYS_exit_group, 0);
  }
  ::close(fds[1]);
  pid_t sleeper = -1;
  const ssize_t n = ::read(fds[0], &sleeper, sizeof sleeper);
  ::close(fds[0]);
  ::waitpid(helper, nullptr, 0);
  ASSERT_EQ(n, static_cast<ssize_t>(sizeof sleeper)) << "helper reported nothing";
  ASSERT_GT(sleeper, 0) << "helper failed to spawn";
  const GroupGuard guard(sleeper);
  EXPECT_TRUE(wait_gone_blocking(sleeper)) << "sleep " << sleeper << " outlived its parent";
}

// ---- Containment: the whole tree, escapes included (docs/process-api.md, "Containment"). ----

// Leaves three sleeps behind: one in the group, one in a session of its own (setsid) and one
// double-forked (its parent exits at once), printing their pids, then runs `tail`.
SpawnOptions escaping_tree(const std::string& tail) {
  return sh(
      "sleep 300 & echo $!; setsid sh -c 'echo $$; exec sleep 300' & "
      "( sh -c 'echo $$; exec sleep 300' & ); " +
      tail);
}

// SIGKILLs every pid it holds on scope exit: for sleeps a failing test would leave.
class PidsGuard {
 public:
  PidsGuard() = default;
  PidsGuard(const PidsGuard&) = delete;
  PidsGuard& operator=(const PidsGuard&) = delete;
  ~PidsGuard() {
    for (pid_t pid : pids) {
      if (!process_gone(pid)) ::kill(pid, SIGKILL);
    }
  }
  std::vector<pid_t> pids;
};

asio::awaitable<std::vector<pid_t>> read_pids(asio::posix::stream_descriptor& stream,
                                              std::size_t count) {
  std::string text;
  std::vector<pid_t> pids;
  while (pids.size() < count) {
    const std::size_t n = co_await asio::async_read_until(stream, asio::dynamic_buffer(text), '\n',
                                                          asio::use_awaitable);
    pids.push_back(std::stoi(text.substr(0, n - 1)));
    text.erase(0, n);
  }
  co_return pids;
}

// Starts escaping_tree(tail) and has `guard` hold the sleeps; null (and a failure) if it could
// not see them start.
std::shared_ptr<Child> spawn_escaping_tree(Harness& h, PidsGuard& guard, const std::string& tail) {
  auto child = h.spawn(escaping_tree(tail));
  if (!child) return nullptr;
  auto pids = h.run(read_pids(*child->stdout_stream(), 3), "reading the three sleep pids");
  if (!pids) return nullptr;
  guard.pids = *pids;
  return child;
}

asio::awaitable<bool> all_gone_soon(std::vector<pid_t> pids) {
  for (pid_t pid : pids) {
    if (!co_await gone_soon(pid)) co_return false;
  }
  co_return true;
}

TEST(Containment, EscapesEndWithTheProgram) {
  Harness h;
  PidsGuard guard;
  auto child = spawn_escaping_tree(h, guard, "read line");
  ASSERT_TRUE(child);
  child->close_stdin();  // `read` sees EOF: the shell exits with its sleeps still running
  const auto status = h.run(child->wait(), "shell exit");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->code, 1);  // read's status at EOF
  const auto gone = h.run(all_gone_soon(guard.pids), "sleeps ending");
  ASSERT_TRUE(gone);
  EXPECT_TRUE(*gone) << "a sleep outlived the program that started it";
}

TEST(Containment, TerminateReachesEscapes) {
  Harness h;
  PidsGuard guard;
  auto child = spawn_escaping_tree(h, guard, "wait");
  ASSERT_TRUE(child);
  child->terminate(2s);
  const auto status = h.run(child->wait(), "shell exit after SIGTERM");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->signal, SIGTERM);
  const auto gone = h.run(all_gone_soon(guard.pids), "sleeps ending");
  ASSERT_TRUE(gone);
  EXPECT_TRUE(*gone) << "a sleep survived terminate()";
}

TEST(Containment, DestroyingTheChildEndsEscapes) {
  Harness h;
  PidsGuard guard;
  auto child = spawn_escaping_tree(h, guard, "wait");
  ASSERT_TRUE(child);
  child.reset();
  for (pid_t pid : guard.pids)
    EXPECT_TRUE(wait_gone_blocking(pid)) << "sleep " << pid << " survived";
}

// A process's cgroup v2 path ("0::<path>" in /proc/<pid>/cgroup), empty when unknown.
std::string cgroup_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("0::")) return line.substr(3);
  return {};
}

// Where cgroup v2 is writable, the program and every escape are in a cgroup of their own, which
// is gone once the program ended; elsewhere the supervisor alone contains them (the tests above).
TEST(Containment, EachProgramHasItsOwnCgroupWhereWritable) {
  const std::string mechanism = containment();
  const std::string under = "a supervisor and a cgroup v2 each, under ";
  if (!mechanism.starts_with(under)) GTEST_SKIP() << "containment here: " << mechanism;
  const std::string parent_dir = mechanism.substr(under.size());
  Harness h;
  PidsGuard guard;
  auto child = spawn_escaping_tree(h, guard, "wait");
  ASSERT_TRUE(child);
  const std::string path = cgroup_of(child->pid());
  const auto name = std::filesystem::path(path).filename().string();
  EXPECT_TRUE(name.starts_with("tether-" + std::to_string(::getpid()) + "-")) << path;
  for (pid_t pid : guard.pids) EXPECT_EQ(cgroup_of(pid), path) << "sleep " << pid;
  const auto dir = std::filesystem::path(parent_dir) / name;
  EXPECT_TRUE(std::filesystem::exists(dir / "cgroup.kill")) << dir;
  child->terminate(2s);
  ASSERT_TRUE(h.run(child->wait(), "shell exit after SIGTERM"));
  const auto gone = h.run(all_gone_soon(guard.pids), "sleeps ending");
  ASSERT_TRUE(gone);
  EXPECT_TRUE(*gone) << "a sleep survived its cgroup";
  EXPECT_FALSE(std::filesystem::exists(dir)) << "the cgroup outlived its program: " << dir;
}

TEST(Containment, SigkillOfTheParentEndsEveryDescendant) {
  TempDir dir;
  const auto pid_file = dir.path() / "pids";
  const pid_t helper = ::fork();
  ASSERT_GE(helper, 0);
  if (helper == 0) {
    // Spawns the tree, waits for its pids to be written, then dies by SIGKILL: no destructor, no
    // cleanup of any kind runs here.
    asio::io_context io;
    auto options = escaping_tree("wait");
    options.argv[2] = "exec > " + pid_file.string() + "; " + options.argv[2];
    auto child = Child::spawn(io.get_executor(), options);
    const auto until = std::chrono::steady_clock::now() + kDeadline;
    while (child && std::chrono::steady_clock::now() < until) {
      std::ifstream in(pid_file);
      std::string text((std::istreambuf_iterator<char>(in)), {});
      if (std::count(text.begin(), text.end(), '\n') == 3) break;
      std::this_thread::sleep_for(10ms);
    }
    ::kill(::getpid(), SIGKILL);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(helper, &status, 0), helper);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  PidsGuard guard;
  std::ifstream in(pid_file);
  for (pid_t pid; in >> pid;) guard.pids.push_back(pid);
  ASSERT_EQ(guard.pids.size(), 3u) << "the helper did not see the tree start";
  for (pid_t pid : guard.pids)
    EXPECT_TRUE(wait_gone_blocking(pid)) << "sleep " << pid << " outlived its SIGKILLed host";
}

TEST(Containment, PidIsTheProgramItself) {
  Harness h;
  auto child = h.spawn(sh("echo $$; exec cat"));
  ASSERT_TRUE(child);
  const auto line = h.run(read_line(*child->stdout_stream()), "reading the shell's pid");
  ASSERT_TRUE(line);
  EXPECT_EQ(std::stoi(*line), child->pid());
  EXPECT_EQ(::getpgid(child->pid()), child->pid());
  child->close_stdin();
  const auto status = h.run(child->wait(), "cat exit");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->code, 0);
}

TEST(Containment, CrashStatusIsTheProgramsOwn) {
  const auto output = run_to_end(sh("kill -SEGV $$"));
  ASSERT_TRUE(output);
  EXPECT_EQ(output->status.signal, SIGSEGV);
  EXPECT_EQ(output->status.code, 128 + SIGSEGV);
}

TEST(Child, NulBytesAreRefused) {
  Harness h;
  for (auto options : {sh(std::string("echo a\0b", 8)), [] {
                         auto o = sh("true");
                         o.env.push_back(std::string("X=a\0b", 5));
                         return o;
                       }()}) {
    auto result = Child::spawn(h.executor(), options);
    ASSERT_FALSE(result) << "a NUL byte was accepted";
    EXPECT_EQ(result.error().code, std::errc::invalid_argument);
    EXPECT_NE(result.error().message.find("NUL byte"), std::string::npos) << result.error().message;
  }
}

TEST(IsEndOfStream, EofAndEioOnly) {
  EXPECT_TRUE(is_end_of_stream(asio::error::eof));
  EXPECT_TRUE(is_end_of_stream(boost::system::error_code(EIO, boost::system::system_category())));
  EXPECT_FALSE(is_end_of_stream(asio::error::operation_aborted));
  EXPECT_FALSE(
      is_end_of_stream(boost::system::error_code(EPIPE, boost::system::system_category())));
  EXPECT_FALSE(is_end_of_stream(boost::system::error_code()));
}

}  // namespace
