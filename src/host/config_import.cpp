// tether::host config import (see config_import.hpp).
//
// Owns: the hosts' config locations, the translation of one loaded server into the lines of its
// config.toml table, and which servers are imported or skipped.
// Does not own: validation (the loader reads every source; edit_config_file checks the result) or
// writing (edit_config_file).
// Data flows: ImportSource -> read_source (loader, references kept) -> translate -> body lines ->
// add_server_table inside one edit_config_file.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "json_config.hpp"
#include <tether/exec/client.hpp>
#include <tether/host/config_edit.hpp>
#include <tether/host/config_import.hpp>

namespace tether::host {
namespace {

namespace fs = std::filesystem;
using Kind = VariableReference::Kind;

struct Candidate {
  ServerConfig server;
  std::string source;
};

std::string describe(const ImportSource& source) {
  return source.project ? fmt::format("{} (project {})", source.file, *source.project)
                        : source.file;
}

// The servers of one source; nullopt when it does not exist and was not asked for by name.
Expected<std::optional<std::vector<ServerConfig>>> read_source(const ImportSource& source,
                                                               const EnvLookup& env) {
  std::error_code error;
  if (!source.required && !fs::exists(source.file, error) && !error) return std::nullopt;
  auto text = read_config_text(source.file);
  if (!text) return text.error();
  const ParseOptions keep{env, false};
  if (!source.project) {
    auto config = parse_config({*text, source.file}, std::nullopt, keep);
    if (!config) return config.error();
    return std::optional{std::move(config->servers)};
  }
  // ~/.claude.json: only the section of this project, read as a config of its own.
  auto root = parse_json(*text, source.file);
  if (!root) return root.error();
  const auto* projects = root->get_as<toml::table>("projects");
  const auto* project = projects ? projects->get_as<toml::table>(*source.project) : nullptr;
  if (project == nullptr || !project->contains("mcpServers"))
    return std::optional{std::vector<ServerConfig>{}};
  const auto servers = project->find("mcpServers");
  toml::table section;
  servers->second.visit([&](const auto& node) {
    section.insert(toml::key{"mcpServers", servers->first.source()}, node);
  });
  auto config = parse_json_config(section, source.file, keep);
  if (!config) return config.error();
  return std::optional{std::move(config->servers)};
}

// How one server becomes config.toml lines, or why it cannot without copying a value.
class Translation {
 public:
  Translation(const ServerConfig& server, const EnvLookup& env) : env_(env) {
    if (const auto* stdio = std::get_if<mcp::StdioCommand>(&server.transport)) {
      from_stdio(*stdio);
    } else {
      from_http(std::get<HttpServerSettings>(server.transport));
    }
    from_common(server);
  }
  const std::optional<std::string>& skipped() const { return skip_; }
  const std::vector<std::string>& body() const { return body_; }
  std::vector<std::string> notes() { return std::move(notes_); }

 private:
  void line(std::string_view key, const std::string& value) {
    body_.push_back(fmt::format("{} = {}", key, value));
  }

  void refuse(std::string reason) {
    if (!skip_) skip_ = std::move(reason);
  }

  // A command, argument, cwd or url: `${HOME}` is a path and is written out; any other variable
  // may hold a secret, and config.toml does not expand variables, so such a server is left to
  // the user.
  std::string path(std::string_view field, const std::string& value) {
    std::string out;
    std::size_t from = 0;
    for (const auto& ref : variable_references(value)) {
      out.append(value, from, ref.begin - from);
      from = ref.end;
      if (ref.kind == Kind::variable && ref.name == "HOME") {
        out += env_("HOME").value_or("");
        continue;
      }
      refuse(
          fmt::format("{} uses {}, which config.toml cannot express (it expands no variables) "
                      "and import does not copy: add this server by hand",
                      field, ref.written));
    }
    out.append(value, from);
    return out;
  }

  static bool only_home(std::string_view value) {
    auto refs = variable_references(value);
    return std::all_of(refs.begin(), refs.end(), [](const auto& ref) {
      return ref.kind == Kind::variable && ref.name == "HOME";
    });
  }

