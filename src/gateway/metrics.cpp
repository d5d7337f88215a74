// Metrics (metrics.hpp): counters kept as maps keyed by their labels, rendered in label order so
// a scrape reads the same way each time.
#include <fmt/format.h>

#include <tether/gateway/metrics.hpp>

namespace tether::gateway {
namespace {

// A label value as the text format wants it: backslash, double quote and newline escaped.
std::string label(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

void Metrics::record_request(std::string_view server, std::string_view method,
                             std::string_view outcome, std::chrono::steady_clock::duration took) {
  ++requests_[{std::string(server), std::string(method), std::string(outcome)}];
  auto& histogram = durations_[{std::string(server), std::string(method)}];
  const double seconds = std::chrono::duration<double>(took).count();
  for (std::size_t i = 0; i < kBuckets.size(); ++i)
    if (seconds <= kBuckets[i]) ++histogram.buckets[i];
  ++histogram.count;
  histogram.sum += seconds;
}

void Metrics::set_server_up(std::string_view server, std::string_view placement, bool up) {
  up_[{std::string(server), std::string(placement)}] = up;
}

void Metrics::record_restart(std::string_view server) {
  ++restarts_[std::string(server)];
}

std::string Metrics::render() const {
  std::string out;
  out += "# HELP tether_requests_total Requests routed to MCP servers, by outcome.\n";
  out += "# TYPE tether_requests_total counter\n";
  for (const auto& [key, count] : requests_) {
    const auto& [server, method, outcome] = key;
    out += fmt::format("tether_requests_total{{server=\"{}\",method=\"{}\",outcome=\"{}\"}} {}\n",
                       label(server), label(method), label(outcome), count);
  }
  out += "# HELP tether_request_duration_seconds Time from routing a request to its answer.\n";
  out += "# TYPE tether_request_duration_seconds histogram\n";
  for (const auto& [key, histogram] : durations_) {
    const auto labels =
        fmt::format("server=\"{}\",method=\"{}\"", label(key.first), label(key.second));
    for (std::size_t i = 0; i < kBuckets.size(); ++i)
      out += fmt::format("tether_request_duration_seconds_bucket{{{},le=\"{}\"}} {}\n", labels,
                         kBuckets[i], histogram.buckets[i]);
    out += fmt::format("tether_request_duration_seconds_bucket{{{},le=\"+Inf\"}} {}\n", labels,
                       histogram.count);
    out += fmt::format("tether_request_duration_seconds_sum{{{}}} {}\n", labels, histogram.sum);
    out += fmt::format("tether_request_duration_seconds_count{{{}}} {}\n", labels, histogram.count);
  }
  out += "# HELP tether_server_up Whether an MCP server is ready (1) or not (0).\n";
  out += "# TYPE tether_server_up gauge\n";
  for (const auto& [key, up] : up_)
    out += fmt::format("tether_server_up{{server=\"{}\",placement=\"{}\"}} {}\n", label(key.first),
                       label(key.second), up ? 1 : 0);
  out += "# HELP tether_server_restarts_total Times an MCP server became ready again.\n";
  out += "# TYPE tether_server_restarts_total counter\n";
  for (const auto& [server, count] : restarts_)
    out += fmt::format("tether_server_restarts_total{{server=\"{}\"}} {}\n", label(server), count);
  out += "# HELP tether_sessions Open MCP client sessions.\n";
  out += "# TYPE tether_sessions gauge\n";
  out += fmt::format("tether_sessions {}\n", sessions_);
  return out;
}

}  // namespace tether::gateway
