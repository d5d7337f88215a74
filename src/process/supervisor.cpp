// The supervisor's loop and the /proc walk that finds every descendant. Linux has no list of a
// process's children without CONFIG_PROC_CHILDREN, so each walk reads every /proc/<pid>/stat
// (parent and group) and follows parent links down from the supervisor. A walk happens only
// when something is to be signalled, never while the server simply runs.
#include "supervisor.hpp"

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace tether::process::supervisor {
namespace {

struct Entry {
  pid_t pid;
  pid_t parent;
  pid_t group;
};

// More processes than this on the machine: a walk sees the first ones and the next walk the
// rest (kill_tree walks until nothing is left).
constexpr std::size_t kTableCapacity = std::size_t{1} << 16;
// kill_tree gives up after this many walks (a process stuck in uninterruptible sleep cannot
// be reaped before it wakes; it still has its SIGKILL).
constexpr int kMaxKillRounds = 10'000;

Entry* table = nullptr;
pid_t* descendants = nullptr;

// A decimal pid, or -1; `text` is left at the first non-digit.
pid_t parse_pid(const char*& text) {
  if (*text < '0' || *text > '9') return -1;
  long value = 0;
  while (*text >= '0' && *text <= '9') {
    value = value * 10 + (*text - '0');
    if (value > 0x3fffffff) return -1;
    ++text;
  }
  return static_cast<pid_t>(value);
}

// Fills `entry` from /proc/<name>/stat; false for a process that is gone or a zombie.
bool read_stat(const char* name, Entry& entry) {
  char path[64] = "/proc/";
  std::size_t length = 6;
  for (const char* c = name; *c != '\0' && length < sizeof path - 6; ++c) path[length++] = *c;
  for (const char* c = "/stat"; *c != '\0'; ++c) path[length++] = *c;
  path[length] = '\0';
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buffer[1024];
  const ssize_t n = ::read(fd, buffer, sizeof buffer - 1);
  ::close(fd);
  if (n <= 0) return false;
  buffer[n] = '\0';
  // "pid (comm) state parent group ...": comm may hold anything, so parse after the last ')'.
  const char* close_paren = nullptr;
  for (ssize_t i = n - 1; i >= 0; --i) {
    if (buffer[i] == ')') {
      close_paren = buffer + i;
      break;
    }
  }
  if (close_paren == nullptr || close_paren + 4 >= buffer + n) return false;
  const char state = close_paren[2];
  if (state == 'Z' || state == 'X') return false;
  const char* cursor = close_paren + 4;
  entry.parent = parse_pid(cursor);
  if (entry.parent < 0 || *cursor++ != ' ') return false;
  entry.group = parse_pid(cursor);
  return entry.group >= 0;
}

std::size_t read_table() {
  const int dir = ::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return 0;
  std::size_t count = 0;
  alignas(dirent64) char buffer[8192];
  for (;;) {
    const ssize_t n = ::getdents64(dir, buffer, sizeof buffer);
    if (n <= 0) break;
    for (ssize_t offset = 0; offset < n;) {
      const auto* entry = reinterpret_cast<const dirent64*>(buffer + offset);
      offset += entry->d_reclen;
      const char* name = entry->d_name;
      const pid_t pid = parse_pid(name);
      if (pid <= 0 || *name != '\0' || count == kTableCapacity) continue;
      table[count].pid = pid;
      if (read_stat(entry->d_name, table[count])) ++count;
    }
  }
  ::close(dir);
  return count;
}

bool is_descendant(pid_t parent, pid_t self, std::size_t found) {
  if (parent == self) return true;
  for (std::size_t i = 0; i < found; ++i) {
    if (descendants[i] == parent) return true;
  }
  return false;
}

// Sends `sig` to every live descendant of this process, except members of `spared_group`
// (0: none). Returns how many were signalled.
std::size_t signal_descendants(int sig, pid_t spared_group) {
  if (table == nullptr) {
    void* memory = ::mmap(nullptr, kTableCapacity * (sizeof(Entry) + sizeof(pid_t)),
                          PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) return 0;
    table = static_cast<Entry*>(memory);
    descendants = reinterpret_cast<pid_t*>(table + kTableCapacity);
  }
  const std::size_t count = read_table();
  const pid_t self = ::getpid();
  // Each pass adds the children of what is already known, so a tree of depth d takes d passes.
  std::size_t found = 0;
  for (bool grew = true; grew;) {
    grew = false;
    for (std::size_t i = 0; i < count; ++i) {
      if (table[i].pid == self || is_descendant(table[i].pid, self, found)) continue;
      if (is_descendant(table[i].parent, self, found)) {
        descendants[found++] = table[i].pid;
        grew = true;
      }
    }
  }
  std::size_t signalled = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (!is_descendant(table[i].pid, self, found) || table[i].pid == self) continue;
    if (spared_group != 0 && table[i].group == spared_group) continue;
    if (::kill(table[i].pid, sig) == 0) ++signalled;
  }
  return signalled;
}

// Reaps every child that has exited, keeping the server's status. False once no child is left.
bool reap(pid_t server, int& server_status, bool& server_reaped) {
  for (;;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      if (pid == server) {
        server_status = status;
        server_reaped = true;
      }
      continue;
    }
    if (pid == 0) return true;
    if (errno == EINTR) continue;
    return false;
  }
}

// Every descendant ends: an orphan's children come to this subreaper, so "no child left"
// means "no descendant left". The cgroup's kill comes first: atomic, no fork outruns it.
void kill_tree(pid_t server, const cgroup::Paths* cgroup, int& server_status, bool& server_reaped) {
  if (cgroup != nullptr) cgroup::kill_all(cgroup->kill.c_str());
  const timespec pause{0, 1'000'000};
  for (int round = 0; round < kMaxKillRounds; ++round) {
    signal_descendants(SIGKILL, 0);
    if (!reap(server, server_status, server_reaped)) return;
    ::nanosleep(&pause, nullptr);
  }
}

// Ends this process the way the server ended, so tether sees the server's own status.
[[noreturn]] void exit_like(int status) {
  if (WIFEXITED(status)) ::_exit(WEXITSTATUS(status));
  const int sig = WTERMSIG(status);
  // The server's crash is the server's; its supervisor leaves no core dump of its own.
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  ::sigaction(sig, &default_action, nullptr);
  sigset_t just_this;
  ::sigemptyset(&just_this);
  ::sigaddset(&just_this, sig);
  ::sigprocmask(SIG_UNBLOCK, &just_this, nullptr);
  ::kill(::getpid(), sig);
  ::_exit(128 + sig);
}

}  // namespace

void supervise(pid_t server, const cgroup::Paths* cgroup) {
  sigset_t all;
  ::sigfillset(&all);
  int server_status = 0;
  bool server_reaped = false;
  for (;;) {
    siginfo_t info{};
    const int sig = ::sigwaitinfo(&all, &info);
    if (sig == SIGCHLD) {
      reap(server, server_status, server_reaped);
      if (server_reaped) break;
    } else if (sig == kKillTree) {
      break;
    } else if (sig == SIGTERM) {
      // tether signals the server's group itself; these are the ones that left it.
      signal_descendants(SIGTERM, server);
    }
  }
  kill_tree(server, cgroup, server_status, server_reaped);
  if (cgroup != nullptr) cgroup::remove(cgroup->dir.c_str());
  exit_like(server_reaped ? server_status : 127 << 8);
}

}  // namespace tether::process::supervisor
