// http_headers.hpp: Mcp-Name, the base64 form, Mcp-Param values and x-mcp-header rules, with the
// values the conformance tool's http-custom-headers and http-invalid-tool-headers use.
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <tether/mcp_protocol/http_headers.hpp>

namespace tether::mcp_protocol {
namespace {

namespace json = boost::json;

TEST(McpHttpHeaders, NameComesFromTheNameOrTheUri) {
  EXPECT_EQ(name_header("tools/call", json::object{{"name", "my-hyphenated-tool"}}),
            std::optional<std::string>("my-hyphenated-tool"));
  EXPECT_EQ(name_header("prompts/get", json::object{{"name", "greet"}}),
            std::optional<std::string>("greet"));
  EXPECT_EQ(name_header("resources/read", json::object{{"uri", "file:///a%20b.txt"}}),
            std::optional<std::string>("file:///a%20b.txt"));
  EXPECT_EQ(name_header("tools/list", json::object{{"name", "x"}}), std::nullopt);
  EXPECT_EQ(name_header("tools/call", json::object{}), std::nullopt);
}

TEST(McpHttpHeaders, UnsafeTextGoesAsBase64) {
  EXPECT_EQ(encode_header_text("us-west1"), "us-west1");
  EXPECT_EQ(encode_header_text("us west 1"), "us west 1");
  EXPECT_EQ(encode_header_text(""), "");
  for (std::string_view unsafe : {"Hello, \xe4\xb8\x96\xe7\x95\x8c", " padded ", " us-west1",
                                  "us-west1 ", "line1\nline2", "line1\r\nline2", "\tindented"}) {
    const auto encoded = encode_header_text(unsafe);
    EXPECT_TRUE(encoded.starts_with("=?base64?") && encoded.ends_with("?=")) << encoded;
    EXPECT_EQ(decode_header_text(encoded), std::optional<std::string>(unsafe));
  }
  EXPECT_EQ(decode_header_text("plain"), std::optional<std::string>("plain"));
  EXPECT_EQ(decode_header_text("=?base64?not base64?="), std::nullopt);
}

TEST(McpHttpHeaders, ArgumentValues) {
  EXPECT_EQ(header_value(json::value(42)), std::optional<std::string>("42"));
  EXPECT_EQ(header_value(json::value(3.14159)), std::optional<std::string>("3.14159"));
  EXPECT_EQ(header_value(json::value(true)), std::optional<std::string>("true"));
  EXPECT_EQ(header_value(json::value(false)), std::optional<std::string>("false"));
  EXPECT_EQ(header_value(json::value("a b")), std::optional<std::string>("a b"));
  EXPECT_EQ(header_value(json::value(nullptr)), std::nullopt);
  EXPECT_EQ(header_value(json::value(json::array{1})), std::nullopt);
}

json::object tool_with(std::string_view properties) {
  return json::parse(R"({"name":"t","inputSchema":{"type":"object","properties":)" +
                     std::string(properties) + "}}")
      .as_object();
}

TEST(McpHttpHeaders, ValidDeclarations) {
  auto params = header_params(tool_with(
      R"({"region":{"type":"string","x-mcp-header":"Region"},)"
      R"("priority":{"type":"integer","x-mcp-header":"Priority"},"query":{"type":"string"}})"));
  ASSERT_TRUE(params) << params.error().message;
  ASSERT_EQ(params->size(), 2u);
  EXPECT_EQ((*params)[0].property, "region");
  EXPECT_EQ((*params)[0].header, "Region");
  EXPECT_EQ((*params)[1].header, "Priority");
  EXPECT_TRUE(header_params(json::object{{"name", "no schema"}}));
}

TEST(McpHttpHeaders, InvalidDeclarationsAreRefused) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {R"({"v":{"type":"string","x-mcp-header":""}})", "empty"},
      {R"({"v":{"type":"object","x-mcp-header":"Data"}})", "of type 'object'"},
      {R"({"v":{"type":"array","x-mcp-header":"Items"}})", "of type 'array'"},
      {R"({"v":{"type":"null","x-mcp-header":"Nil"}})", "of type 'null'"},
      {R"({"v":{"type":"number","x-mcp-header":"Score"}})", "of type 'number'"},
      {R"({"a":{"type":"string","x-mcp-header":"Region"},)"
       R"("b":{"type":"string","x-mcp-header":"Region"}})",
       "declared twice"},
      {R"({"a":{"type":"string","x-mcp-header":"MyField"},)"
       R"("b":{"type":"string","x-mcp-header":"myfield"}})",
       "declared twice"},
      {R"({"v":{"type":"string","x-mcp-header":"My Region"}})", "not an HTTP token"},
      {R"({"v":{"type":"string","x-mcp-header":"Region:Primary"}})", "not an HTTP token"},
      {R"({"v":{"type":"string","x-mcp-header":"R\u00e9gion"}})", "not an HTTP token"},
      {R"({"v":{"type":"string","x-mcp-header":"Region\t1"}})", "not an HTTP token"},
  };
  for (const auto& [properties, reason] : cases) {
    auto params = header_params(tool_with(properties));
    ASSERT_FALSE(params) << properties;
    EXPECT_NE(params.error().message.find(reason), std::string::npos)
        << properties << ": " << params.error().message;
  }
}

}  // namespace
}  // namespace tether::mcp_protocol
