// tether::exec protocol — vocabulary shared by the executor server and its client.
//
// Owns: reading typed params with -32602 errors, and path fields (plain absolute paths and `file:`
// URIs, docs/exec-server.md "Paths").
// Does not own: error codes and Expected (jsonrpc/error.hpp), method behaviour (server) or calls
// (client).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include <tether/jsonrpc/message.hpp>

namespace tether::exec {

namespace json = boost::json;
using jsonrpc::Error;
using jsonrpc::Expected;

Error invalid_params(std::string message);
Error invalid_request(std::string message);
// -32602 `<field> contains a NUL byte` when `value` has one: argv, arg0, environment names and
// values and paths reach the OS as C strings, which would silently cut it short there.
std::optional<Error> nul_byte_error(std::string_view field, std::string_view value);

// Typed access to a params object. Absent params read as an empty object.
class Params {
 public:
  static Expected<Params> of(const json::value& params);

  const json::value* find(std::string_view key) const;  // null when absent or JSON null
  Expected<std::string> string(std::string_view key) const;
  Expected<std::optional<std::string>> optional_string(std::string_view key) const;
  Expected<std::optional<std::int64_t>> optional_int(std::string_view key) const;
  Expected<std::optional<bool>> optional_bool(std::string_view key) const;
  // A required array of strings.
  Expected<std::vector<std::string>> strings(std::string_view key) const;
  // A path field (see parse_path).
  Expected<std::string> path(std::string_view key) const;

 private:
  explicit Params(const json::object* object) : object_(object) {}
  const json::object* object_;
};

// A plain absolute path, or a `file:` URI (percent-decoded, dot segments removed, host empty or
// localhost). Errors carry the protocol's codes and messages.
Expected<std::string> parse_path(std::string_view text);
// A percent-encoded `file://` URI for an absolute path.
std::string to_file_uri(std::string_view path);

}  // namespace tether::exec
