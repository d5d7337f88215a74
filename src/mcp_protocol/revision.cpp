// The 2026-07-28 revision's markers, read back from messages (see revision.hpp).
#include <algorithm>

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

}  // namespace tether::mcp_protocol
