// The child environment (env_policy.hpp): every envPolicy rule against a fake environ array,
// `env` on top, and the invalid-params answers for malformed policies and variables, decoded
// from process/start params as the executor receives them.
#include "../../src/exec/env_policy.hpp"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <tether/exec/protocol.hpp>

namespace tether::exec {
namespace {

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

}  // namespace
}  // namespace tether::exec
