// base64 over OpenSSL's EVP block codec. EVP_DecodeBlock tolerates surrounding whitespace and
// counts padding as output bytes, so the input is validated first and the padding subtracted.
#include <array>

#include <openssl/evp.h>

#include <tether/jsonrpc/base64.hpp>

namespace tether::jsonrpc {
namespace {

constexpr std::array<bool, 256> make_alphabet() {
  std::array<bool, 256> table{};
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  table['+'] = table['/'] = true;
  return table;
}
constexpr auto kAlphabet = make_alphabet();

}  // namespace

void base64_encode_append(std::string& out, std::string_view bytes) {
  const std::size_t start = out.size();
  const std::size_t encoded = 4 * ((bytes.size() + 2) / 3);
  out.resize(start + encoded + 1);  // EVP_EncodeBlock writes a trailing NUL
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + start),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(start + static_cast<std::size_t>(n));
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  base64_encode_append(out, bytes);
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  if (text.empty()) return std::string();
  // EVP_DecodeBlock rejects characters outside the alphabet but skips whitespace at either end;
  // the ends are checked here so that only canonical input passes.
  auto edge_ok = [](char c) { return kAlphabet[static_cast<unsigned char>(c)] || c == '='; };
  if (!edge_ok(text.front()) || text.front() == '=' || !edge_ok(text.back())) return std::nullopt;
  std::size_t padding = 0;
  if (text.back() == '=') ++padding;
  if (text[text.size() - 2] == '=') ++padding;
  // '=' only as trailing padding: EVP_DecodeBlock would accept it anywhere.
  if (text.find('=') < text.size() - padding) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

}  // namespace tether::jsonrpc
