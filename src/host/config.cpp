// tether::host config — parsing and validating config.toml and codex's environments.toml.
//
// Owns: the TOML -> struct mapping, every validation message (prefixed with file:line:column
// and the table they concern), warnings for unknown keys that look like typos (debug lines for
// the keys codex defines but tether does not read), JSON host configs (`mcpServers` / `servers`:
// each entry turned into the table a TOML server is, `${...}` expanded, then validated by the
// same code), and resolve_remote().
// Does not own: the model (config.hpp), reading JSON (json_config.hpp), or anything at run time.
// Data flows: text -> toml::parse (or parse_json -> json_entry) -> parse_main /
// parse_environments_toml -> combine -> Config.
// Validation stops at the first error: an `Invalid` thrown inside this file and turned into an
// Expected at the public entry points, so each field check stays one line.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <toml++/toml.h>

#include "json_config.hpp"
#include <tether/exec/client.hpp>
#include <tether/host/config.hpp>
#include <tether/host/did_you_mean.hpp>

namespace tether::host {
namespace {

using std::chrono::milliseconds;

struct Invalid {
  std::string message;
};

using Warnings = std::vector<std::string>;

// How a file format spells one of tether's keys (a JSON host config: `headers` for
// http_headers), so messages name the key the user wrote.
struct Spelling {
  std::string_view key;
  std::string_view written;
};

// The table a message concerns: file name plus a label such as `[mcp_servers.docs]`.
struct Scope {
  std::string file;
  std::string label;
  std::span<const Spelling> spelling = {};
};

// Whether a key tether does not know warns (inside a table tether owns) or only when it is a
// near miss of a known one (a top level, where codex and other hosts keep many settings).
enum class Unknown : std::uint8_t { warn, near_misses };

SourceLocation location_of(const std::string& file, const toml::source_region& source) {
  return {file, static_cast<int>(source.begin.line), static_cast<int>(source.begin.column)};
}

std::string prefix(const SourceLocation& at) {
  if (at.line == 0) return at.file + ": ";
  return fmt::format("{}:{}:{}: ", at.file, at.line, at.column);
}

[[noreturn]] void fail(const Scope& scope, const toml::source_region& at, std::string_view what) {
  auto label = scope.label.empty() ? std::string{} : scope.label + " ";
  throw Invalid{prefix(location_of(scope.file, at)) + label + std::string{what}};
}

// The entries of a table in file order (toml++ keeps keys sorted).
std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(
    const toml::table& table) {
  std::vector<std::pair<const toml::key*, const toml::node*>> out;
  for (const auto& [key, value] : table) out.emplace_back(&key, &value);
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    const auto& x = a.first->source().begin;
    const auto& y = b.first->source().begin;
    return x.line != y.line ? x.line < y.line : x.column < y.column;
  });
  return out;
}

// Typed access to one table's keys; every error names the key and points at it.
class Fields {
 public:
  // `at`: where the table was written, for messages about the whole table (a JSON object has
  // no position of its own: its key's is used).
  Fields(const Scope& scope, const toml::table& table, const toml::source_region& at = {})
      : scope_(scope), table_(table), at_(table.source().begin.line != 0 ? table.source() : at) {}

  // `key` as this file spells it.
  std::string_view name(std::string_view key) const {
    for (const auto& spelled : scope_.spelling)
      if (spelled.key == key) return spelled.written;
    return key;
  }

