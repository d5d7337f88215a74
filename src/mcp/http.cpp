// MCP streamable HTTP client transport (see include/tether/mcp/http.hpp for the contract).
//
// Owns: one fetch::Exchange per HTTP exchange (POST, resume GET, the standalone GET stream,
// DELETE), made by the fetch::Client the config names (this process's own, or an executor's);
// reading each answer in its own coroutine into the shared inbox; the session id, negotiated
// protocol version and SSE cursors (last event id, retry) those exchanges share.
// Does not own: connections and TLS (fetch), JSON-RPC correlation (Peer), MCP semantics
// (client.cpp), SSE parsing (sse.cpp).
// Data flows: write() -> send POST -> [post_answer coroutine: JSON body | SSE events | HTTP
// error -> error answers] -> inbox -> read(); after `notifications/initialized` was accepted,
// get_stream coroutine: GET -> SSE events -> inbox, reconnecting with Last-Event-ID.
//
// Every coroutine holds the shared State; abort() (also run by the destructor) cancels every
// open exchange and every retry sleep, so they all end promptly.
#include <algorithm>
#include <array>
#include <cctype>
#include <deque>
#include <map>
#include <memory>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "sse.hpp"
#include <tether/fetch/direct.hpp>
#include <tether/jsonrpc/url_target.hpp>
#include <tether/jsonrpc/utf8.hpp>
#include <tether/mcp/http.hpp>
#include <tether/mcp_protocol/http_headers.hpp>
#include <tether/mcp_protocol/revision.hpp>

namespace tether::mcp {
namespace {

namespace asio = boost::asio;
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

// What a request gets for an HTTP failure: -32000, as the TypeScript SDK and server-everything
// answer transport-level failures. Messages quote what the server sent (the reason phrase, the
// body cut at kErrorBodyBytes): bytes that are not UTF-8 become U+FFFD, or the error answer
// would not be JSON and the peer would skip it, leaving its request to wait for its timeout.
std::string error_answer(const json::value& id, std::string_view message) {
  json::object error;
  error["code"] = jsonrpc::code::kServerError;
  error["message"] = jsonrpc::to_valid_utf8(message);
  json::object answer;
  answer["jsonrpc"] = "2.0";
  answer["id"] = id;
  answer["error"] = std::move(error);
  return json::serialize(answer);
}

enum class End { open, closed, aborted, failed };

using Exchange = std::shared_ptr<fetch::Exchange>;

struct State : std::enable_shared_from_this<State> {
  State(const asio::any_io_executor& ex, HttpServerConfig cfg)
      : executor(ex), config(std::move(cfg)), inbox_signal(ex) {
    inbox_signal.expires_at(asio::steady_timer::time_point::max());
  }

  asio::any_io_executor executor;
  HttpServerConfig config;
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

  std::vector<std::weak_ptr<fetch::Exchange>> exchanges;
  // The POST exchange each request's answer comes on (serialized id): a cancelled request's
  // exchange is cancelled, so an abandoned answer stops holding a connection.
  std::map<std::string, std::weak_ptr<fetch::Exchange>> request_exchanges;
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

  // Starts an exchange that finish() will cancel.
  Exchange start(fetch::Request request) {
    auto exchange = config.client->start(std::move(request));
    std::erase_if(exchanges, [](const auto& weak) { return weak.expired(); });
    exchanges.push_back(exchange);
    return exchange;
  }

