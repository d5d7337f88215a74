// The manager's restart policy: whether, and from when, a server that failed may start again.
//
// Owns: the crash backoff and the crash-loop guard. Each death (a start that failed counts as
// one) is followed by a wait before a use starts the server again: `backoff`, doubled for each
// earlier death still within `crash_loop_window`, at most `backoff_max`. The
// `crash_loop_deaths`-th death within the window leaves the server crash-looping: failed until
// the user restarts it (reset). A start that failed before anything was started (placement,
// settings) is permanent: retrying cannot help, and it is no death.
// Does not own: starting, ending or waiting for anything, the clock (every time point is passed
// in), or the words the user reads (server_texts.hpp).
// Data flows: the manager's record of a death or failed start -> record_death |
// record_permanent_failure -> may_restart / restart_at before a use starts the server again.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>

namespace tether::host {

class RestartPolicy {
 public:
  using Clock = std::chrono::steady_clock;

  struct Settings {
    std::chrono::milliseconds backoff;
    std::chrono::milliseconds backoff_max;
    std::size_t crash_loop_deaths;
    std::chrono::milliseconds crash_loop_window;
  };

  explicit RestartPolicy(Settings settings) : settings_(settings) {}

  // The server died, or a start failed after something was started, at `now`. Returns whether
  // this death left it crash-looping; otherwise restart_at() moved to `now` plus the backoff.
  bool record_death(Clock::time_point now);
  // A start failed before anything was started: no use starts it again.
  void record_permanent_failure() { permanent_ = true; }
  // A start begins: an earlier permanent failure no longer stands (the deaths do).
  void begin_attempt() { permanent_ = false; }
  // The user restarts the server: deaths, backoff and crash loop forgotten.
  void reset();

  bool crash_looping() const { return crash_looping_; }
  bool permanent() const { return permanent_; }
  // Whether a use may start the server again by itself (once restart_at() has passed).
  bool may_restart() const { return !crash_looping_ && !permanent_; }
  // The earliest a use starts the server again after its last death; the epoch before any.
  Clock::time_point restart_at() const { return restart_at_; }
  // The deaths the crash-loop guard still counts (as of the latest one recorded).
  std::size_t recent_deaths() const { return deaths_.size(); }

 private:
  Settings settings_;
  std::deque<Clock::time_point> deaths_;
  Clock::time_point restart_at_{};
  bool crash_looping_ = false;
  bool permanent_ = false;
};

}  // namespace tether::host
