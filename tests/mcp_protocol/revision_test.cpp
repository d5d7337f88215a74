// revision.hpp: the version a request claims in `_meta`, result types, and the method sets.
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <tether/mcp_protocol/revision.hpp>

namespace tether::mcp_protocol {
namespace {

TEST(McpRevision, ARequestClaimsTheVersionInItsMeta) {
  const auto modern = boost::json::parse(
      R"({"jsonrpc":"2.0","id":1,"method":"tools/list",)"
      R"("params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}})");
  EXPECT_EQ(request_version(modern), std::optional<std::string>("2026-07-28"));
  const auto legacy = boost::json::parse(
      R"({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"progressToken":1}}})");
  EXPECT_EQ(request_version(legacy), std::nullopt);
  EXPECT_EQ(request_version(boost::json::parse(R"({"method":"ping"})")), std::nullopt);
  EXPECT_EQ(request_version(boost::json::parse(R"([1,2])")), std::nullopt);
  EXPECT_TRUE(is_modern_version("2026-07-28"));
  EXPECT_FALSE(is_modern_version("2025-11-25"));
}

TEST(McpRevision, AResultWithoutResultTypeIsComplete) {
  EXPECT_EQ(result_type(boost::json::object{}), kComplete);
  EXPECT_EQ(result_type(boost::json::object{{"resultType", "input_required"}}), kInputRequired);
  EXPECT_EQ(result_type(boost::json::object{{"resultType", 3}}), kComplete);
}

TEST(McpRevision, OnlyToolsPromptsAndReadsTakeInputResponses) {
  EXPECT_TRUE(accepts_input_responses("tools/call"));
  EXPECT_TRUE(accepts_input_responses("prompts/get"));
  EXPECT_TRUE(accepts_input_responses("resources/read"));
  EXPECT_FALSE(accepts_input_responses("tools/list"));
  EXPECT_TRUE(is_cacheable("server/discover"));
  EXPECT_TRUE(is_cacheable("resources/templates/list"));
  EXPECT_FALSE(is_cacheable("tools/call"));
}

}  // namespace
}  // namespace tether::mcp_protocol
