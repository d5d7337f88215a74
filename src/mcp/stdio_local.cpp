// launch_local: an MCP stdio server as a child of this process (docs/mcp.md, "Launching a
// stdio server", local launcher).
//
// Owns: the child's environment (built from nothing), its process::Child, the line transport
// over its stdin/stdout, draining its stderr into the log and the diagnostics, and its cleanup:
// close() = stdin closed, SIGTERM to the group, SIGKILL after the grace, return once reaped;
// abort()/destruction = the same without waiting; leftovers of the group are killed when the
// leader is reaped.
// Does not own: spawning details (process::Child: PATH resolution against the child's PATH,
// own process group, die-with-parent) or MCP.
// Data flows: write -> child stdin; child stdout -> LineSplitter -> read(); child stderr ->
// StderrLog; the exit (watched by its own coroutine) -> end reason -> read() fails at EOF.
// Everything lives in a shared State, so a read still pending when the transport is destroyed
// resumes on valid (closed) state.
#include <array>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "stdio_common.hpp"
#include <tether/jsonrpc/line_splitter.hpp>
#include <tether/mcp/stdio.hpp>
#include <tether/process/child.hpp>

namespace tether::mcp {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

// close() waits this long beyond the kill grace for the SIGKILLed child to be reaped.
constexpr auto kReapMargin = std::chrono::seconds(1);

struct State {
  State(std::shared_ptr<process::Child> child_, std::shared_ptr<ServerDiagnostics> diagnostics_,
        const std::string& program, const StdioOptions& options_)
      : child(std::move(child_)),
        diagnostics(std::move(diagnostics_)),
        options(options_),
        lines(options_.max_line_bytes),
        stderr_stream(std::move(*child->stderr_stream())),
        stderr_log(program, diagnostics),
        changed(stderr_stream.get_executor()) {}

  std::shared_ptr<process::Child> child;
  std::shared_ptr<ServerDiagnostics> diagnostics;
  StdioOptions options;
  jsonrpc::LineSplitter lines;
  std::array<char, std::size_t{64} << 10> chunk{};
  asio::posix::stream_descriptor stderr_stream;
  stdio::StderrLog stderr_log;
  bool stderr_done = false;
  bool output_ended = false;        // stdout reached EOF
  std::optional<error_code> ended;  // what read() returns from now on
  bool killed = false;
  jsonrpc::AsyncSignal changed;  // the child was reaped or stderr ended

