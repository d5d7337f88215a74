// Catalog: rebuilt whole after any server's listing changes; listings are small and changes
// rare, and a whole rebuild keeps hashed names independent of the order events came in.
#include "catalog.hpp"

#include <algorithm>
#include <cstdint>
#include <set>
#include <unordered_set>

#include <boost/json/serialize.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <tether/host/tool_names.hpp>

namespace tether::gateway {

namespace {

std::string_view name_of(const json::value& item, std::string_view key = "name") {
  const auto* object = item.if_object();
  const auto* name = object ? object->if_contains(key) : nullptr;
  return name && name->is_string() ? std::string_view(name->get_string()) : std::string_view();
}

// The characters a simple `{x}` expansion can hold (RFC 6570: unreserved and pct-encoded; we
// also allow sub-delimiters other than `,`, which servers use in ids).
bool simple_char(char c) {
  return c != '/' && c != '?' && c != '#' && c != ',';
}

// Only this much of a URI is matched against templates: matching backtracks, and a listed URI
// of any length is still found by its exact entry.
constexpr std::size_t kMaxTemplatedUriBytes = 4096;

// Matches uri[u..] against tmpl[t..], backtracking over how much each expression takes; a state
// (t, u) that failed once is not tried again, which bounds the work by the states there are.
class TemplateMatch {
 public:
  TemplateMatch(std::string_view tmpl, std::string_view uri) : tmpl_(tmpl), uri_(uri) {}

  bool from(std::size_t t, std::size_t u) {
    if (failed_.contains(key(t, u))) return false;
    const bool matched = step(t, u);
    if (!matched) failed_.insert(key(t, u));
    return matched;
  }

 private:
  std::uint64_t key(std::size_t t, std::size_t u) const {
    return (static_cast<std::uint64_t>(t) << 32) | u;
  }

  bool step(std::size_t t, std::size_t u) {
    while (t < tmpl_.size() && tmpl_[t] != '{') {
      if (u >= uri_.size() || uri_[u] != tmpl_[t]) return false;
      ++t;
      ++u;
    }
    if (t == tmpl_.size()) return u == uri_.size();
    const auto close = tmpl_.find('}', t);
    if (close == std::string_view::npos) return false;
    const char op = close > t + 1 ? tmpl_[t + 1] : '\0';
    const std::size_t next = close + 1;
    if (op == '/' || op == '.' || op == ';' || op == '?' || op == '&') {
      // Optional: empty, or its operator's prefix and then anything.
      if (from(next, u)) return true;
      if (u >= uri_.size() || uri_[u] != op) return false;
      for (std::size_t end = uri_.size(); end > u; --end)
        if (from(next, end)) return true;
      return false;
    }
    const bool any = op == '+' || op == '#';
    if (op == '#') {
      if (from(next, u)) return true;
      if (u >= uri_.size() || uri_[u] != '#') return false;
      ++u;
    }
    // Longest first, so the usual trailing `{path}` takes the rest at once.
    std::size_t end = u;
    while (end < uri_.size() && (any || simple_char(uri_[end]))) ++end;
    for (; end > u; --end)
      if (from(next, end)) return true;
    return false;
  }

