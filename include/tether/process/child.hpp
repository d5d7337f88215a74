// tether::process — spawning one child process and owning its OS resources.
//
// Owns: fork/exec with an exact environment, cwd, arg0, its own process group, optional
// pseudo-terminal; containment: every child runs under a small supervisor process (a child
// subreaper with a parent-death signal) so that its whole tree, setsid() and double-fork escapes
// included, ends when the child exits, when it is killed, and when this process dies, even by
// SIGKILL (docs/process-api.md, "Containment"); the child's stdio descriptors as Asio streams;
// reaping through a pidfd (no thread per child, no SIGCHLD handler, no polling); signalling the
// whole group, including the SIGTERM -> grace -> SIGKILL sequence.
// Does not own: what is read from or written to the streams (callers drive the I/O), sequence
// numbers, retention, or any protocol. Data flows: caller -> stdin stream -> child -> stdout /
// stderr (or the pty) streams -> caller; the exit status arrives once through wait().
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <system_error>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/system/result.hpp>

namespace tether::process {

enum class StdinMode {
  pipe,    // a pipe the caller writes to
  closed,  // /dev/null: the child's reads see EOF at once
};

struct SpawnOptions {
  // argv[0] without a '/' is resolved against the PATH found in `env`, else against this
  // process's own PATH. Must not be empty.
  std::vector<std::string> argv;
  // When set, replaces argv[0] as the child sees it (the resolved program still runs).
  std::optional<std::string> arg0;
  // "NAME=value" entries: the child's entire environment; nothing is inherited.
  std::vector<std::string> env;
  // Absolute working directory; empty keeps this process's cwd.
  std::string cwd;
  StdinMode stdin_mode = StdinMode::pipe;
  // Run under a new pseudo-terminal: stdin, stdout and stderr are all the pty (the child is a
  // session leader with the pty as its controlling terminal). stdin_mode is ignored.
  bool tty = false;
  unsigned short tty_rows = 24;
  unsigned short tty_cols = 80;
  // The child's tree ends when the thread that spawned it dies (the supervisor's
  // PR_SET_PDEATHSIG).
  bool die_with_parent = true;
  // Run under a supervisor (see the containment note above). Off only for a caller that wants the
  // child's leftovers re-parented to itself, such as a test's census of what a program it
  // runs leaves behind; the child then ends with its group, and escapes are not covered.
  bool contain = true;
  // When non-zero, F_SETPIPE_SZ on the stdout/stderr pipes (fewer wakeups for bulk output).
  int pipe_buffer_bytes = 0;
};

// Why a spawn failed; `message` is complete and user-facing, e.g.
// "failed to start 'nope': No such file or directory (os error 2)" or
// "failed to start 'ls': cannot change directory to '/x': No such file or directory (os error 2)".
struct SpawnError {
  std::error_code code;
  std::string message;
};

struct ExitStatus {
  // The exit code, or 128 + N when killed by signal N (the shell's convention).
  int code = 0;
  // The signal number when killed by a signal.
  std::optional<int> signal;
};

class Child {
 public:
  static boost::system::result<std::shared_ptr<Child>, SpawnError> spawn(
      const boost::asio::any_io_executor& executor, const SpawnOptions& options);

  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  // A child still running (not yet reaped) when its Child is destroyed has its whole tree
  // killed and is reaped, so neither orphans nor zombies are left behind.
  ~Child();

  // The program's pid (not its supervisor's).
  pid_t pid() const { return pid_; }
  // Equal to pid(): the child leads its own process group (and session, with a pty).
  pid_t pgid() const { return pid_; }
  bool is_tty() const { return tty_; }

  // Streams; null when absent. With a pty, stdin and stdout are two descriptors of the one
  // master side and stderr is null. Closing stdin_stream() delivers EOF to a piped child; after
  // close_stdin() stdin_stream() is null (a pointer obtained earlier stays valid, closed).
  boost::asio::posix::stream_descriptor* stdin_stream();
  boost::asio::posix::stream_descriptor* stdout_stream();
  boost::asio::posix::stream_descriptor* stderr_stream();
  void close_stdin();

  // Completes once, when the child has exited and been reaped (pidfd readiness + waitid).
  // Later calls return the same status at once. Cancellable through the usual Asio cancellation
  // (throws operation_aborted; a later call waits again). If something else reaped the child
  // (SIGCHLD set to SIG_IGN in this process), the status is {code = -1, no signal}.
  boost::asio::awaitable<ExitStatus> wait();
  std::optional<ExitStatus> exit_status() const;

  // kill(-pgid, sig); SIGTERM also reaches the tree's processes that left the group, and
  // SIGKILL kills the whole tree. Nothing once the child was reaped.
  void signal_group(int sig) const;
  // SIGTERM to the tree now, SIGKILL to the tree after `grace` unless it is gone by then. The
  // SIGKILL timer keeps running when the Child is destroyed first. Idempotent: a second call
  // does nothing.
  void terminate(std::chrono::milliseconds grace);

 private:
  Child() = default;
  struct State;
  static boost::asio::awaitable<ExitStatus> wait_for_exit(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
  pid_t pid_ = -1;
  bool tty_ = false;
};

// For a program that writes to a child's stdin: a write to a child that just died raises
// SIGPIPE, whose default action would end the program; the write's EPIPE is then the error to
// report instead. Sets SIGPIPE to ignored once, unless the program chose a disposition of its
// own (children always start with every signal at its default).
void ignore_sigpipe_unless_handled();

// True for the errors that mean "this output stream has ended": EOF, and EIO from a pty master
// once the child side is closed.
bool is_end_of_stream(const boost::system::error_code& ec);

// Reads `stream` until it ends, calling `on_line` with each line (no newline; a last
// unterminated line too). For a child's stderr, which must be drained or the child blocks.
boost::asio::awaitable<void> read_lines(boost::asio::posix::stream_descriptor& stream,
                                        std::function<void(std::string_view)> on_line);

}  // namespace tether::process
