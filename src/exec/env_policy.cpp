// envPolicy, in the order codex applies it: inherit, default excludes, exclude, includeOnly,
// set, then the explicit env on top. Patterns are shell globs matched case-insensitively.
#include "env_policy.hpp"

#include <algorithm>
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

// A name the OS can carry: not empty, no '=', and no NUL in the name or the value.
std::optional<Error> variable_error(std::string_view field,
                                    const std::map<std::string, std::string>& variables) {
  for (const auto& [name, value] : variables) {
    if (auto bad = nul_byte_error(field, name)) return bad;
    if (auto bad = nul_byte_error(field, value)) return bad;
    if (name.empty() || name.find('=') != std::string::npos)
      return invalid_params(fmt::format("invalid environment variable name '{}'", name));
  }
  return std::nullopt;
}

std::map<std::string, std::string> apply_policy(const EnvPolicy& policy,
                                                char** server_environment) {
  std::map<std::string, std::string> env;
  if (policy.inherit != EnvPolicy::Inherit::none) {
    for (char** entry = server_environment; entry && *entry; ++entry) {
      std::string_view kv(*entry);
      const auto eq = kv.find('=');
      if (eq == std::string_view::npos || eq == 0) continue;
      std::string name(kv.substr(0, eq));
      if (policy.inherit == EnvPolicy::Inherit::core &&
          std::find(kCoreNames.begin(), kCoreNames.end(), name) == kCoreNames.end()) {
        continue;
      }
      env.emplace(std::move(name), kv.substr(eq + 1));
    }
  }
  std::erase_if(env, [&](const auto& kv) {
    const auto& name = kv.first;
    if (!policy.ignore_default_excludes) {
      for (const char* pattern : kDefaultExcludes)
        if (glob_match(pattern, name)) return true;
    }
    for (const auto& pattern : policy.exclude)
      if (glob_match(pattern, name)) return true;
    if (!policy.include_only.empty()) {
      return std::none_of(policy.include_only.begin(), policy.include_only.end(),
                          [&](const std::string& p) { return glob_match(p, name); });
    }
    return false;
  });
  for (const auto& [k, v] : policy.set) env[k] = v;
  return env;
}

}  // namespace

Expected<std::vector<std::string>> child_environment(const std::map<std::string, std::string>& env,
                                                     const std::optional<EnvPolicy>& policy,
                                                     char** server_environment) {
  std::map<std::string, std::string> merged;
  if (policy) {
    if (auto bad = variable_error("envPolicy.set", policy->set)) return *bad;
    merged = apply_policy(*policy, server_environment);
  }
  if (auto bad = variable_error("env", env)) return *bad;
  for (const auto& [k, v] : env) merged[k] = v;
  std::vector<std::string> out;
  out.reserve(merged.size());
  for (auto& [k, v] : merged) {
    std::string entry = k;
    entry += '=';
    entry += v;
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace tether::exec
