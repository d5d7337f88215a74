// What the end-to-end tests of `tether mcp serve` share (serve_test.cpp over stdio,
// http_test.cpp over streamable HTTP): the real binary started uncontained as a child of the
// test, its output drained, its exit awaited within a bound; config snippets placing the
// project's test server locally and on a spawned executor; the official TypeScript SDK client
// (sdk_client.mjs under Node) and the checks of its reports; and the fixture that makes the test
// a child subreaper and ends every test with the census of what is left running.
// The gateway runs uncontained (SpawnOptions::contain false; not mcp::launch_local, whose
// supervisor would end the gateway's leftovers itself and hide them from the census).
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>

#include <tether/host/config_edit.hpp>
#include <tether/process/child.hpp>

namespace tether::gateway::fixture {

// A spawned executor (`tether exec-server` started by the gateway itself), as servers with
// `environment = "sandbox"` use it.
inline constexpr std::string_view kSandbox = "[environments.sandbox]\nspawn = true\n\n";

// What a child wrote on one stream, and whether that stream has ended.
struct Output {
  std::string text;
  bool ended = false;
};

// A child of the test: the gateway, the shell around it, or Node.
struct Running {
  std::shared_ptr<process::Child> child;
  std::shared_ptr<Output> out = std::make_shared<Output>();
  std::shared_ptr<Output> err = std::make_shared<Output>();
};

// Starts `argv` uncontained with stdin a pipe (or /dev/null); stderr is drained, and stdout too
// unless the test speaks MCP on it. nullopt (a test failure) when it did not start.
std::optional<Running> start(const boost::asio::any_io_executor& executor,
                             std::vector<std::string> argv, std::vector<std::string> env,
                             bool speak_on_stdio,
                             process::StdinMode stdin_mode = process::StdinMode::pipe);

// The child's exit status once it exited by itself within `bound` and its drained streams
// ended; nullopt when it did not exit: a test failure naming `what` with its stderr, and the
// child is killed.
boost::asio::awaitable<std::optional<process::ExitStatus>> exit_of(Running& running,
                                                                   std::chrono::seconds bound,
                                                                   const char* what);

// `shell` runs the gateway as its child (see under_shell): SIGKILLs the shell alone and expects
// the gateway, re-parented to this subreaper, to end by itself with exit 0 (its parent-death
// signal); a gateway still running after the bound is a failure and is killed.
boost::asio::awaitable<void> kill_parent_expect_gateway_exit(Running& shell);

// `argv` under a shell that stays its parent (`; :` keeps sh from exec'ing it).
std::vector<std::string> under_shell(const std::vector<std::string>& argv);

// `[mcp_servers.<name>]`: the test server with `args`, on the spawned executor when `remote`,
// plus `extra` lines.
std::string server_entry(const std::string& name, bool remote, std::vector<std::string> args,
                         const std::string& extra = "");
// kSandbox, and the test server as `local` here and as `remote` on the spawned executor.
std::string local_and_remote(const std::vector<std::string>& args);

std::vector<std::string> names_of(const boost::json::array& items);
bool contains(const std::vector<std::string>& names, std::string_view name);
// Whether the JSON array `array` holds the string `text`.
bool contains(const boost::json::value& array, std::string_view text);

// The checks of sdk_client.mjs reports against a gateway with `local` and `remote` servers
// (local_and_remote): what `list` saw, and what the `tour` did through both prefixes.
void expect_list_report(const boost::json::value& report);
void expect_tour_report(const boost::json::value& report);

class GatewayFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Writes the config file (dir_/gateway.toml) and returns its path.
  std::string write_config(const std::string& text);
  // `tether mcp serve --config <config> <extra>...`.
  std::vector<std::string> serve(const std::string& config,
                                 std::vector<std::string> extra = {}) const;

  struct Exit {
    int code = -1;  // -1: it did not exit by itself (the test has failed)
    std::string err;
  };
  // The gateway with `config` left alone (stdin open, no client) until it exits by itself; it
  // must not write to stdout.
  Exit run_unattended(const std::string& config, std::vector<std::string> extra = {});

  // Runs sdk_client.mjs `scenario` (prefixes local__ and remote__) with `transport`: either
  // `-- COMMAND...` (stdio) or `--url URL --token T`. Its JSON report, an empty object when
  // there is none; a report that is not ok, or a non-zero exit, is a test failure.
  boost::asio::awaitable<boost::json::value> sdk_report(const std::string& scenario,
                                                        const std::vector<std::string>& transport);
  // The same for any Node peer that prints such a report: `argv` runs it, `what` names it.
  boost::asio::awaitable<boost::json::value> node_report(std::vector<std::string> argv,
                                                         std::string what);
  // sdk_report over stdio, with the gateway for `config` as Node's child.
  boost::json::value sdk_client(const std::string& scenario, const std::string& config);

  std::filesystem::path dir_;
  std::vector<std::string> env_;
};

// A Node peer's report says every step passed.
bool report_ok(const boost::json::value& report);

}  // namespace tether::gateway::fixture
