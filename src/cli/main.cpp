// `tether` entry point: global options (log level, version), then one subcommand.
#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <string>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "output.hpp"

int main(int argc, char** argv) {
  tether::cli::reserve_standard_fds();
  CLI::App app{"tether: an MCP host runtime and process executor"};
  app.set_version_flag("--version", std::string("tether ") + TETHER_VERSION);
  app.require_subcommand(1);
  std::string log_level = std::getenv("TETHER_LOG") ? std::getenv("TETHER_LOG") : "";
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error or off (env TETHER_LOG; default info for "
                 "exec-server, warn for mcp)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  // Everything after the first `--` is a command line of its own (`tether mcp add NAME -- CMD
  // ARGS`), kept away from CLI11, which would read its flags as ours.
  std::vector<std::string> arguments(argv + 1, argv + argc);
  std::vector<std::string> command;
  if (auto dashes = std::find(arguments.begin(), arguments.end(), "--");
      dashes != arguments.end()) {
    command.assign(dashes + 1, arguments.end());
    arguments.erase(dashes, arguments.end());
  }
  std::reverse(arguments.begin(), arguments.end());  // CLI11 takes them last first
  // Parsing consumes the arguments; a script asking for JSON gets its usage errors in JSON too.
  const bool json = std::find(arguments.begin(), arguments.end(), "--json") != arguments.end();

  auto run_exec_server = tether::cli::add_exec_server_command(app);
  auto run_mcp = tether::cli::add_mcp_command(app, command);

  try {
    app.parse(arguments);
  } catch (const CLI::ParseError& e) {
    if (app.exit(e) == 0) return 0;
    if (json) tether::cli::print_json_error("usage", e.what(), 2);
    return 2;
  }
  const bool mcp = app.got_subcommand("mcp");
  // The MCP commands print answers for people: their servers' chatter stays out by default.
  if (log_level.empty()) log_level = mcp ? "warn" : "info";
  // Logs go to stderr only: stdout carries the executor's URL line, protocol messages or answers.
  // `mcp` writes everything through output.hpp, which ends the run on a failed write; a reader
  // that went away is such a failure (EPIPE), not a SIGPIPE that would kill the host midway.
  if (mcp) std::signal(SIGPIPE, SIG_IGN);
  auto logger = mcp ? std::make_shared<spdlog::logger>("tether", tether::cli::log_sink())
                    : spdlog::stderr_color_mt("tether");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log_level));

  return mcp ? run_mcp() : run_exec_server();
}
