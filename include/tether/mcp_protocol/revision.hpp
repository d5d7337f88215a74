// tether::mcp_protocol revision — what tells the MCP revisions apart, shared by the client
// (src/mcp) and the server side (src/mcp_server, src/gateway).
//
// Owns: the version strings, the `_meta` keys the 2026-07-28 revision puts on every request and
// result, its error codes, and reading them back from a message (docs/mcp.md "Protocol
// revisions").
// Does not own: sessions, transports or what any method means.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <tether/jsonrpc/error.hpp>

namespace tether::mcp_protocol {

namespace json = boost::json;

// The stateless revision: no initialize, every request carries its own `_meta`.
inline constexpr std::string_view kModernVersion = "2026-07-28";
// The session revisions (initialize), newest first.
inline constexpr std::string_view kLegacyVersions[] = {"2025-11-25", "2025-06-18", "2025-03-26",
                                                       "2024-11-05"};
bool is_modern_version(std::string_view version);

namespace meta {
inline constexpr std::string_view kProtocolVersion = "io.modelcontextprotocol/protocolVersion";
inline constexpr std::string_view kClientCapabilities =
    "io.modelcontextprotocol/clientCapabilities";
inline constexpr std::string_view kClientInfo = "io.modelcontextprotocol/clientInfo";
inline constexpr std::string_view kLogLevel = "io.modelcontextprotocol/logLevel";
inline constexpr std::string_view kServerInfo = "io.modelcontextprotocol/serverInfo";
inline constexpr std::string_view kSubscriptionId = "io.modelcontextprotocol/subscriptionId";
}  // namespace meta

namespace code {
inline constexpr int kHeaderMismatch = -32020;
inline constexpr int kMissingRequiredClientCapability = -32021;
inline constexpr int kUnsupportedProtocolVersion = -32022;
}  // namespace code

// The revision a request's params claim in `_meta` (2026-07-28 and later); nullopt for a request
// of a session revision, which has none.
std::optional<std::string> request_version(const json::object& params);
std::optional<std::string> request_version(const json::value& message);

// A result's `resultType`: absent means complete.
inline constexpr std::string_view kComplete = "complete";
inline constexpr std::string_view kInputRequired = "input_required";
std::string_view result_type(const json::object& result);

// The methods whose answers may be input_required (multi-round-trip requests).
bool accepts_input_responses(std::string_view method);
// The methods whose complete results carry ttlMs and cacheScope.
bool is_cacheable(std::string_view method);

// A server's checks of a request's `_meta`, in the revision's order (over HTTP the
// MCP-Protocol-Version header is compared with the version in between): -32602 when `_meta`, its
// protocolVersion or its clientCapabilities is missing; then -32022 (data: supported,
// requested) for a version other than kModernVersion.
std::optional<jsonrpc::Error> check_request_meta(const json::object& params);
std::optional<jsonrpc::Error> check_request_version(const json::object& params);
jsonrpc::Error unsupported_version(std::string_view requested);
// The session revisions' methods the 2026-07-28 revision removed (answered -32601).
bool is_removed_method(std::string_view method);
// The client capability a server-to-client request needs: sampling, elicitation or roots.
std::string_view capability_for(std::string_view client_method);
// -32021 naming that capability (data: requiredCapabilities).
jsonrpc::Error missing_capability(std::string_view capability);
// What a server's result must carry: `resultType` (complete unless set) and, for a cacheable
// method, `ttlMs` and `cacheScope` (0 and private unless set).
void stamp_result(std::string_view method, json::object& result);

}  // namespace tether::mcp_protocol
