// Test support: the real executor binary as a child, raw HTTP/WebSocket helpers, /proc census
// (see exec_server.hpp).
#include "exec_server.hpp"

#include <algorithm>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <set>
#include <signal.h>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <gtest/gtest.h>

extern char** environ;

namespace tether::testing {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr auto kStartDeadline = std::chrono::seconds(15);

std::string make_log_path() {
  static int counter = 0;
  return (std::filesystem::temp_directory_path() /
          ("tether-test-exec-server-" + std::to_string(::getpid()) + "-" +
           std::to_string(counter++) + ".log"))
      .string();
}

// Runs the executor through `sh -c 'exec ...'` so stderr goes to a file without a reader in the
// test; the pid stays the executor's.
process::SpawnOptions server_spawn_options(const ExecServer::Options& options,
                                           const std::string& log_path) {
  process::SpawnOptions spawn;
  spawn.argv = {"/bin/sh",       "-c",          "exec \"$0\" \"$@\" 2>>\"$TETHER_TEST_LOG\"",
                tether_binary(), "--log-level", options.log_level,
                "exec-server"};
  spawn.argv.insert(spawn.argv.end(), options.args.begin(), options.args.end());
  spawn.env = test_environment();
  // A variable in extra_env replaces this process's (e.g. SSL_CERT_FILE for a test CA).
  for (const auto& kv : options.extra_env) {
    const auto name = kv.substr(0, kv.find('=') + 1);
    std::erase_if(spawn.env, [&name](const std::string& own) { return own.starts_with(name); });
  }
  spawn.env.push_back("TETHER_TEST_LOG=" + log_path);
  spawn.env.insert(spawn.env.end(), options.extra_env.begin(), options.extra_env.end());
  spawn.stdin_mode = process::StdinMode::closed;
  spawn.contain = false;  // what the executor leaves behind is for the tests to see
  return spawn;
}

// A /proc file's content, empty when the process is gone (ifstream would throw ESRCH from
// inside libstdc++ when the process exits mid-read).
std::string read_proc_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string content;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;)
    content.append(buffer, static_cast<std::size_t>(n));
  ::close(fd);
  return content;
}

}  // namespace

std::vector<std::string> test_environment() {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    if (kv.starts_with("TETHER_EXEC_SERVER_TOKEN=") || kv.starts_with("TETHER_TEST_LOG=")) continue;
    env.emplace_back(kv);
  }
  return env;
}

std::vector<std::string> host_environment(const std::string& home) {
  std::vector<std::string> env{"TETHER_HOME=" + home, "NO_COLOR=1"};
  for (char** e = environ; *e; ++e) {
    std::string_view entry(*e);
    if (entry.starts_with("TETHER_") || entry.starts_with("NO_COLOR=")) continue;
    env.emplace_back(entry);
  }
  return env;
}

std::optional<std::string> read_first_line(asio::io_context& io, process::Child& child,
                                           std::chrono::milliseconds deadline) {
  // Shared with the handler: it may still run after a timeout (e.g. when the caller waits for
  // the killed child), after this function has returned.
  struct Read {
    asio::streambuf buffer;
    boost::system::error_code ec;
    bool done = false;
  };
  auto read = std::make_shared<Read>();
  asio::async_read_until(*child.stdout_stream(), read->buffer, '\n',
                         [read](boost::system::error_code ec, std::size_t) {
                           read->ec = ec;
                           read->done = true;
                         });
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!read->done && std::chrono::steady_clock::now() < end)
    io.run_for(std::chrono::milliseconds(20));
  if (!read->done || read->ec) return std::nullopt;
  std::istream in(&read->buffer);
  std::string line;
  std::getline(in, line);
  return line;
}

ExecServer::ExecServer() : ExecServer(Options{}) {}

ExecServer::ExecServer(const Options& options) : log_path_(make_log_path()) {
  auto spawned =
      process::Child::spawn(io_.get_executor(), server_spawn_options(options, log_path_));
  if (!spawned) throw std::runtime_error("cannot start tether: " + spawned.error().message);
  child_ = *spawned;
  auto line = read_first_line(io_, *child_, kStartDeadline);
  if (!line) {
    child_->signal_group(SIGKILL);
    throw std::runtime_error("tether exec-server printed no URL line; its log:\n" + log());
  }
  url_ = std::move(*line);
  port_ = static_cast<unsigned short>(std::stoi(url_.substr(url_.rfind(':') + 1)));
}

