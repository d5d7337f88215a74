// Test support: server-everything (npm @modelcontextprotocol/server-everything, pinned in
// tests/npm/package-lock.json) in its streamable HTTP mode, as a child of the test.
//
// Owns: the Node process on a free port (server-everything listens on every interface; tests
// only ever reach it on 127.0.0.1), its log (stdout and stderr, where it reports each session,
// stream and DELETE) in a file tests read, and ending its process group on destruction. A
// server that does not listen within 30 s is a test failure (an exception with its log).
#pragma once

#include <memory>
#include <string>
#include <sys/types.h>

#include <boost/asio/io_context.hpp>

#include <tether/process/child.hpp>

namespace tether::testing {

class EverythingHttp {
 public:
  EverythingHttp();
  ~EverythingHttp();
  EverythingHttp(const EverythingHttp&) = delete;
  EverythingHttp& operator=(const EverythingHttp&) = delete;

  unsigned short port() const { return port_; }
  // http://127.0.0.1:<port>/mcp
  std::string url() const;
  pid_t pid() const { return child_->pid(); }
  // What the server wrote so far.
  std::string log() const;
  bool logged(const std::string& text) const { return log().find(text) != std::string::npos; }

 private:
  boost::asio::io_context io_;
  std::shared_ptr<process::Child> child_;
  std::string log_path_;
  unsigned short port_ = 0;
};

}  // namespace tether::testing
