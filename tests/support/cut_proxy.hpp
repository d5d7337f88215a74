// Test support: CutProxy, a loopback TCP proxy whose connections a test can cut without any
// WebSocket close frame (a *lost* connection, acceptance scenario 39) and whose listener it can
// close so that reconnects are refused.
//
// Owns: its own io_context and thread (so it works whatever loop the client under test runs on,
// and can be built outside run_async like ExecServer), the listener on 127.0.0.1:port(), every
// forwarded connection and the traffic counters. Does not own: the target server.
// Data flow: client -> listener -> accepted socket <-> two pumps <-> socket to 127.0.0.1:target.
// A FIN is passed on as a FIN (half-close); an error on either side resets both sides.
// Threading: the public methods may be called from any thread except the proxy's own; they run
// their work on the proxy thread and return once it is done. The destructor cuts everything and
// joins the thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <thread>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace tether::testing {

class CutProxy {
 public:
  // Listens on 127.0.0.1 (a free port) and forwards to 127.0.0.1:target_port.
  explicit CutProxy(unsigned short target_port);
  ~CutProxy();
  CutProxy(const CutProxy&) = delete;
  CutProxy& operator=(const CutProxy&) = delete;

  unsigned short port() const { return port_; }

  // Resets every current connection on both sides (SO_LINGER 0: RST, no FIN, no close frame).
  // The listener stays open, so clients can reconnect. Returns how many connections were cut.
  std::size_t cut_all();
  // While on, the listener is closed: a connect gets ECONNREFUSED (connection_refused). Current
  // connections, including those the kernel completed but the proxy had not accepted yet, are
  // left alone. Off reopens the listener on the same port (throws if the port was
  // taken meanwhile, which only another bind on this machine can do).
  void refuse(bool on);

  // While on, nothing is forwarded either way and nothing is closed: a partition without FIN or
  // RST. Bytes read meanwhile are held (the kernel buffers fill, then the senders block); new
  // connections are accepted but not connected to the target. Off delivers what was held.
  void stall(bool on);

  // Connections accepted so far (refused ones never reach accept).
  std::size_t accepted() const { return accepted_; }
  // Connections currently forwarded (accepted and not yet ended or cut).
  std::size_t open_connections() const { return open_; }
  std::uint64_t bytes_to_target() const { return bytes_to_target_; }
  std::uint64_t bytes_to_client() const { return bytes_to_client_; }

 private:
  struct Link;

  void open_listener();
  boost::asio::awaitable<void> accept_loop(std::uint64_t generation);
  // Registers an accepted connection and starts forwarding it.
  void adopt(boost::asio::ip::tcp::socket socket);
  boost::asio::awaitable<void> forward(std::shared_ptr<Link> link);
  boost::asio::awaitable<void> pump(std::shared_ptr<Link> link, bool to_target);
  // Forgets the link and closes both sockets; `reset` sends RST instead of FIN.
  void drop(const std::shared_ptr<Link>& link, bool reset);
  // Returns at once unless stalled, else once the stall ends (or the proxy stops).
  boost::asio::awaitable<void> while_stalled();
  // Runs `work` on the proxy thread and waits for it; rethrows what it threw.
  template <typename Work>
  auto on_proxy_thread(Work work);

  const unsigned short target_port_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::ip::tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::uint64_t generation_ = 0;  // bumped each time the listener closes; old accept loops end
  bool refusing_ = false;
  bool stopping_ = false;  // the destructor runs: nothing new is forwarded
  bool stalled_ = false;
  boost::asio::steady_timer unstalled_;  // stalled pumps wait on it; cancelled when the stall ends
  std::set<std::shared_ptr<Link>> links_;  // proxy thread only
  std::atomic<std::size_t> accepted_{0};
  std::atomic<std::size_t> open_{0};
  std::atomic<std::uint64_t> bytes_to_target_{0};
  std::atomic<std::uint64_t> bytes_to_client_{0};
  std::thread thread_;
};

}  // namespace tether::testing
