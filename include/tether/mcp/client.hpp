// tether::mcp Client — one MCP session with one server, wherever the server runs.
//
// Owns: finding the server's protocol revision (docs/mcp.md "Protocol revisions": the
// `server/discover` probe, falling back to `initialize`; 2026-07-28 or a session revision),
// capabilities offered only for the handlers the host gives, every client operation (tools,
// resources, templates, prompts, completion, logging level, ping, subscriptions) in the
// server's revision (per-request `_meta`, `subscriptions/listen`, multi-round-trip requests
// answered through the host's handlers, list results cached for their `ttlMs`), following list
// cursors, re-listing on list_changed, progress, per-request timeouts with
// `notifications/cancelled`, dispatching the server's requests and notifications to host
// callbacks, and failing everything pending when the connection ends. Handshake failure,
// timeout, shutdown() or destroying the Client ends the server (through ServerConnection's
// contract).
// Does not own: transports and launching (connection.hpp, stdio.hpp, http.hpp; the HTTP
// transport derives its per-request headers from the messages), config, placement, tool
// filtering or naming (host).
// Data flows: host call -> request (own id, timer, `_meta`) -> jsonrpc::Peer -> transport ->
// server; server -> Peer -> {pending call [input_required -> handlers -> retry] | request
// handler -> answer | notification -> callback}.
// Threading: one executor; every call runs on it.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <tether/jsonrpc/message.hpp>
#include <tether/mcp/connection.hpp>

namespace tether::mcp {

// The version offered in initialize; the answer may name any of mcp_protocol::kLegacyVersions.
inline constexpr std::string_view kProtocolVersion = "2025-11-25";

// The two kinds of MCP server: 2026-07-28 and later (no session, `_meta` on every request), and
// the session revisions (initialize).
enum class ProtocolEra { legacy, modern };

// Which era each server spoke, by a key the host chooses (its name): the next connect to it
// tries that era first. Safe to share between clients on any threads.
class EraMemory {
 public:
  std::optional<ProtocolEra> recall(const std::string& key) const;
  void remember(const std::string& key, ProtocolEra era);

