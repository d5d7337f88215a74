// tether::mcp_protocol HTTP headers — the request headers the 2026-07-28 streamable HTTP
// transport derives from the message body (docs/mcp.md "Streamable HTTP, 2026-07-28").
//
// Owns: `Mcp-Method`, `Mcp-Name` and `Mcp-Param-<Name>` values, the `=?base64?...?=` form for
// values a header cannot carry as they are, and the rules a tool's `x-mcp-header` declarations
// must follow.
// Does not own: sending or checking headers (src/mcp/http.cpp, src/mcp_server).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <tether/jsonrpc/error.hpp>

namespace tether::mcp_protocol {

namespace json = boost::json;

inline constexpr std::string_view kMethodHeader = "Mcp-Method";
inline constexpr std::string_view kNameHeader = "Mcp-Name";
inline constexpr std::string_view kParamHeaderPrefix = "Mcp-Param-";

// `Mcp-Name`: the tool or prompt name (tools/call, prompts/get) or the URI (resources/read);
// nullopt for other methods or when the field is missing.
std::optional<std::string> name_header(std::string_view method, const json::object& params);

// Visible ASCII without leading or trailing blanks goes as it is; anything else (non-ASCII,
// control characters, surrounding spaces) as `=?base64?<UTF-8 in base64>?=`.
std::string encode_header_text(std::string_view text);
// The inverse; nullopt for a `=?base64?...?=` value that is not valid base64.
std::optional<std::string> decode_header_text(std::string_view value);

// A tool argument as an `Mcp-Param-*` value: strings encoded as above, numbers in their shortest
// decimal form, booleans `true`/`false`; nullopt for null, arrays and objects (not sent).
std::optional<std::string> header_value(const json::value& argument);

// One `x-mcp-header` declaration: the top-level input property and its header's name suffix.
struct HeaderParam {
  std::string property;
  std::string header;  // sent as Mcp-Param-<header>
};

// A tool's declarations, checked: a name is a non-empty HTTP token (no spaces, colons, control
// or non-ASCII characters), unique ignoring case, on a string, integer or boolean property. The
// error names the property and the rule it breaks; a tool with one is unusable over HTTP and
// clients leave it out.
jsonrpc::Expected<std::vector<HeaderParam>> header_params(const json::object& tool);

}  // namespace tether::mcp_protocol