  void finish(End how, error_code code, std::string reason) {
    if (ended()) return;
    end = how;
    end_code = code;
    diagnostics->set_end_reason(std::move(reason));
    auto open = std::move(exchanges);
    for (auto& weak : open)
      if (auto exchange = weak.lock()) exchange->cancel();
    for (auto& weak : sleeps)
      if (auto timer = weak.lock()) timer->cancel();
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

  fetch::Request request(std::string method) const {
    fetch::Request req;
    req.method = std::move(method);
    req.url = config.url;
    // Redirects are the server's business to avoid: a POST is never replayed elsewhere.
    req.redirects = fetch::Redirects::stop;
    if (config.bearer_token)
      fetch::set_header(req.headers, "Authorization", "Bearer " + *config.bearer_token);
    if (session_id && !modern) fetch::set_header(req.headers, "Mcp-Session-Id", *session_id);
    if (protocol_version && !modern)
      fetch::set_header(req.headers, "MCP-Protocol-Version", *protocol_version);
    for (const auto& [name, value] : config.headers) fetch::set_header(req.headers, name, value);
    return req;
  }

  // The 2026-07-28 headers of a POST: the version its `_meta` claims, the method, the name, and
  // the tool's x-mcp-header parameters.
  void set_modern_headers(fetch::Request& req, const Outgoing& out) const {
    auto& headers = req.headers;
    if (out.modern_version && is_visible_ascii(*out.modern_version))
      fetch::set_header(headers, "MCP-Protocol-Version", *out.modern_version);
    if (!out.method.empty())
      fetch::set_header(headers, mcp_protocol::kMethodHeader,
                        mcp_protocol::encode_header_text(out.method));
    if (out.name) fetch::set_header(headers, mcp_protocol::kNameHeader, *out.name);
    const auto* name = out.call.if_contains("name");
    const auto* arguments = out.call.if_contains("arguments");
    if (!name || !name->is_string() || !arguments || !arguments->is_object()) return;
    const auto declared = tool_headers.find(std::string(name->as_string()));
    if (declared == tool_headers.end()) return;
    for (const auto& param : declared->second) {
      const auto* argument = arguments->as_object().if_contains(param.property);
      if (!argument) continue;
      if (auto value = mcp_protocol::header_value(*argument))
        fetch::set_header(headers, std::string(mcp_protocol::kParamHeaderPrefix) + param.header,
                          *value);
    }
  }
};

// Reads the rest of a body, handing each piece to `sink`, which returns false to stop early.
enum class BodyEnd { complete, stopped, failed };

asio::awaitable<BodyEnd> read_body(fetch::Exchange& exchange,
                                   const std::function<bool(std::string_view)>& sink) {
  for (;;) {
    auto piece = co_await exchange.read();
    if (!piece) co_return BodyEnd::failed;
    if (piece->empty()) co_return BodyEnd::complete;
    if (!sink(*piece)) co_return BodyEnd::stopped;
  }
}

// Up to kErrorBodyBytes of an error answer's body, for the message.
asio::awaitable<std::string> error_body(fetch::Exchange& exchange) {
  std::string body;
  const std::function<bool(std::string_view)> sink = [&body](std::string_view piece) {
    body.append(piece.substr(0, kErrorBodyBytes - std::min(kErrorBodyBytes, body.size())));
    return body.size() < kErrorBodyBytes;
  };
  co_await read_body(exchange, sink);
  exchange.cancel();
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  co_return body;
}

std::string content_type(const fetch::Head& head) {
  return std::string(fetch::find_header(head.headers, "Content-Type").value_or(""));
}

// `HTTP 404 Not Found: <body>`, and what a 404 on a session or a 401 means.
std::string http_failure(const fetch::Head& head, const std::string& body, bool had_session) {
  std::string message = "HTTP " + std::to_string(head.status);
  // An executor does not pass the reason phrase on: the status's standard one stands in.
  const auto reason = head.reason.empty() ? std::string(boost::beast::http::obsolete_reason(
                                                boost::beast::http::int_to_status(head.status)))
                                          : head.reason;
  if (!reason.empty() && reason != "<unknown-status>") message += " " + reason;
  if (!body.empty()) message += ": " + body;
  if (had_session && head.status == 404)
    message += " (the MCP session expired; a new initialize starts a new one)";
  if (head.status == 401) {
    message += " (the MCP server requires authorization";
    if (auto challenge = fetch::find_header(head.headers, "WWW-Authenticate"))
      message += "; WWW-Authenticate: " + std::string(*challenge);
    message += ")";
  }
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
                        const fetch::Head& head, const std::string& body) {
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
  relayed["message"] = jsonrpc::to_valid_utf8(http_failure(
      head, text && text->is_string() ? std::string(text->as_string()) : std::string(), false));
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

asio::awaitable<StreamEnd> read_events(std::shared_ptr<State> state, fetch::Exchange& exchange,
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
  const auto how = co_await read_body(exchange, sink);
  exchange.cancel();
  if (too_big)
    fail_pending(*state, pending,
                 "an SSE event from the MCP server exceeds " +
                     std::to_string(state->config.max_message_bytes) + " bytes");
  co_return StreamEnd{how, progressed};
}

asio::awaitable<void> get_stream(std::shared_ptr<State> state);

// Cancels the exchange a cancelled request's answer would come on.
void cancel_request(State& state, const std::string& id) {
  if (auto it = state.request_exchanges.find(id); it != state.request_exchanges.end()) {
    if (auto exchange = it->second.lock()) exchange->cancel();
    state.request_exchanges.erase(it);
  }
}

// A response head, or the message that fails the requests waiting for it. Nothing reached the
// server at all: like a dead stdio server, the connection ends.
asio::awaitable<std::optional<fetch::Head>> head_or_fail(
    std::shared_ptr<State> state, fetch::Exchange& exchange,
    std::map<std::string, json::value>& pending) {
  auto head = co_await exchange.head();
  if (state->ended()) co_return std::nullopt;
  if (head) co_return std::move(*head);
  if (head.error().code == jsonrpc::code::kUnreachable) {
    fail_pending(*state, pending,
                 "MCP server at " + state->config.url + " unreachable: " + head.error().message);
    state->finish(End::failed, asio::error::connection_refused,
                  "MCP server at " + state->config.url + " unreachable: " + head.error().message);
  } else {
    fail_pending(*state, pending, "HTTP request to the MCP server failed: " + head.error().message);
  }
  co_return std::nullopt;
}

// The answer to one POST. `pending` holds the requests it carried that still need an answer.
asio::awaitable<void> post_answer(std::shared_ptr<State> state, Exchange exchange, Outgoing out,
                                  bool had_session) {
  auto& pending = out.request_ids;
  auto got = co_await head_or_fail(state, *exchange, pending);
  if (!got) co_return;
  const fetch::Head head = std::move(*got);
  if (auto session = fetch::find_header(head.headers, "Mcp-Session-Id");
      session && !out.modern_version)
    state->session_id = std::string(*session);
  const unsigned status = head.status;
  if (status < 200 || status >= 300) {
    auto body = co_await error_body(*exchange);
    const bool expired = status == 404 && had_session;
    if (!pending.empty() && deliver_error_body(*state, pending, head, body)) co_return;
    const auto message = http_failure(head, body, had_session);
    if (pending.empty()) spdlog::warn("mcp http: the MCP server refused a message: {}", message);
    fail_pending(*state, pending, message);
    // The server forgot the session: this connection is over, and whoever owns the client
    // starts a new one with a new initialize (the host's manager does on the next use).
    if (expired) state->finish(End::failed, asio::error::connection_reset, message);
    co_return;
  }
  if (status == 202 || pending.empty()) {
    exchange->cancel();
    if (out.initialized_notification && !state->get_stream_started && !state->stopping()) {
      state->get_stream_started = true;
      asio::co_spawn(state->executor, get_stream(state), asio::detached);
    }
    if (!pending.empty())
      fail_pending(*state, pending, "HTTP 202 Accepted without an answer to the request");
    co_return;
  }
  const auto type = media_type(content_type(head));
  if (type == "application/json") {
    std::string body;
    bool too_big = false;
    const std::size_t limit = state->config.max_message_bytes;
    const std::function<bool(std::string_view)> sink = [&](std::string_view piece) {
      body.append(piece);
      too_big = body.size() > limit;
      return !too_big;
    };
    const auto how = co_await read_body(*exchange, sink);
    exchange->cancel();
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
    error_code ec;
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
    exchange->cancel();
    fail_pending(*state, pending,
                 "unexpected Content-Type from the MCP server: '" + content_type(head) + "'");
    co_return;
  }
  Cursor cursor;
  auto end = co_await read_events(state, *exchange, cursor, pending);
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
    auto request = state->request("GET");
    fetch::set_header(request.headers, "Accept", "text/event-stream");
    fetch::set_header(request.headers, "Last-Event-ID", cursor.last_event_id);
    const bool resumed_with_session = state->session_id.has_value();
    auto resumed = state->start(std::move(request));
    auto resumed_head = co_await resumed->head();
    if (state->stopping()) co_return;
    end = StreamEnd{BodyEnd::failed};
    if (!resumed_head) continue;
    const unsigned resumed_status = resumed_head->status;
    if (resumed_status < 200 || resumed_status >= 300) {
      auto body = co_await error_body(*resumed);
      fail_pending(*state, pending,
                   "resuming the MCP server's SSE stream failed: " +
                       http_failure(*resumed_head, body, resumed_with_session));
      co_return;
    }
    end = co_await read_events(state, *resumed, cursor, pending);
  }
}

// The standalone GET stream: messages the server sends on its own, reconnected honouring
// `retry:` until the transport ends, the server says it has none (405) or refuses.
asio::awaitable<void> get_stream(std::shared_ptr<State> state) {
  Cursor cursor;
  int failures = 0;
  while (!state->stopping()) {
    auto request = state->request("GET");
    fetch::set_header(request.headers, "Accept", "text/event-stream");
    if (!cursor.last_event_id.empty())
      fetch::set_header(request.headers, "Last-Event-ID", cursor.last_event_id);
    auto exchange = state->start(std::move(request));
    auto head = co_await exchange->head();
    if (state->stopping()) co_return;
    bool progressed = false;
    if (head) {
      if (head->status == 405) co_return;  // the server offers no stream of its own
      if (head->status < 200 || head->status >= 300 ||
          media_type(content_type(*head)) != "text/event-stream") {
        auto body = co_await error_body(*exchange);
        spdlog::warn("mcp http: the MCP server refused its GET stream: {}",
                     http_failure(*head, body, false));
        co_return;
      }
      std::map<std::string, json::value> none;
      co_await read_events(state, *exchange, cursor, none);
      progressed = true;  // the stream opened; its end is the server's choice (polling)
    }
    exchange->cancel();
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
      // What arrived before the end is still read: the answers an ending failure gave.
      if (!state_->inbox.empty()) {
        auto message = std::move(state_->inbox.front());
        state_->inbox.pop_front();
        co_return message;
      }
      if (state_->ended()) co_return state_->end_code;
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
      // 2026-07-28: ending the request's exchange is the cancellation; there is no session that
      // could take a notification naming it.
      cancel_request(*state, *out.cancelled_id);
      co_return error_code{};
    }
    if (out.tools_list_id && state->modern) state->tools_list_ids.insert(*out.tools_list_id);
    auto request = state->request("POST");
    fetch::set_header(request.headers, "Content-Type", "application/json");
    fetch::set_header(request.headers, "Accept", "application/json, text/event-stream");
    if (state->modern) state->set_modern_headers(request, out);
    request.body = message;
    const bool had_session = state->session_id.has_value() && !state->modern;
    auto exchange = state->start(std::move(request));
    auto sent = co_await exchange->send();
    if (state->ended()) co_return state->end_code;
    if (!sent && sent.error().code == jsonrpc::code::kUnreachable) {
      // The server cannot be reached at all: like a dead stdio server, the connection ends.
      state->finish(End::failed, asio::error::connection_refused,
                    "MCP server at " + state->config.url + " unreachable: " + sent.error().message);
      co_return asio::error::connection_refused;
    }
    std::erase_if(state->request_exchanges,
                  [](const auto& entry) { return entry.second.expired(); });
    for (const auto& [id, value] : out.request_ids) state->request_exchanges[id] = exchange;
    if (out.cancelled_id) cancel_request(*state, *out.cancelled_id);
    // A send that failed otherwise fails its requests where they wait (head() repeats it).
    asio::co_spawn(state->executor,
                   post_answer(state, std::move(exchange), std::move(out), had_session),
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
      auto request = state->request("DELETE");
      request.timeout = state->config.connect_timeout;
      auto exchange = state->start(std::move(request));
      co_await exchange->head();
      exchange->cancel();
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
  if (!jsonrpc::parse_url_target(config.url, "http", "https"))
    return jsonrpc::make_error(
        jsonrpc::code::kInvalidParams,
        "invalid MCP server URL '" + config.url + "': expected http:// or https:// with a host");
  if (!config.client) {
    fetch::DirectOptions direct;
    direct.connect_timeout = config.connect_timeout;
    config.client = fetch::direct_client(executor, direct);
  }
  std::string description = config.url;
  if (config.client->origin() != "local") description += " via " + config.client->origin();
  auto state = std::make_shared<State>(executor, std::move(config));
  auto diagnostics = state->diagnostics;
  return ServerConnection{std::make_unique<HttpTransport>(std::move(state)), std::move(diagnostics),
                          std::move(description)};
}

}  // namespace tether::mcp
