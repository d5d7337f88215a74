// HttpServer in the shape of Beast's async server example: an accept loop, and one coroutine per
// connection that reads a request, judges it (Origin, Host, token), serves it, and goes on
// while the connection is kept alive. A POSTed request is answered with JSON when its response
// is the first thing it produces, else with an SSE stream that carries what belongs to it
// (progress, requests to the client) and ends with the response. Streams are HttpSession's; a
// connection only writes them, from where its reader is, so it can drop and resume anywhere.
#include <list>
#include <map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "http_session.hpp"
#include <tether/mcp_protocol/http_headers.hpp>
#include <tether/mcp_protocol/revision.hpp>
#include <tether/mcp_server/http.hpp>

namespace tether::mcp_server {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace asio::experimental::awaitable_operators;
using jsonrpc::make_error;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kMaxHeaderBytes = std::size_t{16} << 10;
// A kept-alive connection with no request for this long is closed; also bounds reading one.
constexpr auto kRequestTimeout = std::chrono::seconds(60);
constexpr std::string_view kSessionHeader = "Mcp-Session-Id";
constexpr std::string_view kVersionHeader = "MCP-Protocol-Version";
constexpr std::string_view kLastEventHeader = "Last-Event-ID";
// The SSE `retry` a stream announces: how long a client waits before it resumes a dropped one.
constexpr int kRetryMilliseconds = 1000;

using Request = http::request<http::string_body>;

bool contains_token(std::string_view list, std::string_view token) {
  return list.find(token) != std::string_view::npos;
}

std::string_view header(const Request& request, std::string_view name) {
  auto it = request.find(name);
  return it == request.end() ? std::string_view() : std::string_view(it->value());
}

std::string rpc_error_body(int code, std::string_view message) {
  return jsonrpc::serialize(jsonrpc::Response{
      std::nullopt, jsonrpc::Reply{boost::system::in_place_error,
                                   jsonrpc::make_error(code, std::string(message))}});
}

// A 2026-07-28 answer's HTTP status: its protocol errors are not 200.
http::status stateless_status(std::string_view answer) {
  boost::system::error_code ec;
  const auto message = json::parse(answer, ec);
  const auto* error =
      !ec && message.is_object() ? message.get_object().if_contains("error") : nullptr;
  const auto* code =
      error && error->is_object() ? error->get_object().if_contains("code") : nullptr;
  if (!code || !code->is_int64()) return http::status::ok;
  switch (code->get_int64()) {
    case jsonrpc::code::kMethodNotFound:
      return http::status::not_found;
    case mcp_protocol::code::kHeaderMismatch:
    case mcp_protocol::code::kMissingRequiredClientCapability:
    case mcp_protocol::code::kUnsupportedProtocolVersion:
      return http::status::bad_request;
    default:
      return http::status::ok;
  }
}

// The header checks of a 2026-07-28 request (-32020), before its `_meta` ones.
std::optional<std::string> header_mismatch(const Request& request,
                                           const jsonrpc::Request& message) {
  const auto version = header(request, kVersionHeader);
  if (version.empty()) return "Missing MCP-Protocol-Version header";
  const auto method = header(request, mcp_protocol::kMethodHeader);
  if (method.empty()) return "Missing Mcp-Method header";
  if (mcp_protocol::decode_header_text(method) != message.method)
    return fmt::format("Mcp-Method header '{}' does not match the body's method '{}'", method,
                       message.method);
  const auto* params = message.params.if_object();
  const auto expected =
      params ? mcp_protocol::name_header(message.method, *params) : std::optional<std::string>();
  if (expected) {
    const auto name = header(request, mcp_protocol::kNameHeader);
    if (name.empty()) return "Missing Mcp-Name header";
    if (mcp_protocol::decode_header_text(name) != mcp_protocol::decode_header_text(*expected))
      return fmt::format("Mcp-Name header '{}' does not match the body", name);
  }
  return std::nullopt;
}

std::string stateless_error(const jsonrpc::Id& id, jsonrpc::Error error) {
  return jsonrpc::serialize(
      jsonrpc::Response{id, jsonrpc::Reply{boost::system::in_place_error, std::move(error)}});
}

std::string random_session_id() {
  // The token's 256 bits make a session id no one can guess.
  return jsonrpc::random_token().value_or("");
}

}  // namespace

