// tether::process::Child — fork/exec, stdio wiring, pidfd reaping and group signalling.
//
// Owns: everything between "here are argv/env/cwd" and "here are the child's streams and, later,
// its exit status": PATH resolution, the argv/envp arrays, pipes or the pty pair, the fork and
// the child-side setup before execve, the error pipe that turns a failed setup or execve into a
// SpawnError, the pidfd the exit is awaited on, and the SIGTERM -> SIGKILL timer.
// Does not own: the bytes on the streams, SIGPIPE policy (the embedding program ignores it), or
// any SIGCHLD handling (there is none: only this child's pid is ever reaped).
// Data flow: spawn() prepares every allocation up front and forks the supervisor
// (supervisor.hpp), which forks the program. Both run only async-signal-safe calls. The program
// either execs or reports {stage, errno} to the supervisor, which reports the outcome (the
// program's pid, or the failure) through the error pipe. The parent wraps its descriptor ends in
// Asio streams; wait() sleeps on the supervisor's pidfd and reaps it with waitid: the supervisor
// exits with the program's status once the program and everything it started are gone.
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <signal.h>
#include <string_view>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "cgroup.hpp"
#include "supervisor.hpp"
#include <tether/process/child.hpp>

namespace tether::process {

namespace asio = boost::asio;
using Descriptor = asio::posix::stream_descriptor;

// Shared with suspended wait() coroutines, so one resuming after its Child is gone finds valid
// (closed) state rather than a dangling Child.
struct Child::State {
  pid_t pid = -1;      // what is waited for: the supervisor, or the program itself
  pid_t program = -1;  // leader of its own group
  bool supervised = true;
  std::string cgroup;  // its own cgroup v2, when contained in one

  asio::any_io_executor executor;
  std::optional<Descriptor> stdin_stream;
  std::optional<Descriptor> stdout_stream;
  std::optional<Descriptor> stderr_stream;
  // Readable once the child has exited; stays open after reaping (until ~Child) so that waiters
  // still queued on it complete normally.
  std::optional<Descriptor> pidfd;
  std::optional<ExitStatus> exit_status;
  bool reaped = false;  // by ~Child, without a status
  bool terminating = false;
};

namespace {

// Which step of the child-side setup failed; sent through the error pipe with errno.
enum class Stage : int { exec, chdir, session, terminal, stdio };

// What goes through the error pipe: a failure {stage, errno} from the program before its
// execve, or from the supervisor the program's pid once it has exec'd. A program started without
// a supervisor reports success by the pipe closing (EOF) at execve.
struct Report {
  bool started;
  pid_t program;  // when started
  Stage stage;    // when not
  int error;
};

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  ~Fd() { reset(); }

  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  Fd read;
  Fd write;
};

SpawnError make_error(const std::string& argv0, int error, std::string_view detail = {}) {
  std::string message = "failed to start '" + argv0 + "': ";
  message += detail;
  message += std::strerror(error);
  message += " (os error " + std::to_string(error) + ")";
  return SpawnError{std::error_code(error, std::system_category()), std::move(message)};
}

std::string stage_detail(Stage stage, const SpawnOptions& options, const std::string& tty_path) {
  switch (stage) {
    case Stage::exec:
      return {};
    case Stage::chdir:
      return "cannot change directory to '" + options.cwd + "': ";
    case Stage::session:
      return "cannot create a process group or session: ";
    case Stage::terminal:
      return "cannot attach terminal '" + tty_path + "': ";
    case Stage::stdio:
      return "cannot set up standard input/output: ";
  }
  return {};
}

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// The program execve receives: argv[0] as is when it names a path, else the first executable
// regular file along the child's PATH (its env entry wins over ours).
std::optional<std::string> resolve_program(const SpawnOptions& options) {
  const std::string& name = options.argv.front();
  if (name.find('/') != std::string::npos) return name;

  std::optional<std::string_view> path;
  for (const std::string& entry : options.env) {
    if (entry.starts_with("PATH=")) {
      path = std::string_view(entry).substr(5);
      break;
    }
  }
  if (!path) {
    const char* own = std::getenv("PATH");
    path = own != nullptr ? std::string_view(own) : std::string_view("/usr/bin:/bin");
  }

  std::string_view rest = *path;
  while (true) {
    const std::size_t colon = rest.find(':');
    const std::string_view dir = rest.substr(0, colon);
    // POSIX: an empty PATH entry means the current directory.
    std::string candidate = dir.empty() ? std::string(".") : std::string(dir);
    candidate += '/';
    candidate += name;
    if (is_executable_file(candidate)) return candidate;
    if (colon == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(colon + 1);
  }
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> result;
  result.reserve(strings.size() + 1);
  for (std::string& s : strings) result.push_back(s.data());
  result.push_back(nullptr);
  return result;
}

std::optional<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return std::nullopt;
  return Pipe{Fd(fds[0]), Fd(fds[1])};
}

// ---- Child side of the fork: async-signal-safe calls only, no allocation. ----
// tether forks the supervisor; the supervisor forks the program, waits for its execve (or its
// report of which step failed, through a pipe of their own) and tells tether the outcome.

void write_all(int fd, const void* data, std::size_t size) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, bytes, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    bytes += n;
    size -= static_cast<std::size_t>(n);
  }
}

