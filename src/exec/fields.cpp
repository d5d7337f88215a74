// Fields (fields.hpp).
#include "fields.hpp"

#include <algorithm>

#include <fmt/format.h>

#include <tether/jsonrpc/base64.hpp>

namespace tether::exec {

Fields::Fields(const json::value& value, std::string within) : within_(std::move(within)) {
  static const json::object kEmpty;
  if (value.is_null()) {
    object_ = &kEmpty;
  } else if (value.is_object()) {
    object_ = &value.get_object();
  } else {
    object_ = &kEmpty;
    fail(invalid_params(fmt::format("{} must be an object", within_.empty() ? "params" : within_)));
  }
}

std::string Fields::in(std::string message) const {
  if (!within_.empty()) message += " in " + within_;
  return message;
}

void Fields::fail(Error error) {
  if (!error_) error_ = std::move(error);
}

Expected<void> Fields::result() const {
  if (error_) return *error_;
  return {};
}

const json::value* Fields::find(std::string_view key) const {
  const auto* v = object_->if_contains(key);
  return v && !v->is_null() ? v : nullptr;
}

const json::value* Fields::field(std::string_view key, bool required) {
  if (error_) return nullptr;
  const auto* v = find(key);
  if (!v && required) fail(invalid_params(in(fmt::format("missing field `{}`", key))));
  return v;
}

void Fields::wrong_type(std::string_view key, std::string_view expected) {
  fail(invalid_params(in(fmt::format("invalid type for `{}`: expected {}", key, expected))));
}

std::string Fields::string(std::string_view key) {
  const auto* v = field(key, true);
  if (!v) return {};
  if (!v->is_string()) {
    wrong_type(key, "a string");
    return {};
  }
  return std::string(v->get_string());
}

std::optional<std::string> Fields::optional_string(std::string_view key) {
  if (!field(key, false)) return std::nullopt;
  return string(key);
}

std::optional<std::int64_t> Fields::optional_int(std::string_view key) {
  const auto* v = field(key, false);
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64())
    return static_cast<std::int64_t>(std::min<std::uint64_t>(v->get_uint64(), INT64_MAX));
  wrong_type(key, "an integer");
  return std::nullopt;
}

std::uint64_t Fields::uint(std::string_view key) {
  if (!field(key, true)) return 0;
  return optional_uint(key).value_or(0);
}

std::optional<std::uint64_t> Fields::optional_uint(std::string_view key) {
  const auto* v = field(key, false);
  if (!v) return std::nullopt;
  if (v->is_uint64()) return v->get_uint64();
  if (v->is_int64() && v->get_int64() >= 0) return static_cast<std::uint64_t>(v->get_int64());
  wrong_type(key, "a non-negative integer");
  return std::nullopt;
}

std::optional<bool> Fields::optional_bool(std::string_view key) {
  const auto* v = field(key, false);
  if (!v) return std::nullopt;
  if (!v->is_bool()) {
    wrong_type(key, "a boolean");
    return std::nullopt;
  }
  return v->get_bool();
}

bool Fields::boolean(std::string_view key) {
  if (!field(key, true)) return false;
  return optional_bool(key).value_or(false);
}

std::vector<std::string> Fields::strings(std::string_view key) {
  const auto* v = field(key, true);
  std::vector<std::string> out;
  if (!v) return out;
  if (!v->is_array()) {
    wrong_type(key, "an array of strings");
    return out;
  }
  for (const auto& item : v->get_array()) {
    if (!item.is_string()) {
      wrong_type(key, "an array of strings");
      return {};
    }
    out.emplace_back(item.get_string());
  }
  return out;
}

std::map<std::string, std::string> Fields::string_map(std::string_view key) {
  const auto* v = field(key, false);
  std::map<std::string, std::string> out;
  if (!v) return out;
  if (!v->is_object()) {
    wrong_type(key, "an object of strings");
    return out;
  }
  for (const auto& [name, value] : v->get_object()) {
    if (!value.is_string()) {
      wrong_type(key, "an object of strings");
      return {};
    }
    out.emplace(name, value.get_string());
  }
  return out;
}

std::string Fields::path(std::string_view key) {
  auto text = string(key);
  if (failed()) return {};
  auto parsed = parse_path(text);
  if (!parsed) {
    fail(parsed.error());
    return {};
  }
  return std::move(*parsed);
}

std::optional<std::string> Fields::optional_path(std::string_view key) {
  if (!field(key, false)) return std::nullopt;
  return path(key);
}

std::string Fields::base64(std::string_view key) {
  auto text = string(key);
  if (failed()) return {};
  auto bytes = jsonrpc::base64_decode(text);
  if (!bytes) {
    fail(invalid_params(in(fmt::format("{} is not valid base64", key))));
    return {};
  }
  return std::move(*bytes);
}

void Fields::refuse(std::string_view key) {
  if (field(key, false))
    fail(invalid_params(fmt::format("{} is not supported by this executor", key)));
}

}  // namespace tether::exec
