// Fields: reads one JSON object for the protocol's from_json functions.
//
// The first error is kept and later reads return defaults, so a decoder reads its fields in
// order and checks result() once. Messages follow codex's serde wording ("missing field
// `processId`"), since users of both see the same text.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tether/exec/protocol.hpp>

namespace tether::exec {

class Fields {
 public:
  // `value` null reads as an empty object. `within` names a nested object ("envPolicy"): its
  // messages end with " in <within>".
  explicit Fields(const json::value& value, std::string within = {});

  const json::value* find(std::string_view key) const;  // null when absent or JSON null

  std::string string(std::string_view key);
  std::optional<std::string> optional_string(std::string_view key);
  std::optional<std::int64_t> optional_int(std::string_view key);  // above INT64_MAX: INT64_MAX
  std::uint64_t uint(std::string_view key);
  std::optional<std::uint64_t> optional_uint(std::string_view key);
  std::optional<bool> optional_bool(std::string_view key);
  bool boolean(std::string_view key);
  std::vector<std::string> strings(std::string_view key);
  // An object of strings; absent reads as empty.
  std::map<std::string, std::string> string_map(std::string_view key);
  // A required path field (see parse_path).
  std::string path(std::string_view key);
  std::optional<std::string> optional_path(std::string_view key);
  // A required base64 string, decoded.
  std::string base64(std::string_view key);
  // A non-null `key` is refused: `<key> is not supported by this executor`.
  void refuse(std::string_view key);

  // Records `error` unless an earlier one is kept.
  void fail(Error error);
  bool failed() const { return error_.has_value(); }
  Expected<void> result() const;

 private:
  const json::value* field(std::string_view key, bool required);
  void wrong_type(std::string_view key, std::string_view expected);
  std::string in(std::string message) const;

  const json::object* object_ = nullptr;
  std::string within_;
  std::optional<Error> error_;
};

}  // namespace tether::exec
