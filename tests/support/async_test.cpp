// Test support: a coroutine test body on its own io_context, with a deadline (see async_test.hpp).
#include "async_test.hpp"

#include <exception>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

namespace tether::testing {
namespace asio = boost::asio;

void run_async(const std::function<asio::awaitable<void>()>& body,
               std::chrono::milliseconds deadline, const std::string& what) {
  asio::io_context io;
  bool done = false;
  std::exception_ptr failure;
  asio::co_spawn(io, body(), [&](std::exception_ptr e) {
    done = true;
    failure = e;
  });
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!done && std::chrono::steady_clock::now() < end) {
    io.run_for(std::chrono::milliseconds(50));
    if (io.stopped() && !done) io.restart();
  }
  if (!done) {
    ADD_FAILURE() << what << " did not finish within " << deadline.count() << " ms";
    return;
  }
  // Let detached work triggered by the body (closes, terminations) settle briefly.
  io.restart();
  io.run_for(std::chrono::milliseconds(20));
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << " threw: " << e.what();
    }
  }
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<bool> eventually(const std::function<bool()>& condition,
                                 std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= end) co_return false;
    co_await sleep_for(std::chrono::milliseconds(10));
  }
  co_return true;
}

}  // namespace tether::testing
