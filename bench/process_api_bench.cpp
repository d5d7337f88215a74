// Process API benchmarks (issue 4): the same ProcessStarter/Process/Subscription code run
// against both placements in one run, so the comparison is a ratio on one machine at one moment:
//   local     exec::LocalProcesses in this process
//   executor  host::Environment with SpawnedExecutor: a loopback `tether exec-server` with a
//             fresh token, reached through exec::ExecClient
// Measurements, each through Process::subscribe() as MCP code consumes a process:
//   relay      `head -c N /dev/zero`, bytes collected until `closed`, median of 3 (alternating)
//   roundtrip  one line written to `cat` (write awaited), then its OutputEvent awaited; sequential
//   start      start() of `echo hi` to its first OutputEvent
// Does not own: the raw-protocol figures (exec_bench.cpp) or any assertion on time.
// Usage: tether-process-api-bench [--tether PATH] [--relay-bytes N] [--roundtrips N] [--starts N]
// Output: a Markdown table on stdout (pasted into docs/PERFORMANCE.md). Every process it starts
// is ended: both placements are closed before it returns.
#include <csignal>
#include <memory>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/this_coro.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bench_util.hpp"
#include <tether/exec/local_processes.hpp>
#include <tether/exec/process_api.hpp>
#include <tether/host/environment.hpp>

namespace {
namespace asio = boost::asio;
using namespace tether;
using namespace tether::bench;

template <class T>
T checked(jsonrpc::Expected<T> value, std::string_view what) {
  if (!value) throw std::runtime_error(fmt::format("{}: {}", what, value.error().message));
  return std::move(*value);
}

// Built outside coroutines (GCC 12 and braced lists, see bench_util.hpp).
exec::StartParams start_params(std::string id, std::vector<std::string> argv, bool pipe_stdin) {
  exec::StartParams params;
  params.process_id = std::move(id);
  params.argv = std::move(argv);
  params.cwd = "/";
  params.env = {{"PATH", "/usr/bin:/bin"}};
  params.pipe_stdin = pipe_stdin;
  return params;
}

asio::awaitable<std::shared_ptr<exec::Process>> start(exec::ProcessStarter& starter,
                                                      exec::StartParams params) {
  auto process = co_await starter.start(std::move(params));
  co_return checked(std::move(process), "start");
}

// The next event; a `failed` one (the executor is gone) ends the benchmark.
asio::awaitable<std::optional<exec::ProcessEvent>> next_event(exec::Subscription& events) {
  auto event = co_await events.next();
  if (event) {
    if (const auto* failed = std::get_if<exec::FailedEvent>(&*event))
      throw std::runtime_error("process failed: " + failed->message);
  }
  co_return event;
}

// Bytes of output until `closed`.
asio::awaitable<std::size_t> drain(exec::Subscription& events) {
  std::size_t bytes = 0;
  for (;;) {
    auto event = co_await next_event(events);
    if (!event) co_return bytes;
    if (const auto* output = std::get_if<exec::OutputEvent>(&*event)) bytes += output->bytes.size();
  }
}

asio::awaitable<double> relay_once(exec::ProcessStarter& starter, std::string id,
                                   const Options& options) {
  const auto t0 = Clock::now();
  auto process = co_await start(
      starter, start_params(std::move(id), head_argv(std::to_string(options.relay_bytes)), false));
  auto events = process->subscribe();
  const std::size_t bytes = co_await drain(*events);
  const double elapsed = seconds(Clock::now() - t0);
  if (bytes != options.relay_bytes)
    throw std::runtime_error(fmt::format("relay lost bytes: {} of {}", bytes, options.relay_bytes));
  co_return elapsed;
}

// The placements alternate, three times each, and the medians are compared: this machine's
// throughput drifts from run to run, so a single pair would be mostly noise.
asio::awaitable<Row> bench_relay(exec::ProcessStarter& executor, exec::ProcessStarter& local,
                                 const Options& options) {
  std::vector<double> local_s;
  std::vector<double> remote_s;
  for (int i = 0; i < 3; ++i) {
    const std::string id = "relay-" + std::to_string(i);
    local_s.push_back(co_await relay_once(local, id, options));
    remote_s.push_back(co_await relay_once(executor, id, options));
  }
  const double gib = static_cast<double>(options.relay_bytes) / (1 << 30);
  const double l = gib / percentile(local_s, 0.5);
  const double r = gib / percentile(remote_s, 0.5);
  co_return Row{fmt::format("stdout relay, {} MiB, median of 3 (higher is better)",
                            options.relay_bytes >> 20),
                fmt::format("{:.2f} GiB/s", r), fmt::format("{:.2f} GiB/s", l),
                fmt::format("{:.0f}% of local", r / l * 100)};
}

// Round trips through one `cat`, in microseconds: the write is awaited (its status), then the
// echo's OutputEvents until the whole line is back, as a stdio MCP transport would do.
asio::awaitable<std::vector<double>> roundtrips(exec::ProcessStarter& starter,
                                                const Options& options) {
  const std::string line = "the quick brown fox jumps over the lazy dog\n";
  auto process = co_await start(starter, start_params("rt", cat_argv(), true));
  auto events = process->subscribe();
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(options.roundtrips));
  for (int i = 0; i < options.roundtrips; ++i) {
    const auto t0 = Clock::now();
    auto status = checked(co_await process->write(line), "write");
    if (status != exec::WriteStatus::accepted)
      throw std::runtime_error(fmt::format("write: {}", exec::to_string(status)));
    std::size_t got = 0;
    while (got < line.size()) {
      auto event = co_await next_event(*events);
      if (!event) throw std::runtime_error("cat closed during the round trips");
      if (const auto* output = std::get_if<exec::OutputEvent>(&*event)) got += output->bytes.size();
    }
    us.push_back(micros(Clock::now() - t0));
  }
  checked(co_await process->terminate(), "terminate");
  co_await drain(*events);
  co_return us;
}

