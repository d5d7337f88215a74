// host::RestartPolicy: the crash backoff and the crash-loop guard, fed deaths at chosen time
// points (no process, no clock). The backoff doubling per death still within the window and its
// cap, the window trimming old deaths (a death exactly one window back still counts), the
// crash-loop guard on the n-th death within the window, permanent failures (no retry, no death),
// and the user's reset.
// Does not own: the manager acting on it (waiting out the backoff, refusing a crash-looping
// server, restart()): manager_test.cpp, with real servers.
#include "../../src/host/restart_policy.hpp"

#include <chrono>
#include <vector>

#include <gtest/gtest.h>

namespace tether::host {
namespace {

using namespace std::chrono_literals;
using Clock = RestartPolicy::Clock;

// ManagerOptions' defaults.
constexpr RestartPolicy::Settings kDefaults{1s, 30s, 5, 60s};
const Clock::time_point kStart = Clock::time_point{} + 1000h;

// The wait after each death at `times` (seconds after kStart); -1 once it is crash-looping.
std::vector<std::chrono::milliseconds> waits(RestartPolicy& policy,
                                             const std::vector<Clock::duration>& times) {
  std::vector<std::chrono::milliseconds> out;
  for (auto at : times) {
    const auto now = kStart + at;
    if (policy.record_death(now)) {
      out.push_back(-1ms);
    } else {
      out.push_back(
          std::chrono::duration_cast<std::chrono::milliseconds>(policy.restart_at() - now));
    }
  }
  return out;
}

TEST(RestartPolicy, NothingRecordedMayRestartAtOnce) {
  const RestartPolicy policy(kDefaults);
  EXPECT_TRUE(policy.may_restart());
  EXPECT_FALSE(policy.crash_looping());
  EXPECT_FALSE(policy.permanent());
  EXPECT_EQ(policy.restart_at(), Clock::time_point{});
  EXPECT_EQ(policy.recent_deaths(), 0u);
}

TEST(RestartPolicy, BackoffDoublesWithEachDeathInTheWindow) {
  RestartPolicy policy(kDefaults);
  EXPECT_EQ(waits(policy, {0s, 5s, 10s, 15s}),
            (std::vector<std::chrono::milliseconds>{1s, 2s, 4s, 8s}));
  EXPECT_EQ(policy.recent_deaths(), 4u);
  EXPECT_TRUE(policy.may_restart());
}

TEST(RestartPolicy, BackoffIsCappedAtItsMaximum) {
  RestartPolicy policy({1s, 5s, 100, 60s});
  EXPECT_EQ(waits(policy, {0s, 1s, 2s, 3s, 4s, 5s}),
            (std::vector<std::chrono::milliseconds>{1s, 2s, 4s, 5s, 5s, 5s}));
}

TEST(RestartPolicy, DoublingStopsAtTwentyDoublings) {
  // A cap far away shows where the doubling itself stops (the product stays far from overflow).
  RestartPolicy policy({1ms, 24h * 365, 1000, 60s});
  std::vector<Clock::duration> times(30, 0s);
  const auto all = waits(policy, times);
  EXPECT_EQ(all[19], std::chrono::milliseconds(1 << 19));
  EXPECT_EQ(all[20], std::chrono::milliseconds(1 << 20));
  EXPECT_EQ(all[29], std::chrono::milliseconds(1 << 20));
}

TEST(RestartPolicy, DeathsOlderThanTheWindowNoLongerCount) {
  RestartPolicy policy(kDefaults);
  // 60 s after the first death it still counts; 61 s after the second, neither does.
  EXPECT_EQ(waits(policy, {0s, 60s, 121s}), (std::vector<std::chrono::milliseconds>{1s, 2s, 1s}));
  EXPECT_EQ(policy.recent_deaths(), 1u);
}

TEST(RestartPolicy, TheNthDeathWithinTheWindowIsACrashLoop) {
  RestartPolicy policy(kDefaults);
  const auto all = waits(policy, {0s, 10s, 20s, 30s});
  const auto restart_at = policy.restart_at();
  EXPECT_TRUE(policy.record_death(kStart + 40s));
  EXPECT_TRUE(policy.crash_looping());
  EXPECT_FALSE(policy.may_restart());
  // No new backoff: nothing restarts it but the user.
  EXPECT_EQ(policy.restart_at(), restart_at);
  EXPECT_EQ(all.back(), 8s);
}

TEST(RestartPolicy, DeathsSpreadWiderThanTheWindowNeverCrashLoop) {
  RestartPolicy policy(kDefaults);
  std::vector<Clock::duration> times;
  for (int i = 0; i < 20; ++i) times.push_back(i * 61s);
  const auto all = waits(policy, times);
  EXPECT_EQ(all, std::vector<std::chrono::milliseconds>(20, 1s));
  EXPECT_FALSE(policy.crash_looping());
}

TEST(RestartPolicy, APermanentFailureIsNotRetriedAndIsNoDeath) {
  RestartPolicy policy(kDefaults);
  policy.record_death(kStart);
  policy.record_permanent_failure();
  EXPECT_TRUE(policy.permanent());
  EXPECT_FALSE(policy.may_restart());
  EXPECT_FALSE(policy.crash_looping());
  EXPECT_EQ(policy.recent_deaths(), 1u);
  // A new attempt (the user starting it) clears it; the deaths still count.
  policy.begin_attempt();
  EXPECT_TRUE(policy.may_restart());
  EXPECT_EQ(policy.recent_deaths(), 1u);
  EXPECT_FALSE(policy.record_death(kStart + 1s));
  EXPECT_EQ(policy.restart_at(), kStart + 1s + 2s);
}

TEST(RestartPolicy, ResetForgetsDeathsBackoffAndCrashLoop) {
  RestartPolicy policy(kDefaults);
  waits(policy, {0s, 1s, 2s, 3s, 4s});
  ASSERT_TRUE(policy.crash_looping());
  policy.reset();
  EXPECT_TRUE(policy.may_restart());
  EXPECT_FALSE(policy.crash_looping());
  EXPECT_EQ(policy.recent_deaths(), 0u);
  EXPECT_EQ(policy.restart_at(), Clock::time_point{});
  EXPECT_EQ(waits(policy, {5s}), (std::vector<std::chrono::milliseconds>{1s}));

  policy.record_permanent_failure();
  policy.reset();
  EXPECT_TRUE(policy.may_restart());
}

TEST(RestartPolicy, OneDeathAllowedMeansTheFirstIsACrashLoop) {
  RestartPolicy policy({1s, 30s, 1, 60s});
  EXPECT_TRUE(policy.record_death(kStart));
  EXPECT_FALSE(policy.may_restart());
}

}  // namespace
}  // namespace tether::host
