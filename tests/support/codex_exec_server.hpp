// Test support: a stock `codex exec-server` (npm @openai/codex, pinned in
// tests/npm/package-lock.json) as a child of the test, for interop tests against the real peer.
//
// Owns: locating the npm install (scripts/install-test-packages defines its path; `make test`
// runs it before ctest), the codex process with a private CODEX_HOME, its URL line and stderr
// log. On destruction it ends codex's process group (SIGTERM, bounded wait, SIGKILL) and removes
// the CODEX_HOME. Does not own: any client side; tests talk to it with TestClient::connect(port).
// A missing install is a test failure (an exception naming the script), never a skip.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "npm_peers.hpp"
#include <tether/process/child.hpp>

namespace tether::testing {

// The native codex binary inside that install. Throws when it is missing.
std::filesystem::path codex_binary();
// The environment a codex process under test gets: this test's, without the CODEX_* and OPENAI_*
// settings of the machine, with CODEX_HOME=`codex_home`.
std::vector<std::string> codex_environment(const std::filesystem::path& codex_home);

class CodexExecServer {
 public:
  struct Options {
    // After `exec-server --listen ws://127.0.0.1:0`; codex 0.169 needs no flag for
    // unauthenticated loopback WebSocket (auth is opt-in through --ws-auth).
    std::vector<std::string> args;
    std::vector<std::string> extra_env;  // "NAME=value"
  };
  CodexExecServer();
  explicit CodexExecServer(Options options);
  ~CodexExecServer();
  CodexExecServer(const CodexExecServer&) = delete;
  CodexExecServer& operator=(const CodexExecServer&) = delete;

  const std::string& url() const { return url_; }
  unsigned short port() const { return port_; }
  pid_t pid() const { return child_->pid(); }
  const std::filesystem::path& codex_home() const { return codex_home_; }
  // What codex wrote on stderr so far.
  std::string log() const;

 private:
  std::optional<process::ExitStatus> wait_exit(std::chrono::milliseconds deadline);

  boost::asio::io_context io_;
  std::filesystem::path codex_home_;
  std::string log_path_;
  std::shared_ptr<process::Child> child_;
  std::string url_;
  unsigned short port_ = 0;
};

}  // namespace tether::testing
