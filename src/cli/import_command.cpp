// `tether mcp import`: another host's MCP servers into tether's config file (docs/config.md,
// "Importing servers").
//
// Owns: the subcommand's options (--from, --file, --dry-run), choosing the sources from them, and
// its answer: a line per server (imported, or skipped with the reason) and the notes of each,
// or with --json one document {config, dryRun, servers: [{name, source, status, reason?,
// notes}]}.
// Does not own: reading, translating or writing (host/config_import.hpp), the config path or
// failures as the user sees them (mcp_command.cpp hands both in).
// Data flows: options -> ImportRequest -> host::import_servers -> stdout.
#include <filesystem>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <fmt/format.h>

#include "commands.hpp"
#include "output.hpp"
#include <tether/host/config_import.hpp>

namespace tether::cli {
namespace {

namespace json = boost::json;
using host::ImportedServer;

void print_imported(const std::vector<ImportedServer>& servers, const std::string& config,
                    bool dry_run, bool as_json) {
  if (as_json) {
    json::array list;
    for (const auto& server : servers) {
      json::object item{
          {"name", server.name},
          {"source", server.source},
          {"status", server.status == ImportedServer::Status::imported ? "imported" : "skipped"}};
      if (!server.reason.empty()) item["reason"] = server.reason;
      json::array notes;
      for (const auto& note : server.notes) notes.emplace_back(note);
      item["notes"] = std::move(notes);
      list.emplace_back(std::move(item));
    }
    print_json(json::object{{"config", config}, {"dryRun", dry_run}, {"servers", std::move(list)}});
    return;
  }
  std::string out;
  for (const auto& server : servers) {
    if (server.status == ImportedServer::Status::skipped) {
      out += fmt::format("Skipped MCP server '{}' from {}: {}\n", server.name, server.source,
                         server.reason);
      continue;
    }
    out += fmt::format("{} MCP server '{}' from {} {} {}\n", dry_run ? "Would import" : "Imported",
                       server.name, server.source, dry_run ? "into" : "to", config);
    for (const auto& note : server.notes) out += fmt::format("  note: {}\n", note);
  }
  if (servers.empty()) out += "no MCP servers to import\n";
  if (dry_run) out += fmt::format("dry run: {} was not changed\n", config);
  write_out(out);
}

}  // namespace

void add_import_arguments(CLI::App& command, ImportArgs& args) {
  command.add_option("--from", args.from, "the host whose servers to import")
      ->check(CLI::IsMember({"codex", "claude", "cursor", "vscode"}));
  command
      .add_option("--file", args.files,
                  "read this config file (codex TOML or a JSON host config) instead of the "
                  "host's usual places")
      ->allow_extra_args(false);
  command.add_flag("--dry-run", args.dry_run, "show what would be imported; write nothing");
}

int run_import(const ImportArgs& args, const std::string& config_path,
               const std::string& environments_path, bool json,
               const std::function<int(std::string_view)>& fail) {
  host::ImportRequest request;
  if (!args.files.empty()) {
    for (const auto& file : args.files) request.sources.push_back({file, std::nullopt, true});
  } else if (auto from = host::import_host(args.from)) {
    std::error_code ignored;
    request.sources =
        host::import_sources(*from, host::process_env, std::filesystem::current_path(ignored));
  } else {
    return fail("import needs --from codex|claude|cursor|vscode, or --file PATH");
  }
  request.config_path = config_path;
  request.environments_path = environments_path;
  request.dry_run = args.dry_run;
  auto imported = host::import_servers(request);
  if (!imported) return fail(imported.error().message);
  print_imported(*imported, config_path, args.dry_run, json);
  return 0;
}

}  // namespace tether::cli
