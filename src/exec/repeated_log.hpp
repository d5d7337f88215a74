// A log line that a flood can repeat thousands of times a second (accept failures, refused
// connections): written at most once per window while it repeats, then with how many times it
// recurred meanwhile. Single-threaded, like the server that owns it.
#pragma once

#include <chrono>
#include <string>

#include <spdlog/spdlog.h>

namespace tether::exec {

class RepeatedLog {
 public:
  explicit RepeatedLog(spdlog::level::level_enum level,
                       std::chrono::steady_clock::duration window = std::chrono::seconds(10))
      : level_(level), window_(window) {}

  void log(std::string message) {
    const auto now = std::chrono::steady_clock::now();
    if (message == last_ && now < quiet_until_) {
      ++repeats_;
      return;
    }
    if (repeats_ > 0) spdlog::log(level_, "{} (repeated {} more times)", last_, repeats_);
    spdlog::log(level_, "{}", message);
    last_ = std::move(message);
    quiet_until_ = now + window_;
    repeats_ = 0;
  }

 private:
  spdlog::level::level_enum level_;
  std::chrono::steady_clock::duration window_;
  std::string last_;
  std::chrono::steady_clock::time_point quiet_until_;
  std::size_t repeats_ = 0;
};

}  // namespace tether::exec
