// tether::jsonrpc AsyncSignal — a condition variable for single-threaded coroutines.
//
// Owns: waking every coroutine waiting on it. Waiters re-check their own condition after waking;
// nothing is latched, so check-then-wait must not suspend in between (true on one executor).
#pragma once

#include <chrono>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace tether::jsonrpc {

class AsyncSignal {
 public:
  explicit AsyncSignal(const boost::asio::any_io_executor& executor) : timer_(executor) {
    timer_.expires_at(std::chrono::steady_clock::time_point::max());
  }

  // Completes at the next notify_all() (or on cancellation).
  boost::asio::awaitable<void> wait() {
    boost::system::error_code ignored;
    co_await timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
  }

  void notify_all() { timer_.cancel(); }

 private:
  boost::asio::steady_timer timer_;
};

}  // namespace tether::jsonrpc
