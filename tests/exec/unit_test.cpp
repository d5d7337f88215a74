// Unit tests of executor internals that need no process or socket: base64 (RFC 4648 vectors,
// every byte value, strict rejection of malformed text), path fields (parse_path for plain
// paths and file: URIs with the protocol's exact error codes and messages, to_file_uri
// encoding and its round trip), the child environment (every envPolicy rule against a fake
// environ array), and the HTTP gate's decisions (Origin before everything, Host rules, /readyz,
// 404, bearer token answers). Constant-time token comparison is not observable here: skipped.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "../../src/exec/env_policy.hpp"
#include "../../src/exec/fields.hpp"
#include "../../src/exec/http_gate.hpp"
#include <tether/exec/base64.hpp>
#include <tether/exec/protocol.hpp>

namespace tether::exec {
namespace {

namespace http = boost::beast::http;

// --- base64 ------------------------------------------------------------------------------

TEST(Base64, Rfc4648Vectors) {
  const std::pair<std::string, std::string> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded) << plain;
    EXPECT_EQ(base64_decode(encoded), std::optional<std::string>(plain)) << encoded;
  }
}

TEST(Base64, AllByteValuesRoundTrip) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  const std::string encoded = base64_encode(all);
  EXPECT_EQ(encoded.size(), 4 * ((all.size() + 2) / 3));
  EXPECT_EQ(base64_decode(encoded), std::optional<std::string>(all));
  // Every single byte, and every length 0..3 of a varying tail (each padding case).
  for (int c = 0; c < 256; ++c) {
    const std::string one(1, static_cast<char>(c));
    EXPECT_EQ(base64_decode(base64_encode(one)), std::optional<std::string>(one)) << c;
  }
  for (std::size_t n = 0; n <= all.size(); ++n) {
    const std::string prefix = all.substr(0, n);
    ASSERT_EQ(base64_decode(base64_encode(prefix)), std::optional<std::string>(prefix)) << n;
  }
  // NUL bytes and high bytes survive.
  EXPECT_EQ(base64_encode(std::string("\0\xff", 2)), "AP8=");
}

TEST(Base64, EncodeAppendKeepsExistingContent) {
  std::string out = "chunk:";
  base64_encode_append(out, "foobar");
  EXPECT_EQ(out, "chunk:Zm9vYmFy");
  base64_encode_append(out, "");
  EXPECT_EQ(out, "chunk:Zm9vYmFy");
}

TEST(Base64, InvalidCharactersAreRejected) {
  for (const char* text : {"Zm9v!A==", "Zm-_", "Zm9v\x80\x80\x80\x80", "Zm9v.A==", "@@@@"}) {
    EXPECT_FALSE(base64_decode(text)) << text;
  }
  EXPECT_FALSE(base64_decode(std::string("Zm\0v", 4)));
}

TEST(Base64, WrongLengthIsRejected) {
  for (const char* text : {"Z", "Zm", "Zm9", "Zm9vY", "Zg=", "Zg", "Zm9vYmF"}) {
    EXPECT_FALSE(base64_decode(text)) << text;
  }
}

TEST(Base64, WhitespaceIsRejected) {
  for (const char* text :
       {"Zm9v\n", " Zm9v", "Zm9v ", "Zm 9v", "Zm9v\r\n", "Zm9v    ", "Zm\n9vYmFy", "\tZm9",
        "Zg==\n", "Zm8 ", "Zm9\nYmFy", "Zm9 vYmF", "Zm9v\tYmF", " Zm9vYmF", "Zm9vYmF\n"}) {
    EXPECT_FALSE(base64_decode(text)) << '"' << text << '"';
  }
}

TEST(Base64, PaddingOnlyAtTheEnd) {
  for (const char* text : {"=Zm9", "====", "Zg===", "=g==", "Zg=\n"}) {
    EXPECT_FALSE(base64_decode(text)) << text;
  }
  EXPECT_EQ(base64_decode("Zm8="), std::optional<std::string>("fo"));
  EXPECT_EQ(base64_decode("Zg=="), std::optional<std::string>("f"));
}

// '=' inside the text (not only as the final padding) must be rejected, not decoded.
TEST(Base64, PaddingInsideTheTextIsRejected) {
  for (const char* text : {"Zg==Zm9v", "Zm=v", "Z=9v", "Zg=A", "Z===", "Zm8=Zm8=", "AAA=AAAA"}) {
    EXPECT_FALSE(base64_decode(text)) << text;
  }
}

