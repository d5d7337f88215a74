// One cgroup v2 per contained child, where this process may create them: the supervisor moves
// the program into it before execve, so everything the program starts, escapes included, is in
// it, and ending the tree is one write to `cgroup.kill`, which no fork can outrun. Where cgroup v2
// is not writable (or the kernel has no `cgroup.kill`), the supervisor's /proc walk does it alone.
// See docs/process-api.md, "Containment".
//
// Owns: finding the cgroup v2 directory of this process and probing it once, naming each
// child's cgroup, and the async-signal-safe steps the supervisor and the program take (create,
// join, kill, remove).
// Does not own: when those steps happen (child.cpp, supervisor.cpp).
#pragma once

#include <optional>
#include <string>

namespace tether::process::cgroup {

// The directory under which children's cgroups are made, or nullopt with the reason why none
// are. Probed once per process: a cgroup2 mount, this process's cgroup there, and a child
// cgroup that can be made, has `cgroup.kill`, takes a process and can be removed.
struct Parent {
  std::optional<std::string> dir;
  std::string why_not;
};
const Parent& parent();

// The paths of one child's cgroup, built before the fork (the steps below must not allocate).
struct Paths {
  std::string dir;
  std::string procs;  // <dir>/cgroup.procs
  std::string kill;   // <dir>/cgroup.kill
};
// A fresh name under parent(), or nullopt when there is no parent.
std::optional<Paths> next();

// Async-signal-safe, no allocation.
bool create(const char* dir);
// Moves the calling process into the cgroup whose cgroup.procs is `procs`.
bool join(const char* procs);
// SIGKILL to every process of the cgroup and its descendants.
void kill_all(const char* kill);
// Removes the cgroup and every cgroup below it (deepest first); false if one is still in use.
bool remove(const char* dir);

}  // namespace tether::process::cgroup
