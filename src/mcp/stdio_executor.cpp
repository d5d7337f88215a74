// launch_on_executor: an MCP stdio server run through a ProcessStarter (an executor's process
// API) (docs/mcp.md, "Launching a stdio server", executor launcher).
//
// Owns: the UTF-8 checks, the StartParams (`mcp-stdio-<N>`, envPolicy inherit core), the pump
// that turns the process's events into stdout lines and stderr log lines, writes as
// process/write calls, and cleanup: close() = process/terminate then wait (bounded) for
// `closed`; abort()/destruction = process/terminate sent in the background.
// Does not own: the executor connection, event replay (exec::EventLog) or MCP.
// Data flows: process events -> pump -> stdout: LineSplitter -> queue -> read(); stderr:
// StderrLog; exited: end reason; closed: flush + end; failed: end at once.
// write -> process/write(message + '\n'). The pump, reads and background terminates share one
// State, so nothing dangles when the transport is destroyed first.
#include <atomic>
#include <deque>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/value.hpp>
#include <spdlog/spdlog.h>

#include "stdio_common.hpp"

// GCC 12 false positive on Asio's coroutine frame allocator (unsized new, sized delete after
// inlining: gcc PR middle-end/109224), as in tests/CMakeLists.txt.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
#include <tether/exec/event_log.hpp>
#include <tether/jsonrpc/line_splitter.hpp>
#include <tether/jsonrpc/utf8.hpp>
#include <tether/mcp/stdio.hpp>

namespace tether::mcp {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxWriteBytes = std::size_t{16} << 20;
// The pump stops taking events while this much stdout waits for read() (the event log then
// buffers, and recovers through process/read if its subscriber queue overflows).
constexpr std::size_t kQueueHighWater = std::size_t{8} << 20;
// A write answered `starting` is retried this often, this many times.
constexpr auto kStartingRetry = std::chrono::milliseconds(20);
constexpr int kStartingRetries = 250;
// close() waits this long beyond the kill grace for `closed`.
constexpr auto kCloseMargin = std::chrono::seconds(2);

std::atomic<std::uint64_t> next_process_number{1};

struct State {
  State(asio::any_io_executor executor_, std::shared_ptr<exec::Process> process_,
        std::shared_ptr<ServerDiagnostics> diagnostics_, const std::string& program,
        const StdioOptions& options_)
      : executor(std::move(executor_)),
        process(std::move(process_)),
        diagnostics(std::move(diagnostics_)),
        options(options_),
        stdout_lines(options_.max_line_bytes),
        stderr_log(program, diagnostics),
        changed(executor) {}

  asio::any_io_executor executor;
  std::shared_ptr<exec::Process> process;
  std::shared_ptr<ServerDiagnostics> diagnostics;
  StdioOptions options;
  jsonrpc::LineSplitter stdout_lines;
  stdio::StderrLog stderr_log;
  std::deque<std::string> lines;  // complete stdout lines not read yet
  std::size_t queued_bytes = 0;
  std::optional<int> exit_code;
  std::optional<error_code> ended;  // what read() returns once `lines` is empty
  bool finished = false;            // `closed` or `failed` seen
  bool closing = false;             // close(): output is dropped until `closed` ends read()
  bool stopped = false;             // abort() or close() done: nobody reads any more
  bool terminate_sent = false;
  jsonrpc::AsyncSignal changed;  // any of the above changed

  void queue(std::string line) {
    if (line.empty() || closing || stopped || ended) return;
    queued_bytes += line.size();
    lines.push_back(std::move(line));
  }

  void end(error_code ec, std::string reason) {
    diagnostics->set_end_reason(std::move(reason));
    if (!ended) ended = ec;
  }

  void take_stdout(std::string_view bytes) {
    if (ended) return;
    stdout_lines.append(bytes);
    for (;;) {
      auto line = stdout_lines.next_line();
      if (!line) {
        end(line.error(), stdio::overlong_reason(options.max_line_bytes));
        return;
      }
      if (!*line) return;
      queue(std::move(**line));
    }
  }

