// tether::host tool names — which tools of a server are offered, and the names a model sees.
//
// Owns: tool filtering per docs/mcp.md ("The server manager"): `enabled_tools` first, then
// `disabled_tools`, by raw tool name, applied at listing and at call time; and qualified tool
// names `mcp__<server>__<tool>` (every character outside [A-Za-z0-9_] replaced by `_`, at most
// 64 bytes, a `_` + 12-hex SHA-1 suffix of the raw `server/tool` identity on a collision or an
// overflow), with the way back from a qualified name to (server, raw tool).
// Does not own: reading `enabled_tools` / `disabled_tools` from config (config.hpp), listing or
// calling tools (mcp/client.hpp), or deciding which servers' tools are qualified together (the
// manager passes every listed tool of every ready server at once).
// Data flows: config -> ToolFilter -> the manager's listing / call path; listed (server, tool)
// pairs -> qualify() -> QualifiedToolIndex -> a model's call by qualified name -> (server, raw
// tool), and the raw name goes on the wire.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <tether/jsonrpc/message.hpp>

namespace tether::host {

using jsonrpc::Expected;

inline constexpr std::size_t kMaxQualifiedToolNameBytes = 64;

struct ToolFilter {
  // Absent: every tool is enabled; present (even empty): only these.
  std::optional<std::vector<std::string>> enabled;
  std::vector<std::string> disabled;

  bool allows(std::string_view tool) const;
  // For the call path: an error carrying
  // `tool '<tool>' is disabled for MCP server '<server>'` when the filter refuses the tool.
  Expected<void> check_call(std::string_view server, std::string_view tool) const;
};

jsonrpc::Error disabled_tool_error(std::string_view server, std::string_view tool);

struct QualifiedTool {
  std::string name;    // what a model sees and calls
  std::string server;  // the server's config name
  std::string tool;    // the raw tool name, as the server listed it and as it goes on the wire
};

// What a qualified name starts with: `mcp__` for the names `tether mcp tools` shows; the gateway
// names tools and prompts without it (docs/gateway.md "Names").
inline constexpr std::string_view kQualifiedPrefix = "mcp__";

// `<prefix><server>__<tool>` with every character of server and tool outside [A-Za-z0-9_]
// replaced by `_` (one `_` per UTF-8 character), no length bound.
std::string sanitized_tool_name(std::string_view server, std::string_view tool,
                                std::string_view prefix = kQualifiedPrefix);

// One QualifiedTool per distinct (server, tool), in input order (repeats are dropped). The names
// depend only on the set of pairs, never on their order: a name is hashed when it is longer than
// 64 bytes or when another pair would get the same name, and then every pair sharing it is hashed.
std::vector<QualifiedTool> qualify(const std::vector<std::pair<std::string, std::string>>& tools,
                                   std::string_view prefix = kQualifiedPrefix);

// The way back from a qualified name to (server, raw tool).
class QualifiedToolIndex {
 public:
  QualifiedToolIndex() = default;
  explicit QualifiedToolIndex(std::vector<QualifiedTool> tools);

  const std::vector<QualifiedTool>& tools() const { return tools_; }
  // nullptr when no listed tool has that qualified name.
  const QualifiedTool* find(std::string_view qualified_name) const;

 private:
  std::vector<QualifiedTool> tools_;
  std::unordered_map<std::string, std::size_t> by_name_;
};

}  // namespace tether::host
