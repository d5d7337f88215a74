// The executor's `fs/*` methods. Each runs to completion synchronously (the connection calls
// them off the I/O thread) and maps OS errors to the protocol's codes: -32004 not found,
// -32603 otherwise, -32602 for bad params.
#pragma once

#include <string_view>

#include <tether/exec/protocol.hpp>

namespace tether::exec {

bool is_fs_method(std::string_view method);
// Largest file fs/readFile returns: its base64 must fit in one 64 MiB message.
inline constexpr std::size_t kMaxReadFileBytes = 45 * 1024 * 1024;
Expected<json::value> call_fs_method(std::string_view method, const json::value& params);

}  // namespace tether::exec
