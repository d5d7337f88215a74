// The child environment of `process/start`: `env` alone, or `envPolicy` applied to the
// executor's own environment and then overlaid by `env` (docs/exec-server.md "Environment").
#pragma once

#include <string>
#include <vector>

#include <tether/exec/protocol.hpp>

namespace tether::exec {

// Returns "NAME=value" entries. `server_environment` is the executor's own (environ).
Expected<std::vector<std::string>> build_child_environment(const Params& params,
                                                           char** server_environment);

}  // namespace tether::exec
