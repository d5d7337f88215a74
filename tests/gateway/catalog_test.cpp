// Unit tests of the gateway's Catalog (src/gateway/catalog.hpp): the names a host sees in each
// naming mode and the routes back to (server, raw name), hashed names on collisions, raw-name
// conflicts, resource and template owners, RFC 6570 template matching, and which aggregate
// lists a rebuild reports as changed.
#include "catalog.hpp"

#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <boost/json/object.hpp>
#include <gtest/gtest.h>

#include <tether/host/tool_names.hpp>

namespace tether::gateway {
namespace {

json::object named(const std::string& name) {
  return json::object{{"name", name}, {"description", "about " + name}};
}

json::array items(std::initializer_list<std::string> names) {
  json::array out;
  for (const auto& name : names) out.push_back(named(name));
  return out;
}

Listing tools(std::initializer_list<std::string> names) {
  Listing listing;
  listing.tools = items(names);
  return listing;
}

json::object resource(const std::string& uri, const std::string& name) {
  return json::object{{"uri", uri}, {"name", name}};
}

json::object resource_template(const std::string& pattern, const std::string& name) {
  return json::object{{"uriTemplate", pattern}, {"name", name}};
}

std::vector<std::string> names_of(const json::array& list, const char* key = "name") {
  std::vector<std::string> out;
  for (const auto& item : list) out.emplace_back(item.at(key).as_string());
  return out;
}

// The route of `name`, as "server/raw", or "none".
std::string route(const Catalog& catalog, const std::string& name) {
  const auto* found = catalog.tool(name);
  return found ? found->server + "/" + found->name : "none";
}

std::string owner(const std::optional<std::string>& server) {
  return server.value_or("none");
}

TEST(Catalog, PrefixedNamesRouteBackToTheRawName) {
  Catalog catalog(Names::prefixed, {"alpha", "beta"});
  catalog.set("beta", tools({"echo"}));
  catalog.set("alpha", tools({"echo", "sleep"}));
  catalog.rebuild();
  // Config order, not the order the listings came in.
  EXPECT_EQ(names_of(catalog.tools()),
            (std::vector<std::string>{"alpha__echo", "alpha__sleep", "beta__echo"}));
  EXPECT_EQ(route(catalog, "alpha__echo"), "alpha/echo");
  EXPECT_EQ(route(catalog, "beta__echo"), "beta/echo");
  EXPECT_EQ(route(catalog, "echo"), "none");
  EXPECT_EQ(route(catalog, "mcp__alpha__echo"), "none");
  // Everything but the name passes as the server listed it.
  EXPECT_EQ(catalog.tools()[0].at("description"), "about echo");
}

TEST(Catalog, QualifiedNamesCarryTheMcpPrefix) {
  Catalog catalog(Names::qualified, {"alpha"});
  Listing listing = tools({"echo"});
  listing.prompts = items({"greet"});
  catalog.set("alpha", std::move(listing));
  catalog.rebuild();
  EXPECT_EQ(names_of(catalog.tools()), std::vector<std::string>{"mcp__alpha__echo"});
  EXPECT_EQ(names_of(catalog.prompts()), std::vector<std::string>{"mcp__alpha__greet"});
  EXPECT_EQ(route(catalog, "mcp__alpha__echo"), "alpha/echo");
  ASSERT_NE(catalog.prompt("mcp__alpha__greet"), nullptr);
  EXPECT_EQ(catalog.prompt("mcp__alpha__greet")->name, "greet");
  EXPECT_EQ(route(catalog, "alpha__echo"), "none");
}

TEST(Catalog, RawNamesAreTheServersOwn) {
  Catalog catalog(Names::raw, {"alpha", "beta"});
  catalog.set("alpha", tools({"echo"}));
  catalog.set("beta", tools({"ping"}));
  catalog.rebuild();
  EXPECT_EQ(names_of(catalog.tools()), (std::vector<std::string>{"echo", "ping"}));
  EXPECT_EQ(route(catalog, "echo"), "alpha/echo");
  EXPECT_EQ(route(catalog, "ping"), "beta/ping");
  EXPECT_TRUE(catalog.conflicts().empty());
}

// Names that sanitize alike are all hashed (server/tool identity), whichever server listed
// first, and each still routes to its raw name.
TEST(Catalog, CollidingNamesGetHashedSuffixesThatRouteBack) {
  // route -> name, for the listing of `x.y` in order or reversed.
  const auto names_by_route = [](bool reversed) {
    Catalog catalog(Names::prefixed, {"x.y", "x_y"});
    catalog.set("x.y", reversed ? tools({"b_c", "b-c"}) : tools({"b-c", "b_c"}));
    catalog.set("x_y", tools({"b-c", "other"}));
    catalog.rebuild();
    std::map<std::string, std::string> by_route;
    for (const auto& name : names_of(catalog.tools())) by_route[route(catalog, name)] = name;
    EXPECT_EQ(catalog.tools().size(), 4u);
    return by_route;
  };
  const auto by_route = names_by_route(false);
  ASSERT_EQ(by_route.size(), 4u) << "two names route to the same tool";
  EXPECT_EQ(by_route.at("x_y/other"), "x_y__other");
  std::set<std::string> hashed_names;
  for (const char* hashed : {"x.y/b-c", "x.y/b_c", "x_y/b-c"}) {
    const auto& name = by_route.at(hashed);
    EXPECT_TRUE(name.starts_with("x_y__b_c_")) << hashed << " -> " << name;
    EXPECT_EQ(name.size(), std::string("x_y__b_c_").size() + 12) << name;
    hashed_names.insert(name);
  }
  EXPECT_EQ(hashed_names.size(), 3u);
  EXPECT_EQ(names_by_route(true), by_route) << "the names depend on the listing order";
}

TEST(Catalog, OverlongNamesAreHashedToTheLimit) {
  const std::string tool(80, 't');
  Catalog catalog(Names::prefixed, {"alpha"});
  Listing listing;
  listing.tools.push_back(named(tool));
  catalog.set("alpha", std::move(listing));
  catalog.rebuild();
  const auto names = names_of(catalog.tools());
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(names[0].size(), host::kMaxQualifiedToolNameBytes) << names[0];
  EXPECT_EQ(route(catalog, names[0]), "alpha/" + tool);
}

TEST(Catalog, RawNameConflictsNameBothServers) {
  Catalog catalog(Names::raw, {"alpha", "beta"});
  Listing beta = tools({"echo", "only_beta"});
  beta.prompts = items({"greet"});
  Listing alpha = tools({"echo"});
  alpha.prompts = items({"greet"});
  catalog.set("beta", std::move(beta));
  catalog.set("alpha", std::move(alpha));
  catalog.rebuild();
  EXPECT_EQ(
      catalog.conflicts(),
      (std::vector<std::string>{"tool 'echo' is offered by MCP servers 'alpha' and 'beta'",
                                "prompt 'greet' is offered by MCP servers 'alpha' and 'beta'"}));
  // The first server in config order keeps the name (the gateway refuses to start anyway).
  EXPECT_EQ(route(catalog, "echo"), "alpha/echo");
  EXPECT_EQ(route(catalog, "only_beta"), "beta/only_beta");
  EXPECT_EQ(names_of(catalog.tools()), (std::vector<std::string>{"echo", "only_beta"}));
}

TEST(Catalog, ItemsWithoutANameAreLeftOut) {
  Catalog catalog(Names::prefixed, {"alpha"});
  Listing listing;
  listing.tools.push_back(json::object{{"description", "no name"}});
  listing.tools.push_back(json::object{{"name", 5}});
  listing.tools.push_back(json::object{{"name", ""}});
  listing.tools.push_back("not an object");
  listing.tools.push_back(named("kept"));
  listing.resources.push_back(json::object{{"name", "no uri"}});
  listing.resources.push_back(resource("test://kept", "kept"));
  listing.templates.push_back(json::object{{"name", "no template"}});
  catalog.set("alpha", std::move(listing));
  catalog.rebuild();
  EXPECT_EQ(names_of(catalog.tools()), std::vector<std::string>{"alpha__kept"});
  EXPECT_EQ(names_of(catalog.resources(), "uri"), std::vector<std::string>{"test://kept"});
  EXPECT_TRUE(catalog.templates().empty());
}

TEST(Catalog, FirstServerInConfigOrderOwnsAUriListedTwice) {
  Catalog catalog(Names::prefixed, {"alpha", "beta"});
  Listing beta;
  beta.resources = {resource("test://shared", "beta's"), resource("test://beta", "b")};
  Listing alpha;
  alpha.resources = {resource("test://shared", "alpha's"), resource("test://alpha", "a")};
  catalog.set("beta", std::move(beta));
  catalog.set("alpha", std::move(alpha));
  catalog.rebuild();
  EXPECT_EQ(names_of(catalog.resources(), "uri"),
            (std::vector<std::string>{"test://shared", "test://alpha", "test://beta"}));
  EXPECT_EQ(catalog.resources()[0].at("name"), "alpha's");
  EXPECT_EQ(owner(catalog.resource_owner("test://shared")), "alpha");
  EXPECT_EQ(owner(catalog.resource_owner("test://beta")), "beta");
  EXPECT_EQ(owner(catalog.resource_owner("test://nowhere")), "none");
}

TEST(Catalog, TemplatesHaveOwnersAndRouteMatchingUris) {
  Catalog catalog(Names::prefixed, {"alpha", "beta"});
  Listing alpha;
  alpha.templates = {resource_template("test://template/{id}", "alpha's")};
  Listing beta;
  beta.templates = {resource_template("test://template/{id}", "beta's"),
                    resource_template("file:///{+path}", "files")};
  beta.resources = {resource("test://template/listed", "listed")};
  catalog.set("alpha", std::move(alpha));
  catalog.set("beta", std::move(beta));
  catalog.rebuild();
  EXPECT_EQ(names_of(catalog.templates(), "uriTemplate"),
            (std::vector<std::string>{"test://template/{id}", "file:///{+path}"}));
  EXPECT_EQ(owner(catalog.template_owner("test://template/{id}")), "alpha");
  EXPECT_EQ(owner(catalog.template_owner("file:///{+path}")), "beta");
  EXPECT_EQ(owner(catalog.template_owner("test://template/7")), "none");
  EXPECT_EQ(owner(catalog.resource_owner("test://template/7")), "alpha");
  EXPECT_EQ(owner(catalog.resource_owner("file:///etc/hosts")), "beta");
  EXPECT_EQ(owner(catalog.resource_owner("test://template/a/b")), "none");
  // A listed URI wins over a template that also matches it.
  EXPECT_EQ(owner(catalog.resource_owner("test://template/listed")), "beta");
}

TEST(MatchesTemplate, ExpressionsPerRfc6570) {
  struct Case {
    const char* pattern;
    const char* uri;
    bool matches;
  };
  const Case cases[] = {
      {"test://static", "test://static", true},
      {"test://static", "test://static2", false},
      {"test://template/{id}", "test://template/7", true},
      {"test://template/{id}", "test://template/a/b", false},
      {"test://template/{id}", "test://template/a?b", false},
      {"test://template/{id}", "test://template/a,b", false},
      {"test://{a}/{b}", "test://1/2", true},
      {"test://{a}/{b}", "test://1", false},
      {"file:///{+path}", "file:///a/b/c.txt", true},
      {"file:///{+path}/raw", "file:///a/b/raw", true},
      {"test://search{?q}", "test://search", true},
      {"test://search{?q}", "test://search?q=x", true},
      {"test://search{?q}", "test://searchx", false},
      {"test://search{?q}{&r}", "test://search?q=1&r=2", true},
      {"test://a{/seg}", "test://a", true},
      {"test://a{/seg}", "test://a/b", true},
      {"test://a{/seg}", "test://ab", false},
      {"test://page{#frag}", "test://page#top", true},
      {"test://page{#frag}", "test://page", true},
      {"test://{id", "test://{id", false},
  };
  for (const auto& c : cases)
    EXPECT_EQ(matches_template(c.pattern, c.uri), c.matches) << c.pattern << " vs " << c.uri;
}

// Matching backtracks over how much each expression takes: a long URI that does not match must
// still return (no assertion on time: a hang fails through the test timeout).
TEST(MatchesTemplate, LongUrisAgainstBacktrackingTemplatesReturn) {
  const std::string ten_kb(10 * 1024, 'a');
  EXPECT_FALSE(matches_template("{+a}{+b}{+c}x", ten_kb));
  // Under the length bound, where the matcher's memo is what bounds the work.
  const std::string long_uri(3000, 'a');
  EXPECT_FALSE(matches_template("{+a}{+b}{+c}x", long_uri));
  EXPECT_TRUE(matches_template("{+a}{+b}{+c}x", long_uri + "x"));
  EXPECT_FALSE(matches_template("{a}{b}{c}/x", long_uri));
}

TEST(Catalog, RebuildReportsWhichListsChanged) {
  Catalog catalog(Names::prefixed, {"alpha"});
  auto changes = catalog.rebuild();
  EXPECT_FALSE(changes.tools || changes.prompts || changes.resources) << "empty to empty";

  catalog.set("alpha", tools({"echo"}));
  changes = catalog.rebuild();
  EXPECT_TRUE(changes.tools);
  EXPECT_FALSE(changes.prompts);
  EXPECT_FALSE(changes.resources);

  changes = catalog.rebuild();
  EXPECT_FALSE(changes.tools || changes.prompts || changes.resources) << "nothing was set";

  catalog.set("alpha", tools({"echo"}));
  changes = catalog.rebuild();
  EXPECT_FALSE(changes.tools || changes.prompts || changes.resources) << "the same listing";

  Listing listing = tools({"echo"});
  listing.prompts = items({"greet"});
  catalog.set("alpha", listing);
  changes = catalog.rebuild();
  EXPECT_FALSE(changes.tools);
  EXPECT_TRUE(changes.prompts);
  EXPECT_FALSE(changes.resources);

  // A description counts: hosts cache the whole item.
  listing.tools[0].as_object()["description"] = "changed";
  catalog.set("alpha", listing);
  changes = catalog.rebuild();
  EXPECT_TRUE(changes.tools);
  EXPECT_FALSE(changes.prompts);

  listing.templates = {resource_template("test://t/{id}", "t")};
  catalog.set("alpha", listing);
  changes = catalog.rebuild();
  EXPECT_FALSE(changes.tools || changes.prompts);
  EXPECT_TRUE(changes.resources) << "templates count as resources";

  listing.resources = {resource("test://r", "r")};
  catalog.set("alpha", listing);
  changes = catalog.rebuild();
  EXPECT_TRUE(changes.resources);
}

TEST(Catalog, RemoveDropsEveryOfferOfTheServer) {
  Catalog catalog(Names::raw, {"alpha", "beta"});
  Listing alpha = tools({"echo"});
  alpha.prompts = items({"greet"});
  alpha.resources = {resource("test://alpha", "a")};
  alpha.templates = {resource_template("test://t/{id}", "t")};
  catalog.set("alpha", std::move(alpha));
  catalog.set("beta", tools({"echo"}));
  catalog.rebuild();
  ASSERT_EQ(catalog.conflicts().size(), 1u);

  catalog.remove("alpha");
  EXPECT_EQ(catalog.listing("alpha"), nullptr);
  EXPECT_NE(catalog.listing("beta"), nullptr);
  const auto changes = catalog.rebuild();
  // The tool list's item is now beta's echo: the same JSON, so no tools change is reported.
  EXPECT_FALSE(changes.tools);
  EXPECT_TRUE(changes.prompts);
  EXPECT_TRUE(changes.resources);
  EXPECT_EQ(route(catalog, "echo"), "beta/echo");
  EXPECT_TRUE(catalog.conflicts().empty());
  EXPECT_EQ(catalog.prompt("greet"), nullptr);
  EXPECT_EQ(owner(catalog.resource_owner("test://alpha")), "none");
  EXPECT_EQ(owner(catalog.resource_owner("test://t/1")), "none");
  EXPECT_EQ(owner(catalog.template_owner("test://t/{id}")), "none");
  EXPECT_TRUE(catalog.resources().empty());
  EXPECT_TRUE(catalog.templates().empty());
}

}  // namespace
}  // namespace tether::gateway
