// `tether` entry point: global options (log level, version), then one subcommand.
#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "output.hpp"
#include <tether/host/did_you_mean.hpp>

namespace {

// Whether `word` is an option of `command` (or of a command above it) that takes a value.
bool takes_value(const CLI::App* command, const std::string& word) {
  for (; command != nullptr; command = command->get_parent())
    if (const auto* option = command->get_option_no_throw(word))
      return option->get_expected_max() > 0;
  return false;
}

// CLI11 says "A subcommand is required" for `tether mcp lst`: name the word that is not a
// command and the command it is likely a typo of. Empty when every command word is known.
std::string unknown_command(const CLI::App& app, const std::vector<std::string>& words) {
  const CLI::App* command = &app;
  std::string path = "tether";
  for (std::size_t i = 0; i < words.size(); ++i) {
    const auto& word = words[i];
    if (word.starts_with('-')) {
      if (word.find('=') == std::string::npos && takes_value(command, word)) ++i;
      continue;
    }
    std::vector<std::string> names;
    const CLI::App* next = nullptr;
    for (const auto* sub : command->get_subcommands([](const CLI::App*) { return true; })) {
      names.push_back(sub->get_name());
      if (sub->get_name() == word) next = sub;
    }
    if (names.empty()) return {};  // a command's own arguments
    if (next == nullptr)
      return fmt::format("'{}' is not a `{}` command{}", word, path,
                         tether::host::did_you_mean(word, names));
    command = next;
    path += " " + word;
  }
  return {};
}

}  // namespace

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
  const auto words = arguments;
  std::reverse(arguments.begin(), arguments.end());  // CLI11 takes them last first
  // Parsing consumes the arguments; a script asking for JSON gets its usage errors in JSON too.
  const bool json = std::find(words.begin(), words.end(), "--json") != words.end();

  auto run_exec_server = tether::cli::add_exec_server_command(app);
  auto run_mcp = tether::cli::add_mcp_command(app, command);

  try {
    app.parse(arguments);
  } catch (const CLI::ParseError& e) {
    if (auto unknown = unknown_command(app, words); !unknown.empty()) {
      tether::cli::print_error(unknown + " (--help lists them)");
      if (json) tether::cli::print_json_error("usage", unknown, 2);
      return 2;
    }
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
