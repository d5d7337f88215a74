// Test support: server-everything over streamable HTTP (see everything_http.hpp).
#include "everything_http.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "exec_server.hpp"
#include "npm_peers.hpp"

namespace tether::testing {

EverythingHttp::EverythingHttp()
    : log_path_((std::filesystem::temp_directory_path() /
                 ("tether-everything-" + std::to_string(::getpid()) + "-" +
                  std::to_string(reinterpret_cast<std::uintptr_t>(this)) + ".log"))
                    .string()) {
  port_ = free_port();
  process::SpawnOptions spawn;
  // Through `sh -c 'exec ...'` so its output goes to a file without a reader in the test; the
  // pid stays node's.
  spawn.argv = {"/bin/sh",
                "-c",
                "exec \"$0\" \"$@\" >>\"$TETHER_TEST_LOG\" 2>&1",
                node_binary().string(),
                npm_package_file("@modelcontextprotocol/server-everything/dist/index.js").string(),
                "streamableHttp"};
  spawn.env = {"PATH=/usr/bin:/bin", "PORT=" + std::to_string(port_),
               "TETHER_TEST_LOG=" + log_path_};
  spawn.stdin_mode = process::StdinMode::closed;
  spawn.contain = false;
  auto spawned = process::Child::spawn(io_.get_executor(), spawn);
  if (!spawned)
    throw std::runtime_error("cannot start server-everything: " + spawned.error().message);
  child_ = *spawned;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!logged("listening on port") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (!logged("listening on port")) {
    const auto text = log();
    stop_child(io_, *child_, "server-everything", log_path_);
    child_.reset();
    std::remove(log_path_.c_str());
    throw std::runtime_error("server-everything did not listen within 30 s; its log:\n" + text);
  }
}

EverythingHttp::~EverythingHttp() {
  stop_child(io_, *child_, "server-everything", log_path_);
  if (::testing::Test::HasFailure())
    std::fprintf(stderr, "server-everything log (%s):\n%s\n", log_path_.c_str(), log().c_str());
  else
    std::remove(log_path_.c_str());
}

std::string EverythingHttp::url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/mcp";
}

std::string EverythingHttp::log() const {
  return read_text_file(log_path_);
}

}  // namespace tether::testing