bool read_all(int fd, void* data, std::size_t size) {
  char* bytes = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = ::read(fd, bytes, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

[[noreturn]] void fail_in_child(int error_fd, Stage stage) {
  const Report report{false, -1, stage, errno};
  write_all(error_fd, &report, sizeof report);
  ::_exit(127);
}

// Closes every descriptor from `from` up, except `keep_a` and `keep_b`. The embedding program's
// descriptors must be gone from a forked process before the embedding program goes on: it may
// close one of them next, and epoll keeps reporting a file until every descriptor of it is
// closed, with a pointer the program has freed.
void close_except(unsigned from, int keep_a, int keep_b) {
  const unsigned keep[2] = {static_cast<unsigned>(std::min(keep_a, keep_b)),
                            static_cast<unsigned>(std::max(keep_a, keep_b))};
  for (unsigned k : keep) {
    if (k < from) continue;
    if (k > from) ::close_range(from, k - 1, 0);
    from = k + 1;
  }
  ::close_range(from, ~0U, 0);
}

// Moves every source above 2 first, so installing one target never clobbers a later source.
bool install_stdio(const int (&sources)[3]) {
  int high[3];
  for (int i = 0; i < 3; ++i) {
    high[i] = ::fcntl(sources[i], F_DUPFD_CLOEXEC, 3);
    if (high[i] < 0) return false;
  }
  for (int i = 0; i < 3; ++i) {
    // dup2 clears FD_CLOEXEC on the target; the high copies close at exec.
    if (::dup2(high[i], i) < 0) return false;
  }
  return true;
}

struct ChildPlan {
  const char* program;
  char* const* argv;
  char* const* envp;
  const char* cwd;       // null: keep
  const char* tty_path;  // null: pipes
  int stdio[3];          // for pipes
  int error_fd;
  pid_t parent;
  bool die_with_parent;
  bool contain;
  const cgroup::Paths* cgroup;  // null: no cgroup v2 here
};

constexpr int kMaxSignal = 64;  // Linux's _NSIG - 1

// Handlers would run parent code in the child; SIG_IGN would survive exec. The raw syscall,
// because glibc's sigaction() refuses the signals it reserves (32 and 33), and a parent that
// inherited them ignored would pass that on.
void reset_signal_handlers() {
  struct KernelSigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    unsigned long mask;
  } dfl{SIG_DFL, 0, nullptr, 0};
  for (int sig = 1; sig <= kMaxSignal; ++sig)
    ::syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof dfl.mask);
}

// The program: its own process group (or session, with a pty), then execve. Failures go to
// `report_fd`. It dies with `parent` (its supervisor, or tether when not contained) when
// `die_with_parent`.
[[noreturn]] void run_program(const ChildPlan& plan, int report_fd, pid_t parent,
                              bool die_with_parent, bool in_cgroup) {
  // Best effort: where this fails, the supervisor's /proc walk still finds the tree.
  if (in_cgroup) cgroup::join(plan.cgroup->procs.c_str());
  if (plan.tty_path != nullptr) {
    if (::setsid() < 0) fail_in_child(report_fd, Stage::session);
  } else if (::setpgid(0, 0) != 0) {
    fail_in_child(report_fd, Stage::session);
  }
  if (die_with_parent) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail_in_child(report_fd, Stage::session);
    // The parent may have died before prctl took effect; nobody would kill us then.
    if (::getppid() != parent) ::_exit(127);
  }

  if (plan.cwd != nullptr && ::chdir(plan.cwd) != 0) fail_in_child(report_fd, Stage::chdir);

  if (plan.tty_path != nullptr) {
    const int slave = ::open(plan.tty_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0 || ::ioctl(slave, TIOCSCTTY, 0) != 0) {
      fail_in_child(report_fd, Stage::terminal);
    }
    const int sources[3] = {slave, slave, slave};
    if (!install_stdio(sources)) fail_in_child(report_fd, Stage::stdio);
  } else if (!install_stdio(plan.stdio)) {
    fail_in_child(report_fd, Stage::stdio);
  }

  // Nothing of the embedding program's, CLOEXEC or not, stays open past this point (see
  // close_except); the report pipe closes at execve.
  close_except(3, report_fd, report_fd);

  sigset_t empty;
  ::sigemptyset(&empty);
  ::sigprocmask(SIG_SETMASK, &empty, nullptr);
  ::execve(plan.program, plan.argv, plan.envp);
  fail_in_child(report_fd, Stage::exec);
}

