// tether::jsonrpc errors — the one error vocabulary of every component above.
//
// Owns: the error object, every error code the project uses (JSON-RPC's own, the executor
// protocol's, and the local outcomes that never travel on the wire), Expected<T> (a value or an
// error) and make_error, the one way to make an error.
// Does not own: the wording of each component's messages.
#pragma once

#include <optional>
#include <string>

#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

namespace tether::jsonrpc {

namespace json = boost::json;

namespace code {
// JSON-RPC 2.0.
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
// The implementation-defined server-error range (-32000 to -32099).
// HTTP failures answering an MCP request (the TypeScript SDK and server-everything use it for
// transport-level failures too).
inline constexpr int kServerError = -32000;
// The executor protocol (docs/exec-protocol.md "Errors").
inline constexpr int kNotFound = -32004;
inline constexpr int kSessionAttached = -32010;
// Local outcomes of a call that never travel on the wire.
inline constexpr int kRequestTimedOut = -32090;
inline constexpr int kConnectionClosed = -32091;
inline constexpr int kHandshakeFailed = -32092;   // MCP initialize
inline constexpr int kInvalidArguments = -32093;  // MCP tool arguments checked before sending
// A request handler's reply for a request the remote cancelled: the Peer answers nothing (MCP:
// the receiver of a cancellation should not respond).
inline constexpr int kRequestCancelled = -32094;
// The server a request was routed to could not be reached (not started, failed, crash-looping).
inline constexpr int kUnavailable = -32095;
// An HTTP server could not be reached at all: its name did not resolve, nothing accepted the
// connection, or the TLS handshake failed (nothing of the request was sent).
inline constexpr int kUnreachable = -32096;
}  // namespace code

struct Error {
  int code = code::kInternalError;
  std::string message;
  std::optional<json::value> data;
};

template <class T>
using Expected = boost::system::result<T, Error>;

inline Error make_error(int code, std::string message) {
  return Error{code, std::move(message), {}};
}

}  // namespace tether::jsonrpc
