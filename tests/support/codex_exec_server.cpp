// Test support: the stock codex exec-server from the npm install (see codex_exec_server.hpp).
#include "codex_exec_server.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <signal.h>
#include <stdexcept>
#include <unistd.h>

#include <gtest/gtest.h>

#include "exec_server.hpp"

namespace tether::testing {
namespace fs = std::filesystem;

namespace {

// codex reads its config and state (and the exec-server environment variables) from these; the
// stock peer under test must not pick them up from the machine running the tests.
bool is_codex_setting(std::string_view kv) {
  return kv.starts_with("CODEX_") || kv.starts_with("OPENAI_");
}

std::string unique_name(const std::string& stem) {
  static int counter = 0;
  return stem + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

}  // namespace

fs::path codex_binary() {
  // The platform package @openai/codex@<v>-linux-x64 carries the musl binary itself (its
  // vendor/<target>/codex-package.json names bin/codex as the entrypoint); the JS launcher of the
  // plain version would only find and exec this same file.
  const fs::path binary =
      npm_root() / "node_modules/@openai/codex/vendor/x86_64-unknown-linux-musl/bin/codex";
  if (::access(binary.c_str(), X_OK) != 0)
    throw std::runtime_error("codex binary missing or not executable: " + binary.string() +
                             " (layout of the pinned @openai/codex changed?)");
  return binary;
}

std::vector<std::string> codex_environment(const fs::path& codex_home) {
  std::vector<std::string> env;
  for (auto& kv : test_environment())
    if (!is_codex_setting(kv)) env.push_back(std::move(kv));
  env.push_back("CODEX_HOME=" + codex_home.string());
  return env;
}

CodexExecServer::CodexExecServer() : CodexExecServer(Options{}) {}

CodexExecServer::CodexExecServer(Options options)
    : log_path_(
          (fs::temp_directory_path() / (unique_name("tether-test-codex-") + ".log")).string()) {
  const fs::path binary = codex_binary();
  // A fresh CODEX_HOME per server: nothing read from or written to ~/.codex. codex warns on
  // stderr that it will not create its PATH helper aliases under a temporary directory; the
  // exec-server does not need them.
  codex_home_ = fs::temp_directory_path() / unique_name("tether-test-codex-home-");
  fs::create_directories(codex_home_);

  process::SpawnOptions spawn;
  // Through `sh -c 'exec ...'` so stderr goes to a file without a reader in the test; the pid
  // stays codex's.
  spawn.argv = {"/bin/sh",         "-c",          "exec \"$0\" \"$@\" 2>>\"$TETHER_TEST_LOG\"",
                binary.string(),   "exec-server", "--listen",
                "ws://127.0.0.1:0"};
  spawn.argv.insert(spawn.argv.end(), options.args.begin(), options.args.end());
  spawn.env = codex_environment(codex_home_);
  spawn.env.push_back("TETHER_TEST_LOG=" + log_path_);
  spawn.env.insert(spawn.env.end(), options.extra_env.begin(), options.extra_env.end());
  spawn.stdin_mode = process::StdinMode::closed;
  // Directly our child, so a census can exempt it by pid().
  spawn.contain = false;

  auto spawned = process::Child::spawn(io_.get_executor(), spawn);
  if (!spawned) {
    fs::remove_all(codex_home_);
    throw std::runtime_error("cannot start codex: " + spawned.error().message);
  }
  child_ = *spawned;

  // codex prints its listening URL, `ws://127.0.0.1:<port>`, as the only stdout line.
  url_ = read_first_line(io_, *child_, std::chrono::seconds(30)).value_or("");
  const auto colon = url_.rfind(':');
  if (!url_.starts_with("ws://127.0.0.1:") || colon == std::string::npos) {
    child_->signal_group(SIGKILL);
    wait_exit(std::chrono::seconds(5));
    child_.reset();
    fs::remove_all(codex_home_);
    throw std::runtime_error("codex exec-server printed no ws:// URL line (got '" + url_ +
                             "'); its stderr:\n" + log());
  }
  port_ = static_cast<unsigned short>(std::stoi(url_.substr(colon + 1)));
}

CodexExecServer::~CodexExecServer() {
  stop_child(io_, *child_, "codex exec-server", log_path_);
  if (::testing::Test::HasFailure())
    std::fprintf(stderr, "codex exec-server stderr (%s):\n%s\n", log_path_.c_str(), log().c_str());
  child_.reset();
  std::error_code ignored;
  fs::remove_all(codex_home_, ignored);
  if (!::testing::Test::HasFailure()) fs::remove(log_path_, ignored);
}

std::optional<process::ExitStatus> CodexExecServer::wait_exit(std::chrono::milliseconds deadline) {
  return wait_child_exit(io_, *child_, deadline);
}

std::string CodexExecServer::log() const {
  return read_text_file(log_path_);
}

}  // namespace tether::testing