struct HttpServer::State : std::enable_shared_from_this<State> {
  State(const asio::any_io_executor& ex, HttpServerOptions opts)
      : executor(ex),
        options(std::move(opts)),
        acceptor(ex),
        sweeper(ex),
        parking(std::make_shared<Parking>(ex, options.max_parked, options.parked_lifetime)) {}

  asio::any_io_executor executor;
  HttpServerOptions options;
  tcp::acceptor acceptor;
  asio::steady_timer sweeper;
  std::map<std::string, std::shared_ptr<HttpSession>> sessions;
  // 2026-07-28 requests between rounds; a retry comes on any connection.
  std::shared_ptr<Parking> parking;
  std::uint64_t next_stateless = 1;
  std::list<beast::tcp_stream*> connections;  // to close them all at stop()
  std::function<void()> on_sessions_changed;
  bool stopped = false;

  // --- the answer to one request ---

  struct Reply {
    http::status status = http::status::ok;
    std::string body;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;
  };

  static Reply text(http::status status, std::string body) {
    return Reply{status, std::move(body), "text/plain; charset=utf-8", {}};
  }
  static Reply rpc_error(http::status status, int code, std::string_view message) {
    return Reply{status, rpc_error_body(code, message), "application/json", {}};
  }
  // (Built here, not inside the coroutines: GCC 12 miscompiles braced lists there.)
  static Reply empty(http::status status) { return Reply{status, "", "", {}}; }
  static Reply preflight() {
    Reply reply = empty(http::status::no_content);
    reply.headers = {{"Access-Control-Allow-Methods", "GET, POST, DELETE"},
                     {"Access-Control-Allow-Headers",
                      "Authorization, Content-Type, Accept, Mcp-Session-Id, "
                      "MCP-Protocol-Version, Last-Event-ID"}};
    return reply;
  }
  static Reply invalid_message(const jsonrpc::Invalid& invalid) {
    return Reply{http::status::bad_request,
                 jsonrpc::serialize(jsonrpc::Response{
                     invalid.id, jsonrpc::Reply{boost::system::in_place_error, invalid.error}}),
                 "application/json",
                 {}};
  }

  bool origin_allowed(std::string_view origin) const {
    const auto& origins = options.allowed_origins;
    return std::find(origins.begin(), origins.end(), origin) != origins.end();
  }

  // Only an allowed Origin gets CORS headers: a page whose Origin was refused must not be able to
  // read even the refusal.
  void add_cors(http::response_header<>& response, const Request& request) const {
    const auto origin = header(request, "Origin");
    if (origin.empty() || !origin_allowed(origin)) return;
    response.set(http::field::access_control_allow_origin, origin);
    response.set(http::field::access_control_expose_headers, kSessionHeader);
    response.set(http::field::vary, "Origin");
  }

  asio::awaitable<bool> send(beast::tcp_stream& stream, const Request& request, Reply reply) {
    http::response<http::string_body> response{reply.status, request.version()};
    response.set(http::field::server, "tether");
    if (!reply.body.empty() || reply.status == http::status::ok)
      response.set(http::field::content_type, reply.content_type);
    for (auto& [name, value] : reply.headers) response.set(name, value);
    add_cors(response.base(), request);
    response.keep_alive(request.keep_alive());
    response.body() = std::move(reply.body);
    response.prepare_payload();
    boost::system::error_code ec;
    co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec && request.keep_alive();
  }

