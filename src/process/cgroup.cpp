// cgroup v2 per child (see cgroup.hpp): the probe, the names, and the supervisor's steps.
#include "cgroup.hpp"

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tether/process/containment.hpp>

namespace tether::process::cgroup {
namespace {

// The cgroup2 mount point and the root of the hierarchy it shows, from /proc/self/mountinfo
// ("id parent dev root mountpoint options ... - fstype source super").
std::optional<std::pair<std::string, std::string>> cgroup2_mount() {
  std::ifstream mounts("/proc/self/mountinfo");
  for (std::string line; std::getline(mounts, line);) {
    const auto dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream fields(line.substr(0, dash));
    std::string id, parent, device, root, mount_point;
    if (fields >> id >> parent >> device >> root >> mount_point)
      return std::pair{mount_point, root};
  }
  return std::nullopt;
}

// This process's cgroup v2 path ("0::<path>" in /proc/self/cgroup).
std::optional<std::string> own_cgroup() {
  std::ifstream cgroups("/proc/self/cgroup");
  for (std::string line; std::getline(cgroups, line);)
    if (line.starts_with("0::")) return line.substr(3);
  return std::nullopt;
}

bool write_text(const char* path, const char* text) {
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const auto length = static_cast<ssize_t>(std::strlen(text));
  const bool written = ::write(fd, text, static_cast<std::size_t>(length)) == length;
  ::close(fd);
  return written;
}

// Whether a process can move itself into the cgroup of `procs` (delegation or the "no internal
// processes" rule can forbid it where mkdir works): a forked child tries and exits.
bool can_join(const std::string& procs) {
  const pid_t child = ::fork();
  if (child < 0) return false;
  if (child == 0) ::_exit(write_text(procs.c_str(), "0") ? 0 : 1);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

Parent probe() {
  const auto mount = cgroup2_mount();
  if (!mount) return {std::nullopt, "no cgroup2 file system is mounted"};
  auto path = own_cgroup();
  if (!path) return {std::nullopt, "this process has no cgroup v2 path"};
  const auto& [mount_point, root] = *mount;
  if (root != "/") {
    if (!path->starts_with(root)) return {std::nullopt, "this process's cgroup is not mounted"};
    path->erase(0, root.size());
  }
  std::string dir = mount_point + (*path == "/" ? "" : *path);
  const std::string probe = dir + "/tether-probe-" + std::to_string(::getpid());
  if (::mkdir(probe.c_str(), 0755) != 0)
    return {std::nullopt, dir + " is not writable: " + std::strerror(errno)};
  const bool has_kill = ::access((probe + "/cgroup.kill").c_str(), W_OK) == 0;
  const bool joins = has_kill && can_join(probe + "/cgroup.procs");
  const bool removed = ::rmdir(probe.c_str()) == 0;
  if (!has_kill) return {std::nullopt, "the kernel has no cgroup.kill (Linux 5.14 or later)"};
  if (!joins) return {std::nullopt, dir + ": a process cannot move into a new cgroup"};
  if (!removed) return {std::nullopt, dir + ": a new cgroup cannot be removed"};
  return {std::move(dir), ""};
}

// The first subdirectory of `path` (its name appended to `path` at `length`); false if none.
bool first_subdirectory(char* path, std::size_t length) {
  const int dir = ::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return false;
  alignas(dirent64) char buffer[4096];
  bool found = false;
  for (ssize_t n; !found && (n = ::getdents64(dir, buffer, sizeof buffer)) > 0;) {
    for (ssize_t offset = 0; offset < n && !found;) {
      const auto* entry = reinterpret_cast<const dirent64*>(buffer + offset);
      offset += entry->d_reclen;
      const char* name = entry->d_name;
      if (entry->d_type != DT_DIR || std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0)
        continue;
      const std::size_t name_length = std::strlen(name);
      if (length + 1 + name_length >= PATH_MAX) continue;
      path[length] = '/';
      std::memcpy(path + length + 1, name, name_length + 1);
      found = true;
    }
  }
  ::close(dir);
  return found;
}

// cgroupfs directories hold only interface files, which rmdir takes along; child cgroups must
// go first.
bool remove_tree(char* path, std::size_t length, int depth) {
  while (depth < 64 && first_subdirectory(path, length)) {
    const bool removed = remove_tree(path, std::strlen(path), depth + 1);
    path[length] = '\0';
    if (!removed) return false;
  }
  return ::rmdir(path) == 0 || errno == ENOENT;
}

}  // namespace

const Parent& parent() {
  static const Parent instance = probe();
  return instance;
}

std::optional<Paths> next() {
  static std::atomic<unsigned long> counter{0};
  const auto& under = parent().dir;
  if (!under) return std::nullopt;
  Paths paths;
  paths.dir = *under + "/tether-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
  paths.procs = paths.dir + "/cgroup.procs";
  paths.kill = paths.dir + "/cgroup.kill";
  return paths;
}

bool create(const char* dir) {
  return ::mkdir(dir, 0755) == 0;
}

bool join(const char* procs) {
  return write_text(procs, "0");
}

void kill_all(const char* kill) {
  write_text(kill, "1");
}

bool remove(const char* dir) {
  char path[PATH_MAX];
  const std::size_t length = std::strlen(dir);
  if (length >= sizeof path) return false;
  std::memcpy(path, dir, length + 1);
  return remove_tree(path, length, 0);
}

}  // namespace tether::process::cgroup

namespace tether::process {

std::string containment() {
  const auto& parent = cgroup::parent();
  if (parent.dir) return "a supervisor and a cgroup v2 each, under " + *parent.dir;
  return "a supervisor each (no cgroup v2: " + parent.why_not + ")";
}

}  // namespace tether::process
