// tether::host config import — `tether mcp import --from codex|claude|cursor|vscode`: another
// host's MCP servers written into tether's config.toml (docs/config.md, "Importing servers").
//
// Owns: where each host keeps its servers (import_sources), reading them with the loader (its
// validation and messages; JSON references kept as written), turning each server into a
// `[mcp_servers.<name>]` table without writing a secret the source kept out of its file
// (`${VAR}` in env -> env_vars, in headers -> env_http_headers or bearer_token_env_var), and the
// outcome of each server: imported, or skipped with the reason (already in tether's config,
// defined again by a farther source, or not expressible without copying a value).
// Does not own: validation (config.hpp), the editing and safe write of config.toml
// (config_edit.hpp), or how the outcome is shown (cli).
// Data flows: sources -> parse_config / parse_json_config -> ServerConfig -> table body ->
// add_server_table -> edit_config_file (checked, then written once, or not with dry_run).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tether/host/config.hpp>

namespace tether::host {

enum class ImportHost : std::uint8_t { codex, claude, cursor, vscode };

// `codex`, `claude`, `cursor` or `vscode`.
std::optional<ImportHost> import_host(std::string_view name);

// One place a host keeps servers.
struct ImportSource {
  std::string file;
  // Claude Code's per-project servers: `projects["<project>"].mcpServers` of ~/.claude.json.
  std::optional<std::string> project;
  bool required = false;  // named with --file: a missing file is an error, not skipped
};

// Where `host` keeps its servers, the nearest first (a project's before the user's, as the host
// itself prefers them): codex `$CODEX_HOME/config.toml`, else `~/.codex/config.toml`; claude the
// `projects` entry of `cwd` in ~/.claude.json, `./.mcp.json`, then ~/.claude.json's own; cursor
// `./.cursor/mcp.json`, `~/.cursor/mcp.json`; vscode `./.vscode/mcp.json`,
// `~/.config/Code/User/mcp.json`. Files that do not exist are left out when read.
std::vector<ImportSource> import_sources(ImportHost host, const EnvLookup& env,
                                         const std::string& cwd);

struct ImportedServer {
  enum class Status : std::uint8_t { imported, skipped };
  std::string name;
  std::string source;  // the file it came from (and the project, for ~/.claude.json)
  Status status = Status::imported;
  std::string reason;              // skipped: why, and what to do
  std::vector<std::string> notes;  // imported: what changed on the way that the user should know
};

struct ImportRequest {
  std::vector<ImportSource> sources;
  std::string config_path;        // tether's config.toml
  std::string environments_path;  // the environments.toml read with it
  bool dry_run = false;           // decide and check everything, write nothing
  EnvLookup env = process_env;    // `${HOME}` in paths
};

// Each server of the sources, imported or skipped, in source order. Errors: a source that cannot
// be read or does not load (the loader's message), none of the sources existing (`found none of
// the config files <files>; name one with --file PATH`), tether's config not loading, or the
// write failing (nothing is written then).
Expected<std::vector<ImportedServer>> import_servers(const ImportRequest& request);

}  // namespace tether::host