  std::string_view tmpl_;
  std::string_view uri_;
  std::unordered_set<std::uint64_t> failed_;
};

bool same(const json::array& a, const json::array& b) {
  return json::serialize(a) == json::serialize(b);
}

}  // namespace

bool matches_template(std::string_view uri_template, std::string_view uri) {
  if (uri.size() > kMaxTemplatedUriBytes) return false;
  return TemplateMatch(uri_template, uri).from(0, 0);
}

Catalog::Catalog(Names names, std::vector<std::string> servers)
    : names_(names), servers_(std::move(servers)) {}

void Catalog::set(const std::string& server, Listing listing) {
  listings_[server] = std::move(listing);
}

void Catalog::remove(const std::string& server) {
  listings_.erase(server);
}

Catalog::Named Catalog::name_items(std::string_view kind, json::array Listing::*member) const {
  Named out;
  std::vector<std::pair<std::string, std::string>> pairs;
  std::vector<const json::object*> items;
  for (const auto& server : servers_) {
    auto listing = listings_.find(server);
    if (listing == listings_.end()) continue;
    for (const auto& item : listing->second.*member) {
      const auto name = name_of(item);
      if (name.empty()) continue;
      pairs.emplace_back(server, name);
      items.push_back(&item.get_object());
    }
  }
  if (names_ == Names::raw) {
    std::unordered_map<std::string, std::string> first_server;
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      const auto& [server, name] = pairs[i];
      auto [it, fresh] = first_server.emplace(name, server);
      if (!fresh) {
        if (it->second != server)
          out.conflicts.push_back(fmt::format("{} '{}' is offered by MCP servers '{}' and '{}'",
                                              kind, name, it->second, server));
        continue;
      }
      out.routes.emplace(name, Route{server, name});
      out.items.push_back(*items[i]);
    }
    return out;
  }
  const auto prefix = names_ == Names::qualified ? host::kQualifiedPrefix : std::string_view();
  auto named = host::qualify(pairs, prefix);
  // qualify() keeps input order and drops repeats of a (server, name): walk both together.
  std::set<std::pair<std::string, std::string>> seen;
  std::size_t k = 0;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    if (!seen.insert(pairs[i]).second) continue;
    const auto& qualified = named[k++];
    json::object item = *items[i];
    item["name"] = qualified.name;
    out.routes.emplace(qualified.name, Route{qualified.server, qualified.tool});
    out.items.push_back(std::move(item));
  }
  return out;
}

Catalog::Changes Catalog::rebuild() {
  Changes changes;
  auto tools = name_items("tool", &Listing::tools);
  auto prompts = name_items("prompt", &Listing::prompts);
  changes.tools = !same(tools.items, tools_);
  changes.prompts = !same(prompts.items, prompts_);
  tools_ = std::move(tools.items);
  prompts_ = std::move(prompts.items);
  tool_routes_ = std::move(tools.routes);
  prompt_routes_ = std::move(prompts.routes);
  conflicts_ = std::move(tools.conflicts);
  conflicts_.insert(conflicts_.end(), prompts.conflicts.begin(), prompts.conflicts.end());

  json::array resources;
  json::array templates;
  std::unordered_map<std::string, std::string> owners;
  std::vector<std::pair<std::string, std::string>> template_owners;
  for (const auto& server : servers_) {
    auto listing = listings_.find(server);
    if (listing == listings_.end()) continue;
    for (const auto& item : listing->second.resources) {
      const std::string uri(name_of(item, "uri"));
      if (uri.empty()) continue;
      auto [it, fresh] = owners.emplace(uri, server);
      if (!fresh) {
        if (it->second != server)
          spdlog::warn(
              "gateway: resource '{}' is listed by MCP servers '{}' and '{}'; '{}' serves it", uri,
              it->second, server, it->second);
        continue;
      }
      resources.push_back(item);
    }
    for (const auto& item : listing->second.templates) {
      const std::string pattern(name_of(item, "uriTemplate"));
      const auto taken = [&](const auto& owner) { return owner.first == pattern; };
      if (pattern.empty() || std::any_of(template_owners.begin(), template_owners.end(), taken))
        continue;
      template_owners.emplace_back(pattern, server);
      templates.push_back(item);
    }
  }
  changes.resources = !same(resources, resources_) || !same(templates, templates_);
  resources_ = std::move(resources);
  templates_ = std::move(templates);
  resource_owners_ = std::move(owners);
  template_owners_ = std::move(template_owners);
  return changes;
}

const Route* Catalog::tool(std::string_view name) const {
  auto it = tool_routes_.find(std::string(name));
  return it == tool_routes_.end() ? nullptr : &it->second;
}

const Route* Catalog::prompt(std::string_view name) const {
  auto it = prompt_routes_.find(std::string(name));
  return it == prompt_routes_.end() ? nullptr : &it->second;
}

std::optional<std::string> Catalog::resource_owner(std::string_view uri) const {
  if (auto it = resource_owners_.find(std::string(uri)); it != resource_owners_.end())
    return it->second;
  for (const auto& [pattern, server] : template_owners_)
    if (matches_template(pattern, uri)) return server;
  return std::nullopt;
}

std::optional<std::string> Catalog::template_owner(std::string_view uri_template) const {
  for (const auto& [pattern, server] : template_owners_)
    if (pattern == uri_template) return server;
  return std::nullopt;
}

std::vector<std::string> Catalog::conflicts() const {
  return conflicts_;
}

}  // namespace tether::gateway