  // Abort and destruction: the spec's cleanup without waiting for it. stdin closed, SIGTERM to
  // the group now and SIGKILL after the grace (Child's timer; the exit watcher keeps this State,
  // and so the Child, alive until the reap). The streams are closed so pending reads and writes
  // complete.
  void kill() {
    if (killed) return;
    killed = true;
    child->close_stdin();
    if (!child->exit_status()) child->terminate(options.kill_grace);
    error_code ignored;
    child->stdout_stream()->close(ignored);
    stderr_stream.close(ignored);
    changed.notify_all();
  }
};

// Once the leader is reaped, what is left of its group (a server's own children) is killed at
// once: later the group id could name someone else's group.
asio::awaitable<void> watch_exit(std::shared_ptr<State> state) {
  try {
    const process::ExitStatus status = co_await state->child->wait();
    state->child->signal_group(SIGKILL);
    state->diagnostics->set_end_reason(stdio::exit_reason(status.code, status.signal));
  } catch (const boost::system::system_error&) {
    // The Child was destroyed first (it reaped the process itself).
  }
  state->changed.notify_all();
}

asio::awaitable<void> drain_stderr(std::shared_ptr<State> state) {
  std::array<char, 4096> buffer{};
  for (;;) {
    error_code ec;
    const std::size_t n = co_await state->stderr_stream.async_read_some(
        asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    state->stderr_log.append(std::string_view(buffer.data(), n));
  }
  state->stderr_log.finish();
  state->stderr_done = true;
  state->changed.notify_all();
}

// stdout ended: the reason is the exit, once the child is reaped and its stderr read (so the
// tail is complete when the client reports it), within the kill grace.
asio::awaitable<error_code> end_of_output(std::shared_ptr<State> state) {
  const auto deadline = Clock::now() + state->options.kill_grace;
  auto done = [&] { return state->child->exit_status() && state->stderr_done; };
  while (!done() && !state->killed && Clock::now() < deadline)
    co_await stdio::wait_until(state->changed, deadline);
  if (const auto status = state->child->exit_status()) {
    state->ended = stdio::exit_error(status->code, status->signal);
  } else {
    state->diagnostics->set_end_reason("MCP server closed its stdout");
    state->ended = stdio::output_closed_error();
  }
  co_return *state->ended;
}

asio::awaitable<boost::system::result<std::string>> read_line(std::shared_ptr<State> state) {
  for (;;) {
    if (state->ended) co_return *state->ended;
    auto line = state->lines.next_line();
    if (!line) {
      state->diagnostics->set_end_reason(stdio::overlong_reason(state->options.max_line_bytes));
      state->ended = line.error();
      continue;
    }
    if (*line) {
      if ((*line)->empty()) continue;
      co_return std::move(**line);
    }
    if (state->output_ended) co_return co_await end_of_output(state);
    if (state->killed) co_return asio::error::operation_aborted;
    error_code ec;
    const std::size_t n = co_await state->child->stdout_stream()->async_read_some(
        asio::buffer(state->chunk), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (state->killed) co_return asio::error::operation_aborted;
      // The unterminated last line still counts: terminate it, deliver it, then end.
      state->output_ended = true;
      state->lines.append("\n");
      continue;
    }
    state->lines.append(std::string_view(state->chunk.data(), n));
  }
}

asio::awaitable<error_code> write_line(std::shared_ptr<State> state, const std::string& message) {
  auto* input = state->child->stdin_stream();
  if (input == nullptr) co_return make_error_code(boost::system::errc::broken_pipe);
  static constexpr char kNewline = '\n';
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(message),
                                                  asio::buffer(&kNewline, 1)};
  error_code ec;
  co_await asio::async_write(*input, buffers, asio::redirect_error(asio::use_awaitable, ec));
  co_return ec;
}

asio::awaitable<void> shut_down(std::shared_ptr<State> state) {
  if (state->killed) co_return;
  state->child->close_stdin();
  state->child->terminate(state->options.kill_grace);
  const auto deadline = Clock::now() + state->options.kill_grace + kReapMargin;
  while (!state->child->exit_status() && !state->killed && Clock::now() < deadline)
    co_await stdio::wait_until(state->changed, deadline);
}

class LocalTransport final : public stdio::PipeTransport {
 public:
  explicit LocalTransport(std::shared_ptr<State> state) : state_(std::move(state)) {}
  ~LocalTransport() override { state_->kill(); }

  asio::awaitable<boost::system::result<std::string>> read() override { return read_line(state_); }
  asio::awaitable<error_code> write(const std::string& message) override {
    return write_line(state_, message);
  }
  asio::awaitable<void> close(std::uint16_t) override { return shut_down(state_); }
  void abort() override { state_->kill(); }

 private:
  std::shared_ptr<State> state_;
};

std::vector<std::string> child_environment(const StdioCommand& command) {
  std::map<std::string, std::string> env = stdio::own_variables(
      std::vector<std::string>(std::begin(kLocalCoreVariables), std::end(kLocalCoreVariables)));
  env.merge(stdio::own_variables(command.env_vars));
  for (const auto& [name, value] : command.env) env.insert_or_assign(name, value);
  std::vector<std::string> entries;
  entries.reserve(env.size());
  for (const auto& [name, value] : env) entries.push_back(name + '=' += value);
  return entries;
}

}  // namespace

Expected<ServerConnection> launch_local(const asio::any_io_executor& executor,
                                        const StdioCommand& command, const StdioOptions& options) {
  process::ignore_sigpipe_unless_handled();
  process::SpawnOptions spawn;
  spawn.argv.push_back(command.program);
  spawn.argv.insert(spawn.argv.end(), command.args.begin(), command.args.end());
  spawn.env = child_environment(command);
  spawn.cwd = command.cwd.value_or("");
  spawn.stdin_mode = process::StdinMode::pipe;
  spawn.die_with_parent = true;
  auto child = process::Child::spawn(executor, spawn);
  if (!child) return jsonrpc::make_error(jsonrpc::code::kInternalError, child.error().message);

  auto diagnostics = std::make_shared<ServerDiagnostics>(options.stderr_tail_lines);
  const pid_t pid = (*child)->pid();
  auto state = std::make_shared<State>(std::move(*child), diagnostics, command.program, options);
  asio::co_spawn(executor, watch_exit(state), asio::detached);
  asio::co_spawn(executor, drain_stderr(state), asio::detached);
  return ServerConnection{
      std::make_unique<LocalTransport>(std::move(state)), std::move(diagnostics),
      "local process '" + command.program + "' (pid " + std::to_string(pid) + ")"};
}

}  // namespace tether::mcp
