// HTTP header values of the 2026-07-28 streamable HTTP transport (see http_headers.hpp).
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <set>

#include <fmt/format.h>

#include <tether/jsonrpc/base64.hpp>
#include <tether/mcp_protocol/http_headers.hpp>

namespace tether::mcp_protocol {
namespace {

constexpr std::string_view kBase64Open = "=?base64?";
constexpr std::string_view kBase64Close = "?=";

bool is_visible(unsigned char c) {
  return c >= 0x20 && c <= 0x7e;
}

// RFC 9110 tchar.
bool is_token_char(unsigned char c) {
  constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  return std::isalnum(c) != 0 || kSymbols.find(static_cast<char>(c)) != std::string_view::npos;
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view string_at(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value && value->is_string() ? std::string_view(value->as_string()) : std::string_view();
}

jsonrpc::Error invalid(std::string message) {
  return jsonrpc::make_error(jsonrpc::code::kInvalidParams, std::move(message));
}

}  // namespace

std::optional<std::string> name_header(std::string_view method, const json::object& params) {
  std::string_view field;
  if (method == "tools/call" || method == "prompts/get") field = "name";
  if (method == "resources/read") field = "uri";
  const auto* value = field.empty() ? nullptr : params.if_contains(field);
  if (!value || !value->is_string()) return std::nullopt;
  return encode_header_text(value->as_string());
}

std::string encode_header_text(std::string_view text) {
  const bool plain =
      std::all_of(text.begin(), text.end(),
                  [](char c) { return is_visible(static_cast<unsigned char>(c)); }) &&
      (text.empty() || (text.front() != ' ' && text.back() != ' '));
  if (plain) return std::string(text);
  return fmt::format("{}{}{}", kBase64Open, jsonrpc::base64_encode(text), kBase64Close);
}

std::optional<std::string> decode_header_text(std::string_view value) {
  if (!value.starts_with(kBase64Open) || !value.ends_with(kBase64Close) ||
      value.size() < kBase64Open.size() + kBase64Close.size())
    return std::string(value);
  value.remove_prefix(kBase64Open.size());
  value.remove_suffix(kBase64Close.size());
  return jsonrpc::base64_decode(value);
}

std::optional<std::string> header_value(const json::value& argument) {
  switch (argument.kind()) {
    case json::kind::string:
      return encode_header_text(argument.get_string());
    case json::kind::bool_:
      return std::string(argument.get_bool() ? "true" : "false");
    case json::kind::int64:
      return std::to_string(argument.get_int64());
    case json::kind::uint64:
      return std::to_string(argument.get_uint64());
    case json::kind::double_: {
      std::array<char, 32> buffer{};
      const auto [end, ec] =
          std::to_chars(buffer.data(), buffer.data() + buffer.size(), argument.get_double());
      if (ec != std::errc{}) return std::nullopt;
      return std::string(buffer.data(), end);
    }
    default:
      return std::nullopt;
  }
}

jsonrpc::Expected<std::vector<HeaderParam>> header_params(const json::object& tool) {
  using Result = jsonrpc::Expected<std::vector<HeaderParam>>;
  std::vector<HeaderParam> params;
  const auto* schema = tool.if_contains("inputSchema");
  const auto* properties =
      schema && schema->is_object() ? schema->as_object().if_contains("properties") : nullptr;
  if (!properties || !properties->is_object()) return Result{std::move(params)};
  std::set<std::string> seen;
  for (const auto& [property, definition] : properties->as_object()) {
    const auto* declared =
        definition.is_object() ? definition.as_object().if_contains("x-mcp-header") : nullptr;
    if (!declared) continue;
    if (!declared->is_string() || declared->as_string().empty())
      return Result{boost::system::in_place_error,
                    invalid(fmt::format("x-mcp-header of property '{}' is empty or not a string",
                                        std::string_view(property)))};
    const std::string_view name = declared->as_string();
    if (!std::all_of(name.begin(), name.end(),
                     [](char c) { return is_token_char(static_cast<unsigned char>(c)); }))
      return Result{boost::system::in_place_error,
                    invalid(fmt::format("x-mcp-header '{}' of property '{}' is not an HTTP "
                                        "token (letters, digits and !#$%&'*+-.^_`|~ only)",
                                        name, std::string_view(property)))};
    if (!seen.insert(lower(name)).second)
      return Result{
          boost::system::in_place_error,
          invalid(fmt::format("x-mcp-header '{}' is declared twice (names ignore case)", name))};
    const auto type = string_at(definition.as_object(), "type");
    // Not `number`: its text form is not one value across languages (1e21, 0.1 + 0.2).
    if (type != "string" && type != "integer" && type != "boolean")
      return Result{
          boost::system::in_place_error,
          invalid(fmt::format("x-mcp-header '{}' is on property '{}' of type '{}'; only string, "
                              "integer and boolean properties can be headers",
                              name, std::string_view(property), type))};
    params.push_back(HeaderParam{std::string(property), std::string(name)});
  }
  return Result{std::move(params)};
}

}  // namespace tether::mcp_protocol
