// Environment: a small state machine per environment — idle, connecting (one attempt shared
// by every waiter), ready, closed. A spawned executor is a process::Child: it gets a fresh
// token through its environment (never on the command line, where `ps` shows it), prints its
// URL line on stdout, and dies with us (parent-death signal, and the Child kills its group when
// destroyed).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <tether/host/environment.hpp>
#include <tether/jsonrpc/async_signal.hpp>
#include <tether/jsonrpc/http_auth.hpp>
#include <tether/process/child.hpp>

extern char** environ;

namespace tether::host {
namespace asio = boost::asio;
using jsonrpc::Error;

namespace {

// Reads one line from `stream` (the spawned executor's stdout), bounded by `timeout`.
asio::awaitable<Expected<std::string>> read_url_line(asio::posix::stream_descriptor& stream,
                                                     std::chrono::milliseconds timeout) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(stream.get_executor(), timeout);
  std::string text;
  std::array<char, 256> buffer{};
  for (;;) {
    if (auto newline = text.find('\n'); newline != std::string::npos) {
      text.resize(newline);
      co_return text;
    }
    boost::system::error_code ec;
    boost::system::error_code timer_ec;
    auto which = co_await (stream.async_read_some(asio::buffer(buffer),
                                                  asio::redirect_error(asio::use_awaitable, ec)) ||
                           timer.async_wait(asio::redirect_error(asio::use_awaitable, timer_ec)));
    if (which.index() == 1)
      co_return jsonrpc::make_error(jsonrpc::code::kInternalError,
                                    "the spawned exec-server printed no URL within " +
                                        std::to_string(timeout.count()) + " ms");
    if (ec)
      co_return jsonrpc::make_error(jsonrpc::code::kInternalError,
                                    "the spawned exec-server exited before printing its URL");
    text.append(buffer.data(), std::get<0>(which));
  }
}

// The executor's log, drained into ours (a full stderr pipe would block it).
asio::awaitable<void> forward_stderr(std::shared_ptr<process::Child> child, std::string id) {
  co_await process::read_lines(*child->stderr_stream(), [&id](std::string_view line) {
    spdlog::info("exec-server '{}': {}", id, line);
  });
}

}  // namespace

struct Environment::State {
  State(asio::any_io_executor ex, std::string environment_id, Placement where,
        EnvironmentOptions opts)
      : executor(std::move(ex)),
        id(std::move(environment_id)),
        placement(std::move(where)),
        options(std::move(opts)),
        settled(executor) {}

  asio::awaitable<Expected<std::shared_ptr<exec::ProcessStarter>>> starter() {
    for (;;) {
      if (closed)
        co_return jsonrpc::make_error(jsonrpc::code::kInternalError,
                                      fmt::format("environment '{}' is closed", id));
      if (local) co_return std::static_pointer_cast<exec::ProcessStarter>(local);
      if (client) co_return std::static_pointer_cast<exec::ProcessStarter>(client);
      if (connecting) {
        co_await settled.wait();
        if (!connecting && !local && !client && last_error) co_return *last_error;
        continue;
      }
      connecting = true;
      // A caller cancelled inside open() must still release the others waiting on it; with no
      // error recorded they try again themselves.
      struct Settle {
        State& state;
        ~Settle() {
          state.connecting = false;
          state.settled.notify_all();
        }
      };
      Expected<void> result;
      {
        Settle settle{*this};
        last_error.reset();
        result = co_await open();
      }
      if (!result) {
        last_error = result.error();
        co_return result.error();
      }
    }
  }

  asio::awaitable<Expected<void>> open() {
    if (std::holds_alternative<LocalPlacement>(placement)) {
      local = exec::LocalProcesses::create(executor, options.local);
      co_return Expected<void>{};
    }
    exec::Endpoint endpoint;
    if (const auto* url = std::get_if<ExecutorUrl>(&placement)) {
      endpoint = exec::WebSocketEndpoint{url->url, url->bearer_token, nullptr};
    } else if (const auto* command = std::get_if<CommandExecutor>(&placement)) {
      endpoint = exec::CommandEndpoint{command->argv, command->env, command->cwd};
    } else {
      auto spawned_endpoint = co_await spawn(std::get<SpawnedExecutor>(placement));
      if (!spawned_endpoint) co_return spawned_endpoint.error();
      endpoint = std::move(*spawned_endpoint);
    }
    auto connected =
        co_await exec::ExecClient::connect(executor, std::move(endpoint), options.client);
    if (!connected) {
      spawned.reset();  // its group is killed with it
      co_return connected.error();
    }
    if (closed) {
      co_await (*connected)->close();
      co_return jsonrpc::make_error(jsonrpc::code::kInternalError,
                                    fmt::format("environment '{}' is closed", id));
    }
    client = std::move(*connected);
    co_return Expected<void>{};
  }

