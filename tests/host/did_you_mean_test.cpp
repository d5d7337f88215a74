// "Did you mean" hints: which known name a typo is nearest to, and when there is none.
#include <array>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include <tether/host/did_you_mean.hpp>

namespace tether::host {
namespace {

TEST(DidYouMean, NamesTheNearestKnownName) {
  const std::vector<std::string> servers = {"memory", "filesystem", "everything"};
  EXPECT_EQ(nearest_name("memroy", servers), "memory");
  EXPECT_EQ(did_you_mean("filesytem", servers), "; did you mean 'filesystem'?");
}

TEST(DidYouMean, TakesTableNamesWrittenInAnotherCase) {
  constexpr std::array<std::string_view, 3> kTables = {"mcp_servers", "environments", "gateway"};
  EXPECT_EQ(nearest_name("mcpServers", kTables), "mcp_servers");
  EXPECT_EQ(nearest_name("mcp_server", kTables), "mcp_servers");
  EXPECT_EQ(nearest_name("enviroments", kTables), "environments");
}

TEST(DidYouMean, CountsTwoSwappedLettersAsOneEdit) {
  EXPECT_EQ(edit_distance("mpc", "mcp"), 1u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(nearest_name("mpc", std::vector<std::string>{"mcp", "exec-server"}), "mcp");
}

TEST(DidYouMean, SaysNothingForAKnownOrAFarName) {
  const std::vector<std::string> servers = {"memory", "docs"};
  EXPECT_EQ(nearest_name("memory", servers), std::nullopt);
  EXPECT_EQ(nearest_name("playwright", servers), std::nullopt);
  EXPECT_EQ(did_you_mean("dcs", servers), "; did you mean 'docs'?");
  EXPECT_EQ(did_you_mean("x", std::vector<std::string>{}), "");
}

}  // namespace
}  // namespace tether::host
