// The fixture of the `tether` end-to-end tests (cli_test.cpp, config_formats_test.cpp): a temp
// HOME for each test, tether run as a child with its own environment to its end, and the census
// (this test process is a child subreaper, so anything tether leaves behind is re-parented here;
// after each run no child of ours may be left).
//
// Owns: running the binary and collecting its exit code, stdout and stderr; temp files under the
// test's home, removed after each test. Does not own: what any test asserts.
#pragma once

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <sys/prctl.h>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "build_paths.hpp"
#include "exec_server.hpp"
#include "mcp_fixtures.hpp"
#include <tether/process/child.hpp>

namespace tether::cli {

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;

const char* const kServer = testing::test_mcp_server();
const char* const kSource = testing::source_dir();

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
  json::value json() const {
    boost::system::error_code ec;
    auto value = json::parse(out, ec);
    EXPECT_FALSE(ec) << "stdout is not JSON: " << out;
    return value;
  }
};

class CliFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    home_ = fs::temp_directory_path() / testing::unique_marker("cli-test");
    fs::create_directories(home_ / "home");
    env_ = testing::host_environment((home_ / "home").string());
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(home_, ignored);
  }

  void set_env(const std::string& name, const std::string& value) {
    std::erase_if(env_, [&](const std::string& e) { return e.starts_with(name + "="); });
    env_.push_back(name + "=" + value);
  }
  std::string write(const std::string& name, const std::string& text) {
    const auto path = home_ / name;
    std::ofstream(path) << text;
    return path.string();
  }
  std::string read(const std::string& path) { return testing::read_text_file(path); }

  // Runs `tether args...` to its end (SIGINT after `interrupt_after` when set), then checks
  // that nothing it started is left.
  Outcome tether(std::vector<std::string> args,
                 std::optional<std::chrono::milliseconds> interrupt_after = std::nullopt) {
    Outcome run;
    testing::run_async(
        [&]() -> asio::awaitable<void> {
          auto executor = co_await asio::this_coro::executor;
          process::SpawnOptions options;
          options.argv = {testing::tether_binary()};
          options.argv.insert(options.argv.end(), args.begin(), args.end());
          options.env = env_;
          options.stdin_mode = process::StdinMode::closed;
          options.cwd = cwd_;
          options.contain = false;  // the census must see what tether leaves behind
          auto child = process::Child::spawn(executor, options);
          CO_ASSERT_TRUE(child.has_value());
          int streams = 2;
          auto drain = [&](asio::posix::stream_descriptor* stream,
                           std::string& into) -> asio::awaitable<void> {
            co_await process::read_lines(*stream, [&](std::string_view line) {
              into.append(line);
              into.push_back('\n');
            });
            --streams;
          };
          asio::co_spawn(executor, drain((*child)->stdout_stream(), run.out), asio::detached);
          asio::co_spawn(executor, drain((*child)->stderr_stream(), run.err), asio::detached);
          if (interrupt_after) {
            co_await testing::sleep_for(*interrupt_after);
            ::kill((*child)->pid(), SIGINT);
          }
          auto status = co_await (*child)->wait();
          run.code = status.code;
          EXPECT_TRUE(
              co_await testing::eventually([&] { return streams == 0; }, std::chrono::seconds{10}));
        },
        std::chrono::seconds{120}, "tether " + (args.empty() ? std::string() : args.front()));
    expect_no_leftovers();
    return run;
  }

  // `tether mcp list` with `text` as the config file `name` fails as a config error (exit 2),
  // with a line of stderr that starts `error: <path><message>`.
  void expect_config_error(const std::string& name, const std::string& text,
                           const std::string& message) {
    const auto config = write(name, text);
    auto run = tether({"mcp", "--config", config, "list"});
    EXPECT_EQ(run.code, 2) << text;
    EXPECT_NE(("\n" + run.err).find("\nerror: " + config + message), std::string::npos)
        << "config:\n"
        << text << "\nstderr:\n"
        << run.err;
  }

  // Our children besides the exempt ones (a peer the test itself runs, e.g. codex).
  void expect_no_leftovers() {
    testing::expect_no_children(exempt_, std::chrono::seconds{10}, "after tether exited");
  }

  // A config with the test server as `[mcp_servers.<name>]` plus `extra` lines.
  std::string test_server(const std::string& name, const std::string& args = "[]",
                          const std::string& extra = "") {
    return "[mcp_servers." + name + "]\ncommand = \"" + kServer + "\"\nargs = " + args + "\n" +
           extra + "\n";
  }

  fs::path home_;
  std::string cwd_;  // tether's working directory (empty: this process's)
  std::vector<std::string> env_;
  std::vector<pid_t> exempt_;
};

}  // namespace tether::cli
