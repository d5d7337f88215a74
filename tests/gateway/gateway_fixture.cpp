// What the gateway's end-to-end tests share (see gateway_fixture.hpp).
#include "gateway_fixture.hpp"

#include <algorithm>
#include <csignal>
#include <fstream>
#include <functional>
#include <set>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "async_test.hpp"
#include "build_paths.hpp"
#include "exec_server.hpp"
#include "mcp_fixtures.hpp"
#include "npm_peers.hpp"

namespace tether::gateway::fixture {

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

namespace {

// `owner` keeps `stream` alive while it is read.
asio::awaitable<void> drain(std::shared_ptr<process::Child> /*owner*/,
                            asio::posix::stream_descriptor* stream, std::shared_ptr<Output> into) {
  // A named local, not a temporary in the co_await expression: GCC 12 destroys that twice.
  const std::function<void(std::string_view)> append = [into](std::string_view line) {
    into->text.append(line);
    into->text.push_back('\n');
  };
  co_await process::read_lines(*stream, append);
  into->ended = true;
}

std::vector<std::string> sdk_argv(const std::string& scenario,
                                  const std::vector<std::string>& transport) {
  std::vector<std::string> argv{
      testing::node_binary().string(),
      std::string(testing::source_dir()) + "/tests/gateway/sdk_client.mjs",
      (testing::npm_root() / "node_modules").string(),
      scenario,
      "--prefix",
      "local__",
      "--prefix",
      "remote__"};
  argv.insert(argv.end(), transport.begin(), transport.end());
  return argv;
}

// The last line of `out` as JSON (null when it is not JSON).
json::value last_line_json(const std::string& out) {
  // npos + 1 is 0: no newline, from the start.
  std::string last_line = out.substr(0, out.find_last_not_of('\n') + 1);
  last_line = last_line.substr(last_line.rfind('\n') + 1);
  boost::system::error_code ec;
  auto report = json::parse(last_line, ec);
  return ec ? json::value() : report;
}

json::value empty_object() {
  return json::object();
}

// The report's steps; a failure (and nullptr) when it has none.
const json::object* steps_of(const json::value& report) {
  const auto* object = report.if_object();
  const auto* steps = object ? object->if_contains("steps") : nullptr;
  if (steps && steps->is_object()) return &steps->get_object();
  ADD_FAILURE() << "no steps in the report " << json::serialize(report);
  return nullptr;
}

}  // namespace

bool report_ok(const json::value& report) {
  return report.is_object() && report.as_object().if_contains("ok") && report.at("ok") == true;
}

std::optional<Running> start(const asio::any_io_executor& executor, std::vector<std::string> argv,
                             std::vector<std::string> env, bool speak_on_stdio,
                             process::StdinMode stdin_mode) {
  process::SpawnOptions options;
  options.argv = std::move(argv);
  options.env = std::move(env);
  options.stdin_mode = stdin_mode;
  options.contain = false;  // only the gateway's own mechanisms may end what it started
  auto child = process::Child::spawn(executor, options);
  if (!child) {
    ADD_FAILURE() << "cannot start " << options.argv.front() << ": " << child.error().message;
    return std::nullopt;
  }
  Running running{*child};
  asio::co_spawn(executor, drain(running.child, running.child->stderr_stream(), running.err),
                 asio::detached);
  if (speak_on_stdio) {
    running.out->ended = true;  // the transport owns stdout
  } else {
    asio::co_spawn(executor, drain(running.child, running.child->stdout_stream(), running.out),
                   asio::detached);
  }
  return running;
}

asio::awaitable<std::optional<process::ExitStatus>> exit_of(Running& running,
                                                            std::chrono::seconds bound,
                                                            const char* what) {
  asio::steady_timer deadline(co_await asio::this_coro::executor, bound);
  auto ended = co_await (running.child->wait() || deadline.async_wait(asio::use_awaitable));
  if (ended.index() == 1) {
    ADD_FAILURE() << what << " did not exit within " << bound.count() << " s; stderr so far:\n"
                  << running.err->text;
    running.child->signal_group(SIGKILL);
    co_await running.child->wait();
    co_return std::nullopt;
  }
  const std::function<bool()> streams_ended = [&running] {
    return running.out->ended && running.err->ended;
  };
  EXPECT_TRUE(co_await testing::eventually(streams_ended, 10s))
      << what << ": its output streams stayed open after it exited";
  co_return std::get<0>(ended);
}

asio::awaitable<void> kill_parent_expect_gateway_exit(Running& shell) {
  pid_t gateway = -1;
  for (pid_t pid : testing::children_of(shell.child->pid()))
    if (testing::command_line(pid).find("mcp serve") != std::string::npos) gateway = pid;
  if (gateway <= 0) {
    ADD_FAILURE() << "the shell runs no gateway; stderr:\n" << shell.err->text;
    co_return;
  }
  ::kill(shell.child->pid(), SIGKILL);  // the shell alone, not its group
  co_await shell.child->wait();
  // Re-parented to this subreaper: ours to reap.
  int raw = 0;
  const std::function<bool()> reaped = [gateway, &raw] {
    return ::waitpid(gateway, &raw, WNOHANG) == gateway;
  };
  const bool ended = co_await testing::eventually(reaped, 60s);
  EXPECT_TRUE(ended) << "the gateway outlived its parent; stderr:\n" << shell.err->text;
  if (!ended) {
    ::kill(gateway, SIGKILL);
    ::waitpid(gateway, nullptr, 0);
  } else {
    EXPECT_TRUE(WIFEXITED(raw) && WEXITSTATUS(raw) == 0) << "status " << raw << "; stderr:\n"
                                                         << shell.err->text;
  }
}

std::vector<std::string> under_shell(const std::vector<std::string>& argv) {
  std::vector<std::string> shell{"/bin/sh", "-c", "\"$0\" \"$@\"; :"};
  shell.insert(shell.end(), argv.begin(), argv.end());
  return shell;
}

std::string server_entry(const std::string& name, bool remote, std::vector<std::string> args,
                         const std::string& extra) {
  std::string entry = "[mcp_servers." + name +
                      "]\ncommand = " + host::toml_basic_string(testing::test_mcp_server()) +
                      "\nargs = [";
  for (std::size_t i = 0; i < args.size(); ++i)
    entry += (i ? ", " : "") + host::toml_basic_string(args[i]);
  entry += "]\n";
  if (remote) entry += "environment = \"sandbox\"\n";
  return entry + extra + "\n";
}

std::string local_and_remote(const std::vector<std::string>& args) {
  return std::string(kSandbox) + server_entry("local", false, args) +
         server_entry("remote", true, args);
}

std::vector<std::string> names_of(const json::array& items) {
  std::vector<std::string> names;
  for (const auto& item : items)
    if (const auto* name = item.as_object().if_contains("name"); name && name->is_string())
      names.emplace_back(name->get_string());
  return names;
}

bool contains(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool contains(const json::value& array, std::string_view text) {
  if (!array.is_array()) return false;
  for (const auto& item : array.as_array())
    if (item.is_string() && item.get_string() == text) return true;
  return false;
}

void expect_list_report(const json::value& report) {
  const auto* steps = steps_of(report);
  if (!steps) return;
  const auto& step = *steps;
  EXPECT_EQ(step.at("initialize").at("serverInfo").at("name"), "tether");
  for (const char* tool : {"local__echo", "remote__echo", "local__crash", "remote__add_tool"})
    EXPECT_TRUE(contains(step.at("tools"), tool)) << tool << " missing: " << step.at("tools");
  EXPECT_TRUE(contains(step.at("prompts"), "local__greet")) << step.at("prompts");
  EXPECT_TRUE(contains(step.at("prompts"), "remote__greet")) << step.at("prompts");
  // Both servers list the same resources and template: each is offered once.
  const auto& templates = step.at("resource_templates").as_array();
  EXPECT_EQ(templates, json::array{"test://template/{id}"});
  const auto& resources = step.at("resources").as_array();
  EXPECT_FALSE(resources.empty());
  std::set<std::string> unique;
  for (const auto& uri : resources) unique.insert(std::string(uri.as_string()));
  EXPECT_EQ(unique.size(), resources.size()) << "a URI is listed twice: " << resources;
}

void expect_tour_report(const json::value& report) {
  const auto* steps = steps_of(report);
  if (!steps) return;
  const auto& step = *steps;
  for (const char* echo : {"echo:local__", "echo:remote__"}) {
    ASSERT_TRUE(step.contains(echo)) << json::serialize(report);
    EXPECT_NE(std::string(step.at(echo).as_string()).find("hi"), std::string::npos);
  }
  EXPECT_EQ(step.at("prompt"), "Hello, Ada!");
  EXPECT_NE(std::string(step.at("elicitation").as_string()).find("Grace"), std::string::npos)
      << step.at("elicitation");
  EXPECT_NE(std::string(step.at("sampling").as_string()).find("sampled by sdk"), std::string::npos);
  EXPECT_NE(std::string(step.at("roots").as_string()).find("sdk-root"), std::string::npos);
  EXPECT_TRUE(std::string(step.at("list_changed").at("tool").as_string()).starts_with("local__"))
      << step.at("list_changed");
  EXPECT_EQ(step.at("logging").at("logger"), "local/test");
  ASSERT_TRUE(step.contains("subscribe")) << json::serialize(report);
  EXPECT_EQ(step.at("subscribe"), "test://resource/1");
  EXPECT_EQ(step.at("tool_error").at("code"), -32602);
}

// --- the fixture ------------------------------------------------------------------------------

void GatewayFixture::SetUp() {
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  dir_ = fs::temp_directory_path() / testing::unique_marker("gateway-test");
  fs::create_directories(dir_ / "home");
  env_ = testing::host_environment((dir_ / "home").string());
}

void GatewayFixture::TearDown() {
  testing::expect_no_children({}, 15s, "at the end of the test");
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

std::string GatewayFixture::write_config(const std::string& text) {
  const auto path = dir_ / "gateway.toml";
  std::ofstream(path) << text;
  return path.string();
}

std::vector<std::string> GatewayFixture::serve(const std::string& config,
                                               std::vector<std::string> extra) const {
  std::vector<std::string> argv{testing::tether_binary(), "mcp", "serve", "--config", config};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

GatewayFixture::Exit GatewayFixture::run_unattended(const std::string& config,
                                                    std::vector<std::string> extra) {
  Exit exit;
  const auto argv = serve(config, std::move(extra));
  testing::run_async(
      [&]() -> asio::awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        auto running = start(executor, argv, env_, false);
        CO_ASSERT_TRUE(running.has_value());
        auto status = co_await exit_of(*running, 60s, "tether mcp serve");
        exit.err = running->err->text;
        if (status) exit.code = status->code;
        EXPECT_EQ(running->out->text, "") << "the gateway wrote to stdout unasked";
      },
      90s, "tether mcp serve left alone");
  return exit;
}

asio::awaitable<json::value> GatewayFixture::sdk_report(const std::string& scenario,
                                                        const std::vector<std::string>& transport) {
  return node_report(sdk_argv(scenario, transport), "node sdk_client.mjs " + scenario);
}

asio::awaitable<json::value> GatewayFixture::node_report(std::vector<std::string> argv,
                                                         std::string what) {
  const auto executor = co_await asio::this_coro::executor;
  auto running = start(executor, argv, env_, false, process::StdinMode::closed);
  if (!running) co_return empty_object();
  auto status = co_await exit_of(*running, 180s, what.c_str());
  if (!status) co_return empty_object();
  const std::string& out = running->out->text;
  const auto report = last_line_json(out);
  EXPECT_TRUE(report.is_object()) << "no JSON report on stdout:\n"
                                  << out << "\nstderr:\n"
                                  << running->err->text;
  EXPECT_TRUE(report_ok(report) && status->code == 0)
      << "exit " << status->code << ", report " << out << "stderr:\n"
      << running->err->text;
  if (!report.is_object()) co_return empty_object();
  co_return report;
}

json::value GatewayFixture::sdk_client(const std::string& scenario, const std::string& config) {
  json::value report = empty_object();
  std::vector<std::string> transport{"--"};
  const auto gateway = serve(config);
  transport.insert(transport.end(), gateway.begin(), gateway.end());
  testing::run_async(
      [&]() -> asio::awaitable<void> { report = co_await sdk_report(scenario, transport); }, 240s,
      "sdk_client.mjs " + scenario);
  return report;
}

}  // namespace tether::gateway::fixture