  // nullopt: the request may go on; else the answer that refuses it. Origin first (browsers are
  // clients only when allowed), then Host (DNS rebinding), then the token.
  std::optional<Reply> judge(const Request& request, std::string_view path) const {
    const auto origin = header(request, "Origin");
    if (!origin.empty() && !origin_allowed(origin))
      return text(http::status::forbidden, "Origin is not allowed");
    const auto host = header(request, "Host");
    if (host.empty()) return text(http::status::bad_request, "missing Host header");
    if (!jsonrpc::host_allowed(host, options.allowed_hosts))
      return text(http::status::forbidden, "Host header is not allowed");
    if (path == "/readyz" || request.method() == http::verb::options) return std::nullopt;
    if (!options.token_digest) return std::nullopt;
    std::optional<std::string_view> presented;
    if (auto it = request.find(http::field::authorization); it != request.end())
      presented = it->value();
    const auto check = jsonrpc::check_bearer(presented, *options.token_digest);
    if (check == jsonrpc::BearerCheck::ok) return std::nullopt;
    auto refusal = text(http::status::unauthorized, check == jsonrpc::BearerCheck::missing
                                                        ? "missing bearer token"
                                                        : "invalid bearer token");
    refusal.headers.emplace_back("WWW-Authenticate", check == jsonrpc::BearerCheck::missing
                                                         ? "Bearer"
                                                         : "Bearer error=\"invalid_token\"");
    return refusal;
  }

  // --- sessions ---

  std::shared_ptr<HttpSession> find_session(const Request& request, Reply& refusal) {
    const auto id = header(request, kSessionHeader);
    if (id.empty()) {
      refusal = rpc_error(http::status::bad_request, jsonrpc::code::kServerError,
                          "Bad Request: Mcp-Session-Id header is required");
      return nullptr;
    }
    auto it = sessions.find(std::string(id));
    if (it == sessions.end() || it->second->is_ended()) {
      refusal = rpc_error(http::status::not_found, -32001, "Session not found");
      return nullptr;
    }
    it->second->touch();
    return it->second;
  }

  void end_session(const std::string& id) {
    auto it = sessions.find(id);
    if (it == sessions.end()) return;
    auto session = it->second;
    sessions.erase(it);
    session->end();
    if (options.close_service) options.close_service(session->service());
    if (on_sessions_changed) on_sessions_changed();
  }

