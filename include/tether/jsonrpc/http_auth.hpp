// tether::jsonrpc HTTP auth — what every tether HTTP listener (the executor, the gateway) checks
// before it serves, and the tokens it checks against.
//
// Owns: bearer tokens (random 256-bit hex tokens, kept only as SHA-256 digests and compared in
// constant time), the token sources (a token file, a hex digest, a generated token in a fresh
// 0600 file) and the Host rule against DNS rebinding (IP literals and `localhost`, plus names
// the user allows).
// Does not own: the order of the checks or the answers (each listener's gate), or TLS.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tether/jsonrpc/error.hpp>

namespace tether::jsonrpc {

using Sha256 = std::array<unsigned char, 32>;

Sha256 sha256(std::string_view data);
// 64 hex digits (either case); nullopt otherwise.
std::optional<Sha256> parse_hex_digest(std::string_view hex);

// The digest of a token given as text (a file's content, an environment variable): surrounding
// white space ignored; nullopt when nothing is left.
std::optional<Sha256> token_digest(std::string_view text);

// A fresh random 256-bit token, hex-encoded (nullopt when the system has no randomness).
std::optional<std::string> random_token();

// The digest of the token in `path` (surrounding white space ignored). Errors: `cannot read
// token file <path>`, `token file <path> is empty`.
Expected<Sha256> read_token_file(const std::string& path);

struct GeneratedToken {
  Sha256 digest;
  std::string directory;  // holds the file `token`; the caller removes it at exit
};
// A random token in `<TMPDIR>/<prefix>-XXXXXX/token`: directory 0700, file 0600.
Expected<GeneratedToken> generate_token_file(std::string_view prefix);

// Where a listener's token comes from; the first source set wins, and with none a token is
// generated (generate_token_file) and its file's path printed on stderr as
// `<program>: generated a bearer token; it is in <dir>/token`, whatever the log level.
struct TokenSources {
  std::optional<std::string> file;
  std::optional<Sha256> digest;  // given directly (e.g. --ws-token-sha256)
  std::string env_var;           // a token in this environment variable
  std::string program;           // for the message, e.g. `tether exec-server`
  std::string generated_prefix;  // the generated token's directory name
};
struct BearerAuth {
  std::optional<Sha256> digest;  // absent: no auth
  std::string generated_dir;     // the generated token's directory; the caller removes it
};
Expected<BearerAuth> resolve_bearer(const TokenSources& sources);

// Whether a Host header value (`name[:port]`, `[v6]:port`) names an IP literal, `localhost` or
// one of `allowed` (case-insensitive).
bool host_allowed(std::string_view host, const std::vector<std::string>& allowed);

enum class BearerCheck { ok, missing, malformed, wrong };
// An Authorization header's value (nullopt when there is none) against the expected digest.
BearerCheck check_bearer(std::optional<std::string_view> authorization, const Sha256& expected);

}  // namespace tether::jsonrpc
