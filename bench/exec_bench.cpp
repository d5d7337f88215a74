// End-to-end executor benchmarks (issue 3), each remote figure beside its local baseline from
// the same run, so the comparison is a ratio on one machine at one moment:
//   relay      a process writes N bytes to stdout; the client receives process/output, parses
//              the JSON and base64-decodes it   vs   the same process read through a plain pipe
//   roundtrip  one line written to `cat` and read back, sequentially   vs   a local `cat` pipe
//   start      process/start to the first output of `echo`   vs   a local spawn of `echo`
//   memory     executor RSS idle, and per idle process with 100 `sleep` processes running
// Usage: tether-exec-bench [--tether PATH] [--relay-bytes N] [--roundtrips N] [--starts N]
// Output: a Markdown table on stdout (pasted into docs/PERFORMANCE.md).
#include <csignal>
#include <fstream>
#include <iostream>
#include <map>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "bench_util.hpp"
#include <tether/jsonrpc/base64.hpp>
#include <tether/jsonrpc/async_signal.hpp>
#include <tether/jsonrpc/peer.hpp>
#include <tether/process/child.hpp>

extern char** environ;

namespace {
namespace asio = boost::asio;
namespace json = boost::json;
using namespace tether;
using namespace tether::bench;

struct Config : Options {
  int idle_processes = 100;
};

// Built outside coroutines, like bench_util's argv lists.
std::vector<std::string> server_argv(const std::string& tether) {
  return {tether, "--log-level", "warn", "exec-server", "--insecure-no-auth"};
}
std::vector<std::string> sleep_argv() {
  return {"sleep", "300"};
}

std::shared_ptr<process::Child> spawn_local(const asio::any_io_executor& ex,
                                            std::vector<std::string> argv, bool stdin_pipe) {
  process::SpawnOptions options;
  options.argv = std::move(argv);
  options.env = {"PATH=/usr/bin:/bin"};
  options.stdin_mode = stdin_pipe ? process::StdinMode::pipe : process::StdinMode::closed;
  auto child = process::Child::spawn(ex, options);
  if (!child) throw std::runtime_error(child.error().message);
  return *child;
}

long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
  }
  return -1;
}

json::value start_params(std::string id, std::vector<std::string> argv, bool pipe_stdin) {
  json::array args;
  for (auto& a : argv) args.emplace_back(a);
  return json::object{{"processId", std::move(id)},
                      {"argv", std::move(args)},
                      {"cwd", "/"},
                      {"env", json::object{{"PATH", "/usr/bin:/bin"}}},
                      {"tty", false},
                      {"pipeStdin", pipe_stdin},
                      {"arg0", nullptr}};
}

json::value write_params(const std::string& id, std::string_view bytes, std::uint64_t write_id) {
  return json::object{{"processId", id},
                      {"chunk", jsonrpc::base64_encode(bytes)},
                      {"writeId", std::to_string(write_id)}};
}

json::value id_params(const std::string& id) {
  return json::object{{"processId", id}};
}

json::value initialize_params() {
  return json::object{{"clientName", "tether-bench"}, {"resumeSessionId", nullptr}};
}

// A connected client with per-process routing of output, the way a real client consumes it:
// every notification is parsed and every chunk decoded.
struct Client {
  std::shared_ptr<jsonrpc::Peer> peer;
  std::map<std::string, std::function<void(const json::object&)>> routes;

  asio::awaitable<json::value> call(std::string method, json::value params) {
    auto reply = co_await peer->call(method, std::move(params), std::chrono::seconds(60));
    if (!reply) throw std::runtime_error(method + ": " + reply.error().message);
    co_return std::move(*reply);
  }
};

asio::awaitable<std::shared_ptr<Client>> connect(const std::string& url) {
  auto transport = co_await jsonrpc::connect_websocket(url, jsonrpc::ConnectOptions{});
  if (!transport) throw std::runtime_error("connect: " + transport.error().message);
  auto client = std::make_shared<Client>();
  client->peer =
      jsonrpc::Peer::create(co_await asio::this_coro::executor, std::move(*transport), {});
  client->peer->on_notification([c = client.get()](const jsonrpc::Notification& n) {
    const auto& params = n.params.as_object();
    auto it = c->routes.find(std::string(params.at("processId").as_string()));
    if (it != c->routes.end()) it->second(params);
  });
  asio::co_spawn(
      client->peer->get_executor(),
      [peer = client->peer]() -> asio::awaitable<void> { co_await peer->run(); }, asio::detached);
  co_await client->call("initialize", initialize_params());
  client->peer->notify("initialized", json::object());
  co_return client;
}

