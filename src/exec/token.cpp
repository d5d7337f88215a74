// random_token (token.hpp), from OpenSSL's CSPRNG.
#include <fmt/format.h>
#include <openssl/rand.h>

#include <tether/exec/token.hpp>

namespace tether::exec {

std::optional<std::string> random_token() {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return std::nullopt;
  std::string token;
  for (unsigned char b : raw) token += fmt::format("{:02x}", b);
  return token;
}

}  // namespace tether::exec
