// Test support: the cuttable loopback TCP proxy (see cut_proxy.hpp).
#include "cut_proxy.hpp"

#include <array>
#include <future>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace tether::testing {
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

const auto kLoopback = asio::ip::make_address_v4("127.0.0.1");

void close_socket(tcp::socket& socket, bool reset) {
  if (!socket.is_open()) return;
  boost::system::error_code ignored;
  if (reset) socket.set_option(asio::socket_base::linger(true, 0), ignored);
  socket.close(ignored);
}

}  // namespace

struct CutProxy::Link {
  explicit Link(tcp::socket accepted)
      : client(std::move(accepted)), target(client.get_executor()) {}
  tcp::socket client;
  tcp::socket target;
};

template <typename Work>
auto CutProxy::on_proxy_thread(Work work) {
  if (io_.get_executor().running_in_this_thread())
    throw std::logic_error("CutProxy: called from its own thread (it would wait for itself)");
  std::packaged_task<decltype(work())()> task(std::move(work));
  auto result = task.get_future();
  asio::post(io_, [&task] { task(); });
  return result.get();
}

CutProxy::CutProxy(unsigned short target_port)
    : target_port_(target_port), work_(io_.get_executor()), acceptor_(io_), unstalled_(io_) {
  open_listener();
  asio::co_spawn(io_, accept_loop(generation_), asio::detached);
  thread_ = std::thread([this] { io_.run(); });
}

CutProxy::~CutProxy() {
  on_proxy_thread([this] {
    stopping_ = true;
    ++generation_;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (const auto& link : std::vector(links_.begin(), links_.end())) drop(link, true);
    stalled_ = false;
    unstalled_.cancel();
  });
  // Every socket is closed, so every pending operation completes and run() runs out of work.
  work_.reset();
  thread_.join();
}

std::size_t CutProxy::cut_all() {
  return on_proxy_thread([this] {
    const std::vector cut(links_.begin(), links_.end());
    for (const auto& link : cut) drop(link, true);
    return cut.size();
  });
}

void CutProxy::refuse(bool on) {
  on_proxy_thread([this, on] {
    if (on == refusing_) return;
    if (on) {
      // Connections the kernel already completed count as made before refuse(): forward them
      // rather than let the close reset them from the backlog.
      boost::system::error_code ec;
      acceptor_.non_blocking(true, ec);
      while (!ec) {
        tcp::socket socket(io_);
        acceptor_.accept(socket, ec);
        if (!ec) adopt(std::move(socket));
      }
      ++generation_;
      acceptor_.close(ec);
      refusing_ = true;
      return;
    }
    open_listener();
    refusing_ = false;
    asio::co_spawn(io_, accept_loop(generation_), asio::detached);
  });
}

void CutProxy::stall(bool on) {
  on_proxy_thread([this, on] {
    stalled_ = on;
    // Set once here: a new expiry would cancel the waits already pending.
    if (on)
      unstalled_.expires_at(asio::steady_timer::time_point::max());
    else
      unstalled_.cancel();
  });
}

asio::awaitable<void> CutProxy::while_stalled() {
  while (stalled_) {
    boost::system::error_code ignored;
    co_await unstalled_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
}

void CutProxy::open_listener() {
  const tcp::endpoint endpoint(kLoopback, port_);
  boost::system::error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    throw std::runtime_error("CutProxy: cannot listen on 127.0.0.1:" + std::to_string(port_) +
                             ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint().port();
}

asio::awaitable<void> CutProxy::accept_loop(std::uint64_t generation) {
  for (;;) {
    tcp::socket socket(io_);
    boost::system::error_code ec;
    co_await acceptor_.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
    // Accepted before a refuse() closed the listener: still a connection made before it.
    if (!ec) adopt(std::move(socket));
    // The listener closed (and maybe reopened with a loop of its own) since this accept began,
    // or it is unusable (Asio retries ECONNABORTED itself).
    if (ec || generation != generation_) co_return;
  }
}

void CutProxy::adopt(tcp::socket socket) {
  if (stopping_) {
    close_socket(socket, true);  // an accept that completed as the destructor ran
    return;
  }
  ++accepted_;
  auto link = std::make_shared<Link>(std::move(socket));
  links_.insert(link);
  ++open_;
  asio::co_spawn(io_, forward(std::move(link)), asio::detached);
}

asio::awaitable<void> CutProxy::forward(std::shared_ptr<Link> link) {
  co_await while_stalled();
  if (!links_.contains(link)) co_return;  // cut or stopped meanwhile
  boost::system::error_code ec;
  co_await link->target.async_connect(tcp::endpoint(kLoopback, target_port_),
                                      asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    // The target is down: the client sees its connection reset (not refused: it was accepted).
    drop(link, true);
    co_return;
  }
  link->client.set_option(tcp::no_delay(true), ec);
  link->target.set_option(tcp::no_delay(true), ec);
  co_await (pump(link, true) && pump(link, false));
  // Both sides said FIN: a plain close, so bytes still in the kernel buffers are delivered.
  drop(link, false);
}

asio::awaitable<void> CutProxy::pump(std::shared_ptr<Link> link, bool to_target) {
  auto& from = to_target ? link->client : link->target;
  auto& to = to_target ? link->target : link->client;
  auto& counter = to_target ? bytes_to_target_ : bytes_to_client_;
  std::array<char, 64 * 1024> buffer;
  for (;;) {
    boost::system::error_code ec;
    const std::size_t n = co_await from.async_read_some(
        asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::eof) {
      to.shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }
    if (ec) break;  // reset, or cut: the other side is reset too
    co_await while_stalled();
    co_await asio::async_write(to, asio::buffer(buffer.data(), n),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    counter += n;
  }
  drop(link, true);
}

void CutProxy::drop(const std::shared_ptr<Link>& link, bool reset) {
  if (links_.erase(link)) --open_;
  close_socket(link->client, reset);
  close_socket(link->target, reset);
}

}  // namespace tether::testing
