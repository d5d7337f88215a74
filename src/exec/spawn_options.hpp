// What `process/start` (connection.cpp) and LocalProcesses share when they turn validated start
// parameters into a spawn, so both placements run a process the same way.
//
// Owns: the SpawnOptions a start maps to (stdin mode, output pipe size) and the start errors
// both placements word identically. Does not own: parsing the parameters (wire params or
// StartParams) or the environment policy (env_policy.hpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <tether/exec/protocol.hpp>
#include <tether/process/child.hpp>

namespace tether::exec {

// Bigger pipes mean bigger reads, so fewer and larger output events for bulk output.
inline constexpr int kOutputPipeBytes = 1024 * 1024;

inline process::SpawnOptions make_spawn_options(std::vector<std::string> argv,
                                                std::optional<std::string> arg0,
                                                std::vector<std::string> env, std::string cwd,
                                                bool tty, bool pipe_stdin) {
  process::SpawnOptions spawn;
  spawn.argv = std::move(argv);
  spawn.arg0 = std::move(arg0);
  spawn.env = std::move(env);
  spawn.cwd = std::move(cwd);
  spawn.tty = tty;
  spawn.stdin_mode = pipe_stdin ? process::StdinMode::pipe : process::StdinMode::closed;
  spawn.pipe_buffer_bytes = kOutputPipeBytes;
  return spawn;
}

inline std::optional<Error> argv_error(const std::vector<std::string>& argv) {
  if (argv.empty()) return invalid_params("argv must not be empty");
  for (const auto& arg : argv) {
    if (auto bad = nul_byte_error("argv", arg)) return bad;
  }
  return std::nullopt;
}

inline Error process_exists_error(std::string_view process_id) {
  return invalid_request(fmt::format("process {} already exists", process_id));
}

}  // namespace tether::exec
