// Token comparison hashes the presented token and compares digests with CRYPTO_memcmp, so the
// time taken says nothing about the token and a listener never needs the token itself.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <tether/jsonrpc/http_auth.hpp>

namespace tether::jsonrpc {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

Error token_error(std::string message) {
  return make_error(code::kServerError, std::move(message));
}

}  // namespace

Sha256 sha256(std::string_view data) {
  Sha256 digest{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
  return digest;
}

std::optional<Sha256> parse_hex_digest(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  Sha256 digest{};
  for (std::size_t i = 0; i < digest.size(); ++i) {
    unsigned value = 0;
    for (char c : hex.substr(i * 2, 2)) {
      value <<= 4;
      if (c >= '0' && c <= '9')
        value |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f')
        value |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        value |= static_cast<unsigned>(c - 'A' + 10);
      else
        return std::nullopt;
    }
    digest[i] = static_cast<unsigned char>(value);
  }
  return digest;
}

std::optional<Sha256> token_digest(std::string_view text) {
  const auto token = trim(text);
  if (token.empty()) return std::nullopt;
  return sha256(token);
}

std::optional<std::string> random_token() {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return std::nullopt;
  std::string token;
  for (unsigned char b : raw) token += fmt::format("{:02x}", b);
  return token;
}

Expected<Sha256> read_token_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return token_error(fmt::format("cannot read token file {}", path));
  const std::string text(std::istreambuf_iterator<char>(in), {});
  auto digest = token_digest(text);
  if (!digest) return token_error(fmt::format("token file {} is empty", path));
  return *digest;
}

Expected<GeneratedToken> generate_token_file(std::string_view prefix) {
  auto token = random_token();
  if (!token) return token_error("cannot generate a random token");
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = fmt::format("{}/{}-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
  if (!::mkdtemp(dir.data()))
    return token_error(fmt::format("cannot create a token directory: {}", std::strerror(errno)));
  const std::string path = dir + "/token";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || ::write(fd, token->data(), token->size()) != static_cast<ssize_t>(token->size())) {
    if (fd >= 0) ::close(fd);
    return token_error(
        fmt::format("cannot write the token file {}: {}", path, std::strerror(errno)));
  }
  ::close(fd);
  return GeneratedToken{sha256(*token), std::move(dir)};
}

Expected<BearerAuth> resolve_bearer(const TokenSources& sources) {
  BearerAuth auth;
  if (sources.file) {
    auto digest = read_token_file(*sources.file);
    if (!digest) return digest.error();
    auth.digest = *digest;
    return auth;
  }
  if (sources.digest) {
    auth.digest = sources.digest;
    return auth;
  }
  if (const char* env = std::getenv(sources.env_var.c_str())) {
    if ((auth.digest = token_digest(env))) return auth;
  }
  auto generated = generate_token_file(sources.generated_prefix);
  if (!generated) return generated.error();
  auth.digest = generated->digest;
  auth.generated_dir = generated->directory;
  fmt::print(stderr, "{}: generated a bearer token; it is in {}/token\n", sources.program,
             auth.generated_dir);
  return auth;
}

bool host_allowed(std::string_view host, const std::vector<std::string>& allowed) {
  std::string_view name = host;
  if (name.starts_with('[')) {
    const auto close = name.find(']');
    if (close == std::string_view::npos) return false;
    boost::system::error_code ec;
    boost::asio::ip::make_address_v6(std::string(name.substr(1, close - 1)), ec);
    return !ec;
  }
  if (const auto colon = name.rfind(':'); colon != std::string_view::npos)
    name = name.substr(0, colon);
  boost::system::error_code ec;
  boost::asio::ip::make_address_v4(std::string(name), ec);
  if (!ec || iequals(name, "localhost")) return true;
  return std::any_of(allowed.begin(), allowed.end(),
                     [&](const std::string& a) { return iequals(a, name); });
}

BearerCheck check_bearer(std::optional<std::string_view> authorization, const Sha256& expected) {
  if (!authorization) return BearerCheck::missing;
  constexpr std::string_view kScheme = "bearer ";
  if (authorization->size() < kScheme.size() ||
      !iequals(authorization->substr(0, kScheme.size()), kScheme))
    return BearerCheck::malformed;
  std::string_view token = authorization->substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  const Sha256 presented = sha256(token);
  if (CRYPTO_memcmp(presented.data(), expected.data(), presented.size()) != 0)
    return BearerCheck::wrong;
  return BearerCheck::ok;
}

}  // namespace tether::jsonrpc