asio::awaitable<std::vector<Row>> bench_roundtrip(exec::ProcessStarter& executor,
                                                  exec::ProcessStarter& local,
                                                  const Options& options) {
  const auto local_us = co_await roundtrips(local, options);
  const auto remote_us = co_await roundtrips(executor, options);
  co_return roundtrip_rows(remote_us, local_us, options.roundtrips, Compare::factor_and_difference);
}

// start() to the first OutputEvent of `echo hi`, in microseconds; each process is drained to
// `closed` (untimed) before the next starts.
asio::awaitable<std::vector<double>> starts(exec::ProcessStarter& starter, const Options& options) {
  std::vector<double> us;
  for (int i = 0; i < options.starts; ++i) {
    const auto t0 = Clock::now();
    auto process =
        co_await start(starter, start_params("start-" + std::to_string(i), echo_argv(), false));
    auto events = process->subscribe();
    for (;;) {
      auto event = co_await next_event(*events);
      if (!event) throw std::runtime_error("echo closed without output");
      if (std::holds_alternative<exec::OutputEvent>(*event)) break;
    }
    us.push_back(micros(Clock::now() - t0));
    co_await drain(*events);
  }
  co_return us;
}

asio::awaitable<Row> bench_start(exec::ProcessStarter& executor, exec::ProcessStarter& local,
                                 const Options& options) {
  const auto local_us = co_await starts(local, options);
  const auto remote_us = co_await starts(executor, options);
  co_return start_row(remote_us, local_us, options.starts, Compare::factor_and_difference);
}

asio::awaitable<std::vector<Row>> measure(exec::ProcessStarter& executor,
                                          exec::ProcessStarter& local, const Options& options) {
  std::vector<Row> rows;
  rows.push_back(co_await bench_relay(executor, local, options));
  for (auto& r : co_await bench_roundtrip(executor, local, options)) rows.push_back(std::move(r));
  rows.push_back(co_await bench_start(executor, local, options));
  co_return rows;
}

asio::awaitable<void> run(const Options& options) {
  auto ex = co_await asio::this_coro::executor;
  auto local = exec::LocalProcesses::create(ex);
  auto environment =
      host::Environment::create(ex, "bench", host::SpawnedExecutor{options.tether, {}});
  std::vector<Row> rows;
  std::exception_ptr failure;
  try {
    auto starter = checked(co_await environment->starter(), "spawning the executor");
    rows = co_await measure(*starter, *local, options);
  } catch (...) {
    failure = std::current_exception();
  }
  // Both placements end what they started, also after a failure.
  co_await environment->close();
  co_await local->close();
  if (failure) std::rethrow_exception(failure);
  print_table("executor", "local", "executor vs local", rows);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  spdlog::set_level(spdlog::level::warn);
  const Options options = parse_options(argc, argv);
  return run_bench(run(options));
}