// --- paths -------------------------------------------------------------------------------

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

TEST(ParsePath, FieldsPathField) {
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

// --- child environment -------------------------------------------------------------------

// A fake `environ`: the strings and the NULL-terminated pointer array into them.
class FakeEnviron {
 public:
  explicit FakeEnviron(std::vector<std::string> entries) : entries_(std::move(entries)) {
    for (auto& e : entries_) pointers_.push_back(e.data());
    pointers_.push_back(nullptr);
  }
  char** get() { return pointers_.data(); }

 private:
  std::vector<std::string> entries_;
  std::vector<char*> pointers_;
};

FakeEnviron server_environ() {
  return FakeEnviron({"HOME=/home/u", "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "USER=u", "TERM=xterm",
                      "API_KEY=k", "MY_SECRET=s", "GH_TOKEN=t", "github_token=t2", "monkey=banana",
                      "FOO=1", "FOOBAR=2", "foo_lower=3", "BAR=3", "EQ=a=b", "EMPTY=", "=nameless",
                      "NOEQUALS"});
}

json::object policy(std::string inherit, bool ignore_default_excludes = false,
                    json::array exclude = {}, json::array include_only = {},
                    json::object set = {}) {
  return json::object{{"inherit", std::move(inherit)},
                      {"ignoreDefaultExcludes", ignore_default_excludes},
                      {"exclude", std::move(exclude)},
                      {"includeOnly", std::move(include_only)},
                      {"set", std::move(set)}};
}

// `params` (env and envPolicy) decoded as process/start's, then the child environment built
// from them against the fake environ.
Expected<std::vector<std::string>> child_environment_of(const json::object& params) {
  auto fake = server_environ();
  json::object start = params;
  start["processId"] = "p";
  start["argv"] = json::array{"true"};
  auto decoded = decode<StartParams>(start);
  if (!decoded) return decoded.error();
  return child_environment(decoded->env, decoded->env_policy, fake.get());
}

// The resulting environment as a map; fails the test on an error.
std::map<std::string, std::string> environment(const json::object& params) {
  auto env = child_environment_of(params);
  EXPECT_TRUE(env) << (env ? "" : env.error().message);
  if (!env) return {};
  std::map<std::string, std::string> out;
  for (const auto& entry : *env) {
    const auto eq = entry.find('=');
    EXPECT_NE(eq, std::string::npos) << entry;
    EXPECT_TRUE(out.emplace(entry.substr(0, eq), entry.substr(eq + 1)).second)
        << "duplicate " << entry;
  }
  return out;
}

jsonrpc::Error environment_error(const json::object& params) {
  auto env = child_environment_of(params);
  EXPECT_FALSE(env);
  return env ? jsonrpc::Error{} : env.error();
}

using Env = std::map<std::string, std::string>;

TEST(ChildEnvironment, WithoutPolicyEnvIsEverything) {
  EXPECT_EQ(environment({}), Env{});
  EXPECT_EQ(environment({{"env", json::object{{"PATH", "/x"}, {"A", "1"}}}}),
            (Env{{"PATH", "/x"}, {"A", "1"}}));
  // A null envPolicy is no policy.
  EXPECT_EQ(environment({{"envPolicy", nullptr}, {"env", json::object{{"A", "1"}}}}),
            (Env{{"A", "1"}}));
}

TEST(ChildEnvironment, InheritAllDropsDefaultExcludesCaseInsensitively) {
  const Env expected{{"HOME", "/home/u"}, {"PATH", "/usr/bin:/bin"},
                     {"LANG", "C.UTF-8"}, {"USER", "u"},
                     {"TERM", "xterm"},   {"FOO", "1"},
                     {"FOOBAR", "2"},     {"foo_lower", "3"},
                     {"BAR", "3"},        {"EQ", "a=b"},
                     {"EMPTY", ""}};
  // API_KEY, MY_SECRET, GH_TOKEN, github_token and monkey (*KEY*) are gone; malformed entries
  // ("=nameless", "NOEQUALS") are skipped.
  EXPECT_EQ(environment({{"envPolicy", policy("all")}}), expected);
}

TEST(ChildEnvironment, IgnoreDefaultExcludesKeepsSecrets) {
  auto env = environment({{"envPolicy", policy("all", true)}});
  EXPECT_EQ(env.at("API_KEY"), "k");
  EXPECT_EQ(env.at("MY_SECRET"), "s");
  EXPECT_EQ(env.at("GH_TOKEN"), "t");
  EXPECT_EQ(env.at("github_token"), "t2");
  EXPECT_EQ(env.at("monkey"), "banana");
  EXPECT_EQ(env.size(), 16u);
}

TEST(ChildEnvironment, InheritCoreKeepsOnlyCoreNamesThatAreSet) {
  EXPECT_EQ(environment({{"envPolicy", policy("core", true)}}), (Env{{"HOME", "/home/u"},
                                                                     {"PATH", "/usr/bin:/bin"},
                                                                     {"LANG", "C.UTF-8"},
                                                                     {"USER", "u"},
                                                                     {"TERM", "xterm"}}));
}

TEST(ChildEnvironment, InheritNoneStartsEmpty) {
  EXPECT_EQ(environment({{"envPolicy", policy("none", true)}}), Env{});
  EXPECT_EQ(environment({{"envPolicy", policy("none", false, {}, {}, {{"A", "1"}})}}),
            (Env{{"A", "1"}}));
}

TEST(ChildEnvironment, ExcludeGlobsAreCaseInsensitive) {
  auto env = environment({{"envPolicy", policy("all", false, {"foo*", "B?R"})}});
  EXPECT_FALSE(env.contains("FOO"));
  EXPECT_FALSE(env.contains("FOOBAR"));
  EXPECT_FALSE(env.contains("foo_lower"));
  EXPECT_FALSE(env.contains("BAR"));
  EXPECT_TRUE(env.contains("HOME"));
  EXPECT_TRUE(env.contains("EQ"));
}

TEST(ChildEnvironment, IncludeOnlyKeepsMatchesAndEmptyMeansAll) {
  EXPECT_EQ(environment({{"envPolicy", policy("all", false, {}, {"path", "FOO"})}}),
            (Env{{"PATH", "/usr/bin:/bin"}, {"FOO", "1"}}));
  EXPECT_EQ(environment({{"envPolicy", policy("all", false, {}, {})}}).size(), 11u);
  // Default excludes still apply to names that includeOnly keeps.
  EXPECT_EQ(environment({{"envPolicy", policy("all", false, {}, {"*KEY*", "HOME"})}}),
            (Env{{"HOME", "/home/u"}}));
  // exclude wins over includeOnly.
  EXPECT_EQ(environment({{"envPolicy", policy("all", false, {"HOME"}, {"HOME", "USER"})}}),
            (Env{{"USER", "u"}}));
}

TEST(ChildEnvironment, SetAppliesAfterFilteringAndEnvOverlaysLast) {
  // set after exclude/includeOnly/default excludes: its names are kept even when they would be
  // filtered; env overrides set.
  json::object set{{"API_KEY", "from-set"}, {"HOME", "/set"}, {"NEW", "n"}, {"BOTH", "set"}};
  auto env = environment({{"envPolicy", policy("all", false, {"HOME"}, {"PATH"}, set)},
                          {"env", json::object{{"BOTH", "env"}, {"PATH", "/env"}}}});
  EXPECT_EQ(env, (Env{{"PATH", "/env"},
                      {"API_KEY", "from-set"},
                      {"HOME", "/set"},
                      {"NEW", "n"},
                      {"BOTH", "env"}}));
}

TEST(ChildEnvironment, CodexMcpServerPolicy) {
  // What the codex 0.169 client sends for MCP servers.
  auto env = environment({{"envPolicy", policy("core", true)}, {"env", json::object{}}});
  EXPECT_EQ(env.at("PATH"), "/usr/bin:/bin");
  EXPECT_EQ(env.at("HOME"), "/home/u");
}

TEST(ChildEnvironment, MissingPolicyFieldsAreInvalidParams) {
  for (const char* field : {"inherit", "ignoreDefaultExcludes", "exclude", "includeOnly", "set"}) {
    json::object p = policy("all");
    p.erase(field);
    auto e = environment_error({{"envPolicy", p}});
    EXPECT_EQ(e.code, jsonrpc::code::kInvalidParams) << field;
    EXPECT_EQ(e.message, std::string("missing field `") + field + "` in envPolicy");
  }
}

TEST(ChildEnvironment, MalformedPolicyIsInvalidParams) {
  auto unknown = environment_error({{"envPolicy", policy("some")}});
  EXPECT_EQ(unknown.code, jsonrpc::code::kInvalidParams);
  EXPECT_EQ(unknown.message, "unknown variant `some`, expected one of `core`, `all`, `none`");

  json::object bad_types[] = {policy("all"), policy("all"), policy("all"),
                              policy("all"), policy("all"), policy("all")};
  bad_types[0]["inherit"] = 1;
  bad_types[1]["ignoreDefaultExcludes"] = "yes";
  bad_types[2]["exclude"] = "FOO";
  bad_types[3]["includeOnly"] = json::array{1};
  bad_types[4]["set"] = json::array{};
  bad_types[5]["set"] = json::object{{"A", 1}};
  for (const auto& p : bad_types) {
    EXPECT_EQ(environment_error({{"envPolicy", p}}).code, jsonrpc::code::kInvalidParams)
        << json::serialize(p);
  }
  EXPECT_EQ(environment_error({{"envPolicy", "all"}}).code, jsonrpc::code::kInvalidParams);
}

TEST(ChildEnvironment, MalformedEnvIsInvalidParams) {
  for (const json::value& env : {json::value{{"A", 1}}, json::value{{"A=B", "x"}},
                                 json::value{{"", "x"}}, json::value("A=1"), json::value{1, 2}}) {
    EXPECT_EQ(environment_error({{"env", env}}).code, jsonrpc::code::kInvalidParams)
        << json::serialize(env);
  }
  EXPECT_EQ(environment_error({{"envPolicy", policy("none", false, {}, {}, {{"=x", "1"}})}}).code,
            jsonrpc::code::kInvalidParams);
}

// --- HTTP gate ---------------------------------------------------------------------------

const std::string kToken = "s3cret-token-value";

GateConfig gate_with_token() {
  return GateConfig{sha256(kToken), {}};
}

http::request<http::empty_body> upgrade_request(std::string target = "/",
                                                std::string host = "127.0.0.1:4000") {
  http::request<http::empty_body> request{http::verb::get, target, 11};
  request.set(http::field::host, host);
  request.set(http::field::upgrade, "websocket");
  request.set(http::field::connection, "Upgrade");
  request.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  request.set(http::field::sec_websocket_version, "13");
  return request;
}

http::request<http::empty_body> authorized(std::string target = "/",
                                           std::string host = "127.0.0.1:4000") {
  auto request = upgrade_request(std::move(target), std::move(host));
  request.set(http::field::authorization, "Bearer " + kToken);
  return request;
}

http::request<http::empty_body> plain_get(std::string target, std::string host = "127.0.0.1:4000") {
  http::request<http::empty_body> request{http::verb::get, target, 11};
  request.set(http::field::host, host);
  return request;
}

void expect_answer(const std::optional<GateAnswer>& answer, http::status status,
                   const std::string& body) {
  ASSERT_TRUE(answer) << "expected " << static_cast<unsigned>(status) << ", got an upgrade";
  EXPECT_EQ(answer->status, status);
  EXPECT_EQ(answer->body, body);
}

TEST(HttpGate, Sha256Vector) {
  const Sha256 abc = sha256("abc");
  const unsigned char expected[] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                    0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                    0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  EXPECT_TRUE(std::equal(abc.begin(), abc.end(), std::begin(expected)));
}

TEST(HttpGate, ValidTokenUpgrades) {
  EXPECT_FALSE(judge_request(authorized(), gate_with_token()));
  EXPECT_FALSE(judge_request(authorized("/any/path?x=1"), gate_with_token()));
}

TEST(HttpGate, OriginIsForbiddenEvenWithAValidToken) {
  const char* body = "browser Origin websocket requests are not allowed";
  for (const char* origin : {"http://127.0.0.1:4000", "null", ""}) {
    auto request = authorized();
    request.set(http::field::origin, origin);
    expect_answer(judge_request(request, gate_with_token()), http::status::forbidden, body);
  }
  // Checked before Host and /readyz too.
  auto readyz = plain_get("/readyz", "evil.example");
  readyz.set(http::field::origin, "null");
  expect_answer(judge_request(readyz, gate_with_token()), http::status::forbidden, body);
  // And with auth disabled.
  auto no_auth = upgrade_request();
  no_auth.set(http::field::origin, "http://localhost");
  expect_answer(judge_request(no_auth, GateConfig{}), http::status::forbidden, body);
}

TEST(HttpGate, HostRules) {
  for (const char* host : {"127.0.0.1", "127.0.0.1:4000", "10.1.2.3:80", "[::1]", "[::1]:4000",
                           "[fe80::1]:1", "localhost", "localhost:4000", "LOCALHOST:1"}) {
    EXPECT_FALSE(judge_request(authorized("/", host), gate_with_token())) << host;
  }
  for (const char* host : {"evil.example", "evil.example:4000", "localhost.evil.example",
                           "127.0.0.1.evil.example", "[::1", "[not-an-ip]:80", "", "1.2.3"}) {
    expect_answer(judge_request(authorized("/", host), gate_with_token()), http::status::forbidden,
                  "Host header is not allowed");
  }
  // --allow-host names (case-insensitive, any port).
  GateConfig allowing = gate_with_token();
  allowing.allowed_hosts = {"box.internal"};
  EXPECT_FALSE(judge_request(authorized("/", "Box.Internal:4000"), allowing));
  expect_answer(judge_request(authorized("/", "other.internal"), allowing), http::status::forbidden,
                "Host header is not allowed");
}

TEST(HttpGate, MissingHostIsRefused) {
  auto request = authorized();
  request.erase(http::field::host);
  auto answer = judge_request(request, gate_with_token());
  ASSERT_TRUE(answer);
  EXPECT_GE(static_cast<unsigned>(answer->status), 400u);
  EXPECT_LT(static_cast<unsigned>(answer->status), 500u);
}

TEST(HttpGate, ReadyzNeedsNoAuth) {
  expect_answer(judge_request(plain_get("/readyz"), gate_with_token()), http::status::ok, "ok");
  expect_answer(judge_request(plain_get("/readyz?probe=1"), gate_with_token()), http::status::ok,
                "ok");
  auto post = plain_get("/readyz");
  post.method(http::verb::post);
  auto answer = judge_request(post, gate_with_token());
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, http::status::method_not_allowed);
  // Host rules apply to /readyz as well.
  expect_answer(judge_request(plain_get("/readyz", "evil.example"), gate_with_token()),
                http::status::forbidden, "Host header is not allowed");
}

