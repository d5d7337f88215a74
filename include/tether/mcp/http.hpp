// tether::mcp streamable HTTP — an MCP server reached by URL, from this process or through an
// executor (the fetch::Client in the config decides; nothing here knows which).
//
// Owns: the client side of the MCP streamable HTTP transport (2025-11-25 and earlier
// revisions): one POST per message with `Accept: application/json, text/event-stream`; JSON or
// SSE answers; the `Mcp-Session-Id` the server assigns, sent back on every later request; the
// `MCP-Protocol-Version` header once initialize negotiated it; the GET stream for messages the
// server sends on its own; resuming a broken SSE stream with `Last-Event-ID` after the server's
// `retry:` delay; bearer token and extra headers; DELETE of the session on close.
// Does not own: MCP semantics (client.hpp) or OAuth.
// Data flows: write(message) -> POST -> [JSON body | SSE events] -> inbox -> read();
// GET stream -> SSE events -> inbox. HTTP failures of a request become a JSON-RPC error answer
// to that request, so the caller sees them where it waits.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include <tether/fetch/fetch.hpp>
#include <tether/mcp/connection.hpp>

namespace tether::mcp {

struct HttpServerConfig {
  std::string url;  // http:// or https://
  std::optional<std::string> bearer_token;
  std::vector<std::pair<std::string, std::string>> headers;
  // This process's own connections: resolving, connecting and the TLS handshake; and the DELETE
  // that ends a session.
  std::chrono::milliseconds connect_timeout{10'000};
  std::size_t max_message_bytes = std::size_t{64} << 20;
  // Who makes the requests: null = this process (fetch::direct_client); an executor's
  // (exec::ExecClient::http_client) for a server placed on it.
  std::shared_ptr<fetch::Client> client;
};

// Nothing is sent until the first write (initialize). An invalid URL is an error here.
Expected<ServerConnection> connect_http(const boost::asio::any_io_executor& executor,
                                        HttpServerConfig config);

}  // namespace tether::mcp
