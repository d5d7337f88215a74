// Method handlers. Handlers that must observe request order (start, write) do their work before
// their first suspension; Peer starts handlers in arrival order, so that is enough.
#include "connection.hpp"

#include <csignal>
#include <filesystem>
#include <pwd.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "env_policy.hpp"
#include "fs_methods.hpp"
#include "spawn_options.hpp"
#include "wire.hpp"
#include <tether/exec/base64.hpp>

extern char** environ;

namespace tether::exec {
namespace asio = boost::asio;
using jsonrpc::Reply;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr std::string_view kProcessMethods[] = {"process/start", "process/read", "process/write",
                                                "process/terminate", "process/signal"};
// Fields codex can send that would need a sandbox or a managed network: refused, never half-done.
constexpr std::string_view kRefusedFields[] = {"sandbox", "managedNetwork", "networkProxy",
                                               "shellSnapshot"};
constexpr auto kMaxWait = std::chrono::minutes(10);

Reply error(jsonrpc::Error e) {
  return Reply{boost::system::in_place_error, std::move(e)};
}

std::string home_dir() {
  if (const char* home = std::getenv("HOME"); home && *home == '/') return home;
  if (const passwd* pw = getpwuid(getuid()); pw && pw->pw_dir) return pw->pw_dir;
  return "/";
}

boost::json::object make_environment_info() {
  std::string shell_path = "/bin/sh";
  if (const char* shell = std::getenv("SHELL"); shell && *shell == '/') {
    shell_path = shell;
  } else if (const passwd* pw = getpwuid(getuid()); pw && pw->pw_shell && *pw->pw_shell == '/') {
    shell_path = pw->pw_shell;
  }
  std::error_code ec;
  auto cwd = std::filesystem::current_path(ec);
  const char* tmp = std::getenv("TMPDIR");
  return boost::json::object{
      {"shell",
       {{"name", std::filesystem::path(shell_path).filename().string()}, {"path", shell_path}}},
      {"executorVersion", TETHER_VERSION},
      {"platformOs", "linux"},
      {"cwd", to_file_uri(ec ? "/" : cwd.string())},
      {"userHomeDir", to_file_uri(home_dir())},
      {"tempDir", to_file_uri(tmp && *tmp == '/' ? tmp : "/tmp")},
      {"capabilities", boost::json::object{}}};
}

struct WriteParams {
  std::string process_id;
  std::string bytes;
  std::optional<std::string> write_id;
};

// Not a coroutine: a write may wait long for stdin room, holding only the decoded bytes and
// its request, not the copies made while parsing.
Expected<WriteParams> parse_write(const jsonrpc::json::value& raw) {
  auto params = Params::of(raw);
  if (!params) return params.error();
  auto id = params->string("processId");
  if (!id) return id.error();
  auto chunk = params->string("chunk");
  if (!chunk) return chunk.error();
  auto write_id = params->optional_string("writeId");
  if (!write_id) return write_id.error();
  if (*write_id && (*write_id)->empty()) return invalid_params("writeId must not be empty");
  auto bytes = base64_decode(*chunk);
  if (!bytes) return invalid_params("chunk is not valid base64");
  return WriteParams{std::move(*id), std::move(*bytes), std::move(*write_id)};
}

// Runs on the blocking pool: fs/* does synchronous file I/O.
asio::awaitable<Expected<jsonrpc::json::value>> run_fs_method(std::string method,
                                                              jsonrpc::json::value params) {
  co_return call_fs_method(method, params);
}

}  // namespace

ServerContext::ServerContext(const ServerOptions& opts, const asio::any_io_executor& ex)
    : options(opts),
      executor(ex),
      sessions(ex),
      blocking_pool(opts.fs_threads),
      environment_info(make_environment_info()),
      changed(ex) {
  limits.kill_grace = opts.kill_grace;
}