[[noreturn]] void run_supervisor(const ChildPlan& plan) {
  reset_signal_handlers();
  // Blocked from the start: the supervisor takes signals with sigwaitinfo, and none may be lost
  // or act on it before it gets there. The program unblocks them just before execve.
  sigset_t all;
  ::sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);

  if (::setpgid(0, 0) != 0) fail_in_child(plan.error_fd, Stage::session);
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) fail_in_child(plan.error_fd, Stage::session);
  if (plan.die_with_parent) {
    if (::prctl(PR_SET_PDEATHSIG, supervisor::kKillTree) != 0)
      fail_in_child(plan.error_fd, Stage::session);
    // The parent may have died before prctl took effect; nobody would signal us then.
    if (::getppid() != plan.parent) ::_exit(127);
  }
  ::prctl(PR_SET_NAME, "tether-guard");
  const bool in_cgroup = plan.cgroup != nullptr && cgroup::create(plan.cgroup->dir.c_str());

  int program_pipe[2];
  if (::pipe2(program_pipe, O_CLOEXEC) != 0) fail_in_child(plan.error_fd, Stage::session);
  const pid_t self = ::getpid();
  const pid_t program = ::fork();
  if (program < 0) fail_in_child(plan.error_fd, Stage::session);
  if (program == 0) {
    ::close(program_pipe[0]);
    // A supervisor killed outright takes the program with it.
    run_program(plan, program_pipe[1], self, true, in_cgroup);
  }
  close_except(0, plan.error_fd, program_pipe[0]);
  // EOF: execve succeeded (the CLOEXEC end closed). Otherwise the program's failure.
  Report report{};
  if (read_all(program_pipe[0], &report, sizeof report)) {
    while (::waitpid(program, nullptr, 0) < 0 && errno == EINTR) {
    }
    if (in_cgroup) cgroup::remove(plan.cgroup->dir.c_str());
    write_all(plan.error_fd, &report, sizeof report);
    ::_exit(127);
  }
  report = Report{true, program, Stage::exec, 0};
  write_all(plan.error_fd, &report, sizeof report);

  // Nothing of tether's stays open or pinned here: its descriptors and working directory.
  ::close(plan.error_fd);
  ::close(program_pipe[0]);
  [[maybe_unused]] const int ignored = ::chdir("/");
  supervisor::supervise(program, in_cgroup ? plan.cgroup : nullptr);
}

// ---- Parent side. ----

// SIGKILL for everything the child started: the supervisor's tree kill, or the program's group.
void kill_tree(bool supervised, pid_t waited, pid_t program) {
  if (supervised) {
    ::kill(waited, supervisor::kKillTree);
  } else {
    ::kill(-program, SIGKILL);
  }
}

// Once the supervisor is reaped: it removed the cgroup itself unless it was killed outright.
void forget_cgroup(std::string& dir) {
  if (dir.empty()) return;
  cgroup::remove(dir.c_str());
  dir.clear();
}

void reap_blocking(pid_t pid) {
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

// The report from the error pipe; nullopt at EOF.
std::optional<Report> read_report(int fd) {
  Report report{};
  if (!read_all(fd, &report, sizeof report)) return std::nullopt;
  return report;
}

boost::system::result<Descriptor, int> wrap(const asio::any_io_executor& executor, Fd fd) {
  Descriptor descriptor(executor);
  boost::system::error_code ec;
  descriptor.assign(fd.get(), ec);
  if (ec) return ec.value();
  fd.release();
  descriptor.non_blocking(true, ec);
  if (ec) return ec.value();
  return descriptor;
}

ExitStatus to_exit_status(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) return ExitStatus{info.si_status, std::nullopt};
  return ExitStatus{128 + info.si_status, info.si_status};
}

