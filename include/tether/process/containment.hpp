// Which containment the children of this process get (docs/process-api.md, "Containment"):
// always the supervisor, and a cgroup v2 of their own where this process may create one.
#pragma once

#include <string>

namespace tether::process {

// "a supervisor and a cgroup v2 each, under <dir>", or "a supervisor each (no cgroup v2:
// <reason>)". The cgroup v2 probe runs once per process, on the first call or spawn.
std::string containment();

}  // namespace tether::process
