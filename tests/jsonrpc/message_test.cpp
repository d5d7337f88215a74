// jsonrpc::parse and serialize: the three message kinds, the optional "jsonrpc" member, the id
// rules of docs/exec-protocol.md "Transport" (64-bit signed integers or strings; null, fractions
// and out-of-range integers are invalid), error objects, non-object input (-32600), unparsable
// input (-32700), and that serialize always writes "jsonrpc": "2.0" and round-trips through parse.
#include <cstdint>
#include <limits>
#include <string>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <tether/jsonrpc/message.hpp>

namespace tether::jsonrpc {
namespace {

// The parsed message of `text`, failing the test when it is invalid.
Message parse_ok(std::string_view text) {
  auto parsed = parse(text);
  EXPECT_TRUE(parsed) << text << " -> " << (parsed ? "" : parsed.error().error.message);
  return parsed ? *parsed : Message{Notification{"<invalid>", nullptr}};
}

// The rejection of `text`, failing the test when it parses.
Invalid parse_invalid(std::string_view text) {
  auto parsed = parse(text);
  EXPECT_FALSE(parsed) << text << " parsed but should not";
  return parsed ? Invalid{} : parsed.error();
}

TEST(JsonRpcMessage, RequestWithAllMembers) {
  auto m = parse_ok(R"({"jsonrpc":"2.0","id":3,"method":"process/start","params":{"a":1}})");
  auto* request = std::get_if<Request>(&m);
  ASSERT_NE(request, nullptr);
  EXPECT_EQ(request->id, Id{std::int64_t{3}});
  EXPECT_EQ(request->method, "process/start");
  EXPECT_EQ(request->params, (json::value{{"a", 1}}));
}

TEST(JsonRpcMessage, RequestWithoutParamsHasNullParams) {
  auto m = parse_ok(R"({"jsonrpc":"2.0","id":1,"method":"m"})");
  auto* request = std::get_if<Request>(&m);
  ASSERT_NE(request, nullptr);
  EXPECT_TRUE(request->params.is_null());
}

TEST(JsonRpcMessage, JsonrpcMemberIsOptional) {
  // codex 0.169 clients omit "jsonrpc".
  auto m = parse_ok(R"({"id":"abc","method":"initialize","params":{"clientName":"x"}})");
  auto* request = std::get_if<Request>(&m);
  ASSERT_NE(request, nullptr);
  EXPECT_EQ(request->id, Id{std::string("abc")});

  auto n = parse_ok(R"({"method":"initialized"})");
  EXPECT_TRUE(std::holds_alternative<Notification>(n));

  auto r = parse_ok(R"({"id":4,"result":{}})");
  EXPECT_TRUE(std::holds_alternative<Response>(r));
}

TEST(JsonRpcMessage, WrongJsonrpcValueIsInvalidAndEchoesTheId) {
  for (const char* text :
       {R"({"jsonrpc":"1.0","id":5,"method":"m"})", R"({"jsonrpc":2.0,"id":5,"method":"m"})",
        R"({"jsonrpc":null,"id":5,"method":"m"})"}) {
    auto invalid = parse_invalid(text);
    EXPECT_EQ(invalid.error.code, code::kInvalidRequest) << text;
    EXPECT_EQ(invalid.id, std::optional<Id>(Id{std::int64_t{5}})) << text;
  }
  auto invalid = parse_invalid(R"({"jsonrpc":"2.1","id":"s","method":"m"})");
  EXPECT_EQ(invalid.id, std::optional<Id>(Id{std::string("s")}));
}

TEST(JsonRpcMessage, Notification) {
  auto m = parse_ok(R"({"jsonrpc":"2.0","method":"process/output","params":[1,2]})");
  auto* n = std::get_if<Notification>(&m);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->method, "process/output");
  EXPECT_EQ(n->params, (json::value{1, 2}));
}

TEST(JsonRpcMessage, Int64IdLimitsAreValid) {
  const auto min = std::numeric_limits<std::int64_t>::min();
  const auto max = std::numeric_limits<std::int64_t>::max();
  for (std::int64_t id : {min, std::int64_t{-1}, std::int64_t{0}, max}) {
    const std::string text = R"({"id":)" + std::to_string(id) + R"(,"method":"m"})";
    auto m = parse_ok(text);
    auto* request = std::get_if<Request>(&m);
    ASSERT_NE(request, nullptr) << text;
    EXPECT_EQ(request->id, Id{id}) << text;
  }
}

TEST(JsonRpcMessage, OutOfRangeAndFractionalIdsAreInvalid) {
  for (const char* id : {"9223372036854775808",   // 2^63
                         "18446744073709551615",  // 2^64 - 1
                         "18446744073709551616",  // 2^64
                         "-9223372036854775809",  // below int64 min
                         "1.5", "1.0", "1e3", "true", "[1]", "{}"}) {
    for (const char* rest : {R"(,"method":"m"})", R"(,"result":1})"}) {
      const std::string text = std::string(R"({"id":)") + id + rest;
      auto invalid = parse_invalid(text);
      EXPECT_EQ(invalid.error.code, code::kInvalidRequest) << text;
      EXPECT_FALSE(invalid.id) << text;  // an invalid id is never echoed
    }
  }
}

TEST(JsonRpcMessage, NullIdOnARequestIsInvalid) {
  auto invalid = parse_invalid(R"({"jsonrpc":"2.0","id":null,"method":"m"})");
  EXPECT_EQ(invalid.error.code, code::kInvalidRequest);
  EXPECT_FALSE(invalid.id);
}

TEST(JsonRpcMessage, StringIdsAreKeptVerbatim) {
  for (const std::string id : {"", "1", "a b", "\xc3\xa9", "-9223372036854775809"}) {
    json::object o{{"id", id}, {"method", "m"}};
    auto m = parse_ok(json::serialize(o));
    auto* request = std::get_if<Request>(&m);
    ASSERT_NE(request, nullptr);
    EXPECT_EQ(request->id, Id{id});
  }
}

TEST(JsonRpcMessage, ResponseWithResult) {
  auto m = parse_ok(R"({"jsonrpc":"2.0","id":"x","result":{"ok":true}})");
  auto* response = std::get_if<Response>(&m);
  ASSERT_NE(response, nullptr);
  EXPECT_EQ(response->id, std::optional<Id>(Id{std::string("x")}));
  ASSERT_TRUE(response->reply);
  EXPECT_EQ(*response->reply, (json::value{{"ok", true}}));

  // A null result is a result.
  auto null_result = parse_ok(R"({"id":1,"result":null})");
  auto* r = std::get_if<Response>(&null_result);
  ASSERT_NE(r, nullptr);
  ASSERT_TRUE(r->reply);
  EXPECT_TRUE(r->reply->is_null());
}

TEST(JsonRpcMessage, ResponseWithErrorObject) {
  auto m = parse_ok(
      R"({"jsonrpc":"2.0","id":2,"error":{"code":-32004,"message":"not found","data":{"p":1}}})");
  auto* response = std::get_if<Response>(&m);
  ASSERT_NE(response, nullptr);
  ASSERT_FALSE(response->reply);
  EXPECT_EQ(response->reply.error().code, -32004);
  EXPECT_EQ(response->reply.error().message, "not found");
  ASSERT_TRUE(response->reply.error().data);
  EXPECT_EQ(*response->reply.error().data, (json::value{{"p", 1}}));

  auto without_data = parse_ok(R"({"id":2,"error":{"code":1,"message":""}})");
  EXPECT_FALSE(std::get<Response>(without_data).reply.error().data);
}

TEST(JsonRpcMessage, ErrorResponseWithNullIdAnswersUnparsableInput) {
  auto m = parse_ok(R"({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}})");
  auto* response = std::get_if<Response>(&m);
  ASSERT_NE(response, nullptr);
  EXPECT_FALSE(response->id);
  EXPECT_EQ(response->reply.error().code, code::kParseError);
}

TEST(JsonRpcMessage, MalformedErrorObjectsAreInvalid) {
  for (const char* error :
       {R"("boom")", R"({"message":"m"})", R"({"code":"1","message":"m"})",
        R"({"code":1.5,"message":"m"})", R"({"code":1})", R"({"code":1,"message":2})", "null"}) {
    const std::string text = std::string(R"({"id":9,"error":)") + error + "}";
    auto invalid = parse_invalid(text);
    EXPECT_EQ(invalid.error.code, code::kInvalidRequest) << text;
    EXPECT_EQ(invalid.id, std::optional<Id>(Id{std::int64_t{9}})) << text;
  }
}

TEST(JsonRpcMessage, ResponseNeedsExactlyOneOfResultAndError) {
  auto both = parse_invalid(R"({"id":1,"result":1,"error":{"code":1,"message":"m"}})");
  EXPECT_EQ(both.error.code, code::kInvalidRequest);
  EXPECT_EQ(both.id, std::optional<Id>(Id{std::int64_t{1}}));
  auto neither = parse_invalid(R"({"id":1})");
  EXPECT_EQ(neither.error.code, code::kInvalidRequest);
  auto nothing = parse_invalid(R"({"jsonrpc":"2.0"})");
  EXPECT_EQ(nothing.error.code, code::kInvalidRequest);
}

TEST(JsonRpcMessage, NonStringMethodIsInvalid) {
  auto invalid = parse_invalid(R"({"id":"q","method":42})");
  EXPECT_EQ(invalid.error.code, code::kInvalidRequest);
  EXPECT_EQ(invalid.id, std::optional<Id>(Id{std::string("q")}));
  EXPECT_EQ(parse_invalid(R"({"method":null})").error.code, code::kInvalidRequest);
}

TEST(JsonRpcMessage, NotAnObjectIsInvalidRequest) {
  // Batches are not supported: an array is just "not an object".
  for (const char* text : {"[]", R"([{"id":1,"method":"m"}])", "1", R"("text")", "null", "true"}) {
    auto invalid = parse_invalid(text);
    EXPECT_EQ(invalid.error.code, code::kInvalidRequest) << text;
    EXPECT_FALSE(invalid.id) << text;
  }
}

TEST(JsonRpcMessage, UnparsableTextIsParseError) {
  for (const char* text : {"", "{", "{\"id\":1,", "not json", "{\"id\":1}}", "{'id':1}",
                           "{\"id\":1,\"method\":\"m\"} trailing"}) {
    auto invalid = parse_invalid(text);
    EXPECT_EQ(invalid.error.code, code::kParseError) << text;
    EXPECT_FALSE(invalid.id) << text;
  }
}

TEST(JsonRpcMessage, SerializeAlwaysWritesJsonrpc20) {
  const Message messages[] = {
      Request{std::int64_t{1}, "m", nullptr},
      Request{std::string("id"), "m", json::value{{"k", "v"}}},
      Notification{"n", nullptr},
      Notification{"n", json::value{1, 2, 3}},
      Response{Id{std::int64_t{7}}, Reply{json::value{{"r", 1}}}},
      Response{std::nullopt, Reply{boost::system::in_place_error, make_error(-32700, "bad")}},
  };
  for (const auto& message : messages) {
    const std::string text = serialize(message);
    const auto value = json::parse(text);
    ASSERT_TRUE(value.is_object()) << text;
    EXPECT_EQ(value.at("jsonrpc"), "2.0") << text;
  }
}

TEST(JsonRpcMessage, SerializeOmitsNullParamsAndWritesNullIds) {
  auto request = json::parse(serialize(Request{std::int64_t{1}, "m", nullptr})).as_object();
  EXPECT_FALSE(request.contains("params"));
  auto response =
      json::parse(serialize(Response{std::nullopt, Reply{boost::system::in_place_error,
                                                         make_error(code::kParseError, "x")}}))
          .as_object();
  ASSERT_TRUE(response.contains("id"));
  EXPECT_TRUE(response.at("id").is_null());
}

TEST(JsonRpcMessage, RequestRoundTrips) {
  const auto max = std::numeric_limits<std::int64_t>::max();
  const auto min = std::numeric_limits<std::int64_t>::min();
  for (const Id& id : {Id{max}, Id{min}, Id{std::string("str-id")}}) {
    Request original{id, "process/read", json::value{{"processId", "p"}, {"afterSeq", 3}}};
    auto m = parse_ok(serialize(original));
    auto* back = std::get_if<Request>(&m);
    ASSERT_NE(back, nullptr);
    EXPECT_EQ(back->id, original.id);
    EXPECT_EQ(back->method, original.method);
    EXPECT_EQ(back->params, original.params);
  }
}

TEST(JsonRpcMessage, NotificationRoundTrips) {
  Notification original{"process/output", json::value{{"chunk", "aGk="}, {"seq", 1}}};
  auto m = parse_ok(serialize(original));
  auto* back = std::get_if<Notification>(&m);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->method, original.method);
  EXPECT_EQ(back->params, original.params);
}

