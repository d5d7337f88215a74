// host::ToolFilter and host::qualify: the tool filtering and qualified tool names of docs/mcp.md
// ("The server manager"). Filtering: enabled first, then disabled, an empty enabled list enabling
// nothing, the call-time message. Names: sanitizing, the 64-byte bound, the `_` + 12-hex SHA-1
// suffix on collisions and overflows, uniqueness, independence from listing order, and the way
// back from a qualified name to (server, raw tool).
// Does not own: where the filter is applied in the manager's listing and call paths (the
// manager's tests).
// Data flow: (server, tool) pairs -> qualify -> QualifiedToolIndex -> find; the expected hashes
// are SHA-1 of `server/tool` computed independently (sha1sum).
#include <algorithm>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <tether/host/tool_names.hpp>

namespace tether::host {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

std::string name_of(const std::vector<QualifiedTool>& tools, const std::string& server,
                    const std::string& tool) {
  for (const auto& t : tools)
    if (t.server == server && t.tool == tool) return t.name;
  ADD_FAILURE() << "no qualified name for " << server << "/" << tool;
  return {};
}

void expect_valid_and_unique(const std::vector<QualifiedTool>& tools) {
  static const std::regex valid("^[A-Za-z0-9_]{1,64}$");
  std::set<std::string> names;
  for (const auto& t : tools) {
    EXPECT_TRUE(std::regex_match(t.name, valid)) << t.name;
    EXPECT_TRUE(names.insert(t.name).second) << "duplicate " << t.name;
  }
}

TEST(ToolFilter, AbsentEnabledListAllowsEverythingNotDisabled) {
  ToolFilter filter;
  EXPECT_TRUE(filter.allows("echo"));
  filter.disabled = {"rm"};
  EXPECT_TRUE(filter.allows("echo"));
  EXPECT_FALSE(filter.allows("rm"));
}

TEST(ToolFilter, EmptyEnabledListAllowsNothing) {
  ToolFilter filter;
  filter.enabled.emplace();
  EXPECT_FALSE(filter.allows("echo"));
  EXPECT_FALSE(filter.allows(""));
}

TEST(ToolFilter, EnabledFirstThenDisabled) {
  ToolFilter filter;
  filter.enabled = std::vector<std::string>{"echo", "add"};
  filter.disabled = {"add", "rm"};
  EXPECT_TRUE(filter.allows("echo"));
  EXPECT_FALSE(filter.allows("add")) << "disabled wins over enabled";
  EXPECT_FALSE(filter.allows("rm"));
  EXPECT_FALSE(filter.allows("other")) << "not in enabled";
}

TEST(ToolFilter, MatchesRawNamesExactly) {
  ToolFilter filter;
  filter.enabled = std::vector<std::string>{"foo.bar"};
  EXPECT_TRUE(filter.allows("foo.bar"));
  EXPECT_FALSE(filter.allows("foo_bar")) << "no sanitizing in filters";
  EXPECT_FALSE(filter.allows("Foo.bar")) << "case matters";
}

TEST(ToolFilter, CallTimeErrorNamesToolAndServer) {
  ToolFilter filter;
  filter.disabled = {"rm"};
  EXPECT_TRUE(filter.check_call("files", "ls").has_value());
  auto refused = filter.check_call("files", "rm");
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().message, "tool 'rm' is disabled for MCP server 'files'");
  EXPECT_EQ(disabled_tool_error("files", "rm").message, refused.error().message);
}

TEST(QualifiedNames, PlainNamesAreKeptAsIs) {
  auto tools = qualify({{"files", "read_file"}, {"git", "Status2"}});
  ASSERT_EQ(tools.size(), 2u);
  EXPECT_EQ(tools[0].name, "mcp__files__read_file");
  EXPECT_EQ(tools[0].server, "files");
  EXPECT_EQ(tools[0].tool, "read_file");
  EXPECT_EQ(tools[1].name, "mcp__git__Status2");
}