Connection::Connection(std::shared_ptr<ServerContext> context,
                       std::unique_ptr<jsonrpc::Transport> transport)
    : context_(std::move(context)), ended_(context_->executor), fs_room_(context_->executor) {
  jsonrpc::PeerOptions options;
  options.ping_interval = context_->options.ping_interval;
  options.send_high_water = context_->options.max_queued_bytes;
  options.max_in_flight_requests = context_->options.max_requests_in_flight;
  options.max_in_flight_request_bytes = context_->options.max_request_bytes_in_flight;
  peer_ = jsonrpc::Peer::create(context_->executor, std::move(transport), options);
  context_->connections.insert(this);
}

Connection::~Connection() {
  context_->connections.erase(this);
  context_->changed.notify_all();
}

asio::awaitable<void> Connection::run() {
  auto self = shared_from_this();
  peer_->on_request([self](jsonrpc::Request r) { return handle_owned(self, std::move(r)); });
  peer_->on_notification([this, self](const jsonrpc::Notification& n) { handle_notification(n); });
  peer_->on_unmatched_response([this, self](const jsonrpc::Response&) {
    protocol_violation("unexpected response from client");
  });
  co_await peer_->run();
  spdlog::debug("exec: connection ended: {}", peer_->end_reason());
  ended_.notify_all();
  fs_room_.notify_all();
  peer_->on_request(nullptr);
  peer_->on_notification(nullptr);
  peer_->on_unmatched_response(nullptr);
  if (!session_ || context_->shutting_down) co_return;
  const auto code = peer_->remote_close_code();
  if (code == jsonrpc::close_code::kNormal) {
    session_->end();
  } else {
    session_->detach(context_->options.session_ttl);
  }
  session_.reset();
}

void Connection::protocol_violation(std::string message) {
  peer_->respond(
      jsonrpc::Response{jsonrpc::Id{std::int64_t{-1}}, error(invalid_request(std::move(message)))});
}

void Connection::handle_notification(const jsonrpc::Notification& notification) {
  if (notification.method != "initialized") {
    protocol_violation(fmt::format("unexpected notification '{}'", notification.method));
    return;
  }
  if (state_ == State::fresh) {
    protocol_violation("received 'initialized' notification before 'initialize'");
    return;
  }
  state_ = State::ready;
}

asio::awaitable<Reply> Connection::handle_owned(std::shared_ptr<Connection> self,
                                                jsonrpc::Request request) {
  co_return co_await self->handle(std::move(request));
}

asio::awaitable<Reply> Connection::handle(jsonrpc::Request request) {
  const std::string& method = request.method;
  if (method == "initialize") co_return initialize(request.params);
  if (method == "environment/status") co_return boost::json::object{{"status", "ready"}};
  if (method == "environment/info") co_return boost::json::value(context_->environment_info);

  const bool is_process = std::find(std::begin(kProcessMethods), std::end(kProcessMethods),
                                    method) != std::end(kProcessMethods);
  const bool is_fs = is_fs_method(method);
  if (!is_process && !is_fs) {
    co_return error(jsonrpc::make_error(jsonrpc::code::kMethodNotFound, "method not found"));
  }
  const char* what = is_fs ? "filesystem" : "exec";
  if (state_ == State::fresh)
    co_return error(
        invalid_request(fmt::format("client must call initialize before using {} methods", what)));
  if (state_ == State::initialize_answered)
    co_return error(
        invalid_request(fmt::format("client must send initialized before using {} methods", what)));

  if (is_fs) co_return co_await fs_method(method, std::move(request.params));
  if (method == "process/start") co_return start_process(request.params);
  if (method == "process/read") co_return co_await read_process(request.id, request.params);
  if (method == "process/write") co_return co_await write_process(request.params);
  if (method == "process/terminate") co_return terminate_process(request.params);
  co_return signal_process(request.params);
}