  // `${VAR}` (or `${env:VAR}`, `${VAR:-default}`) as the whole value: VAR.
  static std::optional<VariableReference> sole_variable(std::string_view value) {
    auto refs = variable_references(value);
    if (refs.size() != 1 || refs[0].kind != Kind::variable || refs[0].begin != 0 ||
        refs[0].end != value.size())
      return std::nullopt;
    return refs[0];
  }

  void refuse_value(std::string_view field, std::string_view value) {
    auto refs = variable_references(value);
    const bool input = std::any_of(refs.begin(), refs.end(),
                                   [](const auto& ref) { return ref.kind == Kind::input; });
    refuse(input ? fmt::format("{} asks for a VS Code input, which tether cannot prompt for: put "
                               "the value in an environment variable and add the server by hand",
                               field)
                 : fmt::format("{} is '{}', a value that is not just one variable: add this "
                               "server by hand",
                               field, value));
  }

  void dropped_default(std::string_view field, const VariableReference& ref) {
    if (ref.fallback)
      notes_.push_back(fmt::format("{}: the default of {} is not kept (config.toml has none)",
                                   field, ref.written));
  }

  void from_stdio(const mcp::StdioCommand& stdio) {
    line("command", toml_basic_string(path("command", stdio.program)));
    if (!stdio.args.empty()) {
      std::vector<std::string> args;
      for (const auto& arg : stdio.args) args.push_back(path("args", arg));
      line("args", toml_string_array(args));
    }
    std::map<std::string, std::string> env;
    auto env_vars = stdio.env_vars;
    for (const auto& [name, value] : stdio.env) {
      const auto field = fmt::format("env.{}", name);
      if (only_home(value)) {
        env[name] = path(field, value);  // a literal (the source file held it so) or a path
      } else if (auto ref = sole_variable(value)) {
        env_vars.push_back(name);
        if (ref->name != name)
          notes_.push_back(
              fmt::format("{} was {}: tether copies {} from its own environment "
                          "(env_vars), so set {} there",
                          field, ref->written, name, name));
        dropped_default(field, *ref);
      } else {
        refuse_value(field, value);
      }
    }
    if (!env.empty()) line("env", toml_string_table(env));
    if (!env_vars.empty()) line("env_vars", toml_string_array(env_vars));
    if (stdio.cwd) line("cwd", toml_basic_string(path("cwd", *stdio.cwd)));
  }

  static bool iequals(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
      return std::tolower(static_cast<unsigned char>(x)) ==
             std::tolower(static_cast<unsigned char>(y));
    });
  }

  void from_http(const HttpServerSettings& http) {
    line("url", toml_basic_string(path("url", http.url)));
    auto bearer = http.bearer_token_env_var;
    std::map<std::string, std::string> headers;
    auto env_headers = http.env_http_headers;
    constexpr std::string_view kBearer = "Bearer ";
    for (const auto& [name, value] : http.http_headers) {
      const auto field = fmt::format("headers.{}", name);
      if (only_home(value)) {
        headers[name] = path(field, value);  // a literal (the source file held it so) or a path
        continue;
      }
      if (iequals(name, "Authorization") && value.starts_with(kBearer) && !bearer) {
        if (auto ref = sole_variable(std::string_view{value}.substr(kBearer.size()))) {
          bearer = ref->name;
          dropped_default(field, *ref);
          continue;
        }
      }
      if (auto ref = sole_variable(value)) {
        env_headers[name] = ref->name;
        dropped_default(field, *ref);
      } else {
        refuse_value(field, value);
      }
    }
    if (bearer) line("bearer_token_env_var", toml_basic_string(*bearer));
    if (!headers.empty()) line("http_headers", toml_string_table(headers));
    if (!env_headers.empty()) line("env_http_headers", toml_string_table(env_headers));
  }

  void from_common(const ServerConfig& server) {
    const ServerConfig defaults;
    if (server.environment != defaults.environment)
      line("environment", toml_basic_string(server.environment));
    auto seconds = [](std::chrono::milliseconds ms) {
      return fmt::format("{}", static_cast<double>(ms.count()) / 1000);
    };
    if (server.startup_timeout != defaults.startup_timeout)
      line("startup_timeout_sec", seconds(server.startup_timeout));
    if (server.tool_timeout != defaults.tool_timeout)
      line("tool_timeout_sec", seconds(server.tool_timeout));
    if (!server.enabled) line("enabled", "false");
    if (server.required) line("required", "true");
    if (server.enabled_tools) line("enabled_tools", toml_string_array(*server.enabled_tools));
    if (!server.disabled_tools.empty())
      line("disabled_tools", toml_string_array(server.disabled_tools));
  }

