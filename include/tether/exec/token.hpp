// tether::exec bearer tokens: what an executor's token is made of, for the executor (which
// generates one when none is given) and for hosts that start their own executor.
#pragma once

#include <optional>
#include <string>

namespace tether::exec {

// A fresh random 256-bit token, hex-encoded (nullopt when the system has no randomness).
std::optional<std::string> random_token();

}  // namespace tether::exec