  const toml::node* find(std::string_view key) const {
    auto it = table_.find(key);
    return it == table_.end() ? nullptr : &it->second;
  }
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Where `key` was written (the table's header when absent).
  toml::source_region key_source(std::string_view key) const {
    auto it = table_.find(key);
    return it != table_.end() ? it->first.source() : at_;
  }
  [[noreturn]] void fail_at(std::string_view key, std::string_view what) const {
    fail(scope_, key_source(key), what);
  }
  [[noreturn]] void fail_here(std::string_view what) const { fail(scope_, at_, what); }
  const toml::source_region& here() const { return at_; }

  std::optional<std::string> string(std::string_view key) const {
    const auto* node = find(key);
    if (node == nullptr) return std::nullopt;
    if (!node->is_string()) fail_at(key, fmt::format("{} must be a string", name(key)));
    return node->as_string()->get();
  }

  std::optional<bool> boolean(std::string_view key) const {
    const auto* node = find(key);
    if (node == nullptr) return std::nullopt;
    if (!node->is_boolean()) fail_at(key, fmt::format("{} must be true or false", name(key)));
    return node->as_boolean()->get();
  }

  std::optional<std::vector<std::string>> strings(std::string_view key) const {
    const auto* node = find(key);
    if (node == nullptr) return std::nullopt;
    std::vector<std::string> out;
    const auto* array = node->as_array();
    if (array == nullptr) fail_at(key, fmt::format("{} must be an array of strings", name(key)));
    for (const auto& item : *array) {
      if (!item.is_string()) fail_at(key, fmt::format("{} must be an array of strings", name(key)));
      out.push_back(item.as_string()->get());
    }
    return out;
  }

  std::optional<std::map<std::string, std::string>> string_map(std::string_view key) const {
    const auto* node = find(key);
    if (node == nullptr) return std::nullopt;
    const auto* table = node->as_table();
    if (table == nullptr) fail_at(key, fmt::format("{} must be a table of strings", name(key)));
    std::map<std::string, std::string> out;
    for (const auto& [member, value] : *table) {
      if (!value.is_string()) fail_at(key, fmt::format("{} must be a table of strings", name(key)));
      out.emplace(std::string{member.str()}, value.as_string()->get());
    }
    return out;
  }

  // `<key>` in seconds (integer or float): negative, NaN and infinite values are errors.
  std::optional<milliseconds> seconds(std::string_view key) const {
    const auto* node = find(key);
    if (node == nullptr) return std::nullopt;
    std::optional<double> value;
    if (node->is_integer()) value = static_cast<double>(node->as_integer()->get());
    if (node->is_floating_point()) value = node->as_floating_point()->get();
    if (!value || !std::isfinite(*value) || *value < 0)
      fail_at(key, fmt::format("{} must be a non-negative, finite number of seconds", name(key)));
    // Capped far beyond any useful timeout so the conversion cannot overflow.
    return milliseconds{static_cast<std::int64_t>(std::llround(std::min(*value, 1e12) * 1000))};
  }

  std::optional<milliseconds> whole_milliseconds(std::string_view key) const {
    const auto* node = find(key);
    if (node == nullptr) return std::nullopt;
    if (!node->is_integer() || node->as_integer()->get() < 0)
      fail_at(key, fmt::format("{} must be a non-negative integer", name(key)));
    return milliseconds{node->as_integer()->get()};
  }

  // Keys this table has that tether does not read. The `tolerated` ones (keys codex or another
  // host defines there) get a debug line each; any other is likely a typo: a warning naming the
  // nearest known key (with Unknown::near_misses, only when there is one).
  void check_unknown(std::initializer_list<std::string_view> known,
                     std::initializer_list<std::string_view> tolerated, Unknown policy,
                     Warnings& warnings) const {
    std::vector<std::string_view> spelled;
    for (auto key : known) spelled.push_back(name(key));
    auto label = scope_.label.empty() ? std::string{} : scope_.label + " ";
    for (const auto& [key, value] : in_file_order(table_)) {
      const auto name = key->str();
      if (std::find(known.begin(), known.end(), name) != known.end()) continue;
      auto at = prefix(location_of(scope_.file, key->source()));
      auto hint = did_you_mean(name, spelled);
      bool typo = std::find(tolerated.begin(), tolerated.end(), name) == tolerated.end() &&
                  (policy == Unknown::warn || !hint.empty());
      if (typo) {
        warnings.push_back(fmt::format(
            "{}{}unknown {} '{}'{}", at, label,
            value->is_table() && !value->as_table()->is_inline() ? "table" : "key", name, hint));
      } else {
        spdlog::debug("config: {}{}ignoring unknown key '{}'", at, label, name);
      }
    }
  }

 private:
  const Scope& scope_;
  const toml::table& table_;
  toml::source_region at_;
};

// Server names and environment ids: [A-Za-z0-9_-]+.
bool valid_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

// codex's environment id rules: 1 to 64 of [A-Za-z0-9_-], `local` and `none` reserved.
void check_environment_id(const Scope& scope, const toml::source_region& at, std::string_view id) {
  if (id.empty() || id.size() > 64 || !valid_name(id))
    fail(scope, at,
         fmt::format("invalid environment id '{}': must be 1 to 64 characters of [A-Za-z0-9_-]",
                     id));
  if (id == "local" || id == "none")
    fail(scope, at, fmt::format("environment id '{}' is reserved", id));
}

// Stdio-only and HTTP-only fields (codex's lists; inline `bearer_token` is refused by codex
// for both transports).
// A token never sits in the config file (as codex): it is read from the variable named.
constexpr std::string_view kLiteralToken =
    "; put the token in an environment variable and name it with bearer_token_env_var";
constexpr std::string_view kStdioOnly[] = {"args", "env", "env_vars", "cwd", "bearer_token"};
constexpr std::string_view kHttpOnly[] = {"url", "bearer_token_env_var", "bearer_token",
                                          "http_headers", "env_http_headers"};

// `env_vars` entries: names, or codex's `{ name = "X", source = ... }` tables.
std::vector<std::string> env_var_names(const Fields& fields) {
  const auto* node = fields.find("env_vars");
  std::vector<std::string> out;
  if (node == nullptr) return out;
  const auto* array = node->as_array();
  if (array == nullptr) fields.fail_at("env_vars", "env_vars must be an array of strings");
  for (const auto& item : *array) {
    if (item.is_string()) {
      out.push_back(item.as_string()->get());
    } else if (const auto* table = item.as_table(); table && (*table)["name"].is_string()) {
      out.push_back((*table)["name"].as_string()->get());
    } else {
      fields.fail_at("env_vars", "env_vars must be an array of strings");
    }
  }
  return out;
}

std::string server_environment(const Fields& fields, const std::string& name) {
  auto experimental = fields.string("experimental_environment");
  if (experimental && *experimental != "local" && *experimental != "remote")
    fields.fail_at("experimental_environment",
                   fmt::format("unsupported experimental_environment '{}' for MCP server '{}'",
                               *experimental, name));
  std::optional<std::pair<std::string_view, std::string>> chosen;
  for (std::string_view key : {"environment", "environment_id", "experimental_environment"}) {
    auto value = key == "experimental_environment" ? experimental : fields.string(key);
    if (!value) continue;
    if (chosen && chosen->second != *value)
      fields.fail_at(key, fmt::format("conflicting {} '{}' and {} '{}'", chosen->first,
                                      chosen->second, key, *value));
    if (!chosen) chosen.emplace(key, *value);
  }
  return chosen ? chosen->second : "local";
}

// `[mcp_servers.<name>]`, or a JSON host config's entry once json_entry has made it one (then
// `scope` spells keys as JSON does, and the table has no position: `key_at` stands for it).
ServerConfig parse_server(const Scope& scope, const std::string& name, const toml::table& table,
                          const toml::source_region& key_at, Warnings& warnings) {
  Fields fields(scope, table, key_at);
  ServerConfig server;
  server.name = name;
  server.location = location_of(scope.file, fields.here());
  if (auto command = fields.string("command")) {
    for (auto field : kHttpOnly)
      if (fields.has(field))
        fields.fail_at(field, fmt::format("{} is not supported for stdio{}", fields.name(field),
                                          field == "bearer_token" ? kLiteralToken : ""));
    if (command->empty()) fields.fail_at("command", "command must not be empty");
    mcp::StdioCommand stdio;
    stdio.program = *command;
    stdio.args = fields.strings("args").value_or(std::vector<std::string>{});
    stdio.env = fields.string_map("env").value_or(std::map<std::string, std::string>{});
    stdio.env_vars = env_var_names(fields);
    stdio.cwd = fields.string("cwd");
    server.transport = std::move(stdio);
  } else if (auto url = fields.string("url")) {
    for (auto field : kStdioOnly)
      if (fields.has(field))
        fields.fail_at(field,
                       fmt::format("{} is not supported for streamable_http{}", fields.name(field),
                                   field == "bearer_token" ? kLiteralToken : ""));
    if (url->empty()) fields.fail_at("url", "url must not be empty");
    HttpServerSettings http;
    http.url = *url;
    http.bearer_token_env_var = fields.string("bearer_token_env_var");
    http.http_headers = fields.string_map("http_headers").value_or(http.http_headers);
    http.env_http_headers = fields.string_map("env_http_headers").value_or(http.env_http_headers);
    server.transport = std::move(http);
  } else {
    fields.fail_here("invalid transport: needs `command` (stdio) or `url` (streamable HTTP)");
  }

  server.environment = server_environment(fields, name);
  if (auto startup = fields.seconds("startup_timeout_sec")) {
    server.startup_timeout = *startup;
  } else if (auto startup_ms = fields.whole_milliseconds("startup_timeout_ms")) {
    server.startup_timeout = *startup_ms;
  }
  server.tool_timeout = fields.seconds("tool_timeout_sec").value_or(server.tool_timeout);
  server.enabled = fields.boolean("enabled").value_or(true);
  server.required = fields.boolean("required").value_or(false);
  server.enabled_tools = fields.strings("enabled_tools");
  server.disabled_tools = fields.strings("disabled_tools").value_or(server.disabled_tools);
  // codex's other keys for a server (its RawMcpServerConfig) are not typos.
  fields.check_unknown(
      {"command", "args", "env", "env_vars", "cwd", "url", "bearer_token_env_var", "http_headers",
       "env_http_headers", "environment", "environment_id", "experimental_environment",
       "startup_timeout_sec", "startup_timeout_ms", "tool_timeout_sec", "enabled", "required",
       "enabled_tools", "disabled_tools"},
      {"supports_parallel_tool_calls", "default_tools_approval_mode", "scopes", "oauth",
       "oauth_resource", "name", "tools"},
      Unknown::warn, warnings);
  return server;
}

// A server's entry, in either format: its name checked, its value a table.
const toml::table& server_entry(const Scope& scope, std::string_view name, const toml::node& node,
                                const toml::source_region& key_at) {
  if (!valid_name(name))
    fail({scope.file, ""}, key_at,
         fmt::format("Invalid MCP server name '{}': must match pattern ^[a-zA-Z0-9_-]+$", name));
  const auto* table = node.as_table();
  if (table == nullptr) fail(scope, key_at, "must be a table");
  return *table;
}

// --- JSON host configs (docs/config.md, "JSON host configs") ---

// The keys a JSON entry spells its own way; the rest are tether's (and codex's) names.
constexpr Spelling kJsonSpelling[] = {{"http_headers", "headers"}, {"enabled", "disabled"}};
// Keys hosts define for a server that tether does not use: Claude Code's `oauth` and
// `headersHelper`, Cursor's `auth`, VS Code's `dev`, `gallery` and `version`.
constexpr std::string_view kJsonTolerated[] = {"oauth", "headersHelper", "auth",
                                               "dev",   "gallery",       "version"};
// The keys whose strings may hold `${...}` references.
constexpr std::string_view kJsonExpanded[] = {"command", "args", "env", "cwd", "url", "headers"};

template <typename Names>
bool contains(const Names& names, std::string_view name) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

// What `${workspaceFolder}` means: the folder holding `.vscode/` for a `.vscode/mcp.json`, else
// the current directory (where a user runs tether in their project).
std::string workspace_folder(const std::string& file) {
  namespace fs = std::filesystem;
  std::error_code error;
  const auto parent = fs::path(file).parent_path();
  if (parent.filename() == ".vscode" && !parent.parent_path().empty())
    return fs::absolute(parent.parent_path(), error).string();
  return fs::current_path(error).string();
}

struct Expansion {
  const EnvLookup& env;
  std::string workspace;
  bool variables;  // false: only the editor's paths (${userHome}, ${workspaceFolder}) are expanded
};

// `value` (of `field`, written at `key`) with its `${...}` references replaced, as the hosts do at
// load. An unset variable without a default is an error rather than an empty string: a missing
// token would otherwise surface later as a confusing refusal from the server.
std::string expand(const Fields& fields, std::string_view key, std::string_view field,
                   std::string_view value, const Expansion& expansion) {
  using Kind = VariableReference::Kind;
  std::string out;
  std::size_t from = 0;
  for (const auto& ref : variable_references(value)) {
    out.append(value.substr(from, ref.begin - from));
    from = ref.end;
    const bool path = ref.kind == Kind::user_home || ref.kind == Kind::workspace_folder;
    if (!path && !expansion.variables) {
      out += ref.written;
      continue;
    }
    switch (ref.kind) {
      case Kind::variable: {
        auto found = expansion.env(ref.name);
        if (found && !found->empty()) {
          out += *found;
        } else if (ref.fallback) {
          out += *ref.fallback;
        } else if (!found) {
          fields.fail_at(
              key, fmt::format("{}: {} is not set; set {} or give a default: ${{{}:-...}}", field,
                               ref.written, ref.name, ref.name));
        }
        break;
      }
      case Kind::user_home:
        out += expansion.env("HOME").value_or("");
        break;
      case Kind::workspace_folder:
        out += expansion.workspace;
        break;
      case Kind::input:
        fields.fail_at(key, fmt::format("{}: {} is a VS Code input prompt, which tether cannot ask "
                                        "for; put the value in an environment variable and write "
                                        "${{env:NAME}} instead",
                                        field, ref.written));
      case Kind::other:
        fields.fail_at(key, fmt::format("{}: {} can be resolved only by the editor that defines "
                                        "it; write the value, or ${{env:NAME}}",
                                        field, ref.written));
    }
  }
  out.append(value.substr(from));
  return out;
}

// The strings of `node` expanded: a string, an array's strings, a table's string values (named
// `<key>.<member>` in messages).
void expand_strings(toml::node& node, const Fields& fields, std::string_view key,
                    const Expansion& expansion) {
  auto one = [&](toml::node& item, std::string_view field) {
    if (auto* text = item.as_string()) *text = expand(fields, key, field, text->get(), expansion);
  };
  if (auto* array = node.as_array()) {
    for (auto& item : *array) one(item, key);
  } else if (auto* table = node.as_table()) {
    for (auto&& [member, item] : *table) one(item, fmt::format("{}.{}", key, member.str()));
  } else {
    one(node, key);
  }
}

// A JSON host config's server entry as the table parse_server reads: `type` checked and dropped,
// `disabled` as `enabled`, `headers` as http_headers, other hosts' keys dropped, references
// expanded, every key still where the user wrote it.
toml::table json_entry(const Scope& scope, const toml::table& entry,
                       const toml::source_region& key_at, const Expansion& expansion) {
  Fields fields(scope, entry, key_at);
  if (fields.has("envFile"))
    fields.fail_at("envFile",
                   "envFile is not supported; list the variables in env (\"NAME\": "
                   "\"${env:NAME}\" copies one from tether's environment)");
  if (auto type = fields.string("type")) {
    if (*type == "sse")
      fields.fail_at("type",
                     "type 'sse' is the old HTTP+SSE transport, which tether does not speak; use "
                     "the server's streamable HTTP endpoint with type 'http'");
    const bool http = *type == "http" || *type == "streamable-http" || *type == "streamableHttp";
    if (!http && *type != "stdio")
      fields.fail_at("type", fmt::format("unknown type '{}': must be stdio, http or "
                                         "streamable-http",
                                         *type));
    if (http && !fields.has("url"))
      fields.fail_at("type", fmt::format("type '{}' needs url", *type));
    if (!http && !fields.has("command")) fields.fail_at("type", "type 'stdio' needs command");
  }
  toml::table out;
  for (const auto& [key, value] : entry) {
    if (key.str() == "type") continue;
    if (contains(kJsonTolerated, key.str())) {
      spdlog::debug("config: {}{} ignoring '{}'", prefix(location_of(scope.file, key.source())),
                    scope.label, key.str());
      continue;
    }
    if (key.str() == "disabled") {
      out.insert_or_assign(toml::key{"enabled", key.source()}, !*fields.boolean("disabled"));
      continue;
    }
    const std::string name{key.str() == "headers" ? "http_headers" : key.str()};
    const toml::key renamed{name, key.source()};
    value.visit([&](const auto& node) { out.insert_or_assign(renamed, node); });
    if (contains(kJsonExpanded, key.str()))
      expand_strings(*out.get(name), fields, key.str(), expansion);
  }
  return out;
}

void check_ws_url(const Fields& fields, std::string_view key, std::string_view url) {
  if (!url.starts_with("ws://") && !url.starts_with("wss://"))
    fields.fail_at(key, fmt::format("{} must start with ws:// or wss://", key));
}

// An executor connection's keepalive and resume settings (url and spawn only: a command's pipe
// has neither). The idle timeout must outlast the ping interval, or every quiet stretch between
// two pings would count as a lost connection.
void read_keepalive(const Fields& fields, std::string_view kind, EnvironmentConfig& env) {
  constexpr std::string_view kKeys[] = {"ping_interval_sec", "idle_timeout_sec",
                                        "resume_window_sec"};
  for (auto key : kKeys)
    if (fields.has(key) && kind == "command")
      fields.fail_at(key, fmt::format("{} is only supported with url or spawn", key));
  env.ping_interval = fields.seconds("ping_interval_sec");
  env.idle_timeout = fields.seconds("idle_timeout_sec");
  env.resume_window = fields.seconds("resume_window_sec");
  if (env.ping_interval && env.ping_interval->count() == 0)
    fields.fail_at("ping_interval_sec", "ping_interval_sec must be greater than 0");
  const exec::ClientOptions defaults;
  if (env.idle_timeout.value_or(defaults.idle_timeout) <=
      env.ping_interval.value_or(defaults.ping_interval))
    fields.fail_at(env.idle_timeout ? "idle_timeout_sec" : "ping_interval_sec",
                   "idle_timeout_sec must be greater than ping_interval_sec");
}

// `[environments.<id>]` in config.toml.
EnvironmentConfig parse_environment(const std::string& file, const std::string& id,
                                    const toml::node& node, const toml::source_region& key_at,
                                    Warnings& warnings) {
  Scope scope{file, fmt::format("[environments.{}]", id)};
  check_environment_id({file, ""}, key_at, id);
  const auto* table = node.as_table();
  if (table == nullptr) fail(scope, key_at, "must be a table");
  Fields fields(scope, *table);

  EnvironmentConfig env;
  env.id = id;
  env.location = location_of(file, table->source());
  auto url = fields.string("url");
  bool spawn = fields.boolean("spawn").value_or(false);
  auto command = fields.strings("command");
  if (int{url.has_value()} + int{spawn} + int{command.has_value()} != 1)
    fields.fail_here(
        fmt::format("environment '{}' must set exactly one of url, spawn or command", id));
  std::string_view kind = url ? "url" : spawn ? "spawn" : "command";
  auto only_with = [&](std::string_view field, std::string_view wanted) {
    if (fields.has(field) && kind != wanted)
      fields.fail_at(field, fmt::format("{} is only supported with {}", field, wanted));
  };
  for (auto field : {"token_env_var", "token_file"}) only_with(field, "url");
  for (auto field : {"env", "cwd"}) only_with(field, "command");

  if (url) {
    check_ws_url(fields, "url", *url);
    EnvironmentConfig::Url how{*url, fields.string("token_env_var"), fields.string("token_file"),
                               std::nullopt};
    if (how.token_env_var && how.token_file)
      fields.fail_at("token_file", "token_env_var and token_file are mutually exclusive");
    env.how = std::move(how);
  } else if (spawn) {
    env.how = EnvironmentConfig::Spawn{};
  } else {
    if (command->empty()) fields.fail_at("command", "command must not be empty");
    env.how = EnvironmentConfig::Command{*command, fields.string_map("env"), fields.string("cwd")};
  }
  env.connect_timeout = fields.seconds("connect_timeout_sec").value_or(env.connect_timeout);
  read_keepalive(fields, kind, env);
  fields.check_unknown(
      {"url", "token_env_var", "token_file", "spawn", "command", "env", "cwd",
       "connect_timeout_sec", "ping_interval_sec", "idle_timeout_sec", "resume_window_sec"},
      {}, Unknown::warn, warnings);
  return env;
}

// A default (config.toml's `default_environment` or environments.toml's `default`) and where
// it was written, checked once every environment is known.
struct Default {
  std::string id;
  std::string key;
  Scope scope;
  toml::source_region at;
};

struct Parsed {
  std::vector<EnvironmentConfig> environments;
  std::optional<Default> default_id;
  std::vector<ServerConfig> servers;
  GatewayConfig gateway;
  Warnings warnings;
};

GatewayConfig parse_gateway(const std::string& file, const toml::node& node,
                            const toml::source_region& key_at, Warnings& warnings) {
  Scope scope{file, "[gateway]"};
  const auto* table = node.as_table();
  if (table == nullptr) fail(scope, key_at, "must be a table");
  Fields fields(scope, *table);
  GatewayConfig gateway;
  gateway.listen = fields.string("listen");
  gateway.names = fields.string("names");
  if (gateway.names && *gateway.names != "prefixed" && *gateway.names != "qualified" &&
      *gateway.names != "raw")
    fields.fail_at("names", "names must be prefixed, qualified or raw");
  gateway.allow_hosts = fields.strings("allow_hosts");
  gateway.allow_origins = fields.strings("allow_origins");
  gateway.isolate_sessions = fields.boolean("isolate_sessions");
  gateway.token_file = fields.string("token_file");
  fields.check_unknown(
      {"listen", "names", "allow_hosts", "allow_origins", "isolate_sessions", "token_file"}, {},
      Unknown::warn, warnings);
  return gateway;
}

toml::table parse_toml(const ConfigText& input) {
  try {
    return toml::parse(input.text, input.file);
  } catch (const toml::parse_error& error) {
    throw Invalid{prefix(location_of(input.file, error.source())) +
                  std::string{error.description()}};
  }
}

std::optional<Default> read_default(const Scope& scope, const Fields& fields,
                                    std::string_view key) {
  auto id = fields.string(key);
  if (!id) return std::nullopt;
  return Default{*id, std::string{key}, scope, fields.key_source(key)};
}

Parsed parse_main(const ConfigText& input) {
  auto root = parse_toml(input);
  Scope top{input.file, ""};
  Fields fields(top, root);
  Parsed out;
  out.default_id = read_default(top, fields, "default_environment");
  if (const auto* node = fields.find("environments")) {
    if (!node->is_table()) fields.fail_at("environments", "environments must be a table");
    for (const auto& [id, env] : in_file_order(*node->as_table()))
      out.environments.push_back(
          parse_environment(input.file, std::string{id->str()}, *env, id->source(), out.warnings));
  }
  if (const auto* node = fields.find("mcp_servers")) {
    if (!node->is_table()) fields.fail_at("mcp_servers", "mcp_servers must be a table");
    for (const auto& [key, server] : in_file_order(*node->as_table())) {
      const std::string name{key->str()};
      Scope scope{input.file, fmt::format("[mcp_servers.{}]", name)};
      const auto& table = server_entry(scope, name, *server, key->source());
      out.servers.push_back(parse_server(scope, name, table, key->source(), out.warnings));
    }
  }
  if (const auto* node = fields.find("gateway"))
    out.gateway = parse_gateway(input.file, *node, fields.key_source("gateway"), out.warnings);
  // `[mcp_server.x]` is a typo; codex's many other settings are not.
  fields.check_unknown({"default_environment", "environments", "mcp_servers", "gateway"}, {},
                       Unknown::near_misses, out.warnings);
  return out;
}

// A JSON host config: the servers of `mcpServers` (Claude, Cursor) or `servers` (VS Code).
Parsed parse_json_servers(const toml::table& root, const std::string& file,
                          const ParseOptions& options) {
  Scope top{file, ""};
  Fields fields(top, root);
  Parsed out;
  fields.check_unknown({"mcpServers", "servers"}, {}, Unknown::near_misses, out.warnings);
  const std::string_view servers =
      fields.has("mcpServers") || !fields.has("servers") ? "mcpServers" : "servers";
  const auto* node = fields.find(servers);
  if (node == nullptr) return out;
  if (!node->is_table()) fields.fail_at(servers, fmt::format("{} must be an object", servers));
  const Expansion expansion{options.env, workspace_folder(file), options.expand_variables};
  for (const auto& [key, entry] : in_file_order(*node->as_table())) {
    const std::string name{key->str()};
    Scope scope{file, fmt::format("[{}.{}]", servers, name), kJsonSpelling};
    const auto& object = server_entry(scope, name, *entry, key->source());
    auto table = json_entry(scope, object, key->source(), expansion);
    out.servers.push_back(parse_server(scope, name, table, key->source(), out.warnings));
  }
  return out;
}

Parsed parse_json_main(const ConfigText& input, const ParseOptions& options) {
  auto root = parse_json(input.text, input.file);
  if (!root) throw Invalid{root.error().message};
  return parse_json_servers(*root, input.file, options);
}

// codex's environments.toml: `default = "<id>"` and `[[environments]]` entries.
Parsed parse_environments_toml(const ConfigText& input) {
  auto root = parse_toml(input);
  Scope top{input.file, ""};
  Fields fields(top, root);
  Parsed out;
  out.default_id = read_default(top, fields, "default");
  if (const auto* node = fields.find("environments")) {
    const auto* array = node->as_array();
    if (array == nullptr || !array->is_array_of_tables())
      fields.fail_at("environments", "environments must be an array of tables ([[environments]])");
    for (const auto& item : *array) {
      const auto& table = *item.as_table();
      Scope unnamed{input.file, "[[environments]]"};
      auto id = Fields(unnamed, table).string("id");
      if (!id) fail(unnamed, table.source(), "id is required");
      Scope scope{input.file, fmt::format("[[environments]] '{}'", *id)};
      Fields env_fields(scope, table);
      check_environment_id(scope, table.find("id")->first.source(), *id);

      EnvironmentConfig env;
      env.id = *id;
      env.location = location_of(input.file, table.source());
      auto url = env_fields.string("url");
      auto program = env_fields.string("program");
      if (url.has_value() == program.has_value())
        env_fields.fail_here(
            fmt::format("environment '{}' must set exactly one of url or program", *id));
      if (url) {
        for (auto field : {"args", "env", "cwd"})
          if (env_fields.has(field))
            env_fields.fail_at(field, fmt::format("{} is only supported with program", field));
        check_ws_url(env_fields, "url", *url);
        env.how = EnvironmentConfig::Url{*url, std::nullopt, std::nullopt,
                                         env_fields.string("auth_bearer_token")};
      } else {
        if (env_fields.has("auth_bearer_token"))
          env_fields.fail_at("auth_bearer_token", "auth_bearer_token is only supported with url");
        if (program->empty()) env_fields.fail_at("program", "program must not be empty");
        EnvironmentConfig::Command command{
            {*program}, env_fields.string_map("env"), env_fields.string("cwd")};
        auto args = env_fields.strings("args").value_or(std::vector<std::string>{});
        command.argv.insert(command.argv.end(), args.begin(), args.end());
        env.how = std::move(command);
      }
      env.connect_timeout = env_fields.seconds("connect_timeout_sec").value_or(env.connect_timeout);
      env_fields.check_unknown({"id", "url", "program", "args", "env", "cwd", "auth_bearer_token",
                                "connect_timeout_sec"},
                               {"include_local", "initialize_timeout_sec"}, Unknown::near_misses,
                               out.warnings);
      out.environments.push_back(std::move(env));
    }
  }
  fields.check_unknown({"default", "environments"}, {}, Unknown::near_misses, out.warnings);
  return out;
}

Config combine(const ConfigText& input, Parsed main, std::optional<Parsed> extra) {
  Config config;
  config.file = input.file;
  config.servers = std::move(main.servers);
  config.environments = std::move(main.environments);
  config.gateway = std::move(main.gateway);
  config.warnings = std::move(main.warnings);
  if (extra) {
    config.warnings.insert(config.warnings.end(), extra->warnings.begin(), extra->warnings.end());
    for (auto& env : extra->environments) {
      if (const auto* first = find_environment(config, env.id))
        throw Invalid{prefix(env.location) +
                      fmt::format("duplicate environment id '{}' (first defined at {}:{}:{})",
                                  env.id, first->location.file, first->location.line,
                                  first->location.column)};
      config.environments.push_back(std::move(env));
    }
  }
  // config.toml's default wins over environments.toml's.
  auto chosen = main.default_id ? std::move(main.default_id)
                : extra         ? std::move(extra->default_id)
                                : std::nullopt;
  if (chosen && chosen->id != "local" && chosen->id != "none") {
    if (find_environment(config, chosen->id) == nullptr)
      fail(chosen->scope, chosen->at,
           fmt::format("{} '{}' is not a defined environment", chosen->key, chosen->id));
    config.default_environment = chosen->id;
  }
  return config;
}

// Anything but a clear "not there" counts as existing, so reading it reports the problem.
bool file_exists(const std::string& path) {
  std::error_code error;
  return std::filesystem::exists(path, error) || error;
}

}  // namespace

