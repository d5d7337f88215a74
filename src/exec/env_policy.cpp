// envPolicy, in the order codex applies it: inherit, default excludes, exclude, includeOnly,
// set, then the explicit env on top. Patterns are shell globs matched case-insensitively.
#include "env_policy.hpp"

#include <array>
#include <fnmatch.h>
#include <map>
#include <string_view>

#include <fmt/format.h>

namespace tether::exec {
namespace {

constexpr std::array<std::string_view, 10> kCoreNames = {
    "HOME", "LANG", "LC_ALL", "LOGNAME", "PATH", "SHELL", "TERM", "TMPDIR", "TZ", "USER"};
constexpr std::array<const char*, 3> kDefaultExcludes = {"*KEY*", "*SECRET*", "*TOKEN*"};

bool glob_match(const std::string& pattern, const std::string& name) {
  return fnmatch(pattern.c_str(), name.c_str(), FNM_CASEFOLD) == 0;
}

Expected<std::map<std::string, std::string>> string_map(const json::value* v,
                                                        std::string_view what) {
  std::map<std::string, std::string> out;
  if (!v || v->is_null()) return out;
  if (!v->is_object()) return invalid_params(fmt::format("{} must be an object", what));
  for (const auto& [key, value] : v->get_object()) {
    if (!value.is_string())
      return invalid_params(fmt::format("{}.{} must be a string", what, std::string_view(key)));
    if (auto bad = nul_byte_error(what, key)) return *bad;
    if (auto bad = nul_byte_error(what, value.get_string())) return *bad;
    if (key.empty() || key.find('=') != std::string_view::npos)
      return invalid_params(
          fmt::format("invalid environment variable name '{}'", std::string_view(key)));
    out.emplace(key, value.get_string());
  }
  return out;
}

Expected<std::map<std::string, std::string>> apply_policy(const json::value& raw,
                                                          char** server_environment) {
  if (!raw.is_object()) return invalid_params("envPolicy must be an object");
  const auto& policy = raw.get_object();
  const auto* inherit = policy.if_contains("inherit");
  if (!inherit) return invalid_params("missing field `inherit` in envPolicy");
  if (!inherit->is_string()) return invalid_params("envPolicy.inherit must be a string");
  const std::string_view mode = inherit->get_string();
  if (mode != "all" && mode != "core" && mode != "none") {
    return invalid_params(
        fmt::format("unknown variant `{}`, expected one of `core`, `all`, `none`", mode));
  }
  const auto* ignore_defaults = policy.if_contains("ignoreDefaultExcludes");
  if (!ignore_defaults) return invalid_params("missing field `ignoreDefaultExcludes` in envPolicy");
  if (!ignore_defaults->is_bool())
    return invalid_params("envPolicy.ignoreDefaultExcludes must be a boolean");
  // Field errors name the envPolicy so the client knows which object was wrong.
  auto in_policy = [](Error e) {
    e.message += " in envPolicy";
    return e;
  };
  auto fields = Params::of(raw);
  if (!fields) return fields.error();
  auto exclude = fields->strings("exclude");
  if (!exclude) return in_policy(exclude.error());
  auto include_only = fields->strings("includeOnly");
  if (!include_only) return in_policy(include_only.error());
  if (!policy.if_contains("set")) return invalid_params("missing field `set` in envPolicy");
  auto set = string_map(policy.if_contains("set"), "envPolicy.set");
  if (!set) return set.error();

  std::map<std::string, std::string> env;
  if (mode != "none") {
    for (char** entry = server_environment; entry && *entry; ++entry) {
      std::string_view kv(*entry);
      const auto eq = kv.find('=');
      if (eq == std::string_view::npos || eq == 0) continue;
      std::string name(kv.substr(0, eq));
      if (mode == "core" &&
          std::find(kCoreNames.begin(), kCoreNames.end(), name) == kCoreNames.end()) {
        continue;
      }
      env.emplace(std::move(name), kv.substr(eq + 1));
    }
  }
  std::erase_if(env, [&](const auto& kv) {
    const auto& name = kv.first;
    if (!ignore_defaults->get_bool()) {
      for (const char* pattern : kDefaultExcludes)
        if (glob_match(pattern, name)) return true;
    }
    for (const auto& pattern : *exclude)
      if (glob_match(pattern, name)) return true;
    if (!include_only->empty()) {
      return std::none_of(include_only->begin(), include_only->end(),
                          [&](const std::string& p) { return glob_match(p, name); });
    }
    return false;
  });
  for (auto& [k, v] : *set) env[k] = v;
  return env;
}

}  // namespace

Expected<std::vector<std::string>> build_child_environment(const Params& params,
                                                           char** server_environment) {
  std::map<std::string, std::string> env;
  if (const auto* policy = params.find("envPolicy")) {
    auto applied = apply_policy(*policy, server_environment);
    if (!applied) return applied.error();
    env = std::move(*applied);
  }
  auto overlay = string_map(params.find("env"), "env");
  if (!overlay) return overlay.error();
  for (auto& [k, v] : *overlay) env[k] = v;
  std::vector<std::string> out;
  out.reserve(env.size());
  for (auto& [k, v] : env) {
    std::string entry = k;
    entry += '=';
    entry += v;
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace tether::exec