TEST(QualifiedNames, EveryCharacterOutsideTheSetBecomesOneUnderscore) {
  EXPECT_EQ(sanitized_tool_name("my-server", "a.b c/d"), "mcp__my_server__a_b_c_d");
  // One `_` per UTF-8 character, not per byte: "é" is two bytes, "€" three.
  EXPECT_EQ(sanitized_tool_name("s", "caf\xC3\xA9_\xE2\x82\xAC"), "mcp__s__caf___");
  auto tools = qualify({{"my-server", "get.weather"}});
  ASSERT_EQ(tools.size(), 1u);
  EXPECT_EQ(tools[0].name, "mcp__my_server__get_weather");
  EXPECT_EQ(tools[0].tool, "get.weather") << "the raw name is kept for the wire";
}

TEST(QualifiedNames, TheGatewaysPrefixedNamesFollowTheSameRules) {
  auto tools = qualify({{"my-server", "get.weather"}, {"s", "a.b"}, {"s", "a_b"}}, "");
  ASSERT_EQ(tools.size(), 3u);
  EXPECT_EQ(tools[0].name, "my_server__get_weather");
  EXPECT_EQ(tools[1].name.substr(0, 5), "s__a_") << tools[1].name;
  EXPECT_EQ(tools[1].name.size(), std::string("s__a_b_").size() + 12) << "hashed on collision";
  QualifiedToolIndex index(std::move(tools));
  ASSERT_NE(index.find("my_server__get_weather"), nullptr);
  EXPECT_EQ(index.find("my_server__get_weather")->tool, "get.weather");
}

TEST(QualifiedNames, CollidingNamesAllGetTheirIdentityHash) {
  // printf 's/foo.bar' | sha1sum; printf 's/foo_bar' | sha1sum
  auto tools = qualify({{"s", "foo.bar"}, {"s", "foo_bar"}, {"s", "other"}});
  expect_valid_and_unique(tools);
  EXPECT_EQ(name_of(tools, "s", "foo.bar"), "mcp__s__foo_bar_d636fb2ba866");
  EXPECT_EQ(name_of(tools, "s", "foo_bar"), "mcp__s__foo_bar_8af95e1deac4");
  EXPECT_EQ(name_of(tools, "s", "other"), "mcp__s__other");
}

TEST(QualifiedNames, CollisionsAcrossServersAndDelimiters) {
  // The same sanitized name from different (server, tool) splits.
  auto tools = qualify({{"a", "b__c"}, {"a__b", "c"}, {"a-b", "c"}, {"a_b", "c"}});
  ASSERT_EQ(tools.size(), 4u);
  expect_valid_and_unique(tools);
  EXPECT_TRUE(name_of(tools, "a", "b__c").starts_with("mcp__a__b__c_"));
  EXPECT_TRUE(name_of(tools, "a-b", "c").starts_with("mcp__a_b__c_"));
  EXPECT_TRUE(name_of(tools, "a_b", "c").starts_with("mcp__a_b__c_"));
}

TEST(QualifiedNames, HashedNameMeetingAPlainNameIsHashedToo) {
  // A tool literally named like another's hashed name.
  auto first = qualify({{"s", "foo.bar"}, {"s", "foo_bar"}});
  auto tools = qualify({{"s", "foo.bar"}, {"s", "foo_bar"}, {"s", "foo_bar_d636fb2ba866"}});
  expect_valid_and_unique(tools);
  EXPECT_EQ(name_of(tools, "s", "foo.bar"), name_of(first, "s", "foo.bar"));
  EXPECT_NE(name_of(tools, "s", "foo_bar_d636fb2ba866"), "mcp__s__foo_bar_d636fb2ba866");
  EXPECT_TRUE(
      name_of(tools, "s", "foo_bar_d636fb2ba866").starts_with("mcp__s__foo_bar_d636fb2ba866_"));
}

TEST(QualifiedNames, LongNamesKeepA51BytePrefixAndTheHash) {
  std::string tool(80, 'x');
  auto tools = qualify({{"srv", tool}});
  ASSERT_EQ(tools.size(), 1u);
  const auto& name = tools[0].name;
  EXPECT_EQ(name.size(), 64u);
  EXPECT_EQ(name.substr(0, 51), sanitized_tool_name("srv", tool).substr(0, 51));
  EXPECT_EQ(name[51], '_');
  // printf 'srv/%s' "$(printf 'x%.0s' {1..80})" | sha1sum
  EXPECT_EQ(name.substr(52), "58494011dce3");
  EXPECT_EQ(tools[0].tool, tool);
}