 private:
  mutable std::mutex mutex_;
  std::map<std::string, ProtocolEra> eras_;
};

// Answers a server request: its params in, a result (or a JSON-RPC error) out.
using ServerRequestHandler = std::function<boost::asio::awaitable<jsonrpc::Reply>(json::value)>;

enum class ListKind { tools, resources, prompts };

// Rounds of input_required answers one request may take before it fails.
inline constexpr int kMaxInputRounds = 16;

struct ClientHandlers {
  // Each set handler adds its capability to initialize (or to every 2026-07-28 request's
  // `_meta`) and answers its method, whether the server asks with a request (session revisions)
  // or in an input_required result (2026-07-28); an unset one leaves the capability out, and
  // the method is answered -32601 or the call fails.
  ServerRequestHandler roots;        // roots/list (capability roots.listChanged)
  ServerRequestHandler sampling;     // sampling/createMessage
  ServerRequestHandler elicitation;  // elicitation/create (form, with applyDefaults: an accepted
                                     // answer gets the schema's defaults for missing fields)
  // Notifications other than progress, cancellation and list_changed (logging/message,
  // resources/updated, ...).
  std::function<void(const std::string& method, const json::value& params)> on_notification;
  // After a list_changed notification, with the fresh full listing.
  std::function<void(ListKind, const json::array&)> on_list_changed;
  // The session ended (not by shutdown()): the reason, as pending requests saw it.
  std::function<void(const std::string& reason)> on_closed;
};

struct ClientOptions {
  // Handshake (server/discover or initialize and the answer); also the timeout of requests other
  // than tools/call.
  std::chrono::milliseconds startup_timeout{30'000};
  std::chrono::milliseconds tool_timeout{120'000};
  // How long `server/discover` may go unanswered before `initialize` is sent too (a server of a
  // session revision may ignore requests before initialize); the first success decides.
  std::chrono::milliseconds discover_timeout{5'000};
  ClientHandlers handlers;
  std::string client_name = "tether";
  // Optional: where the era found is remembered, under `era_key`, and recalled on the next
  // connect (a server remembered as legacy gets initialize first, without the probe).
  std::shared_ptr<EraMemory> eras;
  std::string era_key;
};

struct CallOptions {
  // Overrides the client's timeout for this request.
  std::optional<std::chrono::milliseconds> timeout;
  // When set, the request carries a progressToken; each progress notification for it is passed
  // here and restarts the timeout.
  std::function<void(const json::object& progress)> on_progress;
  // 2026-07-28 only: an input_required result is returned as it is, for a caller that relays it
  // to a client of its own (a gateway), instead of being answered through the handlers; and the
  // clientCapabilities `_meta` names instead of the handlers' (that client's).
  bool relay_input_required = false;
  std::optional<json::object> client_capabilities;
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  // Finds the server's revision and runs its handshake on `connection`. Errors: `timed out
  // handshaking with MCP server after <d>`, `handshaking with MCP server failed: <err>` (the
  // stderr tail appended for a server that died), `unsupported MCP protocol version '<v>'`. On
  // error the server has been ended.
  // The error code is jsonrpc::code::kRequestTimedOut for the timeout, kHandshakeFailed else
  // (local outcomes: the wire never carries them).
  static boost::asio::awaitable<Expected<std::shared_ptr<Client>>> connect(
      boost::asio::any_io_executor executor, ServerConnection connection, ClientOptions options);

  // Ends the server without waiting (see ServerConnection).
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // The initialize result; for a 2026-07-28 server, its server/discover result in the same shape
  // (protocolVersion, capabilities, serverInfo, instructions).
  const json::object& handshake_result() const { return handshake_result_; }
  const std::string& protocol_version() const { return protocol_version_; }
  ProtocolEra era() const { return era_; }
  const json::object& server_capabilities() const { return server_capabilities_; }

  // Full listings (cursors followed to the end; a repeated cursor is `<method> returned
  // duplicate cursor`). A 2026-07-28 listing is served from cache for its `ttlMs` (until a
  // list_changed), and leaves out tools whose `x-mcp-header` declarations are invalid.
  boost::asio::awaitable<Expected<json::array>> list_tools();
  boost::asio::awaitable<Expected<json::array>> list_resources();
  boost::asio::awaitable<Expected<json::array>> list_resource_templates();
  boost::asio::awaitable<Expected<json::array>> list_prompts();

  // `arguments` must be an object (or null for none). A result with isError is a result.
  boost::asio::awaitable<Expected<json::object>> call_tool(std::string name, json::value arguments,
                                                           CallOptions options);
  // Overloads, not default arguments: GCC 12 builds a default argument of class type wrongly
  // when the call is inside a co_await expression.
  boost::asio::awaitable<Expected<json::object>> call_tool(std::string name,
                                                           json::value arguments) {
    return call_tool(std::move(name), std::move(arguments), CallOptions{});
  }
  boost::asio::awaitable<Expected<json::object>> read_resource(std::string_view uri);
  boost::asio::awaitable<Expected<json::object>> get_prompt(std::string_view name,
                                                            json::object arguments);
  boost::asio::awaitable<Expected<json::object>> complete(json::object params);
  // (The string_view arguments are copied into the request before these return.)
  // 2026-07-28: the level goes in every later request's `_meta`; ping is a server/discover; a
  // subscription joins the resourceSubscriptions of the session's `subscriptions/listen`, and
  // returns once the server acknowledged it.
  boost::asio::awaitable<Expected<void>> set_logging_level(std::string_view level);
  boost::asio::awaitable<Expected<void>> ping();
  boost::asio::awaitable<Expected<void>> subscribe(std::string_view uri);
  boost::asio::awaitable<Expected<void>> unsubscribe(std::string_view uri);
  // notifications/roots/list_changed (session revisions; a 2026-07-28 server asks for roots
  // when it needs them).
  void notify_roots_changed();

  // Any request: its result object. For a 2026-07-28 server, logging/setLevel, ping and
  // resources/(un)subscribe are carried out as above, and an input_required result is answered
  // through the handlers and the request retried (at most kMaxInputRounds times).
  boost::asio::awaitable<Expected<json::object>> request(std::string method, json::object params,
                                                         CallOptions options);
  boost::asio::awaitable<Expected<json::object>> request(std::string method, json::object params) {
    return request(std::move(method), std::move(params), CallOptions{});
  }

  // Ends the session and the server; returns once it is gone (bounded). Idempotent.
  boost::asio::awaitable<void> shutdown();

  bool is_closed() const;
  // Why the session ended (empty while open): what pending requests failed with
  // (kConnectionClosed), followed by the server's stderr tail when it has one.
  std::string close_reason() const;
  // The server's description and stderr tail (from its connection).
  const std::string& description() const { return description_; }
  std::string stderr_tail() const;

  struct State;

 private:
  explicit Client(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
  json::object handshake_result_;
  ProtocolEra era_ = ProtocolEra::legacy;
  json::object server_capabilities_;
  std::string protocol_version_;
  std::string description_;
};

}  // namespace tether::mcp
