// The shared start path (start.hpp).
#include "start.hpp"

#include <fmt/format.h>

#include "env_policy.hpp"

namespace tether::exec {
namespace {

// Bigger pipes mean bigger reads, so fewer and larger output events for bulk output.
constexpr int kOutputPipeBytes = 1024 * 1024;

}  // namespace

Expected<process::SpawnOptions> spawn_options_for(const StartParams& params,
                                                  char** server_environment) {
  if (params.argv.empty()) return invalid_params("argv must not be empty");
  for (const auto& arg : params.argv) {
    if (auto bad = nul_byte_error("argv", arg)) return *bad;
  }
  if (auto bad = nul_byte_error("arg0", params.arg0.value_or(""))) return *bad;
  process::SpawnOptions spawn;
  if (params.cwd) {
    auto cwd = parse_path(*params.cwd);
    if (!cwd) return cwd.error();
    spawn.cwd = std::move(*cwd);
  }
  auto env = child_environment(params.env, params.env_policy, server_environment);
  if (!env) return env.error();
  spawn.argv = params.argv;
  spawn.arg0 = params.arg0;
  spawn.env = std::move(*env);
  spawn.tty = params.tty;
  spawn.stdin_mode = params.pipe_stdin ? process::StdinMode::pipe : process::StdinMode::closed;
  spawn.pipe_buffer_bytes = kOutputPipeBytes;
  return spawn;
}

Error process_exists_error(std::string_view process_id) {
  return invalid_request(fmt::format("process {} already exists", process_id));
}

}  // namespace tether::exec