ExecServer::~ExecServer() {
  if (child_) stop_child(io_, *child_, "tether exec-server", log_path_);
  child_.reset();
  std::error_code ignored;
  if (!::testing::Test::HasFailure()) std::filesystem::remove(log_path_, ignored);
}

void ExecServer::signal(int sig) const {
  child_->signal_group(sig);
}

std::optional<process::ExitStatus> ExecServer::wait_exit(std::chrono::milliseconds deadline) {
  return wait_child_exit(io_, *child_, deadline);
}

std::string ExecServer::log() const {
  return read_text_file(log_path_);
}

std::optional<process::ExitStatus> wait_child_exit(asio::io_context& io, process::Child& child,
                                                   std::chrono::milliseconds deadline) {
  if (auto status = child.exit_status()) return status;
  // Shared with the handler: a wait abandoned here still completes during a later call's run,
  // after this frame is gone (a reference to a local was written through then: the sanitized
  // build showed it as a leak of the next caller's string).
  auto result = std::make_shared<std::optional<process::ExitStatus>>();
  io.restart();  // run_for() left it stopped once it ran out of work
  asio::co_spawn(io, child.wait(), [result](const std::exception_ptr&, process::ExitStatus status) {
    *result = status;
  });
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!*result && std::chrono::steady_clock::now() < end)
    io.run_for(std::chrono::milliseconds(10));
  if (!*result) {
    io.stop();  // abandon the pending wait; the next call starts a fresh one
    io.restart();
  }
  return *result;
}

std::size_t status_bytes(pid_t pid, const std::string& field) {
  std::istringstream status(read_proc_file("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(status, line);)
    if (line.starts_with(field + ":")) return std::stoull(line.substr(field.size() + 1)) * 1024;
  return 0;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void stop_child(asio::io_context& io, process::Child& child, const std::string& what,
                const std::string& log_path) {
  if (child.exit_status()) return;
  child.signal_group(SIGTERM);
  if (wait_child_exit(io, child, std::chrono::seconds(10))) return;
  ADD_FAILURE() << what << " did not exit within 10 s of SIGTERM; log:\n"
                << read_text_file(log_path);
  child.signal_group(SIGKILL);
  wait_child_exit(io, child, std::chrono::seconds(5));
}

asio::awaitable<jsonrpc::WebSocket> ws_connect(unsigned short port, Headers headers) {
  auto executor = co_await asio::this_coro::executor;
  jsonrpc::WebSocket ws(executor);
  co_await beast::get_lowest_layer(ws).async_connect(
      asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), asio::use_awaitable);
  const std::string default_host = "127.0.0.1:" + std::to_string(port);
  ws.set_option(beast::websocket::stream_base::decorator(
      [headers, default_host](beast::websocket::request_type& request) {
        request.set(http::field::host, default_host);
        for (const auto& [name, value] : headers) request.set(name, value);
      }));
  co_await ws.async_handshake(default_host, "/", asio::use_awaitable);
  co_return ws;
}

asio::awaitable<http::response<http::string_body>> http_request(unsigned short port,
                                                                http::verb verb, std::string target,
                                                                Headers headers,
                                                                bool websocket_upgrade) {
  auto executor = co_await asio::this_coro::executor;
  beast::tcp_stream stream(executor);
  stream.expires_after(std::chrono::seconds(10));
  co_await stream.async_connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                asio::use_awaitable);
  http::request<http::empty_body> request{verb, target, 11};
  request.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  if (websocket_upgrade) {
    request.set(http::field::upgrade, "websocket");
    request.set(http::field::connection, "Upgrade");
    request.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    request.set(http::field::sec_websocket_version, "13");
  }
  for (const auto& [name, value] : headers) {
    if (value.empty()) {
      request.erase(name);
    } else {
      request.set(name, value);
    }
  }
  co_await http::async_write(stream, request, asio::use_awaitable);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.skip(verb == http::verb::head);
  co_await http::async_read_header(stream, buffer, parser, asio::use_awaitable);
  if (parser.get().result() != http::status::switching_protocols)
    co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
  co_return parser.release();
}

std::shared_ptr<process::Child> spawn_stdio_server(const asio::any_io_executor& executor,
                                                   std::vector<std::string> extra_args) {
  process::SpawnOptions spawn;
  spawn.argv = {tether_binary(), "--log-level", "warn", "exec-server", "--listen", "stdio"};
  spawn.argv.insert(spawn.argv.end(), extra_args.begin(), extra_args.end());
  spawn.env = test_environment();
  spawn.stdin_mode = process::StdinMode::pipe;
  spawn.contain = false;  // what the executor leaves behind is for the tests to see
  auto child = process::Child::spawn(executor, spawn);
  if (!child) throw std::runtime_error("cannot start tether: " + child.error().message);
  return *child;
}

std::unique_ptr<jsonrpc::Transport> stdio_transport(process::Child& child) {
  return jsonrpc::make_line_transport(std::move(*child.stdout_stream()),
                                      std::move(*child.stdin_stream()), std::size_t{64} << 20);
}

std::vector<pid_t> processes_matching(const std::string& needle) {
  std::vector<pid_t> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (pid == ::getpid()) continue;
    if (command_line(pid).find(needle) != std::string::npos && process_alive(pid))
      found.push_back(pid);
  }
  return found;
}

