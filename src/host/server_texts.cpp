// The manager's user-facing texts (see server_texts.hpp).
#include "server_texts.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include <tether/host/did_you_mean.hpp>

namespace tether::host {

std::string startup_failure_text(const ServerConfig& server, const jsonrpc::Error& error) {
  if (error.code == jsonrpc::code::kRequestTimedOut)
    return fmt::format(
        "MCP client for '{}' timed out after {:g} seconds. Add or adjust 'startup_timeout_sec' in "
        "your config: [mcp_servers.{}] startup_timeout_sec = XX",
        server.name, static_cast<double>(server.startup_timeout.count()) / 1000, server.name);
  return fmt::format("MCP client for '{}' failed to start: {}", server.name, error.message);
}

std::string required_failures_text(const std::vector<StartupSummary::Failure>& failures) {
  std::vector<std::string> parts;
  parts.reserve(failures.size());
  for (const auto& failure : failures)
    parts.push_back(fmt::format("{}: {}", failure.server, failure.error));
  return fmt::format("required MCP servers failed to initialize: {}", fmt::join(parts, "; "));
}

jsonrpc::Error unknown_server_error(std::string_view name, const std::vector<std::string>& known) {
  return jsonrpc::make_error(
      jsonrpc::code::kInvalidParams,
      fmt::format("unknown MCP server '{}'{}", name, did_you_mean(name, known)));
}

jsonrpc::Error tool_timeout_error(jsonrpc::Error error, std::string_view server) {
  error.message +=
      fmt::format("; raise tool_timeout_sec of MCP server '{}' if the tool needs longer", server);
  return error;
}

std::string crash_loop_text(std::string_view server, std::string_view last_error) {
  return fmt::format("MCP server '{}' is crash-looping: {}", server, last_error);
}

std::string death_text(std::string reason, std::string_view stderr_tail) {
  if (!stderr_tail.empty()) {
    reason += "\nMCP server stderr (last lines):\n";
    reason += stderr_tail;
  }
  return reason;
}

namespace {

// A word a POSIX shell reads back as itself: as it is when every character is safe unquoted,
// else in single quotes (a quote inside as '\''), or as $'...' when it holds control characters,
// so that a listing stays one line.
std::string shell_word(std::string_view word) {
  const auto safe = [](unsigned char c) {
    return std::isalnum(c) ||
           std::string_view("_@%+=:,./-").find(static_cast<char>(c)) != std::string_view::npos;
  };
  const auto control = [](unsigned char c) { return c < 0x20 || c == 0x7f; };
  if (!word.empty() && std::all_of(word.begin(), word.end(), safe)) return std::string(word);
  if (std::any_of(word.begin(), word.end(), control)) {
    std::string out = "$'";
    for (unsigned char c : word) {
      if (c == '\n')
        out += "\\n";
      else if (c == '\t')
        out += "\\t";
      else if (c == '\\' || c == '\'')
        out += fmt::format("\\{}", static_cast<char>(c));
      else if (control(c))
        out += fmt::format("\\x{:02x}", c);
      else
        out += static_cast<char>(c);
    }
    return out + "'";
  }
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::string command_line(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& word : words) {
    if (!out.empty()) out += ' ';
    out += shell_word(word);
  }
  return out;
}

std::string server_target(const ServerConfig& server) {
  if (const auto* stdio = std::get_if<mcp::StdioCommand>(&server.transport)) {
    std::vector<std::string> words{stdio->program};
    words.insert(words.end(), stdio->args.begin(), stdio->args.end());
    return command_line(words);
  }
  return std::get<HttpServerSettings>(server.transport).url;
}

std::string describe_environment(const EnvironmentConfig& environment, std::string_view source) {
  std::string out;
  if (const auto* url = std::get_if<EnvironmentConfig::Url>(&environment.how)) {
    out = fmt::format("{}: {}", environment.id, url->url);
  } else if (std::holds_alternative<EnvironmentConfig::Spawn>(environment.how)) {
    out = fmt::format("{}: spawned on loopback", environment.id);
  } else {
    out = fmt::format("{}: command {}", environment.id,
                      command_line(std::get<EnvironmentConfig::Command>(environment.how).argv));
  }
  if (!source.empty()) out += fmt::format(" ({})", source);
  return out;
}

}  // namespace tether::host
