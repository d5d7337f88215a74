// Helpers the end-to-end benchmarks share (exec, process API, MCP client, gateway).
//
// Owns: the common flags, the child argv lists, shell helpers (command_output, quoted, checked),
// percentile and time conversions, the latency rows (round trip, start), the Markdown table,
// and running a benchmark coroutine to completion.
// Does not own: any measurement (each benchmark file does its own).
// Data flows: main -> parse_options -> run_bench(coroutine) -> rows -> print_table -> stdout.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include <tether/jsonrpc/error.hpp>

namespace tether::bench {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string tether = TETHER_BINARY;
  std::size_t relay_bytes = std::size_t{1} << 30;
  int roundtrips = 10'000;
  int starts = 200;
};

// --tether PATH, --relay-bytes N, --roundtrips N, --starts N; anything else is ignored.
inline Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--tether")
      options.tether = argv[i + 1];
    else if (flag == "--relay-bytes")
      options.relay_bytes = std::stoull(argv[i + 1]);
    else if (flag == "--roundtrips")
      options.roundtrips = std::stoi(argv[i + 1]);
    else if (flag == "--starts")
      options.starts = std::stoi(argv[i + 1]);
  }
  return options;
}

// argv lists are built outside coroutines: GCC 12 miscompiles braced lists of string literals
// inside coroutine bodies.
inline std::vector<std::string> head_argv(const std::string& count) {
  return {"head", "-c", count, "/dev/zero"};
}
inline std::vector<std::string> cat_argv() {
  return {"cat"};
}
inline std::vector<std::string> echo_argv() {
  return {"echo", "hi"};
}

// A value, or an exception naming `what` and the error.
template <class T>
T checked(tether::jsonrpc::Expected<T> value, std::string_view what) {
  if (!value) throw std::runtime_error(fmt::format("{}: {}", what, value.error().message));
  return std::move(*value);
}

// The output of a shell command, trailing newlines dropped; nullopt when it fails.
inline std::optional<std::string> command_output(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return std::nullopt;
  std::string out;
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe)) out += buffer.data();
  if (::pclose(pipe) != 0) return std::nullopt;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// `s` as one shell word.
inline std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

inline double micros(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}
inline double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

inline double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return values[static_cast<std::size_t>(p * static_cast<double>(values.size() - 1))];
}

struct Row {
  std::string name;
  std::string remote;
  std::string local;
  std::string ratio;
};

// How a latency row's last column compares remote with local: the difference, or the factor
// and the difference.
enum class Compare { difference, factor_and_difference };

inline std::string compare_column(double remote, double local, Compare compare, int precision) {
  const auto difference = fmt::format("+{:.{}f} µs", remote - local, precision);
  if (compare == Compare::difference) return difference;
  return fmt::format("{:.2f}x ({})", remote / local, difference);
}

inline Row latency_row(std::string name, const std::vector<double>& remote_us,
                       const std::vector<double>& local_us, double p, Compare compare,
                       int precision) {
  const double r = percentile(remote_us, p);
  const double l = percentile(local_us, p);
  return Row{std::move(name), fmt::format("{:.{}f} µs", r, precision),
             fmt::format("{:.{}f} µs", l, precision), compare_column(r, l, compare, precision)};
}

// The p50 and p99 rows of `roundtrips` sequential round trips through `cat`.
inline std::vector<Row> roundtrip_rows(const std::vector<double>& remote_us,
                                       const std::vector<double>& local_us, int roundtrips,
                                       Compare compare) {
  std::vector<Row> rows;
  for (double p : {0.5, 0.99})
    rows.push_back(latency_row(
        fmt::format("round trip via `cat`, p{:.0f} ({} sequential)", p * 100, roundtrips),
        remote_us, local_us, p, compare, 1));
  return rows;
}

// The p50 row of `starts` runs from start() to the first output of `echo hi`.
inline Row start_row(const std::vector<double>& remote_us, const std::vector<double>& local_us,
                     int starts, Compare compare) {
  return latency_row(fmt::format("start `echo hi` to first output, p50 ({} runs)", starts),
                     remote_us, local_us, 0.5, compare, 0);
}

inline void print_table(std::string_view remote, std::string_view local, std::string_view ratio,
                        const std::vector<Row>& rows) {
  fmt::print("| measurement | {} | {} | {} |\n", remote, local, ratio);
  fmt::print("|---|---|---|---|\n");
  for (const auto& r : rows)
    fmt::print("| {} | {} | {} | {} |\n", r.name, r.remote, r.local, r.ratio);
}

// Runs `main` on a fresh io_context; returns the process exit code (1 after an exception, whose
// message goes to stderr).
inline int run_bench(boost::asio::awaitable<void> main) {
  boost::asio::io_context io;
  int rc = 0;
  boost::asio::co_spawn(io, std::move(main), [&](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      fmt::print(stderr, "bench failed: {}\n", ex.what());
      rc = 1;
    }
  });
  io.run();
  return rc;
}

}  // namespace tether::bench