Reply Connection::initialize(const jsonrpc::json::value& raw) {
  if (state_ != State::fresh)
    return error(invalid_request("initialize may only be sent once per connection"));
  auto params = Params::of(raw);
  if (!params) return error(params.error());
  auto client_name = params->string("clientName");
  if (!client_name) return error(client_name.error());
  auto resume = params->optional_string("resumeSessionId");
  if (!resume) return error(resume.error());

  std::shared_ptr<Session> session;
  if (*resume) {
    session = context_->sessions.find(**resume);
    if (!session) return error(invalid_request(fmt::format("unknown session id {}", **resume)));
    if (session->attached()) {
      return error(jsonrpc::make_error(
          jsonrpc::code::kSessionAttached,
          fmt::format("session {} is already attached to another connection", **resume)));
    }
    spdlog::info("exec: session {} resumed by '{}'", session->id(), *client_name);
  } else {
    session = context_->sessions.create();
    spdlog::debug("exec: session {} started by '{}'", session->id(), *client_name);
  }
  session->attach(peer_);
  session_ = session;
  state_ = State::initialize_answered;
  return boost::json::object{{"sessionId", session->id()},
                             {"environmentInfo", context_->environment_info}};
}

Reply Connection::start_process(const jsonrpc::json::value& raw) {
  auto params = Params::of(raw);
  if (!params) return error(params.error());
  auto id = params->string("processId");
  if (!id) return error(id.error());
  auto argv = params->strings("argv");
  if (!argv) return error(argv.error());
  if (auto bad = argv_error(*argv)) return error(std::move(*bad));
  std::string cwd;
  if (params->find("cwd")) {
    auto parsed = params->path("cwd");
    if (!parsed) return error(parsed.error());
    cwd = std::move(*parsed);
  }
  for (auto field : kRefusedFields) {
    if (params->find(field))
      return error(invalid_params(fmt::format("{} is not supported by this executor", field)));
  }
  auto enforce = params->optional_bool("enforceManagedNetwork");
  if (!enforce) return error(enforce.error());
  if (enforce->value_or(false))
    return error(invalid_params("enforceManagedNetwork is not supported by this executor"));
  auto tty = params->optional_bool("tty");
  if (!tty) return error(tty.error());
  auto pipe_stdin = params->optional_bool("pipeStdin");
  if (!pipe_stdin) return error(pipe_stdin.error());
  auto arg0 = params->optional_string("arg0");
  if (!arg0) return error(arg0.error());
  if (auto bad = nul_byte_error("arg0", arg0->value_or(""))) return error(std::move(*bad));
  auto env = build_child_environment(*params, environ);
  if (!env) return error(env.error());

  if (session_->contains(*id)) return error(process_exists_error(*id));
  if (session_->running_count() >= context_->options.max_processes_per_session) {
    return error(invalid_request(fmt::format("too many processes in this session (limit {})",
                                             context_->options.max_processes_per_session)));
  }

  const auto spawn =
      make_spawn_options(std::move(*argv), std::move(*arg0), std::move(*env), std::move(cwd),
                         tty->value_or(false), pipe_stdin->value_or(false));

  auto on_closed = [weak_context = std::weak_ptr(context_),
                    weak_session = std::weak_ptr(session_)](const std::string& process_id) {
    auto context = weak_context.lock();
    if (!context) return;
    --context->live_processes;
    context->changed.notify_all();
    if (auto session = weak_session.lock())
      session->forget_later(process_id, context->options.closed_process_retention);
  };
  auto process = ManagedProcess::start(context_->executor, *id, spawn, pipe_stdin->value_or(false),
                                       session_->outlet(), context_->limits, std::move(on_closed));
  if (!process) return error(process.error());
  ++context_->live_processes;
  session_->add(std::move(*process));
  return boost::json::object{{"processId", *id}, {"sandboxType", "none"}};
}