TEST(HttpGate, OtherNonUpgradeRequestsAre404) {
  for (const char* target : {"/", "/other", "/readyz/x", "/ready"}) {
    auto answer = judge_request(plain_get(target), gate_with_token());
    ASSERT_TRUE(answer) << target;
    EXPECT_EQ(answer->status, http::status::not_found) << target;
    // Even without auth configured.
    auto no_auth = judge_request(plain_get(target), GateConfig{});
    ASSERT_TRUE(no_auth) << target;
    EXPECT_EQ(no_auth->status, http::status::not_found) << target;
  }
}

TEST(HttpGate, AuthAnswers) {
  expect_answer(judge_request(upgrade_request(), gate_with_token()), http::status::unauthorized,
                "missing websocket bearer token");
  for (const std::string& value : std::vector<std::string>{
           "Basic dXNlcjpwYXNz", "Bearer", "Token " + kToken, kToken, "Bearer" + kToken, ""}) {
    auto request = upgrade_request();
    request.set(http::field::authorization, value);
    expect_answer(judge_request(request, gate_with_token()), http::status::unauthorized,
                  "invalid authorization header");
  }
  for (const std::string& value : std::vector<std::string>{
           "Bearer wrong", "Bearer " + kToken + "x", "Bearer " + kToken.substr(1), "Bearer  x",
           "Bearer " + std::string(kToken.rbegin(), kToken.rend())}) {
    auto request = upgrade_request();
    request.set(http::field::authorization, value);
    expect_answer(judge_request(request, gate_with_token()), http::status::unauthorized,
                  "invalid websocket bearer token");
  }
}

TEST(HttpGate, BearerSchemeIsCaseInsensitive) {
  for (const std::string scheme : {"bearer ", "BEARER ", "bEaReR "}) {
    auto request = upgrade_request();
    request.set(http::field::authorization, scheme + kToken);
    EXPECT_FALSE(judge_request(request, gate_with_token())) << scheme;
  }
}

TEST(HttpGate, AuthDisabledUpgradesWithoutToken) {
  EXPECT_FALSE(judge_request(upgrade_request(), GateConfig{}));
  // A token sent anyway is ignored.
  auto request = upgrade_request();
  request.set(http::field::authorization, "Bearer whatever");
  EXPECT_FALSE(judge_request(request, GateConfig{}));
}

}  // namespace
}  // namespace tether::exec
