// MCP streamable HTTP client transport (see include/tether/mcp/http.hpp for the contract).
//
// Owns: one HTTP connection per exchange (POST, resume GET, the standalone GET stream, DELETE),
// plain or TLS; reading each answer in its own coroutine into the shared inbox; the session id,
// negotiated protocol version and SSE cursors (last event id, retry) those exchanges share.
// Does not own: JSON-RPC correlation (Peer), MCP semantics (client.cpp), SSE parsing (sse.cpp).
// Data flows: write() -> connect + send POST -> [post_answer coroutine: JSON body | SSE events |
// HTTP error -> error answers] -> inbox -> read(); after `notifications/initialized` was
// accepted, get_stream coroutine: GET -> SSE events -> inbox, reconnecting with Last-Event-ID.
//
// A fresh connection per exchange: it costs a TCP (and TLS) handshake per message, but a POST is
// never re-sent after a pooled connection turned out stale (the server might have taken it).
// Every coroutine holds the shared State; abort() (also run by the destructor) closes every
// open connection and cancels every retry sleep, so they all end promptly.
#include <algorithm>
#include <array>
#include <cctype>
#include <deque>
#include <map>
#include <memory>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <boost/locale/utf.hpp>
#include <spdlog/spdlog.h>

#include "sse.hpp"
#include <tether/jsonrpc/url_target.hpp>
#include <tether/mcp/http.hpp>
#include <tether/mcp_protocol/http_headers.hpp>
#include <tether/mcp_protocol/revision.hpp>

namespace tether::mcp {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;
using namespace std::chrono_literals;

// Without a `retry:` field from the server (the TypeScript SDK's initial delay).
constexpr auto kDefaultRetry = 1000ms;
// Resuming a POST's SSE stream: attempts in a row that brought no event.
constexpr int kMaxResumeAttempts = 5;
// The standalone GET stream: failed connects in a row before it is given up.
constexpr int kMaxGetFailures = 5;
// How much of an error answer's body goes into the error message.
constexpr std::size_t kErrorBodyBytes = 1024;

using Target = jsonrpc::UrlTarget;

using Response = http::response_parser<http::buffer_body>;

// One HTTP/1.1 connection, plain or TLS.
class Conn {
 public:
  Conn(const asio::any_io_executor& executor, asio::ssl::context* tls) {
    if (tls)
      secure_.emplace(executor, *tls);
    else
      plain_.emplace(executor);
  }

  beast::tcp_stream& tcp() { return plain_ ? *plain_ : beast::get_lowest_layer(*secure_); }
  bool is_tls() const { return secure_.has_value(); }
  beast::ssl_stream<beast::tcp_stream>& tls() { return *secure_; }

  asio::awaitable<error_code> send(http::request<http::string_body>& request) {
    error_code ec;
    if (plain_)
      co_await http::async_write(*plain_, request, asio::redirect_error(asio::use_awaitable, ec));
    else
      co_await http::async_write(*secure_, request, asio::redirect_error(asio::use_awaitable, ec));
    co_return ec;
  }

  asio::awaitable<error_code> read_header(Response& response) {
    error_code ec;
    if (plain_)
      co_await http::async_read_header(*plain_, buffer_, response,
                                       asio::redirect_error(asio::use_awaitable, ec));
    else
      co_await http::async_read_header(*secure_, buffer_, response,
                                       asio::redirect_error(asio::use_awaitable, ec));
    co_return ec;
  }

  asio::awaitable<error_code> read_some(Response& response) {
    error_code ec;
    if (plain_)
      co_await http::async_read_some(*plain_, buffer_, response,
                                     asio::redirect_error(asio::use_awaitable, ec));
    else
      co_await http::async_read_some(*secure_, buffer_, response,
                                     asio::redirect_error(asio::use_awaitable, ec));
    co_return ec;
  }

  // Pending operations complete with operation_aborted.
  void close() {
    error_code ignored;
    tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    tcp().close();
  }

