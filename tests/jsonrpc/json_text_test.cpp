// JSON a person wrote: parsed whole, errors say where (line, column in characters) and what.
#include <gtest/gtest.h>

#include <tether/jsonrpc/json_text.hpp>

namespace tether::jsonrpc {
namespace {

std::string error_of(std::string_view text) {
  auto parsed = parse_json_text(text);
  EXPECT_FALSE(parsed) << text;
  return parsed ? std::string() : parsed.error().message;
}

TEST(JsonText, ParsesOneValueWithWhitespaceAround) {
  auto parsed = parse_json_text("\n  {\"a\": [1, \"x\"]}\n");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->at("a").at(1), "x");
}

TEST(JsonText, SaysWhereItGoesWrong) {
  EXPECT_EQ(error_of("{\"a\": 1,\n  \"b\": x}"), "line 2, column 8: syntax error");
  EXPECT_EQ(error_of("{\"a\": 1}\n\n   extra"), "line 3, column 4: extra data");
  EXPECT_EQ(error_of("{\"a\":\n"), "line 2, column 1: incomplete JSON");
  EXPECT_EQ(error_of(""), "line 1, column 1: incomplete JSON");
  EXPECT_EQ(parse_json_text("x").error().code, code::kParseError);
}

TEST(JsonText, CountsColumnsInCharacters) {
  EXPECT_EQ(error_of("{\"é€\": ?}"), "line 1, column 8: syntax error");
  const auto at = position_of("ab\ncdé f", 7);
  EXPECT_EQ(at.line, 2u);
  EXPECT_EQ(at.column, 4u);
}

}  // namespace
}  // namespace tether::jsonrpc
