// The supervisor: the process that stands between tether and each child it spawns, so that the
// child's whole process tree ends with it, even when tether is killed with SIGKILL.
//
// Owns: being the child subreaper of the tree (a grandchild that calls setsid() or double-forks
// is re-parented to it, not to init), ending the tree when the server exits, when tether asks
// (kKillTree) or when tether dies (the parent-death signal), relaying SIGTERM to the processes
// that left the server's group, and exiting with the server's own status.
// Does not own: the fork/exec choreography and the report to tether (child.cpp).
// Runs in a forked copy of the embedding program: async-signal-safe calls only, no allocation.
// See docs/process-api.md, "Containment".
#pragma once

#include <sys/types.h>

#include "cgroup.hpp"

namespace tether::process::supervisor {

// Asks the supervisor to SIGKILL the whole tree and exit; also its parent-death signal.
inline constexpr int kKillTree = 64;  // SIGRTMAX on Linux; nothing else sends it

// The supervisor's life after the server was started: every signal is blocked on entry.
// Never returns: exits with the server's status once the tree is gone. `cgroup`: the server's
// own cgroup (null: none), killed as a whole with the tree and removed afterwards.
[[noreturn]] void supervise(pid_t server, const cgroup::Paths* cgroup);

}  // namespace tether::process::supervisor
