// Params and paths. Messages follow codex's serde wording where clients may show them
// ("missing field `processId`"), since users of both see the same text.
#include <algorithm>
#include <filesystem>

#include <boost/url.hpp>
#include <fmt/format.h>

#include <tether/exec/protocol.hpp>

namespace tether::exec {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

Error wrong_type(std::string_view key, std::string_view expected) {
  return invalid_params(fmt::format("invalid type for `{}`: expected {}", key, expected));
}

}  // namespace

Error invalid_params(std::string message) {
  return jsonrpc::make_error(jsonrpc::code::kInvalidParams, std::move(message));
}

Error invalid_request(std::string message) {
  return jsonrpc::make_error(jsonrpc::code::kInvalidRequest, std::move(message));
}

std::optional<Error> nul_byte_error(std::string_view field, std::string_view value) {
  if (value.find('\0') == std::string_view::npos) return std::nullopt;
  return invalid_params(fmt::format("{} contains a NUL byte", field));
}

Expected<Params> Params::of(const json::value& params) {
  static const json::object kEmpty;
  if (params.is_null()) return Params(&kEmpty);
  if (!params.is_object()) return invalid_params("params must be an object");
  return Params(&params.get_object());
}

const json::value* Params::find(std::string_view key) const {
  const auto* v = object_->if_contains(key);
  return v && !v->is_null() ? v : nullptr;
}

Expected<std::string> Params::string(std::string_view key) const {
  const auto* v = find(key);
  if (!v) return invalid_params(fmt::format("missing field `{}`", key));
  if (!v->is_string()) return wrong_type(key, "a string");
  return std::string(v->get_string());
}

Expected<std::optional<std::string>> Params::optional_string(std::string_view key) const {
  const auto* v = find(key);
  if (!v) return std::optional<std::string>{};
  if (!v->is_string()) return wrong_type(key, "a string");
  return std::optional<std::string>{std::string(v->get_string())};
}

Expected<std::optional<std::int64_t>> Params::optional_int(std::string_view key) const {
  const auto* v = find(key);
  if (!v) return std::optional<std::int64_t>{};
  if (v->is_int64()) return std::optional<std::int64_t>{v->get_int64()};
  if (v->is_uint64()) return std::optional<std::int64_t>{INT64_MAX};
  return wrong_type(key, "an integer");
}

Expected<std::optional<bool>> Params::optional_bool(std::string_view key) const {
  const auto* v = find(key);
  if (!v) return std::optional<bool>{};
  if (!v->is_bool()) return wrong_type(key, "a boolean");
  return std::optional<bool>{v->get_bool()};
}

Expected<std::vector<std::string>> Params::strings(std::string_view key) const {
  const auto* v = find(key);
  if (!v) return invalid_params(fmt::format("missing field `{}`", key));
  if (!v->is_array()) return wrong_type(key, "an array of strings");
  std::vector<std::string> out;
  for (const auto& item : v->get_array()) {
    if (!item.is_string()) return wrong_type(key, "an array of strings");
    out.emplace_back(item.get_string());
  }
  return out;
}

Expected<std::string> Params::path(std::string_view key) const {
  auto text = string(key);
  if (!text) return text.error();
  return parse_path(*text);
}

Expected<std::string> parse_path(std::string_view text) {
  if (text.starts_with('/')) {
    if (auto bad = nul_byte_error("path", text)) return *bad;
    return std::string(text);
  }
  const auto colon = text.find(':');
  auto uri = boost::urls::parse_uri(text);
  if (colon == std::string_view::npos || !uri) {
    return invalid_params(fmt::format("path must be absolute or a file: URI, got '{}'", text));
  }
  if (!iequals(uri->scheme(), "file")) {
    return invalid_params(fmt::format("unsupported path URI scheme `{}`", uri->scheme()));
  }
  if (uri->has_authority() && !uri->encoded_host().empty() &&
      !iequals(uri->encoded_host(), "localhost")) {
    return invalid_request(fmt::format("'{}' is invalid on 'linux'", text));
  }
  // Dot segments are removed from the decoded path (so %2E%2E counts too) by lexically_normal(),
  // which also stops ".." at the root; Boost.URL 1.81's normalize_path() does neither reliably.
  const std::string decoded = uri->path();
  if (decoded.empty() || decoded.front() != '/') {
    return invalid_params(fmt::format("path must be absolute or a file: URI, got '{}'", text));
  }
  std::string path = std::filesystem::path(decoded).lexically_normal().string();
  if (path.empty() || path.front() != '/') {
    return invalid_params(fmt::format("path must be absolute or a file: URI, got '{}'", text));
  }
  if (auto bad = nul_byte_error("path", path)) return *bad;
  return path;
}

std::string to_file_uri(std::string_view path) {
  // Encoded by hand rather than with url::set_path, which turns "/" into "/./" in Boost.URL 1.81.
  return "file://" + boost::urls::encode(path, boost::urls::pchars + '/');
}

}  // namespace tether::exec
