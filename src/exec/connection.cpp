// The route table and the handlers. Handlers that must observe request order (start, write) do
// their work before their first suspension; Peer starts handlers in arrival order, and a route
// decodes and calls its handler without suspending, so that is enough.
#include "connection.hpp"

#include <csignal>
#include <filesystem>
#include <pwd.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "fs_methods.hpp"
#include "start.hpp"
#include <tether/fetch/direct.hpp>
#include <tether/jsonrpc/duration.hpp>
#include <tether/jsonrpc/url_target.hpp>
#include <tether/jsonrpc/utf8.hpp>

extern char** environ;

namespace tether::exec {
namespace asio = boost::asio;
using jsonrpc::Reply;
using namespace asio::experimental::awaitable_operators;

namespace {

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

template <class R>
Reply reply_of(const Expected<R>& result) {
  if (!result) return error(result.error());
  return to_json(*result);
}

// Runs on the blocking pool: fs/* does synchronous file I/O, and the answer (up to 60 MB of
// base64) is encoded there too.
template <class P, auto Fn>
asio::awaitable<Expected<json::value>> run_fs(P params) {
  auto result = Fn(params);
  if (!result) co_return result.error();
  co_return to_json(*result);
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
  fetch::DirectOptions direct;
  direct.connect_timeout = opts.http_connect_timeout;
  http = fetch::direct_client(ex, direct);
}

Connection::Connection(std::shared_ptr<ServerContext> context,
                       std::unique_ptr<jsonrpc::Transport> transport, std::string peer)
    : context_(std::move(context)),
      id_(context_->next_connection_id++),
      peer_address_(std::move(peer)),
      ended_(context_->executor),
      fs_room_(context_->executor) {
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
  peer_->on_request([self](jsonrpc::Request r) { return handle(self, std::move(r)); });
  peer_->on_notification([this, self](const jsonrpc::Notification& n) { handle_notification(n); });
  peer_->on_unmatched_response([this, self](const jsonrpc::Response&) {
    protocol_violation("unexpected response from client");
  });
  spdlog::info("exec: connection {} accepted from {}", id_, peer_address_);
  co_await peer_->run();
  const auto lasted = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - accepted_at_);
  spdlog::info("exec: connection {} closed after {} and {} request{}: {}", id_,
               jsonrpc::format_duration(lasted), requests_, requests_ == 1 ? "" : "s",
               peer_->end_reason());
  ended_.notify_all();
  // Streams are not resumed with the session: nothing is left reading for a lost client.
  for (const auto& [id, exchange] : http_calls_) exchange->cancel();
  for (const auto& [id, exchange] : streams_) exchange->cancel();
  streams_.clear();
  fs_room_.notify_all();
  peer_->on_request(nullptr);
  peer_->on_notification(nullptr);
  peer_->on_unmatched_response(nullptr);
  if (!session_ || context_->shutting_down) co_return;
  const auto code = peer_->remote_close_code();
  if (code == jsonrpc::close_code::kNormal) {
    session_->end(fmt::format("ended: connection {} closed by the client", id_));
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
  if (notification.method != kInitialized.name) {
    protocol_violation(fmt::format("unexpected notification '{}'", notification.method));
    return;
  }
  if (state_ == State::fresh) {
    protocol_violation("received 'initialized' notification before 'initialize'");
    return;
  }
  state_ = State::ready;
}

struct Connection::Route {
  std::string_view method;
  Needs needs;
  asio::awaitable<Reply> (*serve)(std::shared_ptr<Connection>, jsonrpc::Request);
};

const Connection::Route* Connection::find_route(std::string_view method) {
  using C = Connection;
  static constexpr Route kRoutes[] = {
      {kInitialize.name, Needs::nothing, &C::serve<kInitialize, &C::initialize>},
      {kEnvironmentStatus.name, Needs::nothing,
       &C::serve<kEnvironmentStatus, &C::environment_status>},
      {kEnvironmentInfo.name, Needs::nothing, &C::serve<kEnvironmentInfo, &C::environment_info>},
      {kProcessStart.name, Needs::exec, &C::serve<kProcessStart, &C::start_process>},
      {kProcessRead.name, Needs::exec, &C::serve<kProcessRead, &C::read_process>},
      {kProcessWrite.name, Needs::exec, &C::serve<kProcessWrite, &C::write_process>},
      {kProcessTerminate.name, Needs::exec, &C::serve<kProcessTerminate, &C::terminate_process>},
      {kProcessSignal.name, Needs::exec, &C::serve<kProcessSignal, &C::signal_process>},
      {kHttpRequest.name, Needs::exec, &C::serve<kHttpRequest, &C::http_request>},
      {kHttpCancel.name, Needs::exec, &C::serve<kHttpCancel, &C::http_cancel>},
      {kFsReadFile.name, Needs::filesystem, &C::serve_fs<kFsReadFile, fs_read_file>},
      {kFsWriteFile.name, Needs::filesystem, &C::serve_fs<kFsWriteFile, fs_write_file>},
      {kFsCreateDirectory.name, Needs::filesystem,
       &C::serve_fs<kFsCreateDirectory, fs_create_directory>},
      {kFsGetMetadata.name, Needs::filesystem, &C::serve_fs<kFsGetMetadata, fs_get_metadata>},
      {kFsReadDirectory.name, Needs::filesystem, &C::serve_fs<kFsReadDirectory, fs_read_directory>},
      {kFsRemove.name, Needs::filesystem, &C::serve_fs<kFsRemove, fs_remove>},
      {kFsCopy.name, Needs::filesystem, &C::serve_fs<kFsCopy, fs_copy>},
      {kFsCanonicalize.name, Needs::filesystem, &C::serve_fs<kFsCanonicalize, fs_canonicalize>},
  };
  for (const auto& route : kRoutes) {
    if (route.method == method) return &route;
  }
  return nullptr;
}

asio::awaitable<Reply> Connection::handle(std::shared_ptr<Connection> self,
                                          jsonrpc::Request request) {
  ++self->requests_;
  const Route* route = find_route(request.method);
  if (!route)
    co_return error(jsonrpc::make_error(jsonrpc::code::kMethodNotFound, "method not found"));
  if (route->needs != Needs::nothing && self->state_ != State::ready) {
    const char* what = route->needs == Needs::filesystem ? "filesystem" : "exec";
    const char* step = self->state_ == State::fresh ? "call initialize" : "send initialized";
    co_return error(
        invalid_request(fmt::format("client must {} before using {} methods", step, what)));
  }
  co_return co_await route->serve(std::move(self), std::move(request));
}

template <const auto& M, auto Handler>
asio::awaitable<Reply> Connection::serve(std::shared_ptr<Connection> self,
                                         jsonrpc::Request request) {
  using Params = typename std::remove_cvref_t<decltype(M)>::Params;
  auto params = decode<Params>(request.params);
  if (!params) co_return error(params.error());
  Connection& connection = *self;
  if constexpr (std::is_invocable_v<decltype(Handler), Connection&, Params, jsonrpc::Id>) {
    co_return reply_of(co_await (connection.*Handler)(std::move(*params), request.id));
  } else {
    co_return reply_of(co_await (connection.*Handler)(std::move(*params)));
  }
}

template <const auto& M, auto Fn>
asio::awaitable<Reply> Connection::serve_fs(std::shared_ptr<Connection> self,
                                            jsonrpc::Request request) {
  using Params = typename std::remove_cvref_t<decltype(M)>::Params;
  auto params = decode<Params>(request.params);
  if (!params) co_return error(params.error());
  co_return co_await self->run_blocking(run_fs<Params, Fn>(std::move(*params)));
}

asio::awaitable<Reply> Connection::run_blocking(asio::awaitable<Expected<json::value>> work) {
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
  auto result =
      co_await asio::co_spawn(context_->blocking_pool, std::move(work), asio::use_awaitable);
  if (!result) co_return error(result.error());
  co_return std::move(*result);
}

asio::awaitable<Expected<InitializeResult>> Connection::initialize(InitializeParams params) {
  if (state_ != State::fresh)
    co_return invalid_request("initialize may only be sent once per connection");
  std::shared_ptr<Session> session;
  if (const auto& resume = params.resume_session_id) {
    session = context_->sessions.find(*resume);
    if (!session) co_return invalid_request(fmt::format("unknown session id {}", *resume));
    if (session->attached()) {
      co_return jsonrpc::make_error(
          jsonrpc::code::kSessionAttached,
          fmt::format("session {} is already attached to another connection", *resume));
    }
    spdlog::info("exec: session {} resumed on connection {} (was on connection {}) by client {:?}",
                 session->id(), id_, session->connection(), params.client_name);
  } else {
    session = context_->sessions.create();
    spdlog::info("exec: session {} started on connection {} by client {:?}", session->id(), id_,
                 params.client_name);
  }
  session->attach(peer_, id_);
  session_ = session;
  state_ = State::initialize_answered;
  co_return InitializeResult{session->id(), context_->environment_info};
}

asio::awaitable<Expected<EnvironmentStatus>> Connection::environment_status(Empty) {
  co_return EnvironmentStatus{"ready"};
}

asio::awaitable<Expected<json::object>> Connection::environment_info(Empty) {
  co_return context_->environment_info;
}

asio::awaitable<Expected<StartResult>> Connection::start_process(StartParams params) {
  auto spawn = spawn_options_for(params, environ);
  if (!spawn) co_return spawn.error();
  if (session_->contains(params.process_id)) co_return process_exists_error(params.process_id);
  if (session_->running_count() >= context_->options.max_processes_per_session) {
    co_return invalid_request(fmt::format("too many processes in this session (limit {})",
                                          context_->options.max_processes_per_session));
  }
  auto on_closed = [weak_context = std::weak_ptr(context_),
                    weak_session = std::weak_ptr(session_)](const std::string& process_id) {
    auto context = weak_context.lock();
    if (!context) return;
    --context->live_processes;
    context->changed.notify_all();
    if (auto session = weak_session.lock())
      session->forget_later(process_id, context->options.closed_process_retention);
  };
  auto process =
      ManagedProcess::start(context_->executor, params.process_id, *spawn, params.pipe_stdin,
                            session_->outlet(), context_->limits, std::move(on_closed));
  if (!process) co_return process.error();
  // argv[0] only: arguments can carry secrets (a token on a command line), the program rarely.
  spdlog::info("exec: process {:?} started in session {}: {:?} (pid {})", params.process_id,
               session_->id(), params.argv.front(), (*process)->pid());
  ++context_->live_processes;
  session_->add(std::move(*process));
  co_return StartResult{params.process_id};
}

asio::awaitable<Expected<ReadResult>> Connection::read_process(ReadParams params,
                                                               jsonrpc::Id request_id) {
  auto process = session_->find(params.process_id);
  if (!process) co_return invalid_request(fmt::format("unknown process id {}", params.process_id));
  process->acknowledge(params.after_seq);
  if (params.wait_ms > 0 && !process->has_news(params.after_seq)) {
    asio::steady_timer timer(context_->executor);
    timer.expires_after(std::min<std::chrono::milliseconds>(
        std::chrono::milliseconds(std::min<std::uint64_t>(params.wait_ms, INT64_MAX)), kMaxWait));
    bool timed_out = false;
    while (!timed_out && !process->has_news(params.after_seq) && !peer_->is_closed()) {
      boost::system::error_code ec;
      auto which = co_await (process->changed().wait() || ended_.wait() ||
                             timer.async_wait(asio::redirect_error(asio::use_awaitable, ec)));
      timed_out = which.index() == 2;
    }
  }
  std::optional<std::size_t> limit;
  if (params.max_bytes) limit = static_cast<std::size_t>(*params.max_bytes);
  auto result = process->read(params.after_seq, limit);
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
  co_return result;
}

asio::awaitable<Expected<WriteResult>> Connection::write_process(WriteParams params) {
  auto process = session_->find(params.process_id);
  // Not a conditional expression: GCC 12 miscompiles co_await inside `?:`.
  WriteStatus status = WriteStatus::unknown_process;
  if (process)
    status = co_await process->write(std::move(params.bytes), std::move(params.write_id));
  co_return WriteResult{status};
}

asio::awaitable<Expected<TerminateResult>> Connection::terminate_process(ProcessRef params) {
  auto process = session_->find(params.process_id);
  co_return TerminateResult{process && process->terminate()};
}

asio::awaitable<Expected<Empty>> Connection::signal_process(SignalParams params) {
  if (auto process = session_->find(params.process_id)) process->interrupt();
  co_return Empty{};
}

namespace {

// A failed http/request: -32603 as codex answers, or the request's own -32602. tether
// extension: `data.unreachable` says nothing reached the server (name, connection, TLS).
Error http_failure(const Error& error) {
  if (error.code == jsonrpc::code::kInvalidParams) return error;
  auto failure = jsonrpc::make_error(jsonrpc::code::kInternalError,
                                     fmt::format("http/request failed: {}", error.message));
  if (error.code == jsonrpc::code::kUnreachable) {
    json::object data;
    data["unreachable"] = true;
    failure.data = std::move(data);
  }
  return failure;
}

// The scheme, host and port of an http/request URL: its path and query (where tokens go) and any
// userinfo stay out of the log.
std::string loggable_origin(std::string_view url) {
  auto target = jsonrpc::parse_url_target(url, "http", "https");
  if (!target) return "(an invalid URL)";
  return fmt::format("{}://{}", target->tls ? "https" : "http", target->host_header);
}

// JSON strings are UTF-8: a header value that is not is left out (as codex does).
fetch::Headers utf8_headers(fetch::Headers headers) {
  std::erase_if(headers, [](const fetch::Header& h) {
    return !jsonrpc::is_valid_utf8(h.name) || !jsonrpc::is_valid_utf8(h.value);
  });
  return headers;
}

}  // namespace

asio::awaitable<Expected<HttpResponse>> Connection::http_request(HttpRequestParams params,
                                                                 jsonrpc::Id request_id) {
  const auto limit = context_->options.max_http_requests;
  if (open_http_requests() >= limit)
    co_return invalid_request(
        fmt::format("too many open http/request calls on this connection (limit {})", limit));
  if (params.stream_response && streams_.contains(*params.request_id))
    co_return invalid_request(
        fmt::format("http/request {} is already streaming its body", *params.request_id));
  spdlog::debug("exec: connection {} http/request {:?} to {}", id_, params.method,
                loggable_origin(params.url));
  fetch::Request request;
  request.method = std::move(params.method);
  request.url = std::move(params.url);
  request.headers = std::move(params.headers);
  request.body = params.body.value_or(std::string());
  if (params.timeout_ms)
    request.timeout = std::chrono::milliseconds(
        std::min<std::uint64_t>(*params.timeout_ms, INT64_MAX / 1'000'000));
  request.redirects = params.redirect_policy;
  auto exchange = context_->http->start(std::move(request));
  http_calls_.emplace_back(params.request_id.value_or(std::string()), exchange);
  struct Forget {
    Connection* connection;
    std::shared_ptr<fetch::Exchange> exchange;
    ~Forget() {
      std::erase_if(connection->http_calls_,
                    [this](const auto& call) { return call.second == exchange; });
    }
  } forget{this, exchange};
  auto head = co_await exchange->head();
  if (!head) co_return http_failure(head.error());
  HttpResponse response;
  response.status = head->status;
  response.headers = utf8_headers(std::move(head->headers));
  if (!params.stream_response) {
    auto body = co_await fetch::read_all(*exchange, context_->options.max_http_body_bytes);
    if (!body) co_return http_failure(body.error());
    response.body = std::move(*body);
    co_return response;
  }
  if (peer_->is_closed()) {
    exchange->cancel();
    co_return response;
  }
  // The deltas follow the response, so a client sees the head first (it must not count on it:
  // codex's order is not promised).
  const auto& id = *params.request_id;
  streams_[id] = exchange;
  peer_->on_response_delivered(request_id, [weak = weak_from_this(), id, exchange] {
    if (auto self = weak.lock())
      asio::co_spawn(self->context_->executor, stream_body(self, id, exchange), asio::detached);
  });
  co_return response;
}

asio::awaitable<Expected<Empty>> Connection::http_cancel(HttpCancelParams params) {
  // A call still waiting for its head is cancelled too: its stream would never be read.
  for (const auto& [id, exchange] : http_calls_)
    if (id == params.request_id) exchange->cancel();
  if (auto it = streams_.find(params.request_id); it != streams_.end()) {
    it->second->cancel();
    streams_.erase(it);
  }
  co_return Empty{};
}

asio::awaitable<void> Connection::stream_body(std::shared_ptr<Connection> self,
                                              std::string request_id,
                                              std::shared_ptr<fetch::Exchange> exchange) {
  const auto current = [&] {
    auto it = self->streams_.find(request_id);
    return it != self->streams_.end() && it->second == exchange;
  };
  HttpBodyDelta delta;
  delta.request_id = request_id;
  while (!delta.done) {
    // Backpressure: nothing more is read from the server while the client is behind.
    co_await self->peer_->wait_writable();
    if (self->peer_->is_closed() || !current()) break;
    auto piece = co_await exchange->read();
    if (!current()) break;  // cancelled meanwhile
    ++delta.seq;
    delta.bytes.clear();
    if (!piece) {
      delta.done = true;
      delta.error = piece.error().message;
    } else if (piece->empty()) {
      delta.done = true;
    } else {
      delta.bytes = std::move(*piece);
    }
    self->peer_->notify(std::string(kHttpBodyDelta.name), to_json(delta));
  }
  if (current()) self->streams_.erase(request_id);
  exchange->cancel();
}

}  // namespace tether::exec