// One local read of `bytes` from `head` through a plain pipe; returns the time taken.
asio::awaitable<Clock::duration> relay_local(const std::string& count, std::size_t expected) {
  auto ex = co_await asio::this_coro::executor;
  auto local = spawn_local(ex, head_argv(count), false);
  std::vector<char> buffer(256 * 1024);
  std::size_t bytes = 0;
  const auto start = Clock::now();
  for (;;) {
    boost::system::error_code ec;
    bytes += co_await local->stdout_stream()->async_read_some(
        asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
  }
  const auto elapsed = Clock::now() - start;
  co_await local->wait();
  if (bytes != expected) throw std::runtime_error("local relay lost bytes");
  co_return elapsed;
}

// The same producer on the executor: every chunk parsed and decoded as a client does.
asio::awaitable<Clock::duration> relay_remote(Client& client, const std::string& id,
                                              const std::string& count, std::size_t expected) {
  auto ex = co_await asio::this_coro::executor;
  std::size_t bytes = 0;
  jsonrpc::AsyncSignal done(ex);
  bool closed = false;
  client.routes[id] = [&](const json::object& p) {
    if (const auto* chunk = p.if_contains("chunk")) {
      bytes += jsonrpc::base64_decode(chunk->as_string()).value_or("").size();
    } else if (!p.contains("exitCode")) {
      closed = true;  // process/closed carries only processId and seq
      done.notify_all();
    }
  };
  const auto start = Clock::now();
  co_await client.call("process/start", start_params(id, head_argv(count), false));
  while (!closed) co_await done.wait();
  const auto elapsed = Clock::now() - start;
  client.routes.erase(id);
  if (bytes != expected) throw std::runtime_error("remote relay lost bytes");
  co_return elapsed;
}

// Local and remote alternate, three times each, and the medians are compared: this machine's
// throughput drifts from run to run, so a single pair would be mostly noise.
asio::awaitable<Row> bench_relay(Client& client, const Config& config) {
  const std::string count = std::to_string(config.relay_bytes);
  std::vector<double> local_s;
  std::vector<double> remote_s;
  for (int i = 0; i < 3; ++i) {
    local_s.push_back(seconds(co_await relay_local(count, config.relay_bytes)));
    remote_s.push_back(seconds(
        co_await relay_remote(client, "relay-" + std::to_string(i), count, config.relay_bytes)));
  }
  const double local = percentile(local_s, 0.5);
  const double remote = percentile(remote_s, 0.5);
  const double gib = static_cast<double>(config.relay_bytes) / (1 << 30);
  co_return Row{
      fmt::format("stdout relay, {} MiB, median of 3 (higher is better)", config.relay_bytes >> 20),
      fmt::format("{:.2f} GiB/s", gib / remote), fmt::format("{:.2f} GiB/s", gib / local),
      fmt::format("{:.0f}% of the pipe", local / remote * 100)};
}

asio::awaitable<std::vector<Row>> bench_roundtrip(Client& client, const Config& config) {
  auto ex = co_await asio::this_coro::executor;
  const std::string line = "the quick brown fox jumps over the lazy dog\n";

  auto local = spawn_local(ex, cat_argv(), true);
  std::vector<double> local_us;
  std::vector<char> buffer(4096);
  for (int i = 0; i < config.roundtrips; ++i) {
    const auto t0 = Clock::now();
    co_await asio::async_write(*local->stdin_stream(), asio::buffer(line), asio::use_awaitable);
    std::size_t got = 0;
    while (got < line.size())
      got += co_await local->stdout_stream()->async_read_some(asio::buffer(buffer),
                                                              asio::use_awaitable);
    local_us.push_back(micros(Clock::now() - t0));
  }
  local->close_stdin();
  co_await local->wait();

  co_await client.call("process/start", start_params("rt", cat_argv(), true));
  jsonrpc::AsyncSignal arrived(ex);
  std::size_t pending = 0;
  client.routes["rt"] = [&](const json::object& p) {
    if (const auto* chunk = p.if_contains("chunk")) {
      pending += jsonrpc::base64_decode(chunk->as_string()).value_or("").size();
      arrived.notify_all();
    }
  };
  std::vector<double> remote_us;
  for (int i = 0; i < config.roundtrips; ++i) {
    const auto t0 = Clock::now();
    pending = 0;
    // The write's response is not awaited before reading the echo: a real client pipelines.
    client.peer->send(jsonrpc::serialize(jsonrpc::Request{
        std::int64_t{1'000'000 + i}, "process/write", write_params("rt", line, i + 1)}));
    while (pending < line.size()) co_await arrived.wait();
    remote_us.push_back(micros(Clock::now() - t0));
  }
  co_await client.call("process/terminate", id_params("rt"));

  co_return roundtrip_rows(remote_us, local_us, config.roundtrips, Compare::difference);
}

asio::awaitable<Row> bench_start(Client& client, const Config& config) {
  auto ex = co_await asio::this_coro::executor;
  std::vector<double> local_us;
  std::vector<char> buffer(256);
  for (int i = 0; i < config.starts; ++i) {
    const auto t0 = Clock::now();
    auto child = spawn_local(ex, echo_argv(), false);
    co_await child->stdout_stream()->async_read_some(asio::buffer(buffer), asio::use_awaitable);
    local_us.push_back(micros(Clock::now() - t0));
    co_await child->wait();
  }
  std::vector<double> remote_us;
  jsonrpc::AsyncSignal arrived(ex);
  bool got = false;
  for (int i = 0; i < config.starts; ++i) {
    const std::string id = "start-" + std::to_string(i);
    got = false;
    client.routes[id] = [&](const json::object& p) {
      if (p.contains("chunk")) {
        got = true;
        arrived.notify_all();
      }
    };
    const auto t0 = Clock::now();
    client.peer->send(jsonrpc::serialize(jsonrpc::Request{
        std::int64_t{2'000'000 + i}, "process/start", start_params(id, echo_argv(), false)}));
    while (!got) co_await arrived.wait();
    remote_us.push_back(micros(Clock::now() - t0));
    client.routes.erase(id);
  }
  co_return start_row(remote_us, local_us, config.starts, Compare::difference);
}

struct Server {
  std::shared_ptr<process::Child> child;
  std::string url;
};

asio::awaitable<Server> start_server(const Config& config) {
  auto ex = co_await asio::this_coro::executor;
  process::SpawnOptions options;
  options.argv = server_argv(config.tether);
  for (char** e = environ; *e; ++e) options.env.emplace_back(*e);
  options.stdin_mode = process::StdinMode::closed;
  auto child = process::Child::spawn(ex, options);
  if (!child) throw std::runtime_error(child.error().message);
  asio::streambuf line;
  co_await asio::async_read_until(*(*child)->stdout_stream(), line, '\n', asio::use_awaitable);
  std::string url;
  std::getline(std::istream(&line) >> std::ws, url);
  co_return Server{*child, url};
}

asio::awaitable<void> stop(Server& server, Client& client) {
  client.peer->close();
  server.child->signal_group(SIGTERM);
  co_await server.child->wait();
}

// On a fresh executor, so that the heap other runs grew does not hide the per-process cost.
asio::awaitable<std::vector<Row>> bench_memory(const Config& config) {
  auto ex = co_await asio::this_coro::executor;
  auto server = co_await start_server(config);
  auto client = co_await connect(server.url);
  asio::steady_timer settle(ex, std::chrono::milliseconds(300));
  co_await settle.async_wait(asio::use_awaitable);
  const long idle = rss_kib(server.child->pid());
  for (int i = 0; i < config.idle_processes; ++i) {
    co_await client->call("process/start",
                          start_params("idle-" + std::to_string(i), sleep_argv(), false));
  }
  settle.expires_after(std::chrono::milliseconds(300));
  co_await settle.async_wait(asio::use_awaitable);
  const long busy = rss_kib(server.child->pid());
  co_await stop(server, *client);  // ends the session: every sleep is terminated
  co_return std::vector<Row>{
      {"executor RSS, fresh, one connection", fmt::format("{:.1f} MiB", idle / 1024.0), "", ""},
      {fmt::format("executor RSS per idle process ({} `sleep`)", config.idle_processes),
       fmt::format("{:.1f} KiB", static_cast<double>(busy - idle) / config.idle_processes), "",
       ""}};
}

asio::awaitable<void> run(const Config& config) {
  std::vector<Row> rows = co_await bench_memory(config);
  auto server = co_await start_server(config);
  auto client = co_await connect(server.url);
  rows.push_back(co_await bench_relay(*client, config));
  for (auto& r : co_await bench_roundtrip(*client, config)) rows.push_back(std::move(r));
  rows.push_back(co_await bench_start(*client, config));
  co_await stop(server, *client);

  print_table("executor (remote)", "local baseline", "remote vs local", rows);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  const Config config{parse_options(argc, argv)};
  return run_bench(run(config));
}
