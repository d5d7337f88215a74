// tether::fetch — HTTP requests, made from wherever a Client stands.
//
// Owns: the shape of a request (method, URL, headers in order with repeats, body, a timeout for
// the whole exchange, the redirect policy) and of a response (status, headers, a body read piece
// by piece), and the Client interface that makes them. Two clients exist: this process's own
// (direct.hpp) and an executor's (exec::ExecClient::http, which asks the executor to make the
// request from its network position). Code above (the MCP streamable HTTP transport) does not
// know which one it holds.
// Does not own: connections or TLS (direct.hpp), the executor protocol (exec/protocol.hpp).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include <tether/jsonrpc/error.hpp>

namespace tether::fetch {

using jsonrpc::Error;
using jsonrpc::Expected;

struct Header {
  std::string name;
  std::string value;
};
using Headers = std::vector<Header>;

// The first value of `name` (case-insensitive), if any.
std::optional<std::string_view> find_header(const Headers& headers, std::string_view name);
// Replaces every `name` header (case-insensitive) with one, at the end.
void set_header(Headers& headers, std::string_view name, std::string value);

enum class Redirects { follow, stop };

struct Request {
  std::string method = "GET";
  std::string url;  // http:// or https://
  Headers headers;  // sent in this order, repeats included
  std::string body;
  // Bounds the whole exchange, the body included; nullopt: no bound.
  std::optional<std::chrono::milliseconds> timeout;
  Redirects redirects = Redirects::follow;
};

struct Head {
  unsigned status = 0;
  std::string reason;  // may be empty (not every client learns it)
  Headers headers;
};

// One request in flight. Each call may be made once the previous one returned; cancel() may be
// made at any time, from the Exchange's executor: a pending call then fails and later calls fail
// at once, and whatever the exchange holds (a connection, an executor's stream) is let go.
class Exchange {
 public:
  virtual ~Exchange() = default;
  // Sends the request: returns once it is on its way (written to the server's connection, or
  // handed to the executor), so requests sent one after the other leave in that order. Errors:
  // jsonrpc::code::kUnreachable when nothing reached the server; otherwise the failure's code
  // (kRequestTimedOut for the request's timeout) and a message that names what failed.
  virtual boost::asio::awaitable<Expected<void>> send() = 0;
  // The response head (after following redirects when the request asked for it); sends first
  // when send() was not called. Errors as for send().
  virtual boost::asio::awaitable<Expected<Head>> head() = 0;
  // The next piece of the body, in order; an empty string once the body is complete.
  virtual boost::asio::awaitable<Expected<std::string>> read() = 0;
  virtual void cancel() = 0;
};

class Client {
 public:
  virtual ~Client() = default;
  // Makes the exchange; nothing is sent until send() or head(). Invalid requests (a URL that is
  // not http(s), a header that cannot be sent) fail there with kInvalidParams.
  virtual std::shared_ptr<Exchange> start(Request request) = 0;
  // Where the requests come from, for messages and listings: "local", or the executor's name.
  virtual std::string origin() const = 0;
};

// A request is sendable: a method token, an http(s) URL with a host, header names that are
// tokens and values without CR, LF or NUL. Errors are kInvalidParams, worded for the caller.
Expected<void> check_request(const Request& request);

// Reads the rest of the body, at most `limit` bytes (more: an error naming the limit).
boost::asio::awaitable<Expected<std::string>> read_all(Exchange& exchange, std::size_t limit);

}  // namespace tether::fetch
