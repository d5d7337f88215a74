// Test support: the real `tether exec-server` binary as a child of the test, and helpers to
// talk to it over real sockets (WebSocket, raw HTTP) or its stdio.
//
// ExecServer owns the executor process: it reads the URL line, keeps stderr in a log file, and
// on destruction ends the executor (SIGTERM, bounded wait, then SIGKILL to its group) so a
// failing test leaves nothing behind.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http.hpp>

#include "build_paths.hpp"
#include <tether/jsonrpc/transport.hpp>
#include <tether/process/child.hpp>

namespace tether::testing {

// This test process's environment without variables that would change the executor's auth.
std::vector<std::string> test_environment();
// The environment for a `tether` host under test: TETHER_HOME=`home`, NO_COLOR=1, and this
// process's variables but the other TETHER_* ones.
std::vector<std::string> host_environment(const std::string& home);

// For the server processes tests start: the child's exit within `deadline` (running `io` until
// then), and the whole text of a (log) file.
std::optional<process::ExitStatus> wait_child_exit(boost::asio::io_context& io,
                                                   process::Child& child,
                                                   std::chrono::milliseconds deadline);
std::string read_text_file(const std::string& path);
// SIGTERM to the group, up to 10 s for the exit (else a test failure showing `log`), then SIGKILL.
void stop_child(boost::asio::io_context& io, process::Child& child, const std::string& what,
                const std::string& log_path);
// The first stdout line of a server that announces its URL that way (without the newline),
// running `io` for up to `deadline`; nullopt when no whole line came in time.
std::optional<std::string> read_first_line(boost::asio::io_context& io, process::Child& child,
                                           std::chrono::milliseconds deadline);

class ExecServer {
 public:
  struct Options {
    std::vector<std::string> args{"--insecure-no-auth"};
    std::vector<std::string> extra_env;  // "NAME=value"
    std::string log_level = "debug";     // --log-level: tests see every line by default
  };
  ExecServer();
  explicit ExecServer(const Options& options);
  ~ExecServer();
  ExecServer(const ExecServer&) = delete;
  ExecServer& operator=(const ExecServer&) = delete;

  const std::string& url() const { return url_; }
  unsigned short port() const { return port_; }
  pid_t pid() const { return child_->pid(); }
  void signal(int sig) const;
  // The exit status once the executor exited within `deadline`.
  std::optional<process::ExitStatus> wait_exit(std::chrono::milliseconds deadline);
  // What the executor wrote on stderr so far.
  std::string log() const;

 private:
  boost::asio::io_context io_;
  std::shared_ptr<process::Child> child_;
  std::string log_path_;
  std::string url_;
  unsigned short port_ = 0;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// Host: 127.0.0.1:<port> is sent unless `headers` sets Host.
boost::asio::awaitable<jsonrpc::WebSocket> ws_connect(unsigned short port, Headers headers = {});
// The server's answer to an HTTP request (upgrade attempts included).
boost::asio::awaitable<boost::beast::http::response<boost::beast::http::string_body>> http_request(
    unsigned short port, boost::beast::http::verb verb, std::string target, Headers headers = {},
    bool websocket_upgrade = false);

// `tether exec-server --listen stdio` as a child with piped stdin/stdout (stderr to a file).
std::shared_ptr<process::Child> spawn_stdio_server(const boost::asio::any_io_executor& executor,
                                                   std::vector<std::string> extra_args = {});
// A line transport over that child's stdout (input) and stdin (output); takes the streams.
std::unique_ptr<jsonrpc::Transport> stdio_transport(process::Child& child);

// Processes whose command line contains `needle` (from /proc), excluding this test process.
std::vector<pid_t> processes_matching(const std::string& needle);
bool process_alive(pid_t pid);
// A loopback port nothing listens on (just released; fine for "connection refused" tests).
unsigned short free_port();
// Which of `candidates` hold an established TCP connection to 127.0.0.1:`port` (from
// /proc/net/tcp and each candidate's open sockets): who really connected to a server.
std::vector<pid_t> tcp_clients_of(unsigned short port, const std::vector<pid_t>& candidates);
// A /proc/<pid>/status field in bytes, such as VmHWM (peak RSS) or VmRSS; 0 when unreadable.
std::size_t status_bytes(pid_t pid, const std::string& field);
// From /proc: a process's command line (arguments joined by spaces), its parent (0 when
// unknown), and the live (not zombie) children of `parent`.
std::string command_line(pid_t pid);
pid_t parent_of(pid_t pid);
// The process that started `pid`: its parent, or above the containment supervisor
// (`tether-guard`, docs/process-api.md) that stands between a spawner and each child.
pid_t spawner_of(pid_t pid);
std::vector<pid_t> children_of(pid_t parent);
// The census of a test that is a child subreaper (what the code under test leaves behind is
// re-parented to it): waits up to `wait` for every child but `exempt` to end, reaping those that
// exit; each one still running is a failure saying `when` and is then killed.
void expect_no_children(const std::vector<pid_t>& exempt, std::chrono::milliseconds wait,
                        const std::string& when);

}  // namespace tether::testing
