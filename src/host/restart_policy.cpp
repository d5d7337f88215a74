// RestartPolicy: the death window is trimmed only when a death is recorded, so recent_deaths()
// counts as of the latest death, which is what decides the next backoff.
#include "restart_policy.hpp"

#include <algorithm>

namespace tether::host {

bool RestartPolicy::record_death(Clock::time_point now) {
  deaths_.push_back(now);
  while (!deaths_.empty() && now - deaths_.front() > settings_.crash_loop_window)
    deaths_.pop_front();
  if (deaths_.size() >= settings_.crash_loop_deaths) {
    crash_looping_ = true;
    return true;
  }
  // The doubling stops at 2^20 times the backoff (far beyond any backoff_max) so the product
  // cannot overflow.
  const auto delay = settings_.backoff * (1LL << std::min<std::size_t>(deaths_.size() - 1, 20));
  restart_at_ = now + std::min<std::chrono::milliseconds>(delay, settings_.backoff_max);
  return false;
}

void RestartPolicy::reset() {
  deaths_.clear();
  crash_looping_ = false;
  permanent_ = false;
  restart_at_ = {};
}

}  // namespace tether::host
