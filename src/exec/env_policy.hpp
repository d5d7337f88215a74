// The child environment of `process/start`: `env` alone, or the envPolicy applied to the
// executor's own environment and then overlaid by `env` (docs/exec-protocol.md "Environment").
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <tether/exec/protocol.hpp>

namespace tether::exec {

// Returns "NAME=value" entries. `server_environment` is the executor's own (environ). Names and
// values of `env` and the policy's `set` are checked here, for every placement.
Expected<std::vector<std::string>> child_environment(const std::map<std::string, std::string>& env,
                                                     const std::optional<EnvPolicy>& policy,
                                                     char** server_environment);

}  // namespace tether::exec