  asio::awaitable<Expected<exec::Endpoint>> spawn(const SpawnedExecutor& how) {
    auto token = jsonrpc::random_token();
    if (!token)
      co_return jsonrpc::make_error(jsonrpc::code::kInternalError,
                                    "cannot generate a random token");
    process::SpawnOptions spawn;
    spawn.argv = {how.tether_binary.empty() ? "/proc/self/exe" : how.tether_binary, "exec-server",
                  "--listen", "ws://127.0.0.1:0"};
    spawn.argv.insert(spawn.argv.end(), how.args.begin(), how.args.end());
    for (char** e = environ; *e; ++e) {
      if (std::string_view(*e).starts_with("TETHER_EXEC_SERVER_TOKEN=")) continue;
      spawn.env.emplace_back(*e);
    }
    spawn.env.push_back("TETHER_EXEC_SERVER_TOKEN=" + *token);
    spawn.stdin_mode = process::StdinMode::closed;
    spawn.die_with_parent = true;
    auto child = process::Child::spawn(executor, spawn);
    if (!child)
      co_return jsonrpc::make_error(jsonrpc::code::kInternalError,
                                    "cannot start the exec-server: " + child.error().message);
    spawned = *child;
    asio::co_spawn(executor, forward_stderr(spawned, id), asio::detached);
    auto url = co_await read_url_line(*spawned->stdout_stream(), options.spawn_timeout);
    if (!url) {
      spawned.reset();
      co_return url.error();
    }
    spdlog::info("environment '{}': spawned exec-server (pid {}) at {}", id, spawned->pid(), *url);
    co_return exec::Endpoint{exec::WebSocketEndpoint{*url, *token, nullptr}};
  }

  asio::awaitable<void> close() {
    if (closed) co_return;
    closed = true;
    settled.notify_all();
    if (client) co_await client->close();
    if (local) co_await local->close();
    if (spawned) {
      spawned->terminate(std::chrono::seconds(2));
      co_await spawned->wait();
      spawned.reset();
    }
  }

  asio::any_io_executor executor;
  std::string id;
  Placement placement;
  EnvironmentOptions options;
  jsonrpc::AsyncSignal settled;  // a connection attempt finished
  bool connecting = false;
  bool closed = false;
  std::optional<Error> last_error;
  std::shared_ptr<exec::LocalProcesses> local;
  std::shared_ptr<exec::ExecClient> client;
  std::shared_ptr<process::Child> spawned;
};

std::shared_ptr<Environment> Environment::create(asio::any_io_executor executor, std::string id,
                                                 Placement placement, EnvironmentOptions options) {
  auto state = std::make_shared<State>(std::move(executor), std::move(id), std::move(placement),
                                       std::move(options));
  return std::shared_ptr<Environment>(new Environment(std::move(state)));
}

Environment::Environment(std::shared_ptr<State> state) : state_(std::move(state)) {}

// Not closed on purpose: the client aborts (its executor keeps a lost session's processes only
// for its TTL), local processes and a spawned executor are killed with their groups.
Environment::~Environment() = default;

const std::string& Environment::id() const {
  return state_->id;
}

bool Environment::is_remote() const {
  return !std::holds_alternative<LocalPlacement>(state_->placement);
}

asio::awaitable<Expected<std::shared_ptr<exec::ProcessStarter>>> Environment::starter() {
  co_return co_await state_->starter();
}

asio::awaitable<Expected<std::shared_ptr<exec::ExecClient>>> Environment::client() {
  if (!is_remote())
    co_return jsonrpc::make_error(
        jsonrpc::code::kInternalError,
        fmt::format("environment '{}' is local: it has no executor", id()));
  auto starter = co_await state_->starter();
  if (!starter) co_return starter.error();
  co_return state_->client;
}

asio::awaitable<void> Environment::close() {
  co_await state_->close();
}

}  // namespace tether::host
