// tether::host JSON host configs — the reading half shared by the loader (config.cpp) and import
// (config_import.cpp): JSON text to toml++ nodes that know where they were written, and the
// `${...}` variable references those files use (docs/config.md, "JSON host configs").
//
// Owns: reading JSON (with the comments and trailing commas of VS Code's JSONC files; Boost.JSON's
// parser, fed so that each key's line and column are known) into toml++ nodes whose keys carry
// them as
// toml::source_regions, so config.cpp validates a JSON server with the same code and messages as
// a TOML one; recognising a JSON config; finding variable references in a string.
// Does not own: what the keys mean or any validation (config.cpp), expansion policy (config.cpp
// expands at load, config_import.cpp turns references into variable names).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include <tether/host/config.hpp>

namespace tether::host {

// A config file is JSON when its name ends in `.json` or its first non-blank byte is `{`.
bool is_json_config(std::string_view text, std::string_view file);

// The document as a table (objects become tables, keys keep their positions; a null member is
// left out, a null array item becomes an empty table so type checks report it). Errors read
// `<file>:<line>:<column>: <what is wrong>` (Boost.JSON's words, e.g. `expected comma`).
Expected<toml::table> parse_json(std::string_view text, const std::string& file);

// The servers of a JSON document already read (import reads the `projects` section of
// ~/.claude.json this way): the same checks and messages as parse_config (config.cpp).
Expected<Config> parse_json_config(const toml::table& root, const std::string& file,
                                   const ParseOptions& options);

// A config file's text, or `<path>: <reason>` (config.cpp's; import reads its sources with it).
Expected<std::string> read_config_text(const std::string& path);

// One `${...}` in a string: `${NAME}`, `${NAME:-default}` (Claude Code, Cursor), `${env:NAME}`
// (VS Code, Cursor; `${env:NAME:-default}` too), `${input:id}` (a VS Code prompt), `${userHome}` /
// `${workspaceFolder}` (VS Code), or anything else in braces (e.g. `${command:x}`), which only its
// host can resolve.
struct VariableReference {
  enum class Kind { variable, input, user_home, workspace_folder, other };
  std::size_t begin = 0;  // offset of `$`
  std::size_t end = 0;    // one past `}`
  Kind kind = Kind::other;
  std::string name;                     // the variable (variable), the id (input)
  std::optional<std::string> fallback;  // `${NAME:-fallback}`
  std::string written;                  // as written, e.g. `${env:TOKEN}`
};

// The references in `value`, in order; a `${` without its `}` is plain text.
std::vector<VariableReference> variable_references(std::string_view value);

}  // namespace tether::host