TEST(QualifiedNames, ExactlySixtyFourBytesIsNotHashed) {
  std::string tool(64 - std::string("mcp__s__").size(), 'y');
  auto tools = qualify({{"s", tool}});
  ASSERT_EQ(tools.size(), 1u);
  EXPECT_EQ(tools[0].name, "mcp__s__" + tool);
  EXPECT_EQ(tools[0].name.size(), 64u);
}

TEST(QualifiedNames, LongNamesSharingAPrefixStayDistinct) {
  std::string common(70, 'z');
  auto tools = qualify({{"s", common + "_one"}, {"s", common + "_two"}, {"s", common + ".one"}});
  ASSERT_EQ(tools.size(), 3u);
  expect_valid_and_unique(tools);
  for (const auto& t : tools) EXPECT_EQ(t.name.size(), 64u);
}

TEST(QualifiedNames, CollidingNamesNearTheBoundStayWithin64Bytes) {
  // Sanitized names of 60 bytes: plain they fit, hashed they must be cut to 51 + 13.
  std::string stem(60 - std::string("mcp__s__").size() - 1, 'w');
  auto tools = qualify({{"s", stem + "."}, {"s", stem + "-"}});
  expect_valid_and_unique(tools);
  for (const auto& t : tools) {
    EXPECT_EQ(t.name.size(), 64u);
    EXPECT_EQ(t.name.substr(0, 51), ("mcp__s__" + stem).substr(0, 51));
  }
}

TEST(QualifiedNames, IndependentOfListingOrderAndRepeats) {
  Pairs pairs = {{"s", "foo.bar"}, {"s", "foo_bar"}, {"t", std::string(90, 'q')},   {"a", "b__c"},
                 {"a__b", "c"},    {"s", "plain"},   {"s", "foo_bar_8af95e1deac4"}, {"u-v", "w.x"},
                 {"u_v", "w_x"}};
  auto reference = qualify(pairs);
  ASSERT_EQ(reference.size(), pairs.size());
  expect_valid_and_unique(reference);

  auto shuffled = pairs;
  std::reverse(shuffled.begin(), shuffled.end());
  std::rotate(shuffled.begin(), shuffled.begin() + 4, shuffled.end());
  shuffled.push_back(pairs[0]);  // a repeated listing is one tool
  auto other = qualify(shuffled);
  ASSERT_EQ(other.size(), pairs.size());
  for (const auto& [server, tool] : pairs)
    EXPECT_EQ(name_of(other, server, tool), name_of(reference, server, tool))
        << server << "/" << tool;
}

TEST(QualifiedNames, RepeatedPairsAreOneToolInFirstOrder) {
  auto tools = qualify({{"s", "b"}, {"s", "a"}, {"s", "b"}});
  ASSERT_EQ(tools.size(), 2u);
  EXPECT_EQ(tools[0].tool, "b");
  EXPECT_EQ(tools[1].tool, "a");
  EXPECT_EQ(tools[0].name, "mcp__s__b") << "a repeat is no collision";
}

TEST(QualifiedToolIndex, RoutesQualifiedNamesBackToServerAndRawTool) {
  std::string long_tool = "fetch." + std::string(70, 'r');
  QualifiedToolIndex index(qualify({{"s", "foo.bar"}, {"s", "foo_bar"}, {"web-1", long_tool}}));
  ASSERT_EQ(index.tools().size(), 3u);
  for (const auto& t : index.tools()) {
    const QualifiedTool* found = index.find(t.name);
    ASSERT_NE(found, nullptr) << t.name;
    EXPECT_EQ(found->server, t.server);
    EXPECT_EQ(found->tool, t.tool);
  }
  const QualifiedTool* web = index.find(name_of(index.tools(), "web-1", long_tool));
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->server, "web-1");
  EXPECT_EQ(web->tool, long_tool);

  EXPECT_EQ(index.find("mcp__s__foo_bar"), nullptr) << "the unhashed form of a collision";
  EXPECT_EQ(index.find("foo.bar"), nullptr) << "raw names are not qualified names";
  EXPECT_EQ(QualifiedToolIndex().find("mcp__s__foo_bar"), nullptr);
}

}  // namespace
}  // namespace tether::host
