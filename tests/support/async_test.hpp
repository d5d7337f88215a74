// Test support: run one coroutine test body on a fresh io_context with a bounded deadline.
// A body that does not finish in time fails the test with `what`, never hangs the suite.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

namespace tether::testing {

void run_async(const std::function<boost::asio::awaitable<void>()>& body,
               std::chrono::milliseconds deadline = std::chrono::seconds(60),
               const std::string& what = "test body");

// Suspends the calling coroutine for `duration`.
boost::asio::awaitable<void> sleep_for(std::chrono::milliseconds duration);

// Polls `condition` every 10 ms until it holds or `deadline` passes; returns whether it held.
// For conditions outside our control (another process's state); use signals where we have them.
boost::asio::awaitable<bool> eventually(const std::function<bool()>& condition,
                                        std::chrono::milliseconds deadline);

}  // namespace tether::testing

// Fatal assertions for coroutine test bodies (gtest's ASSERT_* use `return`, which a coroutine
// cannot): report like EXPECT_*, then leave the body with co_return.
#define CO_ASSERT_TRUE(condition)                    \
  do {                                               \
    if (!(condition)) {                              \
      ADD_FAILURE() << "Expected true: " #condition; \
      co_return;                                     \
    }                                                \
  } while (0)

#define CO_ASSERT_EQ(a, b)                                    \
  do {                                                        \
    const ::testing::AssertionResult co_assert_result_ =      \
        ::testing::internal::EqHelper::Compare(#a, #b, a, b); \
    if (!co_assert_result_) {                                 \
      ADD_FAILURE() << co_assert_result_.message();           \
      co_return;                                              \
    }                                                         \
  } while (0)
