// The 2026-07-28 revision's markers, read back from messages (see revision.hpp).
#include <algorithm>

#include <boost/json/array.hpp>
#include <fmt/format.h>

#include <tether/mcp_protocol/revision.hpp>

namespace tether::mcp_protocol {

bool is_modern_version(std::string_view version) {
  return version == kModernVersion;
}

std::optional<std::string> request_version(const json::object& params) {
  const auto* meta = params.if_contains("_meta");
  const auto* version =
      meta && meta->is_object() ? meta->as_object().if_contains(meta::kProtocolVersion) : nullptr;
  if (!version || !version->is_string()) return std::nullopt;
  return std::string(version->as_string());
}

std::optional<std::string> request_version(const json::value& message) {
  const auto* object = message.if_object();
  const auto* params = object ? object->if_contains("params") : nullptr;
  if (!params || !params->is_object()) return std::nullopt;
  return request_version(params->as_object());
}

std::string_view result_type(const json::object& result) {
  const auto* type = result.if_contains("resultType");
  if (!type || !type->is_string()) return kComplete;
  return type->as_string();
}

bool accepts_input_responses(std::string_view method) {
  return method == "tools/call" || method == "prompts/get" || method == "resources/read";
}

bool is_cacheable(std::string_view method) {
  constexpr std::string_view kCacheable[] = {
      "server/discover",          "tools/list",    "prompts/list", "resources/list",
      "resources/templates/list", "resources/read"};
  return std::find(std::begin(kCacheable), std::end(kCacheable), method) != std::end(kCacheable);
}

std::optional<jsonrpc::Error> check_request_meta(const json::object& params) {
  const auto* meta = params.if_contains("_meta");
  if (!meta || !meta->is_object())
    return jsonrpc::make_error(jsonrpc::code::kInvalidParams,
                               fmt::format("Invalid params: missing _meta keys: {}, {}",
                                           meta::kProtocolVersion, meta::kClientCapabilities));
  const auto& fields = meta->as_object();
  const auto* version = fields.if_contains(meta::kProtocolVersion);
  const auto* capabilities = fields.if_contains(meta::kClientCapabilities);
  std::string missing;
  if (!version || !version->is_string()) missing = meta::kProtocolVersion;
  if (!capabilities || !capabilities->is_object())
    missing += fmt::format("{}{}", missing.empty() ? "" : ", ", meta::kClientCapabilities);
  if (!missing.empty())
    return jsonrpc::make_error(jsonrpc::code::kInvalidParams,
                               "Invalid params: missing _meta keys: " + missing);
  return std::nullopt;
}

std::optional<jsonrpc::Error> check_request_version(const json::object& params) {
  const auto version = request_version(params);
  if (version && !is_modern_version(*version)) return unsupported_version(*version);
  return std::nullopt;
}

jsonrpc::Error unsupported_version(std::string_view requested) {
  auto error = jsonrpc::make_error(code::kUnsupportedProtocolVersion,
                                   fmt::format("Unsupported protocol version: {}", requested));
  error.data = json::object{{"supported", json::array{json::string(kModernVersion)}},
                            {"requested", requested}};
  return error;
}

bool is_removed_method(std::string_view method) {
  return method == "initialize" || method == "ping" || method == "logging/setLevel" ||
         method == "resources/subscribe" || method == "resources/unsubscribe";
}

std::string_view capability_for(std::string_view client_method) {
  if (client_method == "sampling/createMessage") return "sampling";
  if (client_method == "elicitation/create") return "elicitation";
  return "roots";
}

jsonrpc::Error missing_capability(std::string_view capability) {
  auto error = jsonrpc::make_error(
      code::kMissingRequiredClientCapability,
      fmt::format("the request needs the client capability '{}', which it did not declare",
                  capability));
  json::object required;
  required[capability] = json::object();
  error.data = json::object{{"requiredCapabilities", std::move(required)}};
  return error;
}

void stamp_result(std::string_view method, json::object& result) {
  if (!result.contains("resultType")) result["resultType"] = kComplete;
  if (!is_cacheable(method) || result_type(result) != kComplete) return;
  if (!result.contains("ttlMs")) result["ttlMs"] = 0;
  if (!result.contains("cacheScope")) result["cacheScope"] = "private";
}

}  // namespace tether::mcp_protocol