 private:
  std::optional<beast::tcp_stream> plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure_;
  beast::flat_buffer buffer_;
};

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// `text/event-stream; charset=utf-8` -> `text/event-stream`.
std::string media_type(std::string_view content_type) {
  auto essence = content_type.substr(0, content_type.find(';'));
  while (!essence.empty() && essence.back() == ' ') essence.remove_suffix(1);
  while (!essence.empty() && essence.front() == ' ') essence.remove_prefix(1);
  return lower(essence);
}

// The negotiated version goes back in a header: anything but visible ASCII (which every MCP
// version is) would break the next requests or inject header lines into them (Beast writes field
// values as they are). Such a version is not sent; the client refuses it anyway.
bool is_visible_ascii(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// What the transport needs to know about a message it sends.
struct Outgoing {
  std::map<std::string, json::value> request_ids;  // serialized id -> id
  std::optional<std::string> initialize_id;
  bool initialized_notification = false;
  std::optional<std::string> cancelled_id;  // notifications/cancelled: the request it names
  // 2026-07-28: the version the request's `_meta` claims, and its headers.
  std::optional<std::string> modern_version;
  std::string method;
  std::optional<std::string> name;  // Mcp-Name
  std::optional<std::string> tools_list_id;
  json::object call;  // tools/call params, for Mcp-Param-* headers
};

void classify_one(const json::value& message, Outgoing& out) {
  const auto* object = message.if_object();
  if (!object) return;
  const auto* method = object->if_contains("method");
  const auto* id = object->if_contains("id");
  if (!method || !method->is_string()) return;
  out.method = method->as_string();
  out.modern_version = mcp_protocol::request_version(message);
  if (const auto* params = object->if_contains("params"); params && params->is_object()) {
    out.name = mcp_protocol::name_header(out.method, params->as_object());
    if (out.method == "tools/call") out.call = params->as_object();
  }
  if (!id || id->is_null()) {
    if (*method == "notifications/initialized") out.initialized_notification = true;
    const auto* params = object->if_contains("params");
    const auto* request_id =
        params && params->is_object() ? params->as_object().if_contains("requestId") : nullptr;
    if (*method == "notifications/cancelled" && request_id)
      out.cancelled_id = json::serialize(*request_id);
    return;
  }
  out.request_ids.emplace(json::serialize(*id), *id);
  if (*method == "initialize") out.initialize_id = json::serialize(*id);
  if (*method == "tools/list") out.tools_list_id = json::serialize(*id);
}

Outgoing classify(const std::string& text) {
  Outgoing out;
  error_code ec;
  const auto message = json::parse(text, ec);
  if (ec) return out;  // sent as is; the server answers what it can
  if (const auto* batch = message.if_array()) {
    for (const auto& item : *batch) classify_one(item, out);
    out.modern_version.reset();  // the 2026-07-28 revision has no batches
  } else {
    classify_one(message, out);
  }
  return out;
}

// Error messages quote what the server sent (the reason phrase, the body cut at kErrorBodyBytes):
// bytes that are not UTF-8 become U+FFFD, or the error answer would not be JSON and the peer
// would skip it, leaving its request to wait for its timeout.
std::string valid_utf8(std::string_view text) {
  namespace utf = boost::locale::utf;
  std::string out;
  out.reserve(text.size());
  for (auto p = text.begin(); p != text.end();) {
    const auto start = p;
    const auto code_point = utf::utf_traits<char>::decode(p, text.end());
    if (code_point == utf::illegal || code_point == utf::incomplete) {
      out += "\xEF\xBF\xBD";
      p = start + 1;
    } else {
      out.append(start, p);
    }
  }
  return out;
}

// What a request gets for an HTTP failure: -32000, as the TypeScript SDK and server-everything
// answer transport-level failures.
std::string error_answer(const json::value& id, std::string_view message) {
  json::object error;
  error["code"] = jsonrpc::code::kServerError;
  error["message"] = valid_utf8(message);
  json::object answer;
  answer["jsonrpc"] = "2.0";
  answer["id"] = id;
  answer["error"] = std::move(error);
  return json::serialize(answer);
}

enum class End { open, closed, aborted, failed };

struct State : std::enable_shared_from_this<State> {
  State(const asio::any_io_executor& ex, HttpServerConfig cfg, Target t)
      : executor(ex), config(std::move(cfg)), target(std::move(t)), inbox_signal(ex) {
    inbox_signal.expires_at(asio::steady_timer::time_point::max());
    if (target.tls) {
      tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
      tls->set_default_verify_paths();
      tls->set_verify_mode(asio::ssl::verify_peer);
    }
  }

  asio::any_io_executor executor;
  HttpServerConfig config;
  Target target;
  std::unique_ptr<asio::ssl::context> tls;
  std::shared_ptr<ServerDiagnostics> diagnostics = std::make_shared<ServerDiagnostics>();

  std::deque<std::string> inbox;
  asio::steady_timer inbox_signal;  // never expires; cancelled to wake read()

  std::optional<std::string> session_id;
  std::optional<std::string> protocol_version;
  std::optional<std::string> initialize_id;  // of the initialize request awaiting its answer
  // The client speaks 2026-07-28 (its last request claimed it): no session, per-request headers.
  bool modern = false;
  // 2026-07-28: tools/list requests awaiting their answer, and what their answers declared as
  // `x-mcp-header` parameters (tool name -> parameters), for the Mcp-Param-* headers of calls.
  std::set<std::string> tools_list_ids;
  std::map<std::string, std::vector<mcp_protocol::HeaderParam>> tool_headers;
  bool get_stream_started = false;
  bool closing = false;

  End end = End::open;
  error_code end_code;

  std::vector<std::weak_ptr<Conn>> conns;
  // The POST connection each request's answer comes on (serialized id): a cancelled request's
  // connection is closed, so an abandoned answer stops holding a socket.
  std::map<std::string, std::weak_ptr<Conn>> request_conns;
  std::vector<std::weak_ptr<asio::steady_timer>> sleeps;

  bool ended() const { return end != End::open; }
  bool stopping() const { return ended() || closing; }

  // Sniffs the negotiated protocol version from the initialize answer and the x-mcp-header
  // declarations from tools/list answers, then queues `text`.
  void deliver(std::string text, const json::value& message) {
    if (!tools_list_ids.empty()) learn_tool_headers(message);
    if (initialize_id) {
      const auto* object = message.if_object();
      const auto* id = object ? object->if_contains("id") : nullptr;
      if (id && json::serialize(*id) == *initialize_id) {
        initialize_id.reset();
        const auto* result = object->if_contains("result");
        const auto* version = result && result->is_object()
                                  ? result->as_object().if_contains("protocolVersion")
                                  : nullptr;
        if (version && version->is_string() && is_visible_ascii(version->as_string()))
          protocol_version = std::string(version->as_string());
      }
    }
    inbox.push_back(std::move(text));
    inbox_signal.cancel();
  }

  void deliver_error(const json::value& id, std::string_view message) {
    auto text = error_answer(id, message);
    deliver(std::move(text), json::value());
  }

  void learn_tool_headers(const json::value& message) {
    const auto* object = message.if_object();
    const auto* id = object ? object->if_contains("id") : nullptr;
    if (!id || !tools_list_ids.erase(json::serialize(*id))) return;
    const auto* result = object->if_contains("result");
    const auto* tools =
        result && result->is_object() ? result->as_object().if_contains("tools") : nullptr;
    if (!tools || !tools->is_array()) return;
    for (const auto& tool : tools->as_array()) {
      const auto* name = tool.is_object() ? tool.as_object().if_contains("name") : nullptr;
      if (!name || !name->is_string()) continue;
      // A tool with invalid declarations is left out by the client; it is never called.
      auto params = mcp_protocol::header_params(tool.as_object());
      if (params) tool_headers[std::string(name->as_string())] = std::move(*params);
    }
  }

  void track(const std::shared_ptr<Conn>& conn) {
    std::erase_if(conns, [](const auto& weak) { return weak.expired(); });
    conns.push_back(conn);
  }

  void finish(End how, error_code code, std::string reason) {
    if (ended()) return;
    end = how;
    end_code = code;
    diagnostics->set_end_reason(std::move(reason));
    for (auto& weak : conns)
      if (auto conn = weak.lock()) conn->close();
    for (auto& weak : sleeps)
      if (auto timer = weak.lock()) timer->cancel();
    conns.clear();
    sleeps.clear();
    inbox_signal.cancel();
  }

  // Sleeps unless the transport ends meanwhile; returns whether it is still open.
  asio::awaitable<bool> sleep(std::chrono::milliseconds duration) {
    // finish() cancelled the sleeps that existed; one started after it would run its course.
    if (stopping()) co_return false;
    auto timer = std::make_shared<asio::steady_timer>(executor, duration);
    std::erase_if(sleeps, [](const auto& weak) { return weak.expired(); });
    sleeps.push_back(timer);
    error_code ec;
    co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_return !stopping();
  }

  http::request<http::string_body> request(http::verb verb) const {
    http::request<http::string_body> req{verb, target.resource, 11};
    req.set(http::field::host, target.host_header);
    req.set(http::field::user_agent, "tether/" TETHER_VERSION);
    if (config.bearer_token) req.set(http::field::authorization, "Bearer " + *config.bearer_token);
    if (session_id && !modern) req.set("Mcp-Session-Id", *session_id);
    if (protocol_version && !modern) req.set("MCP-Protocol-Version", *protocol_version);
    for (const auto& [name, value] : config.headers) req.set(name, value);
    req.keep_alive(false);
    return req;
  }

  // The 2026-07-28 headers of a POST: the version its `_meta` claims, the method, the name, and
  // the tool's x-mcp-header parameters.
  void set_modern_headers(http::request<http::string_body>& req, const Outgoing& out) const {
    if (out.modern_version && is_visible_ascii(*out.modern_version))
      req.set("MCP-Protocol-Version", *out.modern_version);
    if (!out.method.empty())
      req.set(mcp_protocol::kMethodHeader, mcp_protocol::encode_header_text(out.method));
    if (out.name) req.set(mcp_protocol::kNameHeader, *out.name);
    const auto* name = out.call.if_contains("name");
    const auto* arguments = out.call.if_contains("arguments");
    if (!name || !name->is_string() || !arguments || !arguments->is_object()) return;
    const auto declared = tool_headers.find(std::string(name->as_string()));
    if (declared == tool_headers.end()) return;
    for (const auto& param : declared->second) {
      const auto* argument = arguments->as_object().if_contains(param.property);
      if (!argument) continue;
      if (auto value = mcp_protocol::header_value(*argument))
        req.set(std::string(mcp_protocol::kParamHeaderPrefix) + param.header, *value);
    }
  }
};

using Opened = boost::system::result<std::shared_ptr<Conn>>;

// Resolve, connect, TLS and send `request`, all under the connect timeout.
asio::awaitable<Opened> open_and_send(std::shared_ptr<State> state,
                                      http::request<http::string_body>& request) {
  auto endpoints = co_await jsonrpc::resolve(state->target, state->config.connect_timeout);
  if (!endpoints) co_return endpoints.error();
  if (state->ended()) co_return asio::error::operation_aborted;
  auto conn = std::make_shared<Conn>(state->executor, state->tls.get());
  state->track(conn);
  conn->tcp().expires_after(state->config.connect_timeout);
  error_code ec = co_await jsonrpc::connect_tcp(conn->tcp(), *endpoints);
  if (ec) co_return ec;
  if (conn->is_tls()) {
    ec = co_await jsonrpc::tls_handshake(conn->tls(), state->target.host);
    if (ec) co_return ec;
  }
  request.prepare_payload();
  ec = co_await conn->send(request);
  if (ec) co_return ec;
  // Answers take as long as the server works on them; the client owns request timeouts.
  conn->tcp().expires_never();
  co_return conn;
}

// Reads the rest of a body, handing each piece to `sink`, which returns false to stop early.
enum class BodyEnd { complete, stopped, failed };

asio::awaitable<BodyEnd> read_body(Conn& conn, Response& response,
                                   const std::function<bool(std::string_view)>& sink) {
  std::array<char, 16384> chunk{};
  while (!response.is_done()) {
    response.get().body().data = chunk.data();
    response.get().body().size = chunk.size();
    auto ec = co_await conn.read_some(response);
    if (ec == http::error::need_buffer) ec = {};
    const std::size_t n = chunk.size() - response.get().body().size;
    if (n > 0 && !sink(std::string_view(chunk.data(), n))) co_return BodyEnd::stopped;
    if (ec) co_return BodyEnd::failed;
  }
  co_return BodyEnd::complete;
}

// Up to kErrorBodyBytes of an error answer's body, for the message.
asio::awaitable<std::string> error_body(Conn& conn, Response& response) {
  std::string body;
  const std::function<bool(std::string_view)> sink = [&body](std::string_view piece) {
    body.append(piece.substr(0, kErrorBodyBytes - std::min(kErrorBodyBytes, body.size())));
    return body.size() < kErrorBodyBytes;
  };
  co_await read_body(conn, response, sink);
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  co_return body;
}

// `HTTP 404 Not Found: <body>`, and what a 404 on a session means.
std::string http_failure(const Response& response, const std::string& body, bool had_session) {
  const auto& head = response.get();
  std::string message = "HTTP " + std::to_string(head.result_int());
  if (!head.reason().empty()) message += " " + std::string(head.reason());
  if (!body.empty()) message += ": " + body;
  if (had_session && head.result() == http::status::not_found)
    message += " (the MCP session expired; a new initialize starts a new one)";
  return message;
}

void fail_pending(State& state, std::map<std::string, json::value>& pending,
                  const std::string& message) {
  for (const auto& [key, id] : pending) state.deliver_error(id, message);
  pending.clear();
}

// An HTTP error whose body is a JSON-RPC error answer (the 2026-07-28 revision answers its
// protocol errors so, e.g. 400 with -32022 and the supported versions): the pending requests it
// names (all of them for a null id) get that error, code and data kept, so the client can act
// on it. Returns false when the body is no such answer.
bool deliver_error_body(State& state, std::map<std::string, json::value>& pending,
                        const Response& response, const std::string& body) {
  error_code ec;
  const auto answer = json::parse(body, ec);
  const auto* object = answer.if_object();
  const auto* error = object ? object->if_contains("error") : nullptr;
  if (!error || !error->is_object()) return false;
  const auto* code = error->as_object().if_contains("code");
  if (!code || !code->is_int64()) return false;
  const auto* id = object->if_contains("id");
  const auto* text = error->as_object().if_contains("message");
  json::object relayed = error->as_object();
  relayed["message"] = valid_utf8(http_failure(
      response, text && text->is_string() ? std::string(text->as_string()) : std::string(), false));
  const auto relay = [&](const json::value& to) {
    json::object message;
    message["jsonrpc"] = "2.0";
    message["id"] = to;
    message["error"] = relayed;
    state.deliver(json::serialize(message), json::value());
  };
  if (id && !id->is_null()) {
    auto it = pending.find(json::serialize(*id));
    if (it == pending.end()) return false;
    relay(it->second);
    pending.erase(it);
    return true;
  }
  for (const auto& [key, to] : pending) relay(to);
  pending.clear();
  return true;
}

// Where an SSE stream continues after a reconnect: the WHATWG "last event ID" and retry.
struct Cursor {
  std::string last_event_id;
  std::optional<std::chrono::milliseconds> retry;
};

// Reads SSE events into the inbox until the body ends, or until every id in `pending` (when it
// was not empty to begin with) got its answer. Returns how the body ended and whether an event
// arrived.
struct StreamEnd {
  BodyEnd how;
  bool progressed = false;
};

asio::awaitable<StreamEnd> read_events(std::shared_ptr<State> state, Conn& conn, Response& response,
                                       Cursor& cursor,
                                       std::map<std::string, json::value>& pending) {
  const bool until_answered = !pending.empty();
  sse::Parser parser(state->config.max_message_bytes, cursor.last_event_id, cursor.retry);
  std::vector<sse::Event> events;
  bool progressed = false;
  bool too_big = false;
  const std::function<bool(std::string_view)> sink = [&](std::string_view piece) {
    events.clear();
    if (!parser.feed(piece, events)) {
      too_big = true;
      return false;
    }
    cursor.last_event_id = parser.last_event_id();
    cursor.retry = parser.retry();
    for (auto& event : events) {
      progressed = true;
      if (event.type != "message" || event.data.empty()) continue;
      error_code ec;
      auto message = json::parse(event.data, ec);
      if (ec) {
        spdlog::warn("mcp http: skipping an SSE event that is not JSON: {:.200}", event.data);
        continue;
      }
      if (const auto* object = message.if_object()) {
        const auto* id = object->if_contains("id");
        if (id && !object->contains("method")) pending.erase(json::serialize(*id));
      }
      state->deliver(std::move(event.data), message);
    }
    return !(until_answered && pending.empty());
  };
  const auto how = co_await read_body(conn, response, sink);
  if (too_big)
    fail_pending(*state, pending,
                 "an SSE event from the MCP server exceeds " +
                     std::to_string(state->config.max_message_bytes) + " bytes");
  co_return StreamEnd{how, progressed};
}

asio::awaitable<void> get_stream(std::shared_ptr<State> state);

// Closes the connection a cancelled request's answer would come on.
void cancel_request(State& state, const std::string& id) {
  if (auto it = state.request_conns.find(id); it != state.request_conns.end()) {
    if (auto conn = it->second.lock()) conn->close();
    state.request_conns.erase(it);
  }
}

// The answer to one POST. `pending` holds the requests it carried that still need an answer.
asio::awaitable<void> post_answer(std::shared_ptr<State> state, std::shared_ptr<Conn> conn,
                                  Outgoing out, bool had_session) {
  auto& pending = out.request_ids;
  Response response;
  response.body_limit(boost::none);
  auto ec = co_await conn->read_header(response);
  if (state->ended()) co_return;
  if (ec) {
    fail_pending(*state, pending, "HTTP request to the MCP server failed: " + ec.message());
    co_return;
  }
  const auto& head = response.get();
  if (auto session = head.find("Mcp-Session-Id"); session != head.end() && !out.modern_version)
    state->session_id = std::string(session->value());
  const unsigned status = head.result_int();
  if (status < 200 || status >= 300) {
    auto body = co_await error_body(*conn, response);
    if (status == 404 && had_session) state->session_id.reset();
    if (!pending.empty() && deliver_error_body(*state, pending, response, body)) co_return;
    const auto message = http_failure(response, body, had_session);
    if (pending.empty()) spdlog::warn("mcp http: the MCP server refused a message: {}", message);
    fail_pending(*state, pending, message);
    co_return;
  }
  if (status == 202 || pending.empty()) {
    if (out.initialized_notification && !state->get_stream_started && !state->stopping()) {
      state->get_stream_started = true;
      asio::co_spawn(state->executor, get_stream(state), asio::detached);
    }
    if (!pending.empty())
      fail_pending(*state, pending, "HTTP 202 Accepted without an answer to the request");
    co_return;
  }
  const auto type = media_type(head[http::field::content_type]);
  if (type == "application/json") {
    std::string body;
    bool too_big = false;
    const std::size_t limit = state->config.max_message_bytes;
    const std::function<bool(std::string_view)> sink = [&](std::string_view piece) {
      body.append(piece);
      too_big = body.size() > limit;
      return !too_big;
    };
    const auto how = co_await read_body(*conn, response, sink);
    if (state->ended()) co_return;
    if (too_big) {
      fail_pending(*state, pending,
                   "an answer from the MCP server exceeds " + std::to_string(limit) + " bytes");
      co_return;
    }
    if (how == BodyEnd::failed) {
      fail_pending(*state, pending, "reading the MCP server's answer failed");
      co_return;
    }
    auto message = json::parse(body, ec);
    if (ec) {
      fail_pending(*state, pending, "the MCP server's answer is not JSON: " + ec.message());
      co_return;
    }
    std::vector<json::value> messages;
    if (message.is_array())
      messages.assign(message.as_array().begin(), message.as_array().end());
    else
      messages.push_back(std::move(message));
    for (auto& item : messages) {
      if (const auto* object = item.if_object())
        if (const auto* id = object->if_contains("id"); id && !object->contains("method"))
          pending.erase(json::serialize(*id));
      state->deliver(json::serialize(item), item);
    }
    fail_pending(*state, pending, "the MCP server's answer did not include this request's");
    co_return;
  }
  if (type != "text/event-stream") {
    fail_pending(*state, pending,
                 "unexpected Content-Type from the MCP server: '" +
                     std::string(head[http::field::content_type]) + "'");
    co_return;
  }
  Cursor cursor;
  auto end = co_await read_events(state, *conn, response, cursor, pending);
  conn->close();
  // The stream ended before every answer arrived: resume it with GET + Last-Event-ID. A
  // 2026-07-28 stream belongs to its request alone and cannot be resumed.
  if (out.modern_version) {
    fail_pending(*state, pending, "the MCP server ended its SSE stream before answering");
    co_return;
  }
  int attempts = 0;
  while (!pending.empty() && !state->stopping()) {
    attempts = end.progressed ? 1 : attempts + 1;
    if (cursor.last_event_id.empty()) {
      fail_pending(*state, pending,
                   "the MCP server ended its SSE stream before answering, without an event id "
                   "to resume from");
      co_return;
    }
    if (attempts > kMaxResumeAttempts) {
      fail_pending(*state, pending,
                   "the MCP server's SSE stream ended before answering; gave up resuming after " +
                       std::to_string(kMaxResumeAttempts) + " attempts");
      co_return;
    }
    const bool still_open = co_await state->sleep(cursor.retry.value_or(kDefaultRetry));
    if (!still_open) co_return;
    auto request = state->request(http::verb::get);
    request.set(http::field::accept, "text/event-stream");
    request.set("Last-Event-ID", cursor.last_event_id);
    const bool resumed_with_session = state->session_id.has_value();
    auto opened = co_await open_and_send(state, request);
    if (state->stopping()) co_return;
    end = StreamEnd{BodyEnd::failed};
    if (!opened) continue;
    Response resumed;
    resumed.body_limit(boost::none);
    ec = co_await (*opened)->read_header(resumed);
    if (state->stopping()) co_return;
    if (ec) continue;
    const unsigned resumed_status = resumed.get().result_int();
    if (resumed_status < 200 || resumed_status >= 300) {
      auto body = co_await error_body(**opened, resumed);
      fail_pending(*state, pending,
                   "resuming the MCP server's SSE stream failed: " +
                       http_failure(resumed, body, resumed_with_session));
      co_return;
    }
    end = co_await read_events(state, **opened, resumed, cursor, pending);
    (*opened)->close();
  }
}

// The standalone GET stream: messages the server sends on its own, reconnected honouring
// `retry:` until the transport ends, the server says it has none (405) or refuses.
asio::awaitable<void> get_stream(std::shared_ptr<State> state) {
  Cursor cursor;
  int failures = 0;
  while (!state->stopping()) {
    auto request = state->request(http::verb::get);
    request.set(http::field::accept, "text/event-stream");
    if (!cursor.last_event_id.empty()) request.set("Last-Event-ID", cursor.last_event_id);
    auto opened = co_await open_and_send(state, request);
    if (state->stopping()) co_return;
    bool progressed = false;
    if (opened) {
      Response response;
      response.body_limit(boost::none);
      auto ec = co_await (*opened)->read_header(response);
      if (state->stopping()) co_return;
      if (!ec) {
        const unsigned status = response.get().result_int();
        if (status == 405) co_return;  // the server offers no stream of its own
        if (status < 200 || status >= 300 ||
            media_type(response.get()[http::field::content_type]) != "text/event-stream") {
          auto body = co_await error_body(**opened, response);
          spdlog::warn("mcp http: the MCP server refused its GET stream: {}",
                       http_failure(response, body, false));
          co_return;
        }
        std::map<std::string, json::value> none;
        const auto end = co_await read_events(state, **opened, response, cursor, none);
        progressed = true;  // the stream opened; its end is the server's choice (polling)
        (void)end;
      }
      (*opened)->close();
    }
    failures = progressed ? 0 : failures + 1;
    if (failures >= kMaxGetFailures) {
      spdlog::warn("mcp http: gave up the MCP server's GET stream after {} failed attempts",
                   failures);
      co_return;
    }
    const bool still_open = co_await state->sleep(cursor.retry.value_or(kDefaultRetry));
    if (!still_open) co_return;
  }
}

class HttpTransport final : public jsonrpc::Transport {
 public:
  explicit HttpTransport(std::shared_ptr<State> state) : state_(std::move(state)) {}
  ~HttpTransport() override { abort(); }

  asio::awaitable<boost::system::result<std::string>> read() override {
    for (;;) {
      if (state_->ended()) co_return state_->end_code;
      if (!state_->inbox.empty()) {
        auto message = std::move(state_->inbox.front());
        state_->inbox.pop_front();
        co_return message;
      }
      error_code ec;
      co_await state_->inbox_signal.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  asio::awaitable<error_code> write(const std::string& message) override {
    auto state = state_;
    if (state->stopping()) co_return asio::error::not_connected;
    auto out = classify(message);
    if (out.initialize_id) {
      state->initialize_id = out.initialize_id;
      state->modern = false;
    }
    if (out.modern_version) state->modern = true;
    if (state->modern && out.cancelled_id) {
      // 2026-07-28: closing the request's stream is the cancellation; there is no session that
      // could take a notification naming it.
      cancel_request(*state, *out.cancelled_id);
      co_return error_code{};
    }
    if (out.tools_list_id && state->modern) state->tools_list_ids.insert(*out.tools_list_id);
    auto request = state->request(http::verb::post);
    request.set(http::field::content_type, "application/json");
    request.set(http::field::accept, "application/json, text/event-stream");
    if (state->modern) state->set_modern_headers(request, out);
    request.body() = message;
    const bool had_session = state->session_id.has_value() && !state->modern;
    auto opened = co_await open_and_send(state, request);
    if (state->ended()) co_return state->end_code;
    if (!opened) {
      // The server cannot be reached at all: like a dead stdio server, the connection ends.
      state->finish(
          End::failed, opened.error(),
          "MCP server at " + state->config.url + " unreachable: " + opened.error().message());
      co_return opened.error();
    }
    std::erase_if(state->request_conns, [](const auto& entry) { return entry.second.expired(); });
    for (const auto& [id, value] : out.request_ids) state->request_conns[id] = *opened;
    if (out.cancelled_id) cancel_request(*state, *out.cancelled_id);
    asio::co_spawn(state->executor,
                   post_answer(state, std::move(*opened), std::move(out), had_session),
                   asio::detached);
    co_return error_code{};
  }

  asio::awaitable<error_code> ping(std::string) override { co_return error_code{}; }
  void on_pong(std::function<void(std::string_view)>) override {}

  // DELETE ends the session (a 405 means the server does not allow it: fine), then everything
  // still open is cut. Bounded by the connect timeout.
  asio::awaitable<void> close(std::uint16_t) override {
    auto state = state_;
    if (state->stopping()) co_return;
    state->closing = true;
    if (state->session_id) {
      auto request = state->request(http::verb::delete_);
      auto opened = co_await open_and_send(state, request);
      if (opened && !state->ended()) {
        (*opened)->tcp().expires_after(state->config.connect_timeout);
        Response response;
        co_await (*opened)->read_header(response);
        (*opened)->close();
      }
    }
    state->finish(End::closed, asio::error::not_connected, "MCP HTTP connection closed");
  }

  void abort() override {
    state_->finish(End::aborted, asio::error::operation_aborted, "MCP HTTP connection aborted");
  }

  std::optional<std::uint16_t> remote_close_code() const override { return std::nullopt; }
  bool has_keepalive() const override { return false; }
  bool idle_expired() const override { return false; }

 private:
  std::shared_ptr<State> state_;
};

}  // namespace

Expected<ServerConnection> connect_http(const asio::any_io_executor& executor,
                                        HttpServerConfig config) {
  auto target = jsonrpc::parse_url_target(config.url, "http", "https");
  if (!target)
    return jsonrpc::make_error(
        jsonrpc::code::kInvalidParams,
        "invalid MCP server URL '" + config.url + "': expected http:// or https:// with a host");
  std::string description = config.url;
  auto state = std::make_shared<State>(executor, std::move(config), std::move(*target));
  auto diagnostics = state->diagnostics;
  return ServerConnection{std::make_unique<HttpTransport>(std::move(state)), std::move(diagnostics),
                          std::move(description)};
}

}  // namespace tether::mcp
