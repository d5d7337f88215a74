// tether-bench-relay: the least any stdio gateway process can cost, for tether-gateway-bench.
//
// Owns: running `program args...` as its child and copying bytes both ways, stdin -> the child's
// stdin and the child's stdout -> stdout, in one thread with poll(), as they come (no framing, no
// parsing, no allocation per message). What the gateway bench compares it with is the same path
// through `tether mcp serve`: the difference between this relay and a direct connection is the
// price of one more process in the path on the machine (two more wake-ups and two more pipe
// transfers per call); the difference between the gateway and this relay is the gateway's own.
// Does not own: stderr (the child inherits it), signals beyond the defaults.
// Ends when stdin reaches EOF (it closes the child's stdin, relays what is left, reaps the child)
// or when the child's stdout ends.
// Usage: tether-bench-relay PROGRAM [ARGS...]
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

// Writes all of `data`; false when the reader is gone.
bool write_all(int fd, const char* data, ssize_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, static_cast<size_t>(size));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= n;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: tether-bench-relay PROGRAM [ARGS...]\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  int to_child[2];
  int from_child[2];
  if (::pipe(to_child) != 0 || ::pipe(from_child) != 0) return 1;
  const pid_t child = ::fork();
  if (child < 0) return 1;
  if (child == 0) {
    ::dup2(to_child[0], STDIN_FILENO);
    ::dup2(from_child[1], STDOUT_FILENO);
    ::close(to_child[0]);
    ::close(to_child[1]);
    ::close(from_child[0]);
    ::close(from_child[1]);
    ::signal(SIGPIPE, SIG_DFL);
    ::execvp(argv[1], argv + 1);
    std::perror("tether-bench-relay: exec");
    ::_exit(127);
  }
  ::close(to_child[0]);
  ::close(from_child[1]);
  int child_in = to_child[1];
  const int child_out = from_child[0];
  std::array<char, 65536> buffer{};
  bool stdin_open = true;
  for (;;) {
    std::array<pollfd, 2> fds{pollfd{child_out, POLLIN, 0}, pollfd{STDIN_FILENO, POLLIN, 0}};
    const nfds_t count = stdin_open ? 2 : 1;
    if (::poll(fds.data(), count, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents) {
      const ssize_t n = ::read(child_out, buffer.data(), buffer.size());
      if (n <= 0 || !write_all(STDOUT_FILENO, buffer.data(), n)) break;
    }
    if (stdin_open && fds[1].revents) {
      const ssize_t n = ::read(STDIN_FILENO, buffer.data(), buffer.size());
      if (n <= 0 || !write_all(child_in, buffer.data(), n)) {
        stdin_open = false;
        ::close(child_in);
        child_in = -1;
      }
    }
  }
  if (child_in >= 0) ::close(child_in);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
