// What `tether mcp call` sends as a tool's arguments: `--args` (a JSON object: inline, `@FILE`, or
// `-` for stdin) with each `--arg key=value` laid over it, the value typed by the tool's
// inputSchema (docs/cli.md, "Tool arguments").
// Does not own: finding the tool (mcp_command.cpp) or checking arguments beyond their types (the
// server does).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>

#include <tether/jsonrpc/error.hpp>

namespace tether::cli {

// `key=value` split at the first `=`; `option` names the flag in the error.
jsonrpc::Expected<std::pair<std::string, std::string>> key_value(std::string_view pair,
                                                                 std::string_view option);

// Arguments as the command line gave them, checked before any server starts.
struct ToolArguments {
  boost::json::object object;                              // from --args
  std::vector<std::pair<std::string, std::string>> pairs;  // from --arg, in order
};

// Reads --args (empty: none) and splits each --arg. Errors: a file or stdin that cannot be read,
// JSON that does not parse (`--args @a.json: line 3, column 5: syntax error`), JSON that is not
// an object, an --arg without `=`.
jsonrpc::Expected<ToolArguments> read_tool_arguments(std::string_view args_option,
                                                     const std::vector<std::string>& pairs);

// The arguments to send: --arg values typed by `tool`'s inputSchema property of the same name
// (its `type`, or the types its anyOf / oneOf members allow). A value becomes JSON when it parses
// as a type the property allows; else it stays text where a string is allowed; else it is an
// error naming the property and the types it takes. Without a schema for the key: JSON when it
// parses, else text. `tool` may be null (its definition is not known).
jsonrpc::Expected<boost::json::object> typed_tool_arguments(ToolArguments arguments,
                                                            const boost::json::object* tool);

}  // namespace tether::cli