  void on_event(exec::ProcessEvent& event) {
    if (auto* output = std::get_if<exec::OutputEvent>(&event)) {
      if (output->stream == "stderr") {
        stderr_log.append(output->bytes);
      } else {
        take_stdout(output->bytes);
      }
    } else if (const auto* exited = std::get_if<exec::ExitedEvent>(&event)) {
      exit_code = exited->exit_code;  // output may still follow: the stream goes on
    } else if (std::holds_alternative<exec::ClosedEvent>(event)) {
      finished = true;
      take_stdout("\n");  // the unterminated last line, if any ('\r' trimmed as usual)
      stderr_log.finish();
      if (exit_code) {
        end(stdio::exit_error(*exit_code, std::nullopt), stdio::exit_reason(*exit_code, {}));
      } else {
        end(stdio::output_closed_error(), "MCP server closed its output");
      }
    } else if (const auto* failed = std::get_if<exec::FailedEvent>(&event)) {
      finished = true;
      stderr_log.finish();
      lines.clear();  // at once: what was queued is not delivered
      queued_bytes = 0;
      diagnostics->set_end_reason(failed->message);
      ended = stdio::lost_error();
    }
  }
};

asio::awaitable<void> pump(std::shared_ptr<State> state,
                           std::shared_ptr<exec::Subscription> subscription) {
  while (!state->finished) {
    while (!state->stopped && state->queued_bytes > kQueueHighWater) co_await state->changed.wait();
    auto event = co_await subscription->next();
    if (!event) break;
    state->on_event(*event);
    state->changed.notify_all();
  }
  state->finished = true;
  state->changed.notify_all();
}

asio::awaitable<void> send_terminate(std::shared_ptr<exec::Process> process) {
  auto result = co_await process->terminate();
  if (!result)
    spdlog::debug("MCP stdio: terminating {}: {}", process->id(), result.error().message);
}

// Idempotent; stdout still queued is dropped (nobody will read it).
void terminate_once(State& state) {
  state.lines.clear();
  state.queued_bytes = 0;
  state.changed.notify_all();
  if (state.terminate_sent || state.finished) return;
  state.terminate_sent = true;
  asio::co_spawn(state.executor, send_terminate(state.process), asio::detached);
}

void terminate_in_background(State& state) {
  state.stopped = true;
  terminate_once(state);
}

asio::awaitable<boost::system::result<std::string>> read_line(std::shared_ptr<State> state) {
  for (;;) {
    if (!state->lines.empty()) {
      std::string line = std::move(state->lines.front());
      state->lines.pop_front();
      state->queued_bytes -= line.size();
      state->changed.notify_all();  // room for the pump
      co_return line;
    }
    if (state->stopped) co_return asio::error::operation_aborted;
    if (state->ended) co_return *state->ended;
    co_await state->changed.wait();
  }
}

asio::awaitable<error_code> write_line(std::shared_ptr<State> state, std::string data) {
  data += '\n';
  for (std::size_t offset = 0; offset < data.size(); offset += kMaxWriteBytes) {
    std::string piece = data.substr(offset, kMaxWriteBytes);
    for (int attempt = 0;; ++attempt) {
      if (state->stopped || state->finished)
        co_return make_error_code(boost::system::errc::broken_pipe);
      auto status = co_await state->process->write(piece);
      if (!status) co_return make_error_code(boost::system::errc::connection_aborted);
      if (*status == exec::WriteStatus::accepted) break;
      if (*status != exec::WriteStatus::starting || attempt == kStartingRetries)
        co_return make_error_code(boost::system::errc::broken_pipe);
      asio::steady_timer timer(state->executor, kStartingRetry);
      error_code ignored;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
  }
  co_return error_code{};
}

// A pending read() ends only with `closed` (or the deadline): the caller's read loop must not
// see the end before the process is gone.
asio::awaitable<void> shut_down(std::shared_ptr<State> state) {
  state->closing = true;
  terminate_once(*state);
  const auto deadline = Clock::now() + state->options.kill_grace + kCloseMargin;
  while (!state->finished && Clock::now() < deadline)
    co_await stdio::wait_until(state->changed, deadline);
  state->stopped = true;
  state->changed.notify_all();
}

class ExecutorTransport final : public stdio::PipeTransport {
 public:
  explicit ExecutorTransport(std::shared_ptr<State> state) : state_(std::move(state)) {}
  ~ExecutorTransport() override { terminate_in_background(*state_); }

  asio::awaitable<boost::system::result<std::string>> read() override { return read_line(state_); }
  asio::awaitable<error_code> write(const std::string& message) override {
    return write_line(state_, message);
  }
  asio::awaitable<void> close(std::uint16_t) override { return shut_down(state_); }
  void abort() override { terminate_in_background(*state_); }

 private:
  std::shared_ptr<State> state_;
};

std::optional<std::string> invalid_unicode(const StdioCommand& command,
                                           const std::map<std::string, std::string>& env) {
  auto error = [](const char* what) {
    return std::string(what) + " must be valid Unicode for remote MCP stdio";
  };
  if (!jsonrpc::is_valid_utf8(command.program)) return error("command");
  for (const auto& arg : command.args)
    if (!jsonrpc::is_valid_utf8(arg)) return error("argument");
  for (const auto& [name, value] : env) {
    if (!jsonrpc::is_valid_utf8(name)) return error("environment variable name");
    if (!jsonrpc::is_valid_utf8(value)) return error("environment variable value");
  }
  if (command.cwd && !jsonrpc::is_valid_utf8(*command.cwd)) return error("working directory");
  return std::nullopt;
}

ServerConnection connect(const asio::any_io_executor& executor,
                         const std::shared_ptr<exec::Process>& process, const std::string& program,
                         const StdioOptions& options) {
  auto diagnostics = std::make_shared<ServerDiagnostics>(options.stderr_tail_lines);
  auto state = std::make_shared<State>(executor, process, diagnostics, program, options);
  // The starter captured every event since the start, so subscribing now misses nothing.
  asio::co_spawn(executor, pump(state, process->subscribe()), asio::detached);
  return ServerConnection{std::make_unique<ExecutorTransport>(std::move(state)),
                          std::move(diagnostics), "executor process " + process->id()};
}

}  // namespace

asio::awaitable<Expected<ServerConnection>> launch_on_executor(
    std::shared_ptr<exec::ProcessStarter> starter, StdioCommand command, StdioOptions options) {
  std::map<std::string, std::string> env = stdio::own_variables(command.env_vars);
  for (const auto& [name, value] : command.env) env.insert_or_assign(name, value);
  if (auto error = invalid_unicode(command, env))
    co_return jsonrpc::make_error(jsonrpc::code::kInvalidParams, std::move(*error));

  exec::StartParams params;
  params.process_id = "mcp-stdio-" + std::to_string(next_process_number++);
  params.argv.push_back(command.program);
  params.argv.insert(params.argv.end(), command.args.begin(), command.args.end());
  params.cwd = command.cwd;
  params.env = std::move(env);
  // The executor host's own core variables apply (as codex does); ours travel only by name.
  params.env_policy =
      exec::EnvPolicy{.inherit = exec::EnvPolicy::Inherit::core, .ignore_default_excludes = true};
  params.tty = false;
  params.pipe_stdin = true;

  auto process = co_await starter->start(std::move(params));
  if (!process) co_return process.error();

  auto executor = co_await asio::this_coro::executor;
  co_return connect(executor, *process, command.program, options);
}

}  // namespace tether::mcp