  const EnvLookup& env_;
  std::vector<std::string> body_;
  std::vector<std::string> notes_;
  std::optional<std::string> skip_;
};

}  // namespace

std::optional<ImportHost> import_host(std::string_view name) {
  if (name == "codex") return ImportHost::codex;
  if (name == "claude") return ImportHost::claude;
  if (name == "cursor") return ImportHost::cursor;
  if (name == "vscode") return ImportHost::vscode;
  return std::nullopt;
}

std::vector<ImportSource> import_sources(ImportHost host, const EnvLookup& env,
                                         const std::string& cwd) {
  const auto home = env("HOME").value_or("");
  const fs::path here = cwd;
  switch (host) {
    case ImportHost::codex: {
      auto codex_home = env("CODEX_HOME").value_or("");
      if (codex_home.empty()) codex_home = home + "/.codex";
      return {{codex_home + "/config.toml"}};
    }
    case ImportHost::claude:
      return {
          {home + "/.claude.json", cwd}, {(here / ".mcp.json").string()}, {home + "/.claude.json"}};
    case ImportHost::cursor:
      return {{(here / ".cursor/mcp.json").string()}, {home + "/.cursor/mcp.json"}};
    case ImportHost::vscode:
      return {{(here / ".vscode/mcp.json").string()}, {home + "/.config/Code/User/mcp.json"}};
  }
  return {};
}

Expected<std::vector<ImportedServer>> import_servers(const ImportRequest& request) {
  std::vector<Candidate> candidates;
  bool found = false;
  for (const auto& source : request.sources) {
    auto servers = read_source(source, request.env);
    if (!servers) return servers.error();
    if (!*servers) continue;
    found = true;
    for (auto& server : **servers) candidates.push_back({std::move(server), describe(source)});
  }
  if (!found) {
    std::set<std::string> looked;
    std::vector<std::string> files;
    for (const auto& source : request.sources)
      if (looked.insert(source.file).second) files.push_back(source.file);
    return exec::invalid_params(fmt::format(
        "found none of the config files {}; name one with --file PATH", fmt::join(files, ", ")));
  }

  auto current = load_config(request.config_path, request.environments_path);
  if (!current) return current.error();
  std::set<std::string> existing;
  for (const auto& server : current->servers) existing.insert(server.name);
  std::map<std::string, std::string> seen;  // name -> the nearer source that defines it

  std::vector<ImportedServer> out;
  std::vector<std::pair<std::string, std::vector<std::string>>> tables;
  for (auto& candidate : candidates) {
    ImportedServer result{candidate.server.name, candidate.source};
    Translation translation(candidate.server, request.env);
    result.status = ImportedServer::Status::skipped;
    if (auto [nearer, first] = seen.emplace(result.name, result.source); !first) {
      result.reason = fmt::format("also defined in {}, which is nearer: the host uses that one",
                                  nearer->second);
    } else if (existing.contains(result.name)) {
      result.reason = fmt::format(
          "already in {}; to import it again, remove it there first (tether mcp remove {})",
          request.config_path, result.name);
    } else if (translation.skipped()) {
      result.reason = *translation.skipped();
    } else {
      result.status = ImportedServer::Status::imported;
      result.notes = translation.notes();
      tables.emplace_back(result.name, translation.body());
    }
    out.push_back(std::move(result));
  }
  if (tables.empty()) return out;

  auto edited = edit_config_file(
      request.config_path,
      [&](std::string_view text) -> Expected<std::string> {
        std::string result{text};
        for (const auto& [name, body] : tables) {
          auto added = add_server_table(result, request.config_path, name, body);
          if (!added) return added.error();
          result = std::move(*added);
        }
        return result;
      },
      request.environments_path, request.dry_run);
  if (!edited) return edited.error();
  return out;
}

}  // namespace tether::host
