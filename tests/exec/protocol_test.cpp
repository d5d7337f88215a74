// The protocol's types and conversions (protocol.hpp, fields.hpp) without a process or a
// socket: every type's round trip, the codex dialect tether sends, the protocol's defaults,
// decode errors in codex's wording, the bulk process/output encoder, the Fields reader, and path
// fields (parse_path for plain paths and file: URIs with the protocol's codes and messages,
// to_file_uri and its round trip).
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "../../src/exec/fields.hpp"
#include <tether/exec/protocol.hpp>

namespace tether::exec {
namespace {

// Every params, result and notification type survives to_json then decode: the JSON it
// encodes to is the JSON its decoded copy encodes to.
template <class T>
void expect_round_trip(const T& value) {
  const json::value encoded = to_json(value);
  auto decoded = decode<T>(encoded);
  ASSERT_TRUE(decoded) << json::serialize(encoded) << ": " << decoded.error().message;
  EXPECT_EQ(to_json(*decoded), encoded);
}

jsonrpc::Error decode_error_of_start(std::string_view text) {
  auto decoded = decode<StartParams>(json::parse(text));
  EXPECT_FALSE(decoded) << text;
  return decoded ? jsonrpc::Error{} : decoded.error();
}

TEST(Codec, ProcessTypesRoundTrip) {
  StartParams start;
  start.process_id = "p-1";
  start.argv = {"/bin/sh", "-c", "echo \"a b\""};
  start.cwd = "/srv/a b";
  start.env = {{"A", "1"}, {"B", "x=y"}};
  start.env_policy = EnvPolicy{.inherit = EnvPolicy::Inherit::none,
                               .ignore_default_excludes = true,
                               .exclude = {"*X*"},
                               .include_only = {"PATH"},
                               .set = {{"S", "v"}}};
  start.tty = true;
  start.pipe_stdin = true;
  start.arg0 = "sh";
  expect_round_trip(start);
  expect_round_trip(StartParams{.process_id = "bare", .argv = {"true"}});
  expect_round_trip(StartResult{"p-1"});
  expect_round_trip(ReadParams{"p-1", 7, 1024, 250});
  expect_round_trip(ReadParams{"p-1"});
  ReadResult read;
  read.chunks = {OutputEvent{3, "stdout", std::string("\0\xff binary", 9)},
                 OutputEvent{4, "stderr", ""}};
  read.next_seq = 5;
  read.exited = true;
  read.exit_code = 143;
  read.closed = true;
  read.failure = "gone";
  expect_round_trip(read);
  expect_round_trip(ReadResult{});
  expect_round_trip(WriteParams{"p-1", std::string("\0in", 3), "9"});
  for (auto status : {WriteStatus::accepted, WriteStatus::unknown_process, WriteStatus::starting,
                      WriteStatus::stdin_closed}) {
    expect_round_trip(WriteResult{status});
  }
  expect_round_trip(ProcessRef{"p-1"});
  expect_round_trip(TerminateResult{true});
  expect_round_trip(SignalParams{"p-1"});
  expect_round_trip(ExitedNotice{"p-1", 9, 130, 2});
  expect_round_trip(ClosedNotice{"p-1", 10});
}

TEST(Codec, SessionFsAndEnvironmentTypesRoundTrip) {
  expect_round_trip(InitializeParams{"tether", std::nullopt});
  expect_round_trip(InitializeParams{"tether", "session-1"});
  expect_round_trip(InitializeResult{"session-1", json::object{{"platformOs", "linux"}}});
  expect_round_trip(EnvironmentStatus{"ready"});
  expect_round_trip(json::object{{"cwd", "file:///"}});
  expect_round_trip(PathParams{"/a b/%c"});
  expect_round_trip(ReadFileParams{"/f", false});
  expect_round_trip(ReadFileParams{"/f", std::nullopt});
  expect_round_trip(FileContents{std::string("\x00\x01\x02", 3)});
  expect_round_trip(WriteFileParams{"/f", "data"});
  expect_round_trip(CreateDirectoryParams{"/d", false});
  expect_round_trip(FileMetadata{true, false, true, 1, 2, 3});
  expect_round_trip(DirectoryListing{{DirectoryEntry{"a", true, false}, DirectoryEntry{"b"}}});
  expect_round_trip(RemoveParams{"/d", false, false});
  expect_round_trip(CopyParams{"/a", "/b", true});
}

// What tether sends is codex 0.169's dialect: optional fields as null, paths as file: URIs.
TEST(Codec, EncodesTheCodexDialect) {
  const auto start = to_json(StartParams{.process_id = "p", .argv = {"true"}, .cwd = "/w d"});
  EXPECT_EQ(start, json::parse(R"({"processId":"p","argv":["true"],"cwd":"file:///w%20d",)"
                               R"("env":{},"tty":false,"pipeStdin":false,"arg0":null,)"
                               R"("envPolicy":null})"));
  EXPECT_EQ(to_json(ReadParams{"p"}),
            json::parse(R"({"processId":"p","afterSeq":0,"maxBytes":null,"waitMs":0})"));
  EXPECT_EQ(to_json(InitializeParams{"c", std::nullopt}),
            json::parse(R"({"clientName":"c","resumeSessionId":null})"));
  EXPECT_EQ(to_json(SignalParams{"p"}), json::parse(R"({"processId":"p","signal":"interrupt"})"));
  // followSymlinks only when chosen: codex's own client never sends it.
  EXPECT_EQ(to_json(ReadFileParams{"/f", std::nullopt}), json::parse(R"({"path":"file:///f"})"));
}

TEST(Codec, AbsentFieldsTakeTheProtocolDefaults) {
  auto directory = decode<CreateDirectoryParams>(json::parse(R"({"path":"/d"})"));
  ASSERT_TRUE(directory);
  EXPECT_TRUE(directory->recursive);
  auto removal = decode<RemoveParams>(json::parse(R"({"path":"/d","recursive":null})"));
  ASSERT_TRUE(removal);
  EXPECT_TRUE(removal->recursive);
  EXPECT_TRUE(removal->force);
  auto copy = decode<CopyParams>(json::parse(R"({"sourcePath":"/a","destinationPath":"/b"})"));
  ASSERT_TRUE(copy);
  EXPECT_FALSE(copy->recursive);
  auto start = decode<StartParams>(json::parse(R"({"processId":"p","argv":["x"]})"));
  ASSERT_TRUE(start);
  EXPECT_FALSE(start->cwd);
  EXPECT_FALSE(start->env_policy);
  EXPECT_FALSE(start->tty);
  EXPECT_FALSE(start->pipe_stdin);
  // Absent params read as an empty object.
  EXPECT_EQ(decode<ProcessRef>(json::value(nullptr)).error().message, "missing field `processId`");
}

TEST(Codec, DecodeErrorsUseCodexWording) {
  EXPECT_EQ(decode_error_of_start(R"({"argv":["x"]})").message, "missing field `processId`");
  EXPECT_EQ(decode_error_of_start(R"({"processId":5,"argv":["x"]})").message,
            "invalid type for `processId`: expected a string");
  EXPECT_EQ(decode_error_of_start(R"(["p"])").message, "params must be an object");
  EXPECT_EQ(decode_error_of_start(R"({"processId":"p","argv":["x"],"envPolicy":{"inherit":"x"}})")
                .message,
            "unknown variant `x`, expected one of `core`, `all`, `none`");
  EXPECT_EQ(decode_error_of_start(R"({"processId":"p","argv":["x"],"envPolicy":{"inherit":"all"}})")
                .message,
            "missing field `ignoreDefaultExcludes` in envPolicy");
  for (const char* field : {"sandbox", "managedNetwork", "networkProxy", "shellSnapshot"}) {
    json::object params{{"processId", "p"}, {"argv", json::array{"x"}}};
    params[field] = json::object{};
    auto decoded = decode<StartParams>(params);
    ASSERT_FALSE(decoded) << field;
    EXPECT_EQ(decoded.error().message, std::string(field) + " is not supported by this executor");
  }
  EXPECT_EQ(decode_error_of_start(R"({"processId":"p","argv":["x"],"enforceManagedNetwork":true})")
                .message,
            "enforceManagedNetwork is not supported by this executor");
  EXPECT_EQ(
      decode<SignalParams>(json::parse(R"({"processId":"p","signal":"kill"})")).error().message,
      "unknown variant `kill`, expected `interrupt`");
  EXPECT_EQ(decode<WriteParams>(json::parse(R"({"processId":"p","chunk":"","writeId":""})"))
                .error()
                .message,
            "writeId must not be empty");
  EXPECT_EQ(decode<WriteParams>(json::parse(R"({"processId":"p","chunk":"!"})")).error().message,
            "chunk is not valid base64");
  EXPECT_EQ(decode<ReadParams>(json::parse(R"({"processId":"p","waitMs":-1})")).error().message,
            "afterSeq, maxBytes and waitMs must not be negative");
  EXPECT_EQ(decode<PathParams>(json::parse(R"({"path":"/x","sandbox":{}})")).error().message,
            "sandbox is not supported by this executor");
  // Every decode error is invalid params.
  EXPECT_EQ(decode_error_of_start("{}").code, jsonrpc::code::kInvalidParams);
}

TEST(Codec, OutputNotificationIsTheNoticeItsClientDecodes) {
  const std::string bytes("\0\x01 out", 6);
  const auto message = json::parse(output_notification(R"("p-1")", 12, "stdout", bytes));
  EXPECT_EQ(message.at("jsonrpc"), "2.0");
  EXPECT_EQ(std::string_view(message.at("method").as_string()), kProcessOutput.name);
  auto notice = decode<OutputNotice>(message.at("params"));
  ASSERT_TRUE(notice) << notice.error().message;
  EXPECT_EQ(notice->process_id, "p-1");
  EXPECT_EQ(notice->output.seq, 12u);
  EXPECT_EQ(notice->output.stream, "stdout");
  EXPECT_EQ(notice->output.bytes, bytes);
}

// --- Fields --------------------------------------------------------------------------------

TEST(Fields, KeepsTheFirstErrorAndReadsDefaultsAfterIt) {
  const json::value raw = json::parse(R"({"a":1,"b":"x","n":null})");
  Fields fields(raw);
  EXPECT_EQ(fields.string("a"), "");
  EXPECT_EQ(fields.string("b"), "");  // after an error every read is a default
  ASSERT_FALSE(fields.result());
  EXPECT_EQ(fields.result().error().message, "invalid type for `a`: expected a string");
  Fields nulls(raw);
  EXPECT_FALSE(nulls.optional_string("n"));  // null is absent
  EXPECT_TRUE(nulls.result());
  Fields nested(raw, "envPolicy");
  nested.strings("missing");
  EXPECT_EQ(nested.result().error().message, "missing field `missing` in envPolicy");
}

TEST(Fields, IntegersAndSeqs) {
  const json::value raw = json::parse(R"({"big":18446744073709551615,"neg":-1,"s":"1"})");
  Fields fields(raw);
  EXPECT_EQ(fields.optional_int("big"), INT64_MAX);
  EXPECT_EQ(fields.optional_int("neg"), -1);
  EXPECT_EQ(fields.optional_uint("big"), UINT64_MAX);
  EXPECT_TRUE(fields.result());
  Fields negative(raw);
  negative.uint("neg");
  EXPECT_EQ(negative.result().error().message,
            "invalid type for `neg`: expected a non-negative integer");
}

// --- paths ---------------------------------------------------------------------------------

// The path, failing the test on an error.
std::string path_ok(std::string_view text) {
  auto parsed = parse_path(text);
  EXPECT_TRUE(parsed) << text << " -> " << (parsed ? "" : parsed.error().message);
  return parsed ? *parsed : std::string("<error>");
}

jsonrpc::Error path_error(std::string_view text) {
  auto parsed = parse_path(text);
  EXPECT_FALSE(parsed) << text << " -> " << (parsed ? *parsed : "");
  return parsed ? jsonrpc::Error{} : parsed.error();
}

TEST(ParsePath, PlainAbsolutePathsAreTakenAsIs) {
  EXPECT_EQ(path_ok("/"), "/");
  EXPECT_EQ(path_ok("/srv/a b"), "/srv/a b");
  EXPECT_EQ(path_ok("/srv/a%20b"), "/srv/a%20b");  // no decoding outside URIs
  EXPECT_EQ(path_ok("/tmp/\xc3\xa9t\xc3\xa9"), "/tmp/\xc3\xa9t\xc3\xa9");
}

TEST(ParsePath, FileUris) {
  EXPECT_EQ(path_ok("file:///srv/a%20b"), "/srv/a b");
  EXPECT_EQ(path_ok("file:///"), "/");
  EXPECT_EQ(path_ok("file://localhost/x"), "/x");
  EXPECT_EQ(path_ok("file://LocalHost/x"), "/x");
  EXPECT_EQ(path_ok("file:/x"), "/x");
  EXPECT_EQ(path_ok("FILE:///x"), "/x");  // the scheme is case-insensitive
  EXPECT_EQ(path_ok("file:///tmp/%C3%A9t%C3%A9"), "/tmp/\xc3\xa9t\xc3\xa9");
  EXPECT_EQ(path_ok("file:///a%25b"), "/a%b");
}

TEST(ParsePath, DotSegmentsAreRemovedFromUris) {
  EXPECT_EQ(path_ok("file:///a/./b/../c"), "/a/c");
  EXPECT_EQ(path_ok("file:///a/b/.."), "/a/");
  EXPECT_EQ(path_ok("file:///a/%2E%2E/c"), "/c");
  EXPECT_EQ(path_ok("file:///./"), "/");
}

TEST(ParsePath, DotDotAboveTheRootIsRemoved) {
  EXPECT_EQ(path_ok("file:///../../etc"), "/etc");
}

TEST(ParsePath, ForeignHostIsInvalidRequest) {
  auto e = path_error("file://example.com/x");
  EXPECT_EQ(e.code, jsonrpc::code::kInvalidRequest);
  EXPECT_EQ(e.message, "'file://example.com/x' is invalid on 'linux'");
  auto ip = path_error("file://10.0.0.1/srv");
  EXPECT_EQ(ip.code, jsonrpc::code::kInvalidRequest);
  EXPECT_EQ(ip.message, "'file://10.0.0.1/srv' is invalid on 'linux'");
}

TEST(ParsePath, ForeignSchemeIsInvalidParams) {
  auto e = path_error("http://localhost/x");
  EXPECT_EQ(e.code, jsonrpc::code::kInvalidParams);
  EXPECT_EQ(e.message, "unsupported path URI scheme `http`");
  auto s = path_error("ssh:/srv");
  EXPECT_EQ(s.code, jsonrpc::code::kInvalidParams);
  EXPECT_EQ(s.message, "unsupported path URI scheme `ssh`");
}

TEST(ParsePath, RelativeAndEmptyAreInvalidParams) {
  for (const char* text :
       {"", "a", "a/b", "./x", "../x", "~/x", "file:", "file:x", "file:a/b", " /x", "%2Fetc"}) {
    EXPECT_EQ(path_error(text).code, jsonrpc::code::kInvalidParams) << '"' << text << '"';
  }
}

TEST(ParsePath, NulBytesAreRejected) {
  EXPECT_EQ(path_error(std::string("/a\0b", 4)).code, jsonrpc::code::kInvalidParams);
  EXPECT_EQ(path_error("file:///a%00b").code, jsonrpc::code::kInvalidParams);
}

TEST(Fields, PathField) {
  const json::value raw{{"cwd", "file:///w%20d"}, {"bad", 3}};
  Fields fields(raw);
  EXPECT_EQ(fields.path("cwd"), "/w d");
  EXPECT_TRUE(fields.result());
  Fields missing(raw);
  missing.path("missing");
  ASSERT_FALSE(missing.result());
  EXPECT_EQ(missing.result().error().code, jsonrpc::code::kInvalidParams);
  EXPECT_EQ(missing.result().error().message, "missing field `missing`");
  Fields bad(raw);
  bad.path("bad");
  ASSERT_FALSE(bad.result());
  EXPECT_EQ(bad.result().error().code, jsonrpc::code::kInvalidParams);
}

TEST(ToFileUri, PercentEncodes) {
  EXPECT_TRUE(to_file_uri("/").starts_with("file:///")) << to_file_uri("/");
  EXPECT_EQ(to_file_uri("/tmp"), "file:///tmp");
  EXPECT_EQ(to_file_uri("/a b"), "file:///a%20b");
  EXPECT_EQ(to_file_uri("/100%"), "file:///100%25");
  EXPECT_EQ(to_file_uri("/\xc3\xa9"), "file:///%C3%A9");
  const std::string hash_query = to_file_uri("/a?b#c");
  EXPECT_EQ(hash_query.find_first_of("?#"), std::string::npos) << hash_query;
}

TEST(ToFileUri, RoundTripsThroughParsePath) {
  for (const std::string path :
       {"/tmp", "/a b/c  d", "/100%", "/%2F", "/%25", "/a?b#c", "/semi;colon", "/plus+sign",
        "/\xc3\xa9t\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac", "/tab\there", "/quote\"'",
        "/[x]@!$&()*,=", "/trailing/"}) {
    const std::string uri = to_file_uri(path);
    EXPECT_TRUE(uri.starts_with("file:///")) << uri;
    EXPECT_EQ(path_ok(uri), path) << uri;
  }
}

// The server reports its cwd, home and temp dir with to_file_uri; a client sends them back.
TEST(ToFileUri, RootRoundTripsThroughParsePath) {
  const std::string uri = to_file_uri("/");
  EXPECT_EQ(path_ok(uri), "/") << uri;
}

}  // namespace
}  // namespace tether::exec
