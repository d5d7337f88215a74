// The one start path of both placements (the executor's `process/start` and LocalProcesses):
// what a start checks and the spawn it maps to, so both run a process the same way and word
// their errors identically.
//
// Owns: the checks in their order (argv, arg0, cwd, environment) and the SpawnOptions (stdin
// mode, output pipe size). Does not own: decoding the wire params (protocol.hpp), the process id
// and per-placement limits (checked by each caller after this), or the environment policy
// (env_policy.hpp).
#pragma once

#include <string_view>

#include <tether/exec/protocol.hpp>
#include <tether/process/child.hpp>

namespace tether::exec {

// `server_environment` is the executor's own environment (environ), which envPolicy draws from.
Expected<process::SpawnOptions> spawn_options_for(const StartParams& params,
                                                  char** server_environment);

Error process_exists_error(std::string_view process_id);

}  // namespace tether::exec
