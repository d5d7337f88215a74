// Test support: executor request params (see requests.hpp).
#include "requests.hpp"

#include "test_client.hpp"

namespace tether::testing {

json::object start_argv(std::string id, json::array argv, StartOptions options) {
  return json::object{{"processId", std::move(id)},
                      {"argv", std::move(argv)},
                      {"cwd", std::move(options.cwd)},
                      {"env", std::move(options.env)},
                      {"tty", options.tty},
                      {"pipeStdin", options.pipe_stdin},
                      {"arg0", std::move(options.arg0)}};
}

json::object start_sh(std::string id, std::string script, StartOptions options) {
  return start_argv(std::move(id), json::array{"/bin/sh", "-c", std::move(script)},
                    std::move(options));
}

json::object start_argv(std::string id, json::array argv) {
  return start_argv(std::move(id), std::move(argv), StartOptions{});
}
json::object start_sh(std::string id, std::string script) {
  return start_sh(std::move(id), std::move(script), StartOptions{});
}

StartOptions piped_stdin() {
  StartOptions options;
  options.pipe_stdin = true;
  return options;
}

json::object start_sleep(std::string id, std::string seconds) {
  return start_argv(std::move(id), json::array{"sleep", std::move(seconds)});
}

json::object codex_envpolicy_start(const std::string& id, const std::string& cwd_uri,
                                   json::array argv) {
  return json::object{{"processId", id},
                      {"argv", std::move(argv)},
                      {"cwd", cwd_uri},
                      {"envPolicy", json::object{{"inherit", "core"},
                                                 {"ignoreDefaultExcludes", true},
                                                 {"exclude", json::array{}},
                                                 {"set", json::object{}},
                                                 {"includeOnly", json::array{}}}},
                      {"env", json::object{}},
                      {"tty", false},
                      {"pipeStdin", true},
                      {"arg0", nullptr},
                      {"sandbox", nullptr},
                      {"enforceManagedNetwork", false},
                      {"managedNetwork", nullptr}};
}

json::object read_params(std::string id, std::optional<std::int64_t> after_seq,
                         std::optional<std::int64_t> max_bytes,
                         std::optional<std::int64_t> wait_ms) {
  json::object params{{"processId", std::move(id)}};
  params["afterSeq"] = after_seq ? json::value(*after_seq) : json::value(nullptr);
  params["maxBytes"] = max_bytes ? json::value(*max_bytes) : json::value(nullptr);
  params["waitMs"] = wait_ms ? json::value(*wait_ms) : json::value(nullptr);
  return params;
}

json::object write_params(std::string id, std::string_view bytes,
                          std::optional<std::string> write_id) {
  json::object params{{"processId", std::move(id)}, {"chunk", b64(bytes)}};
  if (write_id) params["writeId"] = *write_id;
  return params;
}

json::object id_params(std::string id) {
  return json::object{{"processId", std::move(id)}};
}

}  // namespace tether::testing
