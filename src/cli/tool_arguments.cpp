// `tether mcp call`'s arguments (see tool_arguments.hpp).
#include "tool_arguments.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>

#include <boost/json/parse.hpp>
#include <fmt/format.h>

#include <tether/jsonrpc/json_text.hpp>

namespace tether::cli {
namespace {

namespace json = boost::json;

jsonrpc::Error usage_error(std::string message) {
  return jsonrpc::make_error(jsonrpc::code::kInvalidParams, std::move(message));
}

// The text --args names: itself, a file (`@path`) or stdin (`-`).
jsonrpc::Expected<std::string> args_text(std::string_view option) {
  if (option == "-")
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  if (!option.starts_with('@')) return std::string(option);
  const std::string path(option.substr(1));
  std::ifstream in(path, std::ios::binary);
  if (!in) return usage_error(fmt::format("--args @{}: {}", path, std::strerror(errno)));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string_view kind_name(const json::value& value) {
  if (value.is_array()) return "an array";
  if (value.is_string()) return "a string";
  if (value.is_null()) return "null";
  return "a scalar";
}

// The JSON types a property's schema allows; empty: not said (any).
std::vector<std::string> allowed_types(const json::object* property) {
  std::vector<std::string> out;
  if (property == nullptr) return out;
  auto add = [&out](const json::value* type) {
    if (type == nullptr) return;
    if (type->is_string()) out.emplace_back(type->get_string());
    if (type->is_array())
      for (const auto& item : type->get_array())
        if (item.is_string()) out.emplace_back(item.get_string());
  };
  add(property->if_contains("type"));
  for (std::string_view key : {"anyOf", "oneOf"}) {
    const auto* members = property->if_contains(key);
    if (members == nullptr || !members->is_array()) continue;
    for (const auto& member : members->get_array())
      if (member.is_object()) add(member.get_object().if_contains("type"));
  }
  return out;
}

bool is_of(const json::value& value, std::string_view type) {
  if (type == "integer")
    return value.is_int64() || value.is_uint64() ||
           (value.is_double() && std::isfinite(value.get_double()) &&
            std::trunc(value.get_double()) == value.get_double());
  if (type == "number") return value.is_number();
  if (type == "boolean") return value.is_bool();
  if (type == "object") return value.is_object();
  if (type == "array") return value.is_array();
  if (type == "null") return value.is_null();
  return false;  // a string is taken as written, below
}

const json::object* property_schema(const json::object* tool, std::string_view key) {
  if (tool == nullptr) return nullptr;
  const auto* schema = tool->if_contains("inputSchema");
  if (schema == nullptr || !schema->is_object()) return nullptr;
  const auto* properties = schema->get_object().if_contains("properties");
  if (properties == nullptr || !properties->is_object()) return nullptr;
  const auto* property = properties->get_object().if_contains(key);
  return property && property->is_object() ? &property->get_object() : nullptr;
}

std::string with_article(std::string_view type) {
  const bool vowel =
      !type.empty() && std::string_view("aeiou").find(type[0]) != std::string_view::npos;
  if (type == "null") return "null";
  return fmt::format("{} {}", vowel ? "an" : "a", type);
}

}  // namespace

jsonrpc::Expected<std::pair<std::string, std::string>> key_value(std::string_view pair,
                                                                 std::string_view option) {
  const auto equals = pair.find('=');
  if (equals == std::string_view::npos || equals == 0)
    return usage_error(fmt::format("{} '{}' is not key=value", option, pair));
  return std::pair{std::string(pair.substr(0, equals)), std::string(pair.substr(equals + 1))};
}

jsonrpc::Expected<ToolArguments> read_tool_arguments(std::string_view args_option,
                                                     const std::vector<std::string>& pairs) {
  ToolArguments out;
  if (!args_option.empty()) {
    auto text = args_text(args_option);
    if (!text) return text.error();
    const auto source = args_option.starts_with('@') || args_option == "-"
                            ? fmt::format("--args {}", args_option)
                            : std::string("--args");
    auto parsed = jsonrpc::parse_json_text(*text);
    if (!parsed)
      return usage_error(fmt::format("{} is not valid JSON: {}", source, parsed.error().message));
    if (!parsed->is_object())
      return usage_error(fmt::format("{}: MCP tool arguments must be a JSON object, got {}", source,
                                     kind_name(*parsed)));
    out.object = std::move(parsed->as_object());
  }
  for (const auto& pair : pairs) {
    auto split = key_value(pair, "--arg");
    if (!split) return split.error();
    out.pairs.push_back(std::move(*split));
  }
  return out;
}

jsonrpc::Expected<json::object> typed_tool_arguments(ToolArguments arguments,
                                                     const json::object* tool) {
  for (auto& [key, text] : arguments.pairs) {
    const auto types = allowed_types(property_schema(tool, key));
    boost::system::error_code ec;
    auto parsed = json::parse(text, ec);
    const bool takes_string =
        types.empty() || std::find(types.begin(), types.end(), "string") != types.end();
    const bool typed =
        !ec && (types.empty() || std::any_of(types.begin(), types.end(), [&](const auto& type) {
                  return is_of(parsed, type);
                }));
    if (typed) {
      arguments.object[key] = std::move(parsed);
    } else if (takes_string) {
      arguments.object[key] = json::string(text);
    } else {
      std::vector<std::string> wanted;
      std::transform(types.begin(), types.end(), std::back_inserter(wanted), with_article);
      const auto tool_name = tool && tool->if_contains("name") && tool->at("name").is_string()
                                 ? std::string(tool->at("name").get_string())
                                 : std::string("the tool");
      return usage_error(fmt::format("--arg {}={}: '{}' must be {} (the inputSchema of '{}')", key,
                                     text, key, fmt::join(wanted, " or "), tool_name));
    }
  }
  return std::move(arguments.object);
}

}  // namespace tether::cli
