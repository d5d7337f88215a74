// tether::jsonrpc UTF-8 — text that must be valid UTF-8 before it goes into JSON (JSON strings
// are Unicode, and Boost.JSON writes the bytes it is given).
#pragma once

#include <string>
#include <string_view>

namespace tether::jsonrpc {

// Strict: overlong forms, surrogates and code points past U+10FFFF are invalid.
bool is_valid_utf8(std::string_view text);
// `text` with every byte that is not part of valid UTF-8 replaced by U+FFFD.
std::string to_valid_utf8(std::string_view text);

}  // namespace tether::jsonrpc