std::string command_line(pid_t pid) {
  std::string text = read_proc_file("/proc/" + std::to_string(pid) + "/cmdline");
  std::replace(text.begin(), text.end(), '\0', ' ');
  return text;
}

pid_t parent_of(pid_t pid) {
  const std::string stat = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return 0;
  std::istringstream fields(stat.substr(close + 2));
  char state = 0;
  pid_t parent = 0;
  fields >> state >> parent;
  return parent;
}

pid_t spawner_of(pid_t pid) {
  const pid_t parent = parent_of(pid);
  const bool supervisor =
      read_proc_file("/proc/" + std::to_string(parent) + "/comm") == "tether-guard\n";
  return supervisor ? parent_of(parent) : parent;
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (parent_of(pid) == parent && process_alive(pid)) found.push_back(pid);
  }
  return found;
}

unsigned short free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();
}

std::vector<pid_t> tcp_clients_of(unsigned short port, const std::vector<pid_t>& candidates) {
  // /proc/net/tcp: `sl local rem st ... uid timeout inode`, addresses as HEXIP:HEXPORT.
  std::set<std::string> inodes;
  std::istringstream table(read_proc_file("/proc/net/tcp"));
  std::string line;
  std::getline(table, line);  // the header
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
        timeout >> inode;
    const auto colon = remote.find(':');
    if (state != "01" || colon == std::string::npos) continue;  // 01: ESTABLISHED
    if (std::stoul(remote.substr(colon + 1), nullptr, 16) == port) inodes.insert(inode);
  }
  std::vector<pid_t> found;
  for (const pid_t pid : candidates) {
    std::error_code ec;
    for (const auto& fd :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
      const auto target = std::filesystem::read_symlink(fd.path(), ec).string();
      if (target.starts_with("socket:[") && inodes.contains(target.substr(8, target.size() - 9))) {
        found.push_back(pid);
        break;
      }
    }
  }
  return found;
}

bool process_alive(pid_t pid) {
  if (::kill(pid, 0) != 0) return false;
  // A zombie has exited; it only waits for its parent to reap it.
  const std::string stat = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] != 'Z';
}

void expect_no_children(const std::vector<pid_t>& exempt, std::chrono::milliseconds wait,
                        const std::string& when) {
  const auto left = [&] {
    auto children = children_of(::getpid());
    std::erase_if(children, [&](pid_t pid) {
      return std::find(exempt.begin(), exempt.end(), pid) != exempt.end();
    });
    return children;
  };
  const auto end = std::chrono::steady_clock::now() + wait;
  auto children = left();
  while (!children.empty() && std::chrono::steady_clock::now() < end) {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    children = left();
  }
  for (pid_t pid : children) {
    ADD_FAILURE() << "left running " << when << ": pid " << pid << ": " << command_line(pid);
    ::kill(pid, SIGKILL);
  }
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

}  // namespace tether::testing
