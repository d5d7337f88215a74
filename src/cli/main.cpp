// `tether` entry point: global options (log level, version), then one subcommand.
#include <cstdlib>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"tether: an MCP host runtime and process executor"};
  app.set_version_flag("--version", std::string("tether ") + TETHER_VERSION);
  app.require_subcommand(1);
  std::string log_level = std::getenv("TETHER_LOG") ? std::getenv("TETHER_LOG") : "info";
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error or off (env TETHER_LOG)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  auto run_exec_server = tether::cli::add_exec_server_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  // Logs go to stderr only: stdout carries the executor's URL line or protocol messages.
  auto logger = spdlog::stderr_color_mt("tether");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log_level));

  for (auto* sub : app.get_subcommands()) {
    if (sub->get_name() == "exec-server") return run_exec_server();
  }
  return 2;
}