bool has_exited(pid_t pid) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == pid;
}

}  // namespace

boost::system::result<std::shared_ptr<Child>, SpawnError> Child::spawn(
    const asio::any_io_executor& executor, const SpawnOptions& options) {
  if (options.argv.empty() || options.argv.front().empty()) {
    return make_error(options.argv.empty() ? std::string() : options.argv.front(), EINVAL);
  }
  const std::string& name = options.argv.front();
  // execve would cut each string at its first NUL: refuse rather than run something else.
  const auto has_nul = [](const std::string& s) { return s.find('\0') != std::string::npos; };
  for (std::size_t i = 0; i < options.argv.size(); ++i) {
    if (has_nul(options.argv[i]))
      return make_error(name, EINVAL, "argv[" + std::to_string(i) + "] contains a NUL byte: ");
  }
  if ((options.arg0 && has_nul(*options.arg0)) || has_nul(options.cwd) ||
      std::any_of(options.env.begin(), options.env.end(), has_nul)) {
    return make_error(name, EINVAL, "arg0, cwd or an environment entry contains a NUL byte: ");
  }

  const std::optional<std::string> program = resolve_program(options);
  if (!program) return make_error(name, ENOENT);

  std::vector<std::string> argv_strings = options.argv;
  if (options.arg0) argv_strings.front() = *options.arg0;
  std::vector<std::string> env_strings = options.env;
  const std::vector<char*> argv = pointers(argv_strings);
  const std::vector<char*> envp = pointers(env_strings);

  std::optional<Pipe> error_pipe = make_pipe();
  if (!error_pipe) return make_error(name, errno);

  // Parent ends (stdin write, stdout read, stderr read) and the child ends they pair with.
  Fd parent_in, parent_out, parent_err;
  Fd child_in, child_out, child_err;
  Fd master;
  std::string tty_path;

  if (options.tty) {
    master.reset(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (master.get() < 0 || ::grantpt(master.get()) != 0 || ::unlockpt(master.get()) != 0) {
      return make_error(name, errno, "cannot open a pseudo-terminal: ");
    }
    char path[PATH_MAX];
    if (const int rc = ::ptsname_r(master.get(), path, sizeof path); rc != 0) {
      return make_error(name, rc, "cannot open a pseudo-terminal: ");
    }
    tty_path = path;
    struct winsize size {};
    size.ws_row = options.tty_rows;
    size.ws_col = options.tty_cols;
    if (::ioctl(master.get(), TIOCSWINSZ, &size) != 0) {
      return make_error(name, errno, "cannot set the terminal size: ");
    }
  } else {
    if (options.stdin_mode == StdinMode::pipe) {
      std::optional<Pipe> in = make_pipe();
      if (!in) return make_error(name, errno);
      child_in = std::move(in->read);
      parent_in = std::move(in->write);
    } else {
      child_in.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
      if (child_in.get() < 0) return make_error(name, errno, "cannot open /dev/null: ");
    }
    std::optional<Pipe> out = make_pipe();
    if (!out) return make_error(name, errno);
    std::optional<Pipe> err = make_pipe();
    if (!err) return make_error(name, errno);
    if (options.pipe_buffer_bytes > 0) {
      // Best effort: the limit is /proc/sys/fs/pipe-max-size for unprivileged processes.
      ::fcntl(out->read.get(), F_SETPIPE_SZ, options.pipe_buffer_bytes);
      ::fcntl(err->read.get(), F_SETPIPE_SZ, options.pipe_buffer_bytes);
    }
    child_out = std::move(out->write);
    parent_out = std::move(out->read);
    child_err = std::move(err->write);
    parent_err = std::move(err->read);
  }

  const std::optional<cgroup::Paths> own_cgroup = options.contain ? cgroup::next() : std::nullopt;
  const ChildPlan plan{
      .program = program->c_str(),
      .argv = argv.data(),
      .envp = envp.data(),
      .cwd = options.cwd.empty() ? nullptr : options.cwd.c_str(),
      .tty_path = options.tty ? tty_path.c_str() : nullptr,
      .stdio = {child_in.get(), child_out.get(), child_err.get()},
      .error_fd = error_pipe->write.get(),
      .parent = ::getpid(),
      .die_with_parent = options.die_with_parent,
      .contain = options.contain,
      .cgroup = own_cgroup ? &*own_cgroup : nullptr,
  };

  const pid_t pid = ::fork();
  if (pid < 0) return make_error(name, errno);
  if (pid == 0) {
    if (plan.contain) run_supervisor(plan);
    reset_signal_handlers();
    run_program(plan, plan.error_fd, plan.parent, plan.die_with_parent, false);
  }

  // Either side may win the race to create the group; both calls make it exist before use.
  if (!options.tty) ::setpgid(pid, pid);
  error_pipe->write.reset();
  child_in.reset();
  child_out.reset();
  child_err.reset();

  const std::optional<Report> report = read_report(error_pipe->read.get());
  if (report && !report->started) {
    reap_blocking(pid);
    if (own_cgroup) cgroup::remove(own_cgroup->dir.c_str());
    return make_error(name, report->error, stage_detail(report->stage, options, tty_path));
  }
  if (!report && plan.contain) {
    reap_blocking(pid);
    if (own_cgroup) cgroup::remove(own_cgroup->dir.c_str());
    return make_error(name, ECHILD, "its supervisor ended before it started: ");
  }

  std::shared_ptr<Child> child(new Child());
  child->pid_ = report ? report->program : pid;
  child->tty_ = options.tty;
  child->state_ = std::make_shared<State>();
  State& state = *child->state_;
  state.pid = pid;
  state.program = child->pid_;
  state.supervised = plan.contain;
  if (own_cgroup) state.cgroup = own_cgroup->dir;
  state.executor = executor;

  // From here on a failure is reported after the Child destructor kills and reaps the process.
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (pidfd.get() < 0) return make_error(name, errno, "cannot open a pidfd: ");
  auto pidfd_stream = wrap(executor, std::move(pidfd));
  if (!pidfd_stream) return make_error(name, pidfd_stream.error(), "cannot watch the process: ");
  state.pidfd.emplace(std::move(*pidfd_stream));

  if (options.tty) {
    // Two descriptors of the one master, so closing stdin does not end the output stream.
    Fd input(::fcntl(master.get(), F_DUPFD_CLOEXEC, 0));
    if (input.get() < 0) return make_error(name, errno, "cannot duplicate the terminal: ");
    parent_in = std::move(input);
    parent_out = std::move(master);
  }
  std::pair<Fd*, std::optional<Descriptor>*> streams[] = {{&parent_in, &state.stdin_stream},
                                                          {&parent_out, &state.stdout_stream},
                                                          {&parent_err, &state.stderr_stream}};
  for (auto [fd, slot] : streams) {
    if (fd->get() < 0) continue;
    auto stream = wrap(executor, std::move(*fd));
    if (!stream) return make_error(name, stream.error(), "cannot watch the standard streams: ");
    slot->emplace(std::move(*stream));
  }
  return child;
}

Child::~Child() {
  if (!state_) return;
  // Closing aborts any wait() still queued; it resumes on the shared State and throws.
  for (auto* stream :
       {&state_->stdin_stream, &state_->stdout_stream, &state_->stderr_stream, &state_->pidfd}) {
    boost::system::error_code ignored;
    if (*stream) (*stream)->close(ignored);
  }
  if (!state_->exit_status) {
    kill_tree(state_->supervised, state_->pid, state_->program);
    reap_blocking(state_->pid);
    state_->reaped = true;
    forget_cgroup(state_->cgroup);
  }
}

asio::posix::stream_descriptor* Child::stdin_stream() {
  auto& s = state_->stdin_stream;
  return s && s->is_open() ? &*s : nullptr;
}

asio::posix::stream_descriptor* Child::stdout_stream() {
  auto& s = state_->stdout_stream;
  return s ? &*s : nullptr;
}

asio::posix::stream_descriptor* Child::stderr_stream() {
  auto& s = state_->stderr_stream;
  return s ? &*s : nullptr;
}

void Child::close_stdin() {
  // The object stays so that pointers handed out earlier remain valid (and see a closed stream).
  if (state_->stdin_stream) {
    boost::system::error_code ignored;
    state_->stdin_stream->close(ignored);
  }
}

namespace {

// Reaps `pid` if it has exited; true once `status` is known.
bool try_reap(pid_t pid, std::optional<ExitStatus>& status) {
  while (!status) {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG) != 0) {
      if (errno == EINTR) continue;
      // Only possible when something else reaped our child (e.g. SIGCHLD set to SIG_IGN).
      status = ExitStatus{-1, std::nullopt};
    } else if (info.si_pid == pid) {
      status = to_exit_status(info);
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

asio::awaitable<ExitStatus> Child::wait_for_exit(std::shared_ptr<State> state) {
  while (!state->exit_status) {
    // The Child was destroyed (and reaped its process itself).
    if (!state->pidfd->is_open()) throw boost::system::system_error(asio::error::operation_aborted);
    if (try_reap(state->pid, state->exit_status)) break;

    // Asio's epoll registration is edge-triggered and async_wait never checks readiness itself:
    // if another thread's reactor consumed the exit edge before this wait was queued, nothing
    // would ever complete it. So check again once it is queued and, if the child has already
    // exited, complete every queued wait (cancel) to make them all re-check.
    auto token = asio::as_tuple(asio::use_awaitable);
    auto [ec] = co_await asio::async_initiate<decltype(token), void(boost::system::error_code)>(
        [&state](auto handler) {
          state->pidfd->async_wait(Descriptor::wait_read, std::move(handler));
          if (has_exited(state->pid)) state->pidfd->cancel();
        },
        token);
    if (ec == asio::error::operation_aborted) {
      // Ours to retry unless the caller cancelled.
      if ((co_await asio::this_coro::cancellation_state).cancelled() !=
          asio::cancellation_type::none) {
        throw boost::system::system_error(ec);
      }
    } else if (ec) {
      throw boost::system::system_error(ec);
    }
  }
  forget_cgroup(state->cgroup);
  co_return *state->exit_status;
}

asio::awaitable<ExitStatus> Child::wait() {
  return wait_for_exit(state_);
}

std::optional<ExitStatus> Child::exit_status() const {
  return state_->exit_status;
}

void Child::signal_group(int sig) const {
  if (state_->exit_status || state_->reaped) return;
  if (sig == SIGKILL) {
    kill_tree(state_->supervised, state_->pid, state_->program);
    return;
  }
  ::kill(-state_->program, sig);
  // Members that left the group (setsid, setpgid) are the supervisor's to reach.
  if (sig == SIGTERM && state_->supervised) ::kill(state_->pid, SIGTERM);
}

void Child::terminate(std::chrono::milliseconds grace) {
  if (state_->terminating) return;
  state_->terminating = true;
  signal_group(SIGTERM);

  // The timer owns itself through its handler, so the SIGKILL still happens if the Child goes
  // first. A reaped supervisor means the tree is gone; without one, a group whose leader was
  // already reaped can still hold grandchildren.
  auto timer = std::make_shared<asio::steady_timer>(state_->executor, grace);
  timer->async_wait([timer, supervised = state_->supervised, waited = state_->pid,
                     pgid = pid_](const boost::system::error_code& ec) {
    if (ec) return;
    if (supervised) {
      // Only while the supervisor is still our running child: once reaped, its pid may be
      // another process's.
      siginfo_t info{};
      if (::waitid(P_PID, static_cast<id_t>(waited), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == 0) {
        ::kill(waited, supervisor::kKillTree);
      }
      return;
    }
    if (::kill(-pgid, 0) != 0 && errno == ESRCH) return;
    ::kill(-pgid, SIGKILL);
  });
}

void ignore_sigpipe_unless_handled() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction current {};
    if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL)
      ::signal(SIGPIPE, SIG_IGN);
  });
}

bool is_end_of_stream(const boost::system::error_code& ec) {
  return ec == asio::error::eof || ec == boost::system::errc::io_error;
}

asio::awaitable<void> read_lines(asio::posix::stream_descriptor& stream,
                                 std::function<void(std::string_view)> on_line) {
  std::string pending;
  std::array<char, 4096> buffer{};
  for (;;) {
    boost::system::error_code ec;
    const std::size_t n = co_await stream.async_read_some(
        asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    pending.append(buffer.data(), n);
    std::size_t start = 0;
    for (auto newline = pending.find('\n'); newline != std::string::npos;
         newline = pending.find('\n', start)) {
      on_line(std::string_view(pending).substr(start, newline - start));
      start = newline + 1;
    }
    pending.erase(0, start);
  }
  if (!pending.empty()) on_line(pending);
}

}  // namespace tether::process