asio::awaitable<Reply> Connection::read_process(const jsonrpc::Id& request_id,
                                                const jsonrpc::json::value& raw) {
  auto params = Params::of(raw);
  if (!params) co_return error(params.error());
  auto id = params->string("processId");
  if (!id) co_return error(id.error());
  auto after = params->optional_int("afterSeq");
  if (!after) co_return error(after.error());
  auto max_bytes = params->optional_int("maxBytes");
  if (!max_bytes) co_return error(max_bytes.error());
  auto wait_ms = params->optional_int("waitMs");
  if (!wait_ms) co_return error(wait_ms.error());
  if (after->value_or(0) < 0 || max_bytes->value_or(0) < 0 || wait_ms->value_or(0) < 0)
    co_return error(invalid_params("afterSeq, maxBytes and waitMs must not be negative"));

  auto process = session_->find(*id);
  if (!process) co_return error(invalid_request(fmt::format("unknown process id {}", *id)));
  const auto after_seq = static_cast<std::uint64_t>(after->value_or(0));
  process->acknowledge(after_seq);
  if (wait_ms->value_or(0) > 0 && !process->has_news(after_seq)) {
    asio::steady_timer timer(context_->executor);
    timer.expires_after(
        std::min<std::chrono::milliseconds>(std::chrono::milliseconds(**wait_ms), kMaxWait));
    bool timed_out = false;
    while (!timed_out && !process->has_news(after_seq) && !peer_->is_closed()) {
      boost::system::error_code ec;
      auto which = co_await (process->changed().wait() || ended_.wait() ||
                             timer.async_wait(asio::redirect_error(asio::use_awaitable, ec)));
      timed_out = which.index() == 2;
    }
  }
  std::optional<std::size_t> limit;
  if (*max_bytes) limit = static_cast<std::size_t>(**max_bytes);
  auto result = process->read(after_seq, limit);
  // Chunks that reach the client in this answer are confirmed like pushed ones once it is
  // delivered: a resumed client that catches up once does not hold retention (and the
  // process's output) back until it reads again.
  if (!result.chunks.empty()) {
    peer_->on_response_delivered(request_id,
                                 [weak = std::weak_ptr(process), first = result.chunks.front().seq,
                                  last = result.chunks.back().seq] {
                                   if (auto p = weak.lock()) p->confirm_range(first, last);
                                 });
  }
  co_return to_json(result);
}

asio::awaitable<Reply> Connection::write_process(const jsonrpc::json::value& raw) {
  auto write = parse_write(raw);
  if (!write) co_return error(write.error());
  auto process = session_->find(write->process_id);
  // Not a conditional expression: GCC 12 miscompiles co_await inside `?:`.
  WriteStatus status = WriteStatus::unknown_process;
  if (process)
    status = co_await process->write(std::move(write->bytes), std::move(write->write_id));
  co_return boost::json::object{{"status", to_string(status)}};
}

Reply Connection::terminate_process(const jsonrpc::json::value& raw) {
  auto params = Params::of(raw);
  if (!params) return error(params.error());
  auto id = params->string("processId");
  if (!id) return error(id.error());
  auto process = session_->find(*id);
  return boost::json::object{{"running", process && process->terminate()}};
}

Reply Connection::signal_process(const jsonrpc::json::value& raw) {
  auto params = Params::of(raw);
  if (!params) return error(params.error());
  auto id = params->string("processId");
  if (!id) return error(id.error());
  auto signal = params->string("signal");
  if (!signal) return error(signal.error());
  if (*signal != "interrupt")
    return error(
        invalid_params(fmt::format("unknown variant `{}`, expected `interrupt`", *signal)));
  if (auto process = session_->find(*id)) process->interrupt();
  return boost::json::object{};
}

asio::awaitable<Reply> Connection::fs_method(std::string method, jsonrpc::json::value params) {
  // An answer can be 60 MB of base64: none is computed while the send queue is over its mark,
  // at most max_fs_calls at a time, and none for a client that is gone.
  for (;;) {
    co_await peer_->wait_writable();
    if (peer_->is_closed())
      co_return error(jsonrpc::make_error(jsonrpc::code::kConnectionClosed, "connection closed"));
    if (fs_running_ < context_->options.max_fs_calls) break;
    co_await fs_room_.wait();
  }
  ++fs_running_;
  struct Release {
    Connection* connection;
    ~Release() {
      --connection->fs_running_;
      connection->fs_room_.notify_all();
    }
  } release{this};
  // A named coroutine, not a capturing lambda: GCC 12 destroys a by-value lambda temporary in a
  // co_await expression twice.
  auto work = run_fs_method(std::move(method), std::move(params));
  auto result =
      co_await asio::co_spawn(context_->blocking_pool, std::move(work), asio::use_awaitable);
  if (!result) co_return error(result.error());
  co_return std::move(*result);
}

}  // namespace tether::exec