  static asio::awaitable<void> sweep(std::shared_ptr<State> self) {
    const auto period = std::min<std::chrono::milliseconds>(
        std::chrono::milliseconds(60'000),
        std::max<std::chrono::milliseconds>(self->options.session_idle_timeout / 4,
                                            std::chrono::milliseconds(10)));
    while (!self->stopped) {
      self->sweeper.expires_after(period);
      boost::system::error_code ec;
      co_await self->sweeper.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (self->stopped) break;
      const auto now = std::chrono::steady_clock::now();
      std::vector<std::string> idle;
      for (const auto& [id, session] : self->sessions)
        if (session->writers == 0 &&
            now - session->last_active() > self->options.session_idle_timeout)
          idle.push_back(id);
      for (const auto& id : idle) {
        spdlog::info(
            "gateway: session {}... ended after {} idle", id.substr(0, 8),
            std::chrono::duration_cast<std::chrono::minutes>(self->options.session_idle_timeout)
                .count());
        self->end_session(id);
      }
    }
  }

  // --- streams ---

  // Writes `stream` from after `from` (a sequence number) to `stream`'s end; the first event
  // alone, when it is the response and `json_allowed`, goes as a plain JSON answer. A
  // `stateless` (2026-07-28) stream has no event ids and no priming event (it cannot be
  // resumed), and its JSON answer's status follows its error.
  asio::awaitable<bool> write_stream(beast::tcp_stream& connection, const Request& request,
                                     std::shared_ptr<HttpSession> session,
                                     std::shared_ptr<HttpSession::Stream> stream,
                                     std::uint64_t from, bool json_allowed,
                                     std::string session_header, bool stateless) {
    auto self = shared_from_this();
    const auto writer = ++stream->writer;
    ++session->writers;
    // A request's own POST was counted as its reader by begin_request, before the handler ran.
    if (!json_allowed) ++stream->readers;
    struct Detach {
      HttpSession& session;
      HttpSession::Stream& stream;
      ~Detach() {
        --session.writers;
        --stream.readers;
        session.touch();
      }
    } detach{*session, *stream};

    if (json_allowed) {
      while (stream->events.empty() && !stream->done && !session->is_ended())
        co_await stream->changed.wait();
      if (stream->done && stream->events.size() <= 1) {
        Reply reply;
        if (!session_header.empty()) reply.headers.emplace_back(kSessionHeader, session_header);
        if (stream->events.empty()) {
          reply.status = http::status::accepted;  // cancelled: nothing to answer
        } else {
          reply.body = stream->events.front().data;
          if (stateless) reply.status = stateless_status(reply.body);
        }
        session->forget(*stream);
        co_return co_await send(connection, request, std::move(reply));
      }
    }

    http::response<http::empty_body> response{http::status::ok, request.version()};
    response.set(http::field::server, "tether");
    response.set(http::field::content_type, "text/event-stream");
    response.set(http::field::cache_control, "no-cache");
    response.set("X-Accel-Buffering", "no");
    if (!session_header.empty()) response.set(kSessionHeader, session_header);
    add_cors(response.base(), request);
    response.keep_alive(request.keep_alive());
    response.chunked(true);
    http::response_serializer<http::empty_body> serializer{response};
    boost::system::error_code ec;
    co_await http::async_write_header(connection, serializer,
                                      asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return false;

    asio::steady_timer keepalive(executor);
    std::uint64_t written = from;
    // The priming event: an id before anything else, so a client whose connection drops can
    // resume this stream from its start (with Last-Event-ID), and how soon to try.
    std::string chunk = stateless ? std::string()
                                  : fmt::format("id: {}-{}\nretry: {}\ndata: \n\n", stream->id,
                                                from, kRetryMilliseconds);
    for (;;) {
      bool finished = false;
      for (const auto& event : stream->events) {
        if (event.seq <= written) continue;
        if (stateless)
          chunk += fmt::format("event: message\ndata: {}\n\n", event.data);
        else
          chunk += fmt::format("id: {}\ndata: {}\n\n", HttpSession::event_id(*stream, event),
                               event.data);
        written = event.seq;
      }
      finished = stream->done && written + 1 >= stream->next_seq;
      if (!chunk.empty()) {
        co_await asio::async_write(connection, http::make_chunk(asio::buffer(chunk)),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return false;
        session->mark_written(*stream, written, stream->done && written + 1 >= stream->next_seq);
        chunk.clear();
        continue;  // more may have come while writing
      }
      if (finished || session->is_ended() || stream->writer != writer) {
        co_await asio::async_write(connection, http::make_chunk_last(),
                                   asio::redirect_error(asio::use_awaitable, ec));
        co_return !ec && finished && request.keep_alive();
      }
      keepalive.expires_after(options.stream_keepalive);
      auto which = co_await (stream->changed.wait() ||
                             keepalive.async_wait(asio::redirect_error(asio::use_awaitable, ec)));
      if (which.index() == 1) {
        const std::string comment = ": keepalive\n\n";
        co_await asio::async_write(connection, http::make_chunk(asio::buffer(comment)),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return false;
      }
    }
  }

  // --- the MCP endpoint ---

  asio::awaitable<bool> post(beast::tcp_stream& connection, const Request& request) {
    auto self = shared_from_this();
    if (!header(request, "Content-Type").starts_with("application/json"))
      co_return co_await send(
          connection, request,
          rpc_error(http::status::unsupported_media_type, jsonrpc::code::kServerError,
                    "Unsupported Media Type: Content-Type must be "
                    "application/json"));
    const auto accept = header(request, "Accept");
    if (!contains_token(accept, "application/json") || !contains_token(accept, "text/event-stream"))
      co_return co_await send(connection, request,
                              rpc_error(http::status::not_acceptable, jsonrpc::code::kServerError,
                                        "Not Acceptable: Accept must list application/json and "
                                        "text/event-stream"));
    auto parsed = jsonrpc::parse(request.body());
    if (!parsed) {
      co_return co_await send(connection, request, invalid_message(parsed.error()));
    }
    auto* message = std::get_if<jsonrpc::Request>(&*parsed);
    if (is_stateless(request, message)) {
      if (message) co_return co_await stateless(connection, request, std::move(*message));
      // Notifications (a cancellation is the closing of a request's stream) and answers (no
      // request is ever sent) have nothing to act on.
      co_return co_await send(connection, request, empty(http::status::accepted));
    }
    if (message && message->method == "initialize")
      co_return co_await initialize(connection, request, std::move(*message));

    Reply refusal;
    auto session = find_session(request, refusal);
    if (!session) co_return co_await send(connection, request, std::move(refusal));
    const auto version = header(request, kVersionHeader);
    if (!version.empty() && !is_served_version(version))
      co_return co_await send(
          connection, request,
          rpc_error(http::status::bad_request, jsonrpc::code::kServerError,
                    fmt::format("Bad Request: Unsupported protocol version: {}", version)));
    if (message) {
      auto stream = session->begin_request(std::move(*message));
      co_return co_await write_stream(connection, request, session, stream, 0, true, "", false);
    }
    if (auto* notification = std::get_if<jsonrpc::Notification>(&*parsed)) {
      session->notify(*notification);
    } else {
      session->deliver(std::move(std::get<jsonrpc::Response>(*parsed)));
    }
    co_return co_await send(connection, request, empty(http::status::accepted));
  }

  // 2026-07-28: no session, and the version header or the request's `_meta` claims it.
  static bool is_stateless(const Request& request, const jsonrpc::Request* message) {
    if (!header(request, kSessionHeader).empty()) return false;
    const auto version = header(request, kVersionHeader);
    if (!version.empty()) return !is_served_version(version);
    if (!message) return false;
    const auto* params = message->params.if_object();
    return message->method == "server/discover" ||
           (params && mcp_protocol::request_version(*params).has_value());
  }

  Reply stateless_refusal(http::status status, const jsonrpc::Id& id, jsonrpc::Error error) {
    return Reply{status, stateless_error(id, std::move(error)), "application/json", {}};
  }

  // A 2026-07-28 request: checked, then served by a Session of its own whose stream is this
  // POST's answer. The session ends with the answer; a request waiting for the client's next
  // round stays parked (exchange.hpp), and its retry may come on any connection.
  asio::awaitable<bool> stateless(beast::tcp_stream& connection, const Request& request,
                                  jsonrpc::Request message) {
    auto self = shared_from_this();
    if (auto mismatch = header_mismatch(request, message))
      co_return co_await send(
          connection, request,
          stateless_refusal(http::status::bad_request, message.id,
                            make_error(mcp_protocol::code::kHeaderMismatch, std::move(*mismatch))));
    const auto* params = message.params.if_object();
    const json::object none;
    if (auto error = mcp_protocol::check_request_meta(params ? *params : none))
      co_return co_await send(
          connection, request,
          stateless_refusal(http::status::bad_request, message.id, std::move(*error)));
    if (mcp_protocol::request_version(*params) != header(request, kVersionHeader))
      co_return co_await send(
          connection, request,
          stateless_refusal(http::status::bad_request, message.id,
                            make_error(mcp_protocol::code::kHeaderMismatch,
                                       "MCP-Protocol-Version header does not match "
                                       "_meta.io.modelcontextprotocol/protocolVersion")));
    if (auto error = mcp_protocol::check_request_version(*params))
      co_return co_await send(
          connection, request,
          stateless_refusal(http::status::bad_request, message.id, std::move(*error)));
    auto service = options.stateless_service ? options.stateless_service() : nullptr;
    if (!service)
      co_return co_await send(
          connection, request,
          stateless_refusal(http::status::bad_request, message.id,
                            make_error(jsonrpc::code::kInvalidRequest,
                                       "this server gives each session a service of its own "
                                       "(--isolate-sessions), which MCP 2026-07-28 requests "
                                       "cannot have; use MCP 2025-11-25")));
    auto session =
        std::make_shared<HttpSession>(executor, fmt::format("stateless-{}", next_stateless++),
                                      std::move(service), options.replay_bytes, parking);
    session->open();
    session->session()->make_modern();
    auto stream = session->begin_request(std::move(message));
    const bool keep =
        co_await write_stream(connection, request, session, stream, 0, true, "", true);
    session->end();
    co_return keep;
  }

  asio::awaitable<bool> initialize(beast::tcp_stream& connection, const Request& request,
                                   jsonrpc::Request message) {
    auto self = shared_from_this();
    if (sessions.size() >= options.max_sessions)
      co_return co_await send(
          connection, request,
          rpc_error(http::status::service_unavailable, jsonrpc::code::kServerError,
                    fmt::format("Service Unavailable: {} sessions are open, the most allowed "
                                "(--max-sessions)",
                                sessions.size())));
    auto service = options.open_service ? options.open_service() : nullptr;
    const auto id = random_session_id();
    if (!service || id.empty())
      co_return co_await send(
          connection, request,
          rpc_error(http::status::service_unavailable, jsonrpc::code::kServerError,
                    "Service Unavailable: cannot open a session"));
    auto session =
        std::make_shared<HttpSession>(executor, id, service, options.replay_bytes, parking);
    session->open();
    sessions.emplace(id, session);
    if (on_sessions_changed) on_sessions_changed();
    auto stream = session->begin_request(std::move(message));
    const bool keep =
        co_await write_stream(connection, request, session, stream, 0, true, id, false);
    if (!session->session()->is_initialized()) end_session(id);  // initialize failed
    co_return keep;
  }

  asio::awaitable<bool> get(beast::tcp_stream& connection, const Request& request) {
    auto self = shared_from_this();
    if (!contains_token(header(request, "Accept"), "text/event-stream"))
      co_return co_await send(connection, request,
                              rpc_error(http::status::not_acceptable, jsonrpc::code::kServerError,
                                        "Not Acceptable: Accept must list text/event-stream"));
    Reply refusal;
    auto session = find_session(request, refusal);
    if (!session) co_return co_await send(connection, request, std::move(refusal));
    const auto last = header(request, kLastEventHeader);
    if (last.empty()) {
      auto stream = session->own_stream();
      co_return co_await write_stream(connection, request, session, stream, stream->next_seq - 1,
                                      false, "", false);
    }
    auto found = session->find_event(last);
    if (!found)
      co_return co_await send(connection, request,
                              rpc_error(http::status::bad_request, jsonrpc::code::kServerError,
                                        "Bad Request: unknown Last-Event-ID"));
    co_return co_await write_stream(connection, request, session, found->first, found->second,
                                    false, "", false);
  }

  asio::awaitable<bool> remove(beast::tcp_stream& connection, const Request& request) {
    auto self = shared_from_this();
    Reply refusal;
    auto session = find_session(request, refusal);
    if (!session) co_return co_await send(connection, request, std::move(refusal));
    end_session(session->id());
    co_return co_await send(connection, request, empty(http::status::ok));
  }

  asio::awaitable<bool> serve(beast::tcp_stream& connection, const Request& request) {
    auto self = shared_from_this();
    const std::string_view target = request.target();
    const std::string_view path = target.substr(0, target.find('?'));
    if (auto refusal = judge(request, path))
      co_return co_await send(connection, request, std::move(*refusal));
    const bool get_request = request.method() == http::verb::get;
    if (path == "/readyz" && get_request) {
      const bool ready = !options.ready || options.ready();
      co_return co_await send(connection, request,
                              text(ready ? http::status::ok : http::status::service_unavailable,
                                   ready ? "ready" : "not ready"));
    }
    if (path == "/metrics" && get_request) {
      auto metrics = text(http::status::ok, options.metrics ? options.metrics() : std::string());
      metrics.content_type = "text/plain; version=0.0.4; charset=utf-8";
      co_return co_await send(connection, request, std::move(metrics));
    }
    if (path != options.path)
      co_return co_await send(connection, request, text(http::status::not_found, "not found"));
    switch (request.method()) {
      case http::verb::post:
        co_return co_await post(connection, request);
      case http::verb::get:
        co_return co_await get(connection, request);
      case http::verb::delete_:
        co_return co_await remove(connection, request);
      case http::verb::options:
        co_return co_await send(connection, request, preflight());
      default:
        break;
    }
    Reply refusal = text(http::status::method_not_allowed, "method not allowed");
    refusal.headers.emplace_back("Allow", "GET, POST, DELETE");
    co_return co_await send(connection, request, std::move(refusal));
  }

  static asio::awaitable<void> run_connection(std::shared_ptr<State> self, tcp::socket socket) {
    boost::system::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    beast::tcp_stream connection(std::move(socket));
    auto registered = self->connections.insert(self->connections.end(), &connection);
    struct Unregister {
      State& state;
      std::list<beast::tcp_stream*>::iterator entry;
      ~Unregister() { state.connections.erase(entry); }
    } unregister{*self, registered};

    beast::flat_buffer buffer;
    while (!self->stopped) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(kMaxHeaderBytes);
      parser.body_limit(self->options.max_body_bytes);
      connection.expires_after(kRequestTimeout);
      co_await http::async_read(connection, buffer, parser,
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec == http::error::body_limit) {
        Request request = parser.release();
        request.keep_alive(false);
        co_await self->send(connection, request,
                            rpc_error(http::status::payload_too_large, jsonrpc::code::kServerError,
                                      fmt::format("Payload Too Large: the body limit is {} bytes",
                                                  self->options.max_body_bytes)));
        break;
      }
      if (ec) break;
      connection.expires_never();
      const auto request = parser.release();
      if (!co_await self->serve(connection, request)) break;
    }
    connection.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  static asio::awaitable<void> accept_loop(std::shared_ptr<State> self) {
    while (!self->stopped) {
      auto [ec, socket] = co_await self->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (self->stopped || ec == asio::error::operation_aborted) break;
      if (ec) {
        // At the descriptor limit accept fails at once: wait before trying again.
        spdlog::warn("gateway: accept failed: {}", ec.message());
        asio::steady_timer pause(self->executor, std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      if (self->connections.size() >= self->options.max_connections) {
        spdlog::warn("gateway: closed a new connection: {} are open, the most allowed",
                     self->connections.size());
        continue;  // the socket closes here
      }
      asio::co_spawn(self->executor, run_connection(self, std::move(socket)), asio::detached);
    }
  }
};

HttpServer::HttpServer(std::shared_ptr<State> state) : state_(std::move(state)) {}

HttpServer::~HttpServer() {
  stop();
}

Expected<std::shared_ptr<HttpServer>> HttpServer::listen(const asio::any_io_executor& executor,
                                                         const tcp::endpoint& endpoint,
                                                         HttpServerOptions options) {
  auto state = std::make_shared<State>(executor, std::move(options));
  boost::system::error_code ec;
  state->acceptor.open(endpoint.protocol(), ec);
  if (!ec) state->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) state->acceptor.bind(endpoint, ec);
  if (!ec) state->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return jsonrpc::make_error(
        jsonrpc::code::kServerError,
        fmt::format("cannot listen on {}:{}: {}", endpoint.address().to_string(), endpoint.port(),
                    ec.message()));
  return std::shared_ptr<HttpServer>(new HttpServer(std::move(state)));
}

tcp::endpoint HttpServer::local_endpoint() const {
  boost::system::error_code ec;
  return state_->acceptor.local_endpoint(ec);
}

void HttpServer::start() {
  asio::co_spawn(state_->executor, State::accept_loop(state_), asio::detached);
  asio::co_spawn(state_->executor, State::sweep(state_), asio::detached);
}

void HttpServer::stop() {
  auto& state = *state_;
  if (state.stopped) return;
  state.stopped = true;
  boost::system::error_code ec;
  state.acceptor.close(ec);
  state.sweeper.cancel();
  std::vector<std::string> ids;
  for (const auto& [id, session] : state.sessions) ids.push_back(id);
  for (const auto& id : ids) state.end_session(id);
  for (auto* connection : state.connections) connection->socket().close(ec);
}

void HttpServer::on_sessions_changed(std::function<void()> callback) {
  state_->on_sessions_changed = std::move(callback);
}

std::size_t HttpServer::sessions() const {
  return state_->sessions.size();
}

}  // namespace tether::mcp_server
