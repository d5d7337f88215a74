// tether::jsonrpc messages — the JSON-RPC 2.0 message model on Boost.JSON.
//
// Owns: the three message kinds, request ids, parsing one message from text with the validation
// rules of docs/exec-protocol.md "Transport" ("jsonrpc" optional on input, ids are 64-bit
// integers or strings, no batches) and serializing messages (always with "jsonrpc": "2.0").
// Does not own: error objects and codes (error.hpp), transports, correlation of requests and
// responses (peer.hpp), method semantics.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include <tether/jsonrpc/error.hpp>

namespace tether::jsonrpc {

namespace json = boost::json;

using Id = std::variant<std::int64_t, std::string>;

// What a request handler or a call yields: a result value or a JSON-RPC error.
using Reply = boost::system::result<json::value, Error>;

struct Request {
  Id id;
  std::string method;
  json::value params;  // null when absent
};

struct Notification {
  std::string method;
  json::value params;  // null when absent
};

struct Response {
  std::optional<Id> id;  // nullopt: "id": null (answers to unparsable input)
  Reply reply;
};

using Message = std::variant<Request, Notification, Response>;

// Input that is not a valid message. `id` is set when the input carried a valid id, so the error
// answer can echo it.
struct Invalid {
  Error error;
  std::optional<Id> id;
};

boost::system::result<Message, Invalid> parse(std::string_view text);

std::string serialize(const Request& request);
std::string serialize(const Notification& notification);
std::string serialize(const Response& response);
std::string serialize(const Message& message);

json::value to_json(const Id& id);
std::string to_string(const Id& id);

}  // namespace tether::jsonrpc
