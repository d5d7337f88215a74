// Tool filtering and qualified tool names. qualify() works on the whole set of listed tools at
// once so that which names get a hash suffix depends on the set only, never on listing order.
#include <algorithm>
#include <array>
#include <set>

#include <fmt/format.h>
#include <openssl/evp.h>

#include <tether/host/tool_names.hpp>

namespace tether::host {

namespace {

constexpr std::size_t kHashHexDigits = 12;
// Room kept for `_` + the hash when a name is hashed.
constexpr std::size_t kHashedPrefixBytes = kMaxQualifiedToolNameBytes - 1 - kHashHexDigits;

bool contains(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool is_name_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

void append_sanitized(std::string& out, std::string_view raw) {
  bool in_multibyte = false;
  for (unsigned char c : raw) {
    // A UTF-8 continuation byte belongs to the character already replaced.
    bool continuation = (c & 0xC0) == 0x80;
    if (!(continuation && in_multibyte))
      out.push_back(is_name_byte(c) ? static_cast<char>(c) : '_');
    in_multibyte = c >= 0x80;
  }
}

std::string sha1_hex_prefix(std::string_view text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  // SHA-1 of a string in memory cannot fail short of allocation failure inside OpenSSL.
  EVP_Digest(text.data(), text.size(), digest.data(), nullptr, EVP_sha1(), nullptr);
  std::string hex;
  for (std::size_t i = 0; i < kHashHexDigits / 2; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

std::string hashed_name(const std::string& sanitized, std::string_view server,
                        std::string_view tool) {
  std::string identity;
  identity.reserve(server.size() + 1 + tool.size());
  identity.append(server).append("/").append(tool);
  return sanitized.substr(0, kHashedPrefixBytes) + "_" + sha1_hex_prefix(identity);
}

}  // namespace

bool ToolFilter::allows(std::string_view tool) const {
  if (enabled && !contains(*enabled, tool)) return false;
  return !contains(disabled, tool);
}

Expected<void> ToolFilter::check_call(std::string_view server, std::string_view tool) const {
  if (allows(tool)) return {};
  return disabled_tool_error(server, tool);
}

jsonrpc::Error disabled_tool_error(std::string_view server, std::string_view tool) {
  return jsonrpc::make_error(
      jsonrpc::code::kInvalidParams,
      fmt::format("tool '{}' is disabled for MCP server '{}'", tool, server));
}

std::string sanitized_tool_name(std::string_view server, std::string_view tool,
                                std::string_view prefix) {
  std::string name(prefix);
  append_sanitized(name, server);
  name += "__";
  append_sanitized(name, tool);
  return name;
}

std::vector<QualifiedTool> qualify(const std::vector<std::pair<std::string, std::string>>& tools,
                                   std::string_view prefix) {
  struct Candidate {
    QualifiedTool tool;
    std::string sanitized;
    bool hashed = false;
  };
  std::vector<Candidate> candidates;
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& [server, tool] : tools) {
    if (!seen.emplace(server, tool).second) continue;
    Candidate candidate{{{}, server, tool}, sanitized_tool_name(server, tool, prefix)};
    candidate.hashed = candidate.sanitized.size() > kMaxQualifiedToolNameBytes;
    candidate.tool.name =
        candidate.hashed ? hashed_name(candidate.sanitized, server, tool) : candidate.sanitized;
    candidates.push_back(std::move(candidate));
  }

  // Every unhashed name shared with anything else is hashed, until no unhashed name is shared.
  // Each round hashes at least one name, so this ends; it only looks at the set of names, so the
  // result does not depend on input order. Two hashed names can only meet on a 48-bit SHA-1
  // prefix collision of two identities whose names also share their first 51 bytes.
  for (bool changed = true; changed;) {
    changed = false;
    std::unordered_map<std::string, std::size_t> uses;
    for (const auto& c : candidates) ++uses[c.tool.name];
    for (auto& c : candidates) {
      if (c.hashed || uses[c.tool.name] < 2) continue;
      c.hashed = true;
      c.tool.name = hashed_name(c.sanitized, c.tool.server, c.tool.tool);
      changed = true;
    }
  }

  std::vector<QualifiedTool> result;
  result.reserve(candidates.size());
  for (auto& c : candidates) result.push_back(std::move(c.tool));
  return result;
}

QualifiedToolIndex::QualifiedToolIndex(std::vector<QualifiedTool> tools)
    : tools_(std::move(tools)) {
  for (std::size_t i = 0; i < tools_.size(); ++i) by_name_.emplace(tools_[i].name, i);
}

const QualifiedTool* QualifiedToolIndex::find(std::string_view qualified_name) const {
  auto it = by_name_.find(std::string(qualified_name));
  return it == by_name_.end() ? nullptr : &tools_[it->second];
}

}  // namespace tether::host
