// JSON that a person wrote (a file, a command-line argument): parsed whole, and when it is not
// valid JSON, where it goes wrong (line and column) and how.
#pragma once

#include <cstddef>
#include <string_view>

#include <boost/json/value.hpp>

#include <tether/jsonrpc/error.hpp>

namespace tether::jsonrpc {

struct TextPosition {
  std::size_t line = 1;
  std::size_t column = 1;  // in characters (UTF-8), from 1
};

// Where byte `offset` of `text` is.
TextPosition position_of(std::string_view text, std::size_t offset);

// `text` as one JSON value (whitespace around it allowed). The error (kParseError) reads
// `line 3, column 5: syntax error`.
Expected<json::value> parse_json_text(std::string_view text);

}  // namespace tether::jsonrpc
