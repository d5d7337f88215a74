// tether::jsonrpc base64 — the standard alphabet with padding, as the executor protocol carries
// bytes and MCP HTTP headers carry unsafe values.
// Encoding and decoding run on OpenSSL's block codec; decoding is strict (no whitespace, padding
// only at the end) so that malformed chunks are rejected rather than guessed at.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tether::jsonrpc {

std::string base64_encode(std::string_view bytes);
// Appends the encoding to `out` (avoids a copy when building a message).
void base64_encode_append(std::string& out, std::string_view bytes);
// nullopt when `text` is not valid padded base64.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace tether::jsonrpc
