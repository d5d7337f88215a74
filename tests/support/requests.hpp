// Test support: request params for the executor, built in plain functions because GCC 12
// miscompiles braced JSON literals inside coroutine bodies and co_await expressions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json.hpp>

namespace tether::testing {

namespace json = boost::json;

struct StartOptions {
  bool tty = false;
  bool pipe_stdin = false;
  json::value arg0 = nullptr;
  json::object env = json::object{{"PATH", "/usr/bin:/bin"}};
  std::string cwd = "/tmp";
};

// process/start params for argv, or for `/bin/sh -c script`.
json::object start_argv(std::string id, json::array argv, StartOptions options);
json::object start_sh(std::string id, std::string script, StartOptions options);
// With default options (a default argument would build StartOptions' braced env inside the
// caller's co_await expression, which GCC 12 miscompiles).
json::object start_argv(std::string id, json::array argv);
json::object start_sh(std::string id, std::string script);
// Default options with pipeStdin true.
StartOptions piped_stdin();
// `sleep <seconds>` (tests use distinct fractional seconds as process markers).
json::object start_sleep(std::string id, std::string seconds);

// process/start params exactly as the codex 0.169 client sends them for MCP servers
// (docs/exec-protocol.md "Example session"): file: URI cwd, envPolicy core, empty env.
json::object codex_envpolicy_start(const std::string& id, const std::string& cwd_uri,
                                   json::array argv);

json::object read_params(std::string id, std::optional<std::int64_t> after_seq = {},
                         std::optional<std::int64_t> max_bytes = {},
                         std::optional<std::int64_t> wait_ms = {});
json::object write_params(std::string id, std::string_view bytes,
                          std::optional<std::string> write_id = {});
json::object id_params(std::string id);

}  // namespace tether::testing