TEST(JsonRpcMessage, ResponsesRoundTrip) {
  Response result{Id{std::string("r")}, Reply{json::value{{"status", "accepted"}}}};
  auto m = parse_ok(serialize(result));
  auto* back = std::get_if<Response>(&m);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->id, result.id);
  ASSERT_TRUE(back->reply);
  EXPECT_EQ(*back->reply, *result.reply);

  Error error = make_error(-32602, "missing field `processId`");
  error.data = json::value{{"field", "processId"}};
  Response failure{Id{std::int64_t{12}}, Reply{boost::system::in_place_error, error}};
  auto f = parse_ok(serialize(failure));
  auto* fback = std::get_if<Response>(&f);
  ASSERT_NE(fback, nullptr);
  EXPECT_EQ(fback->id, failure.id);
  ASSERT_FALSE(fback->reply);
  EXPECT_EQ(fback->reply.error().code, error.code);
  EXPECT_EQ(fback->reply.error().message, error.message);
  EXPECT_EQ(fback->reply.error().data, error.data);
}

TEST(JsonRpcMessage, IdHelpers) {
  EXPECT_EQ(to_json(Id{std::int64_t{-3}}), json::value(-3));
  EXPECT_EQ(to_json(Id{std::string("s")}), json::value("s"));
  EXPECT_EQ(to_string(Id{std::int64_t{42}}), "42");
  EXPECT_EQ(to_string(Id{std::string("abc")}), "abc");
}

}  // namespace
}  // namespace tether::jsonrpc
