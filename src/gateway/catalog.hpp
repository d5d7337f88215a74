// The gateway's aggregate view: every ready server's tools, prompts, resources and templates as
// one listing each, the names a host sees (docs/gateway.md "Names"), and the way back from a name
// or a URI to the server that offers it. Pure data: no I/O, no sessions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/json/array.hpp>

#include <tether/gateway/gateway.hpp>

namespace tether::gateway {

namespace json = boost::json;

// A server's own listings (tools already filtered by enabled_tools / disabled_tools).
struct Listing {
  json::array tools;
  json::array prompts;
  json::array resources;
  json::array templates;
};

// Where a name offered to the host goes: the server and the name on that server.
struct Route {
  std::string server;
  std::string name;
};

// Whether `uri` is an expansion of the RFC 6570 template `uri_template`: `{x}` stands for text
// without `/`, `?`, `#` or `,`; `{+x}`, `{#x}` for any text; `{/x}`, `{.x}`, `{;x}`, `{?x}`,
// `{&x}` for their optional, prefixed parts.
bool matches_template(std::string_view uri_template, std::string_view uri);

class Catalog {
 public:
  // `servers`: every configured server, in config order (which decides who wins a conflict).
  Catalog(Names names, std::vector<std::string> servers);

  void set(const std::string& server, Listing listing);
  void remove(const std::string& server);
  // The listing set for `server` (nullptr when none is).
  const Listing* listing(const std::string& server) const {
    auto it = listings_.find(server);
    return it == listings_.end() ? nullptr : &it->second;
  }

  struct Changes {
    bool tools = false;
    bool prompts = false;
    bool resources = false;  // resources or templates
  };
  // Recomputes the aggregate after set() / remove(); says which listings differ from before.
  Changes rebuild();

  const json::array& tools() const { return tools_; }
  const json::array& prompts() const { return prompts_; }
  const json::array& resources() const { return resources_; }
  const json::array& templates() const { return templates_; }

  const Route* tool(std::string_view name) const;
  const Route* prompt(std::string_view name) const;
  // The server that listed `uri`, else the first whose template matches it.
  std::optional<std::string> resource_owner(std::string_view uri) const;
  // The server that listed the template `uri_template` (completions of a template argument).
  std::optional<std::string> template_owner(std::string_view uri_template) const;
  // With raw names: `tool 'x' is offered by MCP servers 'a' and 'b'` for each name two servers
  // offer (tools, then prompts).
  std::vector<std::string> conflicts() const;

 private:
  struct Named {
    json::array items;
    std::unordered_map<std::string, Route> routes;
    std::vector<std::string> conflicts;
  };
  Named name_items(std::string_view kind, json::array Listing::*member) const;

  Names names_;
  std::vector<std::string> servers_;
  std::unordered_map<std::string, Listing> listings_;
  json::array tools_, prompts_, resources_, templates_;
  std::unordered_map<std::string, Route> tool_routes_, prompt_routes_;
  std::vector<std::string> conflicts_;
  std::unordered_map<std::string, std::string> resource_owners_;
  std::vector<std::pair<std::string, std::string>> template_owners_;  // (template, server)
};

}  // namespace tether::gateway