Expected<std::string> read_config_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return exec::invalid_params(fmt::format("{}: {}", path, std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

const EnvironmentConfig* find_environment(const Config& config, std::string_view id) {
  for (const auto& env : config.environments)
    if (env.id == id) return &env;
  return nullptr;
}

Expected<Config> parse_config(const ConfigText& config,
                              const std::optional<ConfigText>& environments,
                              const ParseOptions& options) {
  try {
    auto main = is_json_config(config.text, config.file) ? parse_json_main(config, options)
                                                         : parse_main(config);
    std::optional<Parsed> extra;
    if (environments) extra = parse_environments_toml(*environments);
    return combine(config, std::move(main), std::move(extra));
  } catch (const Invalid& invalid) {
    return exec::invalid_params(invalid.message);
  }
}

Expected<Config> parse_json_config(const toml::table& root, const std::string& file,
                                   const ParseOptions& options) {
  try {
    return combine({"", file}, parse_json_servers(root, file, options), std::nullopt);
  } catch (const Invalid& invalid) {
    return exec::invalid_params(invalid.message);
  }
}

Expected<Config> load_config(const std::string& config_path, const std::string& environments_path,
                             bool config_must_exist) {
  std::string config_text;
  bool have_config = config_must_exist || file_exists(config_path);
  if (have_config) {
    auto text = read_config_text(config_path);
    if (!text) return text.error();
    config_text = std::move(*text);
  }
  std::optional<std::string> environments_text;
  if (!environments_path.empty() && file_exists(environments_path)) {
    auto text = read_config_text(environments_path);
    if (!text) return text.error();
    environments_text = std::move(*text);
  }
  std::optional<ConfigText> environments;
  if (environments_text) environments = ConfigText{*environments_text, environments_path};
  auto config = parse_config({config_text, config_path}, environments);
  if (config && !have_config) config->file.clear();
  return config;
}

std::optional<std::string> process_env(std::string_view name) {
  const char* value = std::getenv(std::string{name}.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string{value};
}

std::string tether_home(const EnvLookup& env) {
  if (auto home = env("TETHER_HOME"); home && !home->empty()) return *home;
  return env("HOME").value_or("") + "/.tether";
}

RemoteEnvironment resolve_remote(const Config& config, const EnvLookup& env) {
  auto url = env("TETHER_EXEC_SERVER_URL");
  if (url && *url == "none") return {std::nullopt, "TETHER_EXEC_SERVER_URL=none"};
  if (url && !url->empty()) {
    EnvironmentConfig remote;
    remote.id = "remote";
    remote.location.file = "TETHER_EXEC_SERVER_URL";
    remote.how =
        EnvironmentConfig::Url{*url, std::nullopt, std::nullopt, env("TETHER_EXEC_SERVER_TOKEN")};
    return {std::move(remote), "TETHER_EXEC_SERVER_URL"};
  }
  if (config.default_environment) {
    if (const auto* chosen = find_environment(config, *config.default_environment))
      return {*chosen, fmt::format("default_environment '{}'", chosen->id)};
  }
  return {std::nullopt, "no TETHER_EXEC_SERVER_URL and no default_environment"};
}

}  // namespace tether::host
