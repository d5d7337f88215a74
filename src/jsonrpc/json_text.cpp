// JSON a person wrote, with positions in errors (see json_text.hpp).
#include <cctype>

#include <boost/json/stream_parser.hpp>
#include <fmt/format.h>

#include <tether/jsonrpc/json_text.hpp>

namespace tether::jsonrpc {

TextPosition position_of(std::string_view text, std::size_t offset) {
  TextPosition at;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++at.line;
      at.column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++at.column;  // not a UTF-8 continuation byte: a new character starts here
    }
  }
  return at;
}

Expected<json::value> parse_json_text(std::string_view text) {
  json::stream_parser parser;
  boost::system::error_code ec;
  std::size_t offset = parser.write(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (!ec) return parser.release();
  // The parser stops before the whitespace that precedes extra data: point at the data itself.
  while (offset < text.size() && std::isspace(static_cast<unsigned char>(text[offset]))) ++offset;
  const auto at = position_of(text, offset);
  return make_error(code::kParseError,
                    fmt::format("line {}, column {}: {}", at.line, at.column, ec.message()));
}

}  // namespace tether::jsonrpc
