// tether::gateway Metrics — what `/metrics` shows (docs/gateway.md "Metrics"), in the Prometheus
// text format: requests routed to servers by outcome, their durations, which servers are up and
// where they run, restarts, and open sessions.
// Shared by every gateway of one `tether mcp serve` (one per session with --isolate-sessions),
// on one executor.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>

namespace tether::gateway {

class Metrics {
 public:
  // outcome: `ok`, `error` (a JSON-RPC error), `tool_error` (a result with isError).
  void record_request(std::string_view server, std::string_view method, std::string_view outcome,
                      std::chrono::steady_clock::duration took);
  void set_server_up(std::string_view server, std::string_view placement, bool up);
  void record_restart(std::string_view server);
  void set_sessions(std::size_t sessions) { sessions_ = sessions; }

  std::string render() const;

 private:
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   1.0,   5.0,  30.0};
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> buckets{};  // cumulative at render time
    std::uint64_t count = 0;
    double sum = 0;
  };
  std::map<std::tuple<std::string, std::string, std::string>, std::uint64_t> requests_;
  std::map<std::pair<std::string, std::string>, Histogram> durations_;
  std::map<std::pair<std::string, std::string>, bool> up_;  // (server, placement)
  std::map<std::string, std::uint64_t> restarts_;
  std::size_t sessions_ = 0;
};

}  // namespace tether::gateway
