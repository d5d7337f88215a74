// The executor's wire protocol, request by request (the acceptance scenarios 16, 20 and 38),
// against the real `tether exec-server` over real WebSockets on loopback:
// - ExecProtocol: every request shape of docs/exec-protocol.md with its error codes and messages
//   (lifecycle, environment/*, process/*, fs/*).
// - ExecMalformed: malformed input on one connection (bad JSON, bad ids, binary frames, invalid
//   UTF-8, a frame over the limit) leaves the executor and a second, streaming client healthy.
// - ExecDialects: an April client and a codex 0.169 client (no "jsonrpc", string ids, file: URIs,
//   writeId, envPolicy) on one executor, path forms, envPolicy semantics.
// Codes and messages are the spec's; where the spec names only a code, only the code is checked.
#include <atomic>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "requests.hpp"
#include "test_client.hpp"

namespace tether::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using Client = std::shared_ptr<TestClient>;

// The spec's codes, spelled out here rather than taken from the server's headers.
constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;
constexpr int kInternalError = -32603;
constexpr int kNotFound = -32004;

// ---------------------------------------------------------------------------------------------
// Helpers (plain functions where possible: braced JSON inside co_await miscompiles on GCC 12).

json::value J(std::string_view text) {
  return json::parse(text);
}

std::string str(const json::value& v) {
  return json::serialize(v);
}

bool contains(std::string_view text, std::string_view needle) {
  return text.find(needle) != std::string_view::npos;
}

// A unique suffix per call, so process ids and markers never repeat within this binary.
std::string unique(std::string_view prefix) {
  static std::atomic<int> counter{0};
  return std::string(prefix) + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

json::object sh_start(const std::string& id, const std::string& script, bool pipe_stdin = false,
                      const std::string& marker = "proto-sh") {
  return json::object{{"processId", id}, {"argv", json::array{"/bin/sh", "-c", script, marker}},
                      {"cwd", "/tmp"},   {"env", json::object{{"PATH", "/usr/bin:/bin"}}},
                      {"tty", false},    {"pipeStdin", pipe_stdin},
                      {"arg0", nullptr}};
}

// Expects `method` to fail with `code` (and exactly `message`, when one is given).
asio::awaitable<jsonrpc::Error> expect_error(TestClient& c, std::string method, json::value params,
                                             int code, std::string message = {}) {
  const std::string what = method + " " + str(params);
  auto reply = co_await c.call(std::move(method), std::move(params));
  if (reply) {
    ADD_FAILURE() << what << ": expected error " << code << ", got result " << str(*reply);
    co_return jsonrpc::Error{};
  }
  EXPECT_EQ(reply.error().code, code) << what << ": " << reply.error().message;
  if (!message.empty()) {
    EXPECT_EQ(reply.error().message, message) << what;
  }
  co_return reply.error();
}

// Expects `method` to succeed; returns its result (null after reporting a failure).
asio::awaitable<json::value> expect_ok(TestClient& c, std::string method, json::value params) {
  const std::string what = method + " " + str(params);
  auto reply = co_await c.call(std::move(method), std::move(params));
  if (!reply) {
    ADD_FAILURE() << what << " failed (" << reply.error().code << "): " << reply.error().message;
    co_return json::value();
  }
  co_return std::move(*reply);
}

// Sends raw text and returns the first response that matched none of the client's calls.
asio::awaitable<std::optional<jsonrpc::Response>> send_for_unmatched(TestClient& c,
                                                                     std::string text) {
  const auto before = c.unmatched().size();
  c.send_text(text);
  const bool answered = co_await c.wait_unmatched(before + 1);
  std::optional<jsonrpc::Response> response;
  if (answered) {
    response = c.unmatched()[before];
  } else {
    ADD_FAILURE() << "no response to " << text;
  }
  co_return response;
}

// An error response with `id` (nullopt: "id": null) and `code`.
void expect_error_response(const std::optional<jsonrpc::Response>& r, std::optional<json::value> id,
                           int code, const std::string& what) {
  if (!r) return;  // already reported
  if (id) {
    EXPECT_TRUE(r->id && jsonrpc::to_json(*r->id) == *id)
        << what << ": id " << (r->id ? str(jsonrpc::to_json(*r->id)) : "null");
  } else {
    EXPECT_FALSE(r->id) << what << ": id " << str(jsonrpc::to_json(*r->id));
  }
  if (r->reply) {
    ADD_FAILURE() << what << ": expected error " << code << ", got " << str(*r->reply);
    return;
  }
  EXPECT_EQ(r->reply.error().code, code) << what << ": " << r->reply.error().message;
}

std::optional<json::object> find_event(const TestClient& c, const std::string& id,
                                       std::string_view method) {
  for (auto& e : c.events(id))
    if (e.at("method").as_string() == method) return e;
  return std::nullopt;
}

// Waits until the process closed and returns its exited event.
asio::awaitable<std::optional<json::object>> wait_exit_event(TestClient& c, std::string id) {
  // Results of co_await go to locals first: GCC 12 miscompiles some co_await-in-condition forms.
  const bool closed = co_await c.wait_closed(id);
  std::optional<json::object> exited;
  if (closed) {
    exited = find_event(c, id, "process/exited");
  } else {
    ADD_FAILURE() << "process " << id << " did not close; events so far: " << c.events(id).size();
  }
  co_return exited;
}

// name=value lines of `env -0` output (or /proc/<pid>/environ); the first of a repeated name wins,
// as getenv() sees it.
std::map<std::string, std::string> parse_env(std::string_view nul_separated) {
  std::map<std::string, std::string> env;
  while (!nul_separated.empty()) {
    const auto end = nul_separated.find('\0');
    const auto entry = nul_separated.substr(0, end);
    if (const auto eq = entry.find('='); eq != std::string_view::npos && eq > 0)
      env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
    if (end == std::string_view::npos) break;
    nul_separated.remove_prefix(end + 1);
  }
  return env;
}

std::map<std::string, std::string> process_environment(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  return parse_env(text);
}

std::string env_dump(const std::map<std::string, std::string>& env) {
  std::string out;
  for (const auto& [k, v] : env) out += k + "=" + v + "\n";
  return out;
}

// A directory under /tmp for one test, removed with everything in it.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = "/tmp/tether-proto-XXXXXX";
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(std::string_view name) const { return (path / name).string(); }
};

void write_file(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// Waits (bounded) until no process whose command line contains `marker` is left.
bool wait_gone(const std::string& marker, std::chrono::milliseconds deadline = 5s) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!processes_matching(marker).empty()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// Percent-encodes a path the way a `file://` URI needs (unreserved characters and '/' stay).
std::string file_uri(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "file://";
  for (unsigned char ch : path) {
    if (std::isalnum(ch) || ch == '/' || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += kHex[ch >> 4];
      out += kHex[ch & 15];
    }
  }
  return out;
}

// A fresh connection that went through initialize + initialized.
asio::awaitable<Client> ready_client(const ExecServer& server) {
  auto client = co_await TestClient::connect(server.port());
  co_await client->initialize();
  co_return client;
}

// ---------------------------------------------------------------------------------------------
// Scenario 16: lifecycle.

TEST(ExecProtocol, SecondInitializeIsRejected) {
  ExecServer server;
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);
    co_await expect_error(*c, "initialize", J(R"({"clientName":"again","resumeSessionId":null})"),
                          kInvalidRequest, "initialize may only be sent once per connection");
    // The connection stays usable.
    auto status = co_await expect_ok(*c, "environment/status", J("{}"));
    EXPECT_EQ(status, J(R"({"status":"ready"})"));
    c->close();
  });
}

TEST(ExecProtocol, MethodsBeforeInitializeAreRejected) {
  ExecServer server;
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await TestClient::connect(server.port());
    const std::string exec_msg = "client must call initialize before using exec methods";
    const std::string fs_msg = "client must call initialize before using filesystem methods";
    co_await expect_error(*c, "process/start", sh_start("p", "true"), kInvalidRequest, exec_msg);
    co_await expect_error(*c, "process/read", J(R"({"processId":"p"})"), kInvalidRequest, exec_msg);
    co_await expect_error(*c, "process/write", J(R"({"processId":"p","chunk":""})"),
                          kInvalidRequest, exec_msg);
    co_await expect_error(*c, "process/terminate", J(R"({"processId":"p"})"), kInvalidRequest,
                          exec_msg);
    co_await expect_error(*c, "process/signal", J(R"({"processId":"p","signal":"interrupt"})"),
                          kInvalidRequest, exec_msg);
    const std::vector<const char*> fs_methods{
        "fs/readFile", "fs/writeFile", "fs/createDirectory", "fs/getMetadata", "fs/readDirectory",
        "fs/remove",   "fs/copy",      "fs/canonicalize"};
    for (const char* method : fs_methods) {
      co_await expect_error(*c, method, J(R"({"path":"/tmp"})"), kInvalidRequest, fs_msg);
    }
    // Nothing above used up initialize.
    auto init = co_await c->initialize();
    EXPECT_TRUE(init.contains("sessionId"));
    c->close();
  });
}

TEST(ExecProtocol, MethodsBeforeInitializedAreRejected) {
  ExecServer server;
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await TestClient::connect(server.port());
    co_await expect_ok(*c, "initialize", J(R"({"clientName":"t","resumeSessionId":null})"));
    const std::string exec_msg = "client must send initialized before using exec methods";
    co_await expect_error(*c, "process/start", sh_start("p", "true"), kInvalidRequest, exec_msg);
    co_await expect_error(*c, "process/read", J(R"({"processId":"p"})"), kInvalidRequest, exec_msg);
    co_await expect_error(*c, "process/terminate", J(R"({"processId":"p"})"), kInvalidRequest,
                          exec_msg);
    // fs: the spec names the code; the text says initialized is missing.
    auto e = co_await expect_error(*c, "fs/getMetadata", J(R"({"path":"/tmp"})"), kInvalidRequest);
    EXPECT_TRUE(e.message.starts_with("client must send initialized before using")) << e.message;

    c->peer().notify("initialized", json::object{});
    c->peer().notify("initialized", json::object{});  // a repeat is ignored
    co_await expect_error(*c, "process/read", J(R"({"processId":"p"})"), kInvalidRequest,
                          "unknown process id p");
    EXPECT_TRUE(c->unmatched().empty()) << "a repeated initialized was answered";
    c->close();
  });
}

TEST(ExecProtocol, InitializedBeforeInitializeIsAnErrorWithIdMinusOne) {
  ExecServer server;
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await TestClient::connect(server.port());
    auto r =
        co_await send_for_unmatched(*c, R"({"jsonrpc":"2.0","method":"initialized","params":{}})");
    CO_ASSERT_TRUE(r.has_value());
    CO_ASSERT_TRUE(r->id.has_value());
    EXPECT_EQ(jsonrpc::to_json(*r->id), -1);
    CO_ASSERT_TRUE(!r->reply);
    EXPECT_EQ(r->reply.error().message, "received 'initialized' notification before 'initialize'");
    // The connection still initializes normally.
    auto init = co_await c->initialize();
    EXPECT_TRUE(init.contains("sessionId"));
    co_await expect_error(*c, "process/read", J(R"({"processId":"none"})"), kInvalidRequest,
                          "unknown process id none");
    c->close();
  });
}

TEST(ExecProtocol, FailedInitializeDoesNotUseUpTheOneAllowed) {
  ExecServer server;
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await TestClient::connect(server.port());
    co_await expect_error(*c, "initialize", J(R"({"resumeSessionId":null})"), kInvalidParams);
    co_await expect_error(*c, "initialize", J(R"({"clientName":7})"), kInvalidParams);
    co_await expect_error(*c, "initialize", J(R"({"clientName":"t","resumeSessionId":5})"),
                          kInvalidParams);
    co_await expect_error(*c, "initialize", J("[1]"), kInvalidParams);
    // An unknown session is a failed initialize too.
    co_await expect_error(
        *c, "initialize",
        J(R"({"clientName":"t","resumeSessionId":"00000000-0000-0000-0000-000000000000"})"),
        kInvalidRequest, "unknown session id 00000000-0000-0000-0000-000000000000");
    // resumeSessionId is optional.
    auto init = co_await expect_ok(*c, "initialize", J(R"({"clientName":"t"})"));
    EXPECT_TRUE(init.as_object().contains("sessionId"));
    co_await expect_error(*c, "initialize", J(R"({"clientName":"t"})"), kInvalidRequest,
                          "initialize may only be sent once per connection");
    c->close();
  });
}

TEST(ExecProtocol, StrayNotificationsAndClientResponsesGetErrorsWithIdMinusOne) {
  ExecServer server;
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);
    const std::vector<const char*> stray{
        R"({"jsonrpc":"2.0","method":"process/output","params":{"processId":"x"}})",
        R"({"jsonrpc":"2.0","method":"no/such/notification"})",
        R"({"method":"initialize","params":{"clientName":"t"}})",  // a request without id
        R"({"jsonrpc":"2.0","id":77,"result":{}})",
        R"({"id":"seventy-eight","error":{"code":-32000,"message":"client error"}})",
    };
    for (const char* text : stray) {
      auto r = co_await send_for_unmatched(*c, text);
      expect_error_response(r, json::value(-1), kInvalidRequest, text);
    }
    // None of that ended the connection.
    auto status = co_await expect_ok(*c, "environment/status", J("{}"));
    EXPECT_EQ(status, J(R"({"status":"ready"})"));
    c->close();
  });
}

TEST(ExecProtocol, UnknownAndCodexOnlyMethodsAreNotFound) {
  ExecServer server;
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);
    const std::vector<const char*> not_found{
        "no/such/method",    "fs/walk",      "fs/open",         "fs/readBlock",
        "fs/writeBlock",     "fs/close",     "fs/watchMissing", "environmentConfig/read",
        "capabilities/list", "process/list", "Process/Start",   ""};
    for (const char* method : not_found) {
      co_await expect_error(*c, method, J("{}"), kMethodNotFound, "method not found");
    }
    c->close();
  });
}

// ---------------------------------------------------------------------------------------------
// Scenario 16: environment/*.

TEST(ExecProtocol, EnvironmentStatusAndInfo) {
  ExecServer server;
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await TestClient::connect(server.port());
    auto init = co_await c->initialize();
    CO_ASSERT_TRUE(init.contains("environmentInfo"));
    const json::value info = init.at("environmentInfo");

    auto status = co_await expect_ok(*c, "environment/status", J("{}"));
    EXPECT_EQ(status, J(R"({"status":"ready"})"));
    // No params at all is fine too.
    auto status2 = co_await expect_ok(*c, "environment/status", json::value());
    EXPECT_EQ(status2, J(R"({"status":"ready"})"));

    auto got = co_await expect_ok(*c, "environment/info", J("{}"));
    EXPECT_EQ(got, info);
    CO_ASSERT_TRUE(info.is_object());
    const auto& o = info.as_object();
    for (const char* field : {"shell", "executorVersion", "platformOs", "cwd", "userHomeDir",
                              "tempDir", "capabilities"}) {
      EXPECT_TRUE(o.contains(field)) << "environmentInfo lacks " << field << ": " << str(info);
    }
    CO_ASSERT_TRUE(o.contains("shell") && o.at("shell").is_object());
    const auto& shell = o.at("shell").as_object();
    CO_ASSERT_TRUE(shell.contains("name") && shell.at("name").is_string());
    CO_ASSERT_TRUE(shell.contains("path") && shell.at("path").is_string());
    const std::string shell_path(shell.at("path").as_string());
    EXPECT_TRUE(shell_path.starts_with("/")) << shell_path;
    EXPECT_EQ(std::string(shell.at("name").as_string()), fs::path(shell_path).filename().string());
    CO_ASSERT_TRUE(o.at("executorVersion").is_string());
    EXPECT_FALSE(o.at("executorVersion").as_string().empty());
    EXPECT_EQ(o.at("platformOs"), "linux");
    for (const char* uri : {"cwd", "userHomeDir", "tempDir"}) {
      CO_ASSERT_TRUE(o.at(uri).is_string());
      EXPECT_TRUE(o.at(uri).as_string().starts_with("file:///")) << uri << ": " << str(o.at(uri));
    }
    // The executor runs in this test's working directory.
    EXPECT_EQ(o.at("cwd"), json::value(file_uri(fs::current_path().string())));
    EXPECT_EQ(o.at("capabilities"), json::object{});
    c->close();
  });
}

// ---------------------------------------------------------------------------------------------
// Scenario 16: process/start.

TEST(ExecProtocol, ProcessStartParamErrors) {
  ExecServer server;
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);
    co_await expect_error(*c, "process/start", J(R"({"processId":"p","argv":[],"cwd":"/tmp"})"),
                          kInvalidParams, "argv must not be empty");
    // Missing or mistyped fields.
    const std::vector<const char*> bad_params{
        R"({"argv":["true"],"cwd":"/tmp"})",                        // no processId
        R"({"processId":"p","cwd":"/tmp"})",                        // no argv
        R"({"processId":5,"argv":["true"]})",                       // processId not a string
        R"({"processId":"p","argv":"true"})",                       // argv not an array
        R"({"processId":"p","argv":[1]})",                          // argv of numbers
        R"({"processId":"p","argv":["true"],"cwd":5})",             // cwd not a string
        R"({"processId":"p","argv":["true"],"env":[]})",            // env not an object
        R"({"processId":"p","argv":["true"],"env":{"A":1}})",       // env value not a string
        R"({"processId":"p","argv":["true"],"tty":"no"})",          // tty not a bool
        R"({"processId":"p","argv":["true"],"pipeStdin":1})",       // pipeStdin not a bool
        R"({"processId":"p","argv":["true"],"arg0":5})",            // arg0 not a string
        R"({"processId":"p","argv":["true"],"envPolicy":"core"})",  // envPolicy not an object
        R"(["p",["true"]])",                                        // params not an object
    };
    for (const char* params : bad_params) {
      co_await expect_error(*c, "process/start", J(params), kInvalidParams);
    }
    // Paths: relative or empty cwd.
    const std::vector<const char*> bad_cwds{"tmp", "", "./tmp", "~/x"};
    for (const char* cwd : bad_cwds) {
      json::object p{{"processId", "p"}, {"argv", json::array{"true"}}};
      p["cwd"] = cwd;
      co_await expect_error(*c, "process/start", std::move(p), kInvalidParams);
    }
    // None of these started anything: the id is still free.
    auto started = co_await expect_ok(*c, "process/start", sh_start("p", "true"));
    EXPECT_EQ(started, J(R"({"processId":"p","sandboxType":"none"})"));
    EXPECT_TRUE(co_await c->wait_closed("p"));
    c->close();
  });
}

TEST(ExecProtocol, ProcessStartRefusesCodexSandboxAndNetworkFields) {
  ExecServer server;
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);
    struct Refused {
      const char* field;
      const char* value;
    };
    const std::vector<Refused> refused_fields{Refused{"sandbox", R"({"type":"readOnly"})"},
                                              Refused{"sandbox", R"("danger-full-access")"},
                                              Refused{"enforceManagedNetwork", "true"},
                                              Refused{"managedNetwork", "{}"},
                                              Refused{"networkProxy", R"({"url":"http://p"})"},
                                              Refused{"shellSnapshot", R"({"path":"/tmp/s"})"}};
    // (No structured bindings in coroutines: GCC 12 miscompiles them.)
    for (const auto& refused : refused_fields) {
      json::object p = sh_start("refused", "true");
      p[refused.field] = J(refused.value);
      co_await expect_error(*c, "process/start", std::move(p), kInvalidParams,
                            std::string(refused.field) + " is not supported by this executor");
    }
    // The codex defaults (null, false) and metadata are accepted.
    json::object p = sh_start("accepted", "echo accepted-ok");
    p["sandbox"] = nullptr;
    p["enforceManagedNetwork"] = false;
    p["managedNetwork"] = nullptr;
    p["networkProxy"] = nullptr;
    p["shellSnapshot"] = nullptr;
    p["metadata"] = J(R"({"turnId":"t-1","anything":[1,2,{"x":null}]})");
    p["envPolicy"] = nullptr;
    auto started = co_await expect_ok(*c, "process/start", std::move(p));
    EXPECT_EQ(started, J(R"({"processId":"accepted","sandboxType":"none"})"));
    EXPECT_TRUE(co_await c->wait_output("accepted", "accepted-ok\n"));
    auto exited = co_await wait_exit_event(*c, "accepted");
    CO_ASSERT_TRUE(exited.has_value());
    EXPECT_EQ(exited->at("exitCode"), 0);
    EXPECT_EQ(exited->at("sandboxDenied"), false);
    c->close();
  });
}

TEST(ExecProtocol, ProcessStartShapesDefaultsAndFailures) {
  ExecServer server;
  TempDir dir;
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);

    // Defaults: no env (empty environment), no tty (stdout pipe), no pipeStdin (stdin closed).
    auto bare = co_await expect_ok(*c, "process/start",
                                   J(R"({"processId":"bare","argv":["/usr/bin/env","-0"]})"));
    EXPECT_EQ(bare, J(R"({"processId":"bare","sandboxType":"none"})"));
    auto bare_exit = co_await wait_exit_event(*c, "bare");
    CO_ASSERT_TRUE(bare_exit.has_value());
    EXPECT_EQ(bare_exit->at("exitCode"), 0);
    EXPECT_EQ(c->output("bare"), "") << "a process started without env inherited something";

    // env is the entire environment; cwd is honoured.
    json::object exact{{"processId", "exact"},
                       {"argv", json::array{"/bin/sh", "-c", "pwd; /usr/bin/env -0 >&2"}},
                       {"env", json::object{{"ONLY_THIS", "v=1 2"}}}};
    exact["cwd"] = dir.path.string();
    co_await expect_ok(*c, "process/start", std::move(exact));
    CO_ASSERT_TRUE(co_await c->wait_closed("exact"));
    EXPECT_EQ(c->output("exact", "stdout"), dir.path.string() + "\n");
    auto env = parse_env(c->output("exact", "stderr"));
    env.erase("PWD");  // sh exports the variables it maintains itself
    env.erase("SHLVL");
    env.erase("_");
    EXPECT_EQ(env_dump(env), "ONLY_THIS=v=1 2\n");

    // argv[0] without a slash is resolved against the child's PATH; arg0 replaces argv[0].
    json::object named{{"processId", "named"},
                       {"argv", json::array{"sh", "-c", "tr '\\0' ' ' < /proc/$$/cmdline"}},
                       {"cwd", "/"},
                       {"env", json::object{{"PATH", "/usr/bin:/bin"}}},
                       {"arg0", "custom-zero"}};
    co_await expect_ok(*c, "process/start", std::move(named));
    EXPECT_TRUE(co_await c->wait_closed("named"));
    EXPECT_TRUE(c->output("named").starts_with("custom-zero -c ")) << c->output("named");

    // tty: true runs under a pseudo-terminal; the stream is "pty".
    json::object tty = sh_start("tty", "test -t 1 && echo on-a-tty");
    tty["tty"] = true;
    co_await expect_ok(*c, "process/start", std::move(tty));
    EXPECT_TRUE(co_await c->wait_output("tty", "on-a-tty"));
    EXPECT_TRUE(co_await c->wait_closed("tty"));
    for (const auto& e : c->events("tty")) {
      if (e.at("method") == "process/output") {
        EXPECT_EQ(e.at("stream"), "pty");
      }
    }

    // A reused id: -32600 `process <id> already exists` (also once it closed: it is retained).
    co_await expect_error(*c, "process/start", sh_start("tty", "true"), kInvalidRequest,
                          "process tty already exists");

    // Spawn failures: -32603 with the OS reason.
    auto missing = co_await expect_error(
        *c, "process/start",
        J(R"({"processId":"nope","argv":["/nonexistent/proto-no-such-program"],"cwd":"/tmp"})"),
        kInternalError);
    EXPECT_FALSE(missing.message.empty());
    json::object bad_cwd = sh_start("badcwd", "true");
    bad_cwd["cwd"] = dir / "no-such-dir";
    co_await expect_error(*c, "process/start", std::move(bad_cwd), kInternalError);
    // A failed start does not take the id.
    co_await expect_ok(*c, "process/start", sh_start("nope", "true"));
    EXPECT_TRUE(co_await c->wait_closed("nope"));
    c->close();
  });
}

// ---------------------------------------------------------------------------------------------
// Scenario 16: process/read, process/write, process/terminate, process/signal.

TEST(ExecProtocol, ProcessReadShape) {
  ExecServer server;
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);
    co_await expect_error(*c, "process/read", J(R"({"processId":"ghost"})"), kInvalidRequest,
                          "unknown process id ghost");
    co_await expect_error(*c, "process/read", J(R"({})"), kInvalidParams);
    co_await expect_error(*c, "process/read", J(R"({"processId":"ghost","afterSeq":"1"})"),
                          kInvalidParams);

    co_await expect_ok(*c, "process/start",
                       sh_start("r",
                                "printf a; sleep 0.1; printf bb >&2; sleep 0.1; printf ccc; "
                                "exit 5"));
    CO_ASSERT_TRUE(co_await c->wait_closed("r"));
    const auto closed = find_event(*c, "r", "process/closed");
    CO_ASSERT_TRUE(closed.has_value());

    // Everything (afterSeq absent, nulls allowed).
    auto all =
        co_await expect_ok(*c, "process/read",
                           J(R"({"processId":"r","afterSeq":null,"maxBytes":null,"waitMs":null})"));
    CO_ASSERT_TRUE(all.is_object());
    for (const char* field :
         {"chunks", "nextSeq", "exited", "exitCode", "closed", "failure", "sandboxDenied"}) {
      EXPECT_TRUE(all.as_object().contains(field)) << field << " missing: " << str(all);
    }
    EXPECT_EQ(all.at("exited"), true);
    EXPECT_EQ(all.at("exitCode"), 5);
    EXPECT_EQ(all.at("closed"), true);
    EXPECT_EQ(all.at("failure"), nullptr);
    EXPECT_EQ(all.at("sandboxDenied"), false);
    EXPECT_EQ(all.at("nextSeq").to_number<std::int64_t>(),
              closed->at("seq").to_number<std::int64_t>() + 1);
    const auto& chunks = all.at("chunks").as_array();
    CO_ASSERT_TRUE(!chunks.empty());
    std::string stdout_bytes, stderr_bytes;
    std::int64_t last = 0;
    for (const auto& chunk : chunks) {
      const auto seq = chunk.at("seq").to_number<std::int64_t>();
      EXPECT_GT(seq, last) << "chunks out of order: " << str(all);
      last = seq;
      const auto bytes = unb64(chunk.at("chunk").as_string());
      (chunk.at("stream") == "stdout" ? stdout_bytes : stderr_bytes) += bytes;
    }
    EXPECT_EQ(stdout_bytes, "accc");
    EXPECT_EQ(stderr_bytes, "bb");
    EXPECT_EQ(chunks.front().at("seq"), 1);

    // afterSeq skips what was seen.
    json::object after{{"processId", "r"}};
    after["afterSeq"] = chunks.front().at("seq");
    auto rest = co_await expect_ok(*c, "process/read", std::move(after));
    EXPECT_EQ(rest.at("chunks").as_array().size(), chunks.size() - 1);

    // maxBytes: at least one chunk, even when it alone is bigger; nextSeq follows it when cut.
    auto one = co_await expect_ok(*c, "process/read", J(R"({"processId":"r","maxBytes":0})"));
    CO_ASSERT_EQ(one.at("chunks").as_array().size(), 1u);
    EXPECT_EQ(one.at("chunks").as_array()[0], chunks.front());
    if (chunks.size() > 1) {
      EXPECT_EQ(one.at("nextSeq").to_number<std::int64_t>(),
                chunks.front().at("seq").to_number<std::int64_t>() + 1);
    }

    // waitMs long-polls until output arrives: the read is sent before the write that feeds it.
    co_await expect_ok(*c, "process/start", sh_start("cat", "exec cat", true));
    auto empty = co_await expect_ok(*c, "process/read", J(R"({"processId":"cat","waitMs":50})"));
    EXPECT_EQ(empty.at("chunks"), json::array{});
    EXPECT_EQ(empty.at("exited"), false);
    EXPECT_EQ(empty.at("exitCode"), nullptr);
    EXPECT_EQ(empty.at("closed"), false);
    auto long_poll = [&]() -> asio::awaitable<json::value> {
      co_return co_await expect_ok(*c, "process/read",
                                   J(R"({"processId":"cat","afterSeq":0,"waitMs":30000})"));
    };
    auto feed = [&]() -> asio::awaitable<void> {
      json::object w{{"processId", "cat"}, {"chunk", b64("polled\n")}};
      co_await expect_ok(*c, "process/write", std::move(w));
    };
    auto polled = co_await (long_poll() && feed());
    CO_ASSERT_TRUE(polled.is_object());
    CO_ASSERT_EQ(polled.at("chunks").as_array().size(), 1u);
    EXPECT_EQ(unb64(polled.at("chunks").as_array()[0].at("chunk").as_string()), "polled\n");
    co_await expect_ok(*c, "process/terminate", J(R"({"processId":"cat"})"));
    EXPECT_TRUE(co_await c->wait_closed("cat"));
    c->close();
  });
}

TEST(ExecProtocol, ProcessWriteShapesAndErrors) {
  ExecServer server;
  const std::string marker = unique("proto16-write");
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);
    co_await expect_ok(
        *c, "process/start",
        sh_start("w", "IFS= read -r a; IFS= read -r b; printf '%s|%s|' \"$a\" \"$b\"", true,
                 marker));
    co_await expect_error(*c, "process/write", J(R"({"processId":"w","chunk":"not base64!"})"),
                          kInvalidParams);
    co_await expect_error(*c, "process/write", J(R"({"processId":"w","chunk":"aGk"})"),
                          kInvalidParams);  // standard base64 keeps its padding
    co_await expect_error(*c, "process/write",
                          J(R"({"processId":"w","chunk":"aGkK","writeId":""})"), kInvalidParams,
                          "writeId must not be empty");
    co_await expect_error(*c, "process/write", J(R"({"processId":"w","chunk":"aGkK","writeId":1})"),
                          kInvalidParams);
    co_await expect_error(*c, "process/write", J(R"({"processId":"w"})"), kInvalidParams);
    co_await expect_error(*c, "process/write", J(R"({"chunk":"aGkK"})"), kInvalidParams);
    // None of the refused writes reached stdin.
    json::object first{{"processId", "w"}, {"chunk", b64("one\n")}};
    auto accepted = co_await expect_ok(*c, "process/write", std::move(first));
    EXPECT_EQ(accepted, J(R"({"status":"accepted"})"));
    json::object second{{"processId", "w"}, {"chunk", b64("two\n")}, {"writeId", "w-2"}};
    EXPECT_EQ(co_await expect_ok(*c, "process/write", std::move(second)),
              J(R"({"status":"accepted"})"));
    EXPECT_TRUE(co_await c->wait_closed("w"));
    EXPECT_EQ(c->output("w"), "one|two|");

    // unknownProcess, and stdinClosed for pipeStdin false and for an exited process.
    EXPECT_EQ(co_await expect_ok(*c, "process/write", J(R"({"processId":"ghost","chunk":"aGkK"})")),
              J(R"({"status":"unknownProcess"})"));
    EXPECT_EQ(co_await expect_ok(*c, "process/write", J(R"({"processId":"w","chunk":"aGkK"})")),
              J(R"({"status":"stdinClosed"})"));
    co_await expect_ok(*c, "process/start",
                       sh_start("closed-stdin",
                                "if read x; then echo data; else echo eof; fi; "
                                "exec sleep 301.16001",
                                false, marker));
    EXPECT_TRUE(co_await c->wait_output("closed-stdin", "eof\n"));
    EXPECT_EQ(co_await expect_ok(*c, "process/write",
                                 J(R"({"processId":"closed-stdin","chunk":"aGkK"})")),
              J(R"({"status":"stdinClosed"})"));
    co_await expect_ok(*c, "process/terminate", J(R"({"processId":"closed-stdin"})"));
    EXPECT_TRUE(co_await c->wait_closed("closed-stdin"));
    c->close();
  });
  EXPECT_TRUE(wait_gone(marker)) << "processes left: " << marker;
}

TEST(ExecProtocol, ProcessTerminate) {
  ExecServer server;
  const std::string marker = unique("proto16-term");
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);
    EXPECT_EQ(co_await expect_ok(*c, "process/terminate", J(R"({"processId":"ghost"})")),
              J(R"({"running":false})"));
    co_await expect_error(*c, "process/terminate", J(R"({})"), kInvalidParams);
    co_await expect_ok(*c, "process/start",
                       sh_start("t", "echo up; exec sleep 301.16002", false, marker));
    CO_ASSERT_TRUE(co_await c->wait_output("t", "up\n"));
    EXPECT_EQ(co_await expect_ok(*c, "process/terminate", J(R"({"processId":"t"})")),
              J(R"({"running":true})"));
    auto exited = co_await wait_exit_event(*c, "t");
    CO_ASSERT_TRUE(exited.has_value());
    EXPECT_EQ(exited->at("exitCode"), 128 + SIGTERM);
    EXPECT_EQ(exited->at("signal"), SIGTERM);  // tether extension
    EXPECT_EQ(co_await expect_ok(*c, "process/terminate", J(R"({"processId":"t"})")),
              J(R"({"running":false})"));
    c->close();
  });
  EXPECT_TRUE(wait_gone(marker)) << "processes left: " << marker;
}

TEST(ExecProtocol, ProcessSignal) {
  ExecServer server;
  const std::string marker = unique("proto16-sig");
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);
    EXPECT_EQ(co_await expect_ok(*c, "process/signal",
                                 J(R"({"processId":"ghost","signal":"interrupt"})")),
              json::object{});
    const std::vector<const char*> other_signals{"terminate", "kill", "SIGINT", "Interrupt"};
    for (const char* name : other_signals) {
      json::object p{{"processId", "ghost"}};
      p["signal"] = name;
      co_await expect_error(*c, "process/signal", std::move(p), kInvalidParams,
                            std::string("unknown variant `") + name + "`, expected `interrupt`");
    }
    co_await expect_error(*c, "process/signal", J(R"({"processId":"ghost"})"), kInvalidParams);

    // The whole group gets SIGINT: the shell's trap runs once its foreground sleep died.
    co_await expect_ok(
        *c, "process/start",
        sh_start(
            "s",
            "trap 'echo got-int; exit 3' INT; echo ready; sleep 301.16003; echo not-interrupted",
            false, marker));
    CO_ASSERT_TRUE(co_await c->wait_output("s", "ready\n"));
    // Only once sleep runs: a SIGINT that reaches the shell before it forks sleep runs the trap
    // only after sleep ended (dash checks traps between commands).
    // The sleep itself, not the shell whose own command line holds the same words.
    const std::function<bool()> sleeping = [] {
      for (const pid_t pid : processes_matching("sleep 301.16003"))
        if (command_line(pid).starts_with("sleep 301.16003")) return true;
      return false;
    };
    CO_ASSERT_TRUE(co_await eventually(sleeping, 20s));
    EXPECT_EQ(
        co_await expect_ok(*c, "process/signal", J(R"({"processId":"s","signal":"interrupt"})")),
        json::object{});
    auto exited = co_await wait_exit_event(*c, "s");
    CO_ASSERT_TRUE(exited.has_value());
    EXPECT_EQ(exited->at("exitCode"), 3);
    EXPECT_EQ(c->output("s"), "ready\ngot-int\n");
    // An exited process: {}.
    EXPECT_EQ(
        co_await expect_ok(*c, "process/signal", J(R"({"processId":"s","signal":"interrupt"})")),
        json::object{});
    c->close();
  });
  EXPECT_TRUE(wait_gone(marker)) << "processes left: " << marker;
}

// ---------------------------------------------------------------------------------------------
// Scenario 16: fs/* round trips in a temporary directory.

// Messages over 16 MiB (codex's frame limit) travel as several frames, both ways: a 20 MiB file
// is about 27 MB of base64 in the fs/writeFile request and in the fs/readFile answer.
TEST(ExecProtocol, MessagesOverTheFrameLimitArriveWhole) {
  ExecServer server;
  TempDir dir;
  std::string bytes(20 << 20, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = static_cast<char>((i * 2654435761u) >> 13);
  const std::string file = dir / "big.dat";
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);
    json::object w{{"path", file}, {"dataBase64", b64(bytes)}};
    co_await expect_ok(*c, "fs/writeFile", std::move(w));
    EXPECT_TRUE(read_file(file) == bytes) << "the file written differs";
    json::object r{{"path", file}};
    auto got = co_await expect_ok(*c, "fs/readFile", std::move(r));
    EXPECT_TRUE(unb64(got.at("dataBase64").as_string()) == bytes) << "the file read back differs";
  });
}

TEST(ExecProtocol, FsWriteAndReadFileAreBinarySafe) {
  ExecServer server;
  TempDir dir;
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);
    std::string bytes;
    for (int i = 0; i < 256 * 4; ++i) bytes += static_cast<char>(i & 0xff);
    const std::string file = dir / "bin.dat";
    json::object w{{"path", file}, {"dataBase64", b64(bytes)}};
    EXPECT_EQ(co_await expect_ok(*c, "fs/writeFile", std::move(w)), json::object{});
    EXPECT_EQ(read_file(file), bytes);
    json::object r{{"path", file}};
    auto got = co_await expect_ok(*c, "fs/readFile", std::move(r));
    CO_ASSERT_TRUE(got.is_object() && got.as_object().contains("dataBase64"));
    EXPECT_EQ(unb64(got.at("dataBase64").as_string()), bytes);

    // Overwrite truncates; an empty file reads back empty.
    json::object w2{{"path", file}, {"dataBase64", ""}};
    co_await expect_ok(*c, "fs/writeFile", std::move(w2));
    EXPECT_EQ(read_file(file), "");
    json::object r2{{"path", file}};
    EXPECT_EQ(co_await expect_ok(*c, "fs/readFile", std::move(r2)), J(R"({"dataBase64":""})"));

    // Symlinks: followed by default and with followSymlinks true; followSymlinks false fails.
    write_file(dir / "target.txt", "through the link\n");
    fs::create_symlink(dir / "target.txt", dir / "link.txt");
    json::object via_link{{"path", dir / "link.txt"}};
    auto followed = co_await expect_ok(*c, "fs/readFile", std::move(via_link));
    EXPECT_EQ(unb64(followed.at("dataBase64").as_string()), "through the link\n");
    json::object follow_true{{"path", dir / "link.txt"}, {"followSymlinks", true}};
    co_await expect_ok(*c, "fs/readFile", std::move(follow_true));
    json::object no_follow{{"path", dir / "link.txt"}, {"followSymlinks", false}};
    auto refused = co_await c->call("fs/readFile", std::move(no_follow));
    EXPECT_FALSE(refused) << "followSymlinks false read through a symlink";
    json::object plain_no_follow{{"path", dir / "target.txt"}, {"followSymlinks", false}};
    co_await expect_ok(*c, "fs/readFile", std::move(plain_no_follow));

    // Errors: not found -32004 with the OS text; bad base64 and bad params -32602.
    json::object missing{{"path", dir / "missing.txt"}};
    auto e = co_await expect_error(*c, "fs/readFile", std::move(missing), kNotFound);
    EXPECT_TRUE(contains(e.message, "No such file or directory")) << e.message;
    json::object bad_b64{{"path", dir / "x"}, {"dataBase64", "@@@"}};
    co_await expect_error(*c, "fs/writeFile", std::move(bad_b64), kInvalidParams);
    EXPECT_FALSE(fs::exists(dir / "x"));
    co_await expect_error(*c, "fs/writeFile", J(R"({"path":"/tmp/x"})"), kInvalidParams);
    co_await expect_error(*c, "fs/readFile", J(R"({})"), kInvalidParams);
    co_await expect_error(*c, "fs/readFile", J(R"({"path":"relative/file"})"), kInvalidParams);
    json::object into_missing_dir{{"path", dir / "no-dir/file"}, {"dataBase64", "aGkK"}};
    auto w_err = co_await c->call("fs/writeFile", std::move(into_missing_dir));
    EXPECT_FALSE(w_err) << "writeFile into a missing directory succeeded";
    c->close();
  });
}

TEST(ExecProtocol, FsCreateDirectory) {
  ExecServer server;
  TempDir dir;
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);
    // recursive defaults to true.
    json::object deep{{"path", dir / "a/b/c"}};
    EXPECT_EQ(co_await expect_ok(*c, "fs/createDirectory", std::move(deep)), json::object{});
    EXPECT_TRUE(fs::is_directory(dir / "a/b/c"));
    // An existing directory is fine (both ways).
    json::object again{{"path", dir / "a/b/c"}};
    co_await expect_ok(*c, "fs/createDirectory", std::move(again));
    json::object again_flat{{"path", dir / "a"}, {"recursive", false}};
    co_await expect_ok(*c, "fs/createDirectory", std::move(again_flat));
    // recursive false: one level only.
    json::object flat{{"path", dir / "a/flat"}, {"recursive", false}};
    co_await expect_ok(*c, "fs/createDirectory", std::move(flat));
    EXPECT_TRUE(fs::is_directory(dir / "a/flat"));
    json::object no_parent{{"path", dir / "x/y"}, {"recursive", false}};
    co_await expect_error(*c, "fs/createDirectory", std::move(no_parent), kNotFound);
    EXPECT_FALSE(fs::exists(dir / "x"));
    // A file in the way is an error.
    write_file(dir / "file", "f");
    json::object over_file{{"path", dir / "file"}};
    auto e = co_await c->call("fs/createDirectory", std::move(over_file));
    EXPECT_FALSE(e) << "createDirectory over a regular file succeeded";
    json::object typed{{"path", dir / "t"}, {"recursive", "yes"}};
    co_await expect_error(*c, "fs/createDirectory", std::move(typed), kInvalidParams);
    c->close();
  });
}

TEST(ExecProtocol, FsGetMetadata) {
  ExecServer server;
  TempDir dir;
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);
    const std::string file = dir / "f.txt";
    write_file(file, "12345");
    // A known modification time: 2020-09-13T12:26:40.123Z.
    const timespec times[2] = {{1600000000, 123'000'000}, {1600000000, 123'000'000}};
    CO_ASSERT_EQ(::utimensat(AT_FDCWD, file.c_str(), times, 0), 0);
    fs::create_symlink(file, dir / "link");
    fs::create_directory(dir / "sub");

    json::object pf{{"path", file}};
    auto m = co_await expect_ok(*c, "fs/getMetadata", std::move(pf));
    CO_ASSERT_TRUE(m.is_object());
    for (const char* field :
         {"isDirectory", "isFile", "isSymlink", "createdAtMs", "modifiedAtMs", "size"}) {
      EXPECT_TRUE(m.as_object().contains(field)) << field << " missing: " << str(m);
    }
    EXPECT_EQ(m.at("isFile"), true);
    EXPECT_EQ(m.at("isDirectory"), false);
    EXPECT_EQ(m.at("isSymlink"), false);
    EXPECT_EQ(m.at("size").to_number<std::int64_t>(), 5);
    EXPECT_EQ(m.at("modifiedAtMs").to_number<std::int64_t>(), 1600000000123);
    EXPECT_GE(m.at("createdAtMs").to_number<std::int64_t>(), 0);  // 0 when unknown

    json::object pd{{"path", dir / "sub"}};
    auto d = co_await expect_ok(*c, "fs/getMetadata", std::move(pd));
    EXPECT_EQ(d.at("isDirectory"), true);
    EXPECT_EQ(d.at("isFile"), false);
    EXPECT_EQ(d.at("isSymlink"), false);

    json::object pl{{"path", dir / "link"}};
    auto l = co_await expect_ok(*c, "fs/getMetadata", std::move(pl));
    EXPECT_EQ(l.at("isSymlink"), true) << str(l);

    json::object missing{{"path", dir / "missing"}};
    auto e = co_await expect_error(*c, "fs/getMetadata", std::move(missing), kNotFound);
    EXPECT_TRUE(contains(e.message, "No such file or directory")) << e.message;
    c->close();
  });
}

TEST(ExecProtocol, FsReadDirectory) {
  ExecServer server;
  TempDir dir;
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);
    write_file(dir / "file.txt", "x");
    fs::create_directory(dir / "sub dir");
    fs::create_symlink(dir / "file.txt", dir / "link");
    json::object p{{"path", dir.path.string()}};
    auto r = co_await expect_ok(*c, "fs/readDirectory", std::move(p));
    CO_ASSERT_TRUE(r.is_object() && r.at("entries").is_array());
    std::map<std::string, json::value> entries;
    for (const auto& e : r.at("entries").as_array()) {
      for (const char* field : {"fileName", "isDirectory", "isFile"})
        EXPECT_TRUE(e.as_object().contains(field)) << field << " missing: " << str(e);
      entries[std::string(e.at("fileName").as_string())] = e;
    }
    CO_ASSERT_EQ(entries.size(), 3u);  // no "." or ".."
    EXPECT_EQ(entries["file.txt"].at("isFile"), true);
    EXPECT_EQ(entries["file.txt"].at("isDirectory"), false);
    EXPECT_EQ(entries["sub dir"].at("isDirectory"), true);
    EXPECT_EQ(entries["sub dir"].at("isFile"), false);
    EXPECT_TRUE(entries.contains("link"));

    json::object empty{{"path", dir / "sub dir"}};
    EXPECT_EQ(co_await expect_ok(*c, "fs/readDirectory", std::move(empty)), J(R"({"entries":[]})"));
    json::object missing{{"path", dir / "missing"}};
    co_await expect_error(*c, "fs/readDirectory", std::move(missing), kNotFound);
    json::object not_dir{{"path", dir / "file.txt"}};
    auto e = co_await c->call("fs/readDirectory", std::move(not_dir));
    EXPECT_FALSE(e) << "readDirectory of a regular file succeeded";
    c->close();
  });
}

TEST(ExecProtocol, FsRemove) {
  ExecServer server;
  TempDir dir;
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);
    // Defaults recursive: true and force: true.
    fs::create_directories(dir / "tree/a/b");
    write_file(dir / "tree/a/b/f", "x");
    json::object tree{{"path", dir / "tree"}};
    EXPECT_EQ(co_await expect_ok(*c, "fs/remove", std::move(tree)), json::object{});
    EXPECT_FALSE(fs::exists(dir / "tree"));
    json::object gone{{"path", dir / "tree"}};
    EXPECT_EQ(co_await expect_ok(*c, "fs/remove", std::move(gone)), json::object{});
    // force: false on a missing path: -32004.
    json::object strict{{"path", dir / "tree"}, {"force", false}};
    co_await expect_error(*c, "fs/remove", std::move(strict), kNotFound);
    // recursive: false on a non-empty directory fails and removes nothing.
    fs::create_directories(dir / "full/inner");
    json::object shallow{{"path", dir / "full"}, {"recursive", false}};
    auto e = co_await c->call("fs/remove", std::move(shallow));
    EXPECT_FALSE(e) << "non-recursive remove of a non-empty directory succeeded";
    EXPECT_TRUE(fs::exists(dir / "full/inner"));
    json::object empty_dir{{"path", dir / "full/inner"}, {"recursive", false}, {"force", false}};
    co_await expect_ok(*c, "fs/remove", std::move(empty_dir));
    EXPECT_FALSE(fs::exists(dir / "full/inner"));
    // A file, and a symlink (the link goes, its target stays).
    write_file(dir / "file", "x");
    fs::create_symlink(dir / "file", dir / "link");
    json::object link{{"path", dir / "link"}};
    co_await expect_ok(*c, "fs/remove", std::move(link));
    EXPECT_FALSE(fs::is_symlink(fs::symlink_status(dir / "link")));
    EXPECT_TRUE(fs::exists(dir / "file"));
    json::object file{{"path", dir / "file"}, {"force", false}};
    co_await expect_ok(*c, "fs/remove", std::move(file));
    EXPECT_FALSE(fs::exists(dir / "file"));
    c->close();
  });
}

TEST(ExecProtocol, FsCopy) {
  ExecServer server;
  TempDir dir;
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);
    std::string bytes("copy\0me\xff", 8);
    bytes += std::string(100000, 'z');
    write_file(dir / "src.bin", bytes);
    json::object file{{"sourcePath", dir / "src.bin"},
                      {"destinationPath", dir / "dst.bin"},
                      {"recursive", false}};
    EXPECT_EQ(co_await expect_ok(*c, "fs/copy", std::move(file)), json::object{});
    EXPECT_EQ(read_file(dir / "dst.bin"), bytes);

    fs::create_directories(dir / "tree/sub");
    write_file(dir / "tree/top.txt", "top");
    write_file(dir / "tree/sub/deep.txt", "deep");
    json::object flat{
        {"sourcePath", dir / "tree"}, {"destinationPath", dir / "copy-flat"}, {"recursive", false}};
    auto refused = co_await c->call("fs/copy", std::move(flat));
    EXPECT_FALSE(refused) << "a directory was copied without recursive: true";
    json::object deep{
        {"sourcePath", dir / "tree"}, {"destinationPath", dir / "copy"}, {"recursive", true}};
    co_await expect_ok(*c, "fs/copy", std::move(deep));
    EXPECT_EQ(read_file(dir / "copy/top.txt"), "top");
    EXPECT_EQ(read_file(dir / "copy/sub/deep.txt"), "deep");

    json::object missing{
        {"sourcePath", dir / "missing"}, {"destinationPath", dir / "x"}, {"recursive", false}};
    co_await expect_error(*c, "fs/copy", std::move(missing), kNotFound);
    json::object relative{
        {"sourcePath", "src.bin"}, {"destinationPath", dir / "y"}, {"recursive", false}};
    co_await expect_error(*c, "fs/copy", std::move(relative), kInvalidParams);
    c->close();
  });
}

TEST(ExecProtocol, FsCanonicalizeAndSandboxParam) {
  ExecServer server;
  TempDir dir;
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);
    fs::create_directories(dir / "real dir/inner");
    fs::create_symlink(dir / "real dir", dir / "alias");
    json::object p{{"path", dir / "alias/inner/../inner/."}};
    auto r = co_await expect_ok(*c, "fs/canonicalize", std::move(p));
    EXPECT_EQ(r, (json::object{{"path", file_uri(dir / "real dir/inner")}}));
    json::object missing{{"path", dir / "missing"}};
    co_await expect_error(*c, "fs/canonicalize", std::move(missing), kNotFound);

    // sandbox: null is accepted by every fs method; anything else is -32602.
    write_file(dir / "f", "x");
    json::object with_null{{"path", dir / "f"}, {"sandbox", nullptr}};
    co_await expect_ok(*c, "fs/readFile", std::move(with_null));
    const std::vector<std::string> methods{
        "fs/readFile", "fs/writeFile", "fs/createDirectory", "fs/getMetadata", "fs/readDirectory",
        "fs/remove",   "fs/copy",      "fs/canonicalize"};
    for (const auto& method : methods) {
      json::object q{{"path", dir / "f"},
                     {"sourcePath", dir / "f"},
                     {"destinationPath", dir / "g"},
                     {"dataBase64", "eA=="},
                     {"recursive", true}};
      q["sandbox"] = J(R"({"type":"readOnly"})");
      co_await expect_error(*c, method, std::move(q), kInvalidParams);
    }
    // Nothing was changed by the refused calls.
    EXPECT_EQ(read_file(dir / "f"), "x");
    EXPECT_FALSE(fs::exists(dir / "g"));
    c->close();
  });
}

// A FIFO, a device or a socket is refused with -32602 before anything opens it (opening a FIFO
// blocks until a writer comes), and a blocked fs call could not hold up other clients' fs calls
// anyway. On the first implementation the readFile opened the FIFO and blocked the one fs
// thread: the probe below then succeeded, and the second client's getMetadata got no answer.
TEST(ExecProtocol, FsSpecialFilesAreRefusedAndBlockNobody) {
  ExecServer server;
  TempDir dir;
  const std::string fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Held open for writing once the executor has opened the FIFO, so that its read blocks.
  int writer = -1;
  run_async([&]() -> asio::awaitable<void> {
    auto a = co_await ready_client(server);
    auto b = co_await ready_client(server);
    std::optional<jsonrpc::Reply> read_reply;
    asio::co_spawn(
        co_await asio::this_coro::executor,
        [&]() -> asio::awaitable<void> {
          json::object params{{"path", fifo}};
          read_reply = co_await a->call("fs/readFile", std::move(params), 60s);
        },
        asio::detached);
    // Until the readFile answered, or the executor opened the FIFO (then a writer can open it
    // without blocking).
    const std::function<bool()> answered_or_opened = [&] {
      if (read_reply) return true;
      writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      return writer >= 0;
    };
    CO_ASSERT_TRUE(co_await eventually(answered_or_opened, 20s));
    json::object tmp{{"path", "/tmp"}};
    auto metadata = co_await b->call("fs/getMetadata", std::move(tmp), 10s);
    EXPECT_TRUE(metadata.has_value())
        << "another client's fs/getMetadata got no answer while a FIFO was being read: "
        << metadata.error().message;
    if (writer >= 0) {
      ::close(writer);
      writer = -1;
    }
    const std::function<bool()> read_done = [&] { return read_reply.has_value(); };
    CO_ASSERT_TRUE(co_await eventually(read_done, 20s));
    CO_ASSERT_TRUE(!*read_reply);
    EXPECT_EQ(read_reply->error().code, kInvalidParams) << read_reply->error().message;

    // Writing to it, reading a device or a socket: refused the same way, nothing opened.
    json::object write{{"path", fifo}, {"dataBase64", "eA=="}};
    co_await expect_error(*a, "fs/writeFile", std::move(write), kInvalidParams);
    json::object device{{"path", "/dev/zero"}};
    co_await expect_error(*a, "fs/readFile", std::move(device), kInvalidParams);
    a->close();
    b->close();
  });
  if (writer >= 0) ::close(writer);
  // Releases an fs call still blocked in the executor (a writer would wait for a reader).
  const int release = ::open(fifo.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (release >= 0) ::close(release);
}

// ---------------------------------------------------------------------------------------------
// Scenario 20: malformed input on one connection, with a second client streaming a process.

constexpr char kStream[] = "stream";

// The healthy client: it streams a process for the whole test. check() shows that it, its
// process and the executor still work after something was done to another connection.
struct Healthy {
  ExecServer& server;
  Client client;

  asio::awaitable<void> check(std::string after) {
    EXPECT_TRUE(process_alive(server.pid()))
        << "the executor died after " << after << "; its log:\n"
        << server.log();
    auto status = co_await client->call("environment/status", J("{}"));
    EXPECT_TRUE(status && *status == J(R"({"status":"ready"})"))
        << "the healthy client's call failed after " << after;
    const auto seen = client->events(kStream).size();
    EXPECT_TRUE(co_await eventually([&] { return client->events(kStream).size() > seen; }, 10s))
        << "the healthy client's stream stalled after " << after;
    EXPECT_FALSE(client->closed()) << "the healthy client was disconnected after " << after;
    EXPECT_TRUE(find_event(*client, kStream, "process/exited") == std::nullopt)
        << "the streaming process ended after " << after;
  }
};

asio::awaitable<Healthy> start_healthy(ExecServer& server, const std::string& marker) {
  auto client = co_await ready_client(server);
  co_await expect_ok(
      *client, "process/start",
      sh_start(kStream, "i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.02; done", false,
               marker));
  EXPECT_TRUE(co_await client->wait_output(kStream, "tick-3\n")) << "the stream did not start";
  co_return Healthy{server, client};
}

// A bare WebSocket, for input TestClient cannot send. Every operation on it ends within 60 s
// (the TCP stream's deadline closes the socket).
asio::awaitable<jsonrpc::WebSocket> raw_ws(unsigned short port) {
  auto ws = co_await ws_connect(port);
  beast::get_lowest_layer(ws).expires_after(60s);
  co_return ws;
}

// The next message, or how the connection ended: the server's close code when it sent one.
struct Next {
  std::optional<std::string> text;
  std::optional<std::uint16_t> close_code;
  std::string error;
};

asio::awaitable<Next> read_next(jsonrpc::WebSocket& ws) {
  beast::flat_buffer buffer;
  boost::system::error_code ec;
  co_await ws.async_read(buffer, asio::redirect_error(asio::use_awaitable, ec));
  Next next;
  if (!ec) {
    next.text = beast::buffers_to_string(buffer.data());
  } else {
    next.error = ec.message();
    // Set once a close frame arrived, even if answering it failed afterwards.
    if (const auto code = static_cast<std::uint16_t>(ws.reason().code); code != 0)
      next.close_code = code;
  }
  co_return next;
}

asio::awaitable<boost::system::error_code> write_text(jsonrpc::WebSocket& ws, std::string text,
                                                      bool binary = false) {
  ws.binary(binary);
  boost::system::error_code ec;
  co_await ws.async_write(asio::buffer(text), asio::redirect_error(asio::use_awaitable, ec));
  co_return ec;
}

// Runs `body` against an executor with a healthy streaming client, then checks no process of
// the healthy client outlived the executor.
void with_healthy(const std::string& name,
                  const std::function<asio::awaitable<void>(ExecServer&, Healthy&)>& body) {
  const std::string marker = unique("proto20-" + name);
  {
    ExecServer server;
    run_async([&]() -> asio::awaitable<void> {
      auto healthy = co_await start_healthy(server, marker);
      co_await body(server, healthy);
      co_await healthy.check("the last malformed input");
      healthy.client->close();
    });
  }
  EXPECT_TRUE(wait_gone(marker)) << "processes left: " << marker;
}

TEST(ExecMalformed, NonJsonTextIsAParseErrorAndKeepsTheConnection) {
  with_healthy("parse", [](ExecServer& server, Healthy& healthy) -> asio::awaitable<void> {
    auto bad = co_await TestClient::connect(server.port());
    const std::vector<std::string> inputs{
        "this is not json",
        "{",
        "",
        "   ",
        R"({"jsonrpc":"2.0","id":1,"method":"environment/status")",
        "{\"id\":1,}",
        "\x01\x02\x03"};
    for (const auto& text : inputs) {
      auto r = co_await send_for_unmatched(*bad, text);
      expect_error_response(r, std::nullopt, kParseError, "non-JSON '" + text + "'");
      co_await healthy.check("non-JSON text '" + text + "'");
    }
    // The connection was kept: it initializes and works.
    co_await bad->initialize();
    auto status = co_await expect_ok(*bad, "environment/status", J("{}"));
    EXPECT_EQ(status, J(R"({"status":"ready"})"));
    bad->close();
  });
}

TEST(ExecMalformed, JsonThatIsNotAnObjectIsAnInvalidRequest) {
  with_healthy("notobject", [](ExecServer& server, Healthy& healthy) -> asio::awaitable<void> {
    auto bad = co_await ready_client(server);
    const std::vector<std::string> inputs{
        "[]",
        "[1,2]",
        R"([{"jsonrpc":"2.0","id":1,"method":"environment/status"}])",  // no batches
        "42",
        R"("a string")",
        "null",
        "true"};
    for (const auto& text : inputs) {
      auto r = co_await send_for_unmatched(*bad, text);
      expect_error_response(r, std::nullopt, kInvalidRequest, text);
    }
    co_await healthy.check("JSON that is not an object");
    auto status = co_await expect_ok(*bad, "environment/status", J("{}"));
    EXPECT_EQ(status, J(R"({"status":"ready"})"));
    bad->close();
  });
}

TEST(ExecMalformed, WrongTypesAreErrorsAndKeepTheConnection) {
  with_healthy("types", [](ExecServer& server, Healthy& healthy) -> asio::awaitable<void> {
    auto bad = co_await ready_client(server);
    // Envelope errors: -32600.
    const std::vector<std::string> envelope{
        R"({"jsonrpc":"2.0","id":"wt-1","method":42})",
        R"({"jsonrpc":"1.0","id":"wt-2","method":"environment/status"})",
        R"({"jsonrpc":2,"id":"wt-3","method":"environment/status"})",
        R"({"jsonrpc":"2.0","id":true,"method":"environment/status"})",
        R"({"jsonrpc":"2.0","id":{"a":1},"method":"environment/status"})",
        R"({"jsonrpc":"2.0","id":[1],"method":"environment/status"})",
        R"({})",
        R"({"jsonrpc":"2.0","id":"wt-4","result":1,"error":{"code":1,"message":"m"}})",
        R"({"jsonrpc":"2.0","method":null})",
    };
    for (const auto& text : envelope) {
      auto r = co_await send_for_unmatched(*bad, text);
      CO_ASSERT_TRUE(r.has_value());
      CO_ASSERT_TRUE(!r->reply);
      EXPECT_EQ(r->reply.error().code, kInvalidRequest) << text;
    }
    co_await healthy.check("envelopes with wrong types");
    // Params errors: -32602, answered with the request's id.
    const std::vector<std::string> params{
        R"({"jsonrpc":"2.0","id":"wt-10","method":"process/start","params":"argv"})",
        R"({"jsonrpc":"2.0","id":"wt-11","method":"process/start","params":{"processId":"p","argv":5}})",
        R"({"jsonrpc":"2.0","id":"wt-12","method":"process/read","params":{"processId":["x"]}})",
        R"({"jsonrpc":"2.0","id":"wt-13","method":"process/read","params":{"processId":"x","waitMs":"1"}})",
        R"({"jsonrpc":"2.0","id":"wt-14","method":"process/write","params":{"processId":"x","chunk":5}})",
        R"({"jsonrpc":"2.0","id":"wt-15","method":"process/terminate","params":[]})",
    };
    for (const auto& text : params) {
      const json::object request = J(text).as_object();
      auto r = co_await send_for_unmatched(*bad, text);
      expect_error_response(r, request.at("id"), kInvalidParams, text);
    }
    co_await healthy.check("params with wrong types");
    auto status = co_await expect_ok(*bad, "environment/status", J("{}"));
    EXPECT_EQ(status, J(R"({"status":"ready"})"));
    bad->close();
  });
}

TEST(ExecMalformed, OutOfRangeIdsAreInvalidAndExtremeValidIdsAreEchoed) {
  with_healthy("ids", [](ExecServer& server, Healthy& healthy) -> asio::awaitable<void> {
    auto bad = co_await ready_client(server);
    const std::vector<std::string> huge{
        R"({"jsonrpc":"2.0","id":18446744073709551616,"method":"environment/status"})",  // 2^64
        R"({"jsonrpc":"2.0","id":18446744073709551615,"method":"environment/status"})",  // 2^64-1
        R"({"jsonrpc":"2.0","id":9223372036854775808,"method":"environment/status"})",   // 2^63
        R"({"jsonrpc":"2.0","id":-9223372036854775809,"method":"environment/status"})",
        R"({"jsonrpc":"2.0","id":1e30,"method":"environment/status"})",
        R"({"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"environment/status"})",
    };
    for (const auto& text : huge) {
      auto r = co_await send_for_unmatched(*bad, text);
      expect_error_response(r, std::nullopt, kInvalidRequest, text);
    }
    co_await healthy.check("out-of-range ids");
    // The extremes of the valid range, and a long string id, come back as sent.
    std::vector<json::value> ids{json::value(std::numeric_limits<std::int64_t>::max()),
                                 json::value(std::numeric_limits<std::int64_t>::min()),
                                 json::value(0), json::value(std::string(100000, 'i'))};
    for (auto& id : ids) {
      json::object request{{"jsonrpc", "2.0"}, {"method", "environment/status"}};
      request["id"] = id;
      auto response = co_await bad->raw_call(std::move(request));
      CO_ASSERT_TRUE(response.id.has_value());
      EXPECT_EQ(jsonrpc::to_json(*response.id), id);
      EXPECT_TRUE(response.reply && *response.reply == J(R"({"status":"ready"})"));
    }
    bad->close();
  });
}

TEST(ExecMalformed, FractionalAndNullIdsAreInvalidRequests) {
  with_healthy("fraction", [](ExecServer& server, Healthy& healthy) -> asio::awaitable<void> {
    auto bad = co_await ready_client(server);
    const std::vector<std::string> inputs{
        R"({"jsonrpc":"2.0","id":1.5,"method":"environment/status"})",
        R"({"jsonrpc":"2.0","id":-2.25,"method":"environment/status"})",
        R"({"jsonrpc":"2.0","id":0.1,"method":"environment/status"})",
        R"({"jsonrpc":"2.0","id":null,"method":"environment/status"})",
        // Not run: a null id is not a request id.
        R"({"jsonrpc":"2.0","id":null,"method":"process/start","params":{"processId":"null-id","argv":["true"],"cwd":"/tmp"}})",
        R"({"id":2.5,"method":"process/start","params":{"processId":"frac-id","argv":["true"],"cwd":"/tmp"}})",
    };
    for (const auto& text : inputs) {
      auto r = co_await send_for_unmatched(*bad, text);
      expect_error_response(r, std::nullopt, kInvalidRequest, text);
      co_await healthy.check(text);
    }
    co_await expect_error(*bad, "process/read", J(R"({"processId":"null-id"})"), kInvalidRequest);
    co_await expect_error(*bad, "process/read", J(R"({"processId":"frac-id"})"), kInvalidRequest);
    bad->close();
  });
}

TEST(ExecMalformed, InvalidBase64IsRefusedAndWritesNothing) {
  with_healthy("base64", [](ExecServer& server, Healthy& healthy) -> asio::awaitable<void> {
    auto bad = co_await ready_client(server);
    co_await expect_ok(*bad, "process/start", sh_start("cat", "exec cat", true));
    const std::vector<std::string> chunks{"!!!!", "aGk",    "aGkK=", "aG\nkK", "aGkK aGkK",
                                          "====", "aGkK\n", "aG k",  " aGk",   "aG-_"};
    for (const auto& chunk : chunks) {
      json::object w{{"processId", "cat"}};
      w["chunk"] = chunk;
      co_await expect_error(*bad, "process/write", std::move(w), kInvalidParams);
    }
    co_await healthy.check("invalid base64");
    // Only the valid write reaches the process.
    json::object ok_write{{"processId", "cat"}, {"chunk", b64("valid\n")}};
    co_await expect_ok(*bad, "process/write", std::move(ok_write));
    EXPECT_TRUE(co_await bad->wait_output("cat", "valid\n"));
    co_await expect_ok(*bad, "process/terminate", J(R"({"processId":"cat"})"));
    EXPECT_TRUE(co_await bad->wait_closed("cat"));
    EXPECT_EQ(bad->output("cat"), "valid\n");
    bad->close();
  });
}

// '=' is padding only: anywhere else the chunk is invalid base64 (EVP_DecodeBlock alone would
// accept it).
TEST(ExecMalformed, MisplacedBase64PaddingIsRefused) {
  with_healthy("padding", [](ExecServer& server, Healthy& healthy) -> asio::awaitable<void> {
    auto bad = co_await ready_client(server);
    co_await expect_ok(*bad, "process/start", sh_start("cat", "exec cat", true));
    const std::vector<std::string> chunks{"a===", "aG=k", "a=Gk", "aGkK====", "=aGk", "aG==aGkK"};
    for (const auto& chunk : chunks) {
      json::object w{{"processId", "cat"}};
      w["chunk"] = chunk;
      co_await expect_error(*bad, "process/write", std::move(w), kInvalidParams);
    }
    co_await healthy.check("misplaced base64 padding");
    json::object ok_write{{"processId", "cat"}, {"chunk", b64("valid\n")}};
    co_await expect_ok(*bad, "process/write", std::move(ok_write));
    EXPECT_TRUE(co_await bad->wait_output("cat", "valid\n"));
    EXPECT_EQ(bad->output("cat"), "valid\n") << "bytes of refused writes reached the process";
    co_await expect_ok(*bad, "process/terminate", J(R"({"processId":"cat"})"));
    EXPECT_TRUE(co_await bad->wait_closed("cat"));
    bad->close();
  });
}

TEST(ExecMalformed, FsParamErrorsDoNotHurtTheServer) {
  with_healthy("fsparams", [](ExecServer& server, Healthy& healthy) -> asio::awaitable<void> {
    auto bad = co_await ready_client(server);
    const std::vector<std::string> params{
        R"({"jsonrpc":"2.0","id":"fs-1","method":"fs/readFile","params":{"path":5}})",
        R"({"jsonrpc":"2.0","id":"fs-2","method":"fs/remove","params":{"path":"/nonexistent-proto","force":"no"}})",
        R"({"jsonrpc":"2.0","id":"fs-3","method":"fs/writeFile","params":{"path":"/tmp/proto-never-written","dataBase64":"!!"}})",
        R"({"jsonrpc":"2.0","id":"fs-4","method":"fs/copy","params":"x"})",
        R"({"jsonrpc":"2.0","id":"fs-5","method":"fs/createDirectory","params":{"path":["/tmp"]}})",
    };
    for (const auto& text : params) {
      const json::object request = J(text).as_object();
      auto r = co_await send_for_unmatched(*bad, text);
      expect_error_response(r, request.at("id"), kInvalidParams, text);
      co_await healthy.check(text);
    }
    EXPECT_FALSE(fs::exists("/tmp/proto-never-written"));
    bad->close();
  });
}

TEST(ExecMalformed, BinaryFrameClosesTheConnectionWith1003) {
  with_healthy("binary", [](ExecServer& server, Healthy& healthy) -> asio::awaitable<void> {
    auto ws = co_await raw_ws(server.port());
    auto ec = co_await write_text(
        ws, R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"clientName":"b"}})", true);
    EXPECT_FALSE(ec) << ec.message();
    auto next = co_await read_next(ws);
    EXPECT_FALSE(next.text) << "a binary frame was answered: " << *next.text;
    EXPECT_EQ(next.close_code, std::optional<std::uint16_t>(1003)) << next.error;
    co_await healthy.check("a binary frame");
  });
}

TEST(ExecMalformed, InvalidUtf8DoesNotHurtTheServer) {
  with_healthy("utf8", [](ExecServer& server, Healthy& healthy) -> asio::awaitable<void> {
    const std::vector<std::string> inputs{
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"environment/"
        "status\",\"params\":{\"x\":\"\xff\xfe\"}}",
        "\xc3\x28",
        "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"environment/\xed\xa0\x80\"}",  // a surrogate
    };
    for (const auto& text : inputs) {
      auto ws = co_await raw_ws(server.port());
      auto ec = co_await write_text(ws, text);
      EXPECT_FALSE(ec) << ec.message();
      // The server may close the connection (WebSocket requires UTF-8 text) or answer an error.
      auto next = co_await read_next(ws);
      if (next.text) {
        auto answer = J(*next.text);
        EXPECT_TRUE(answer.as_object().contains("error")) << *next.text;
        boost::system::error_code ignored;
        co_await ws.async_close(beast::websocket::close_code::normal,
                                asio::redirect_error(asio::use_awaitable, ignored));
      }
      co_await healthy.check("invalid UTF-8");
    }
  });
}

TEST(ExecMalformed, FrameOverTheLimitClosesTheConnectionWith1009) {
  with_healthy("big", [](ExecServer& server, Healthy& healthy) -> asio::awaitable<void> {
    auto ws = co_await raw_ws(server.port());
    ws.auto_fragment(false);  // one 65 MiB frame
    const std::string head =
        R"({"jsonrpc":"2.0","id":1,"method":"environment/status","params":{"pad":")";
    const std::string tail = R"("}})";
    std::string big = head;
    big.append(65 * 1024 * 1024 - head.size() - tail.size(), 'x');
    big += tail;
    // The server stops reading at the frame header: read its close while the write goes on.
    auto both = co_await (write_text(ws, std::move(big)) && read_next(ws));
    const auto write_ec = std::get<0>(both);
    const auto next = std::get<1>(both);
    EXPECT_FALSE(next.text) << "an oversized frame was answered";
    EXPECT_EQ(next.close_code, std::optional<std::uint16_t>(1009))
        << next.error << " / write: " << write_ec.message();
    co_await healthy.check("a 65 MiB frame");
    // A message under the limit still gets through on a new connection.
    auto fresh = co_await TestClient::connect(server.port());
    co_await fresh->initialize();
    json::object padded{{"pad", std::string(8 * 1024 * 1024, 'y')}};
    auto status = co_await expect_ok(*fresh, "environment/status", std::move(padded));
    EXPECT_EQ(status, J(R"({"status":"ready"})"));
    fresh->close();
  });
}

// ---------------------------------------------------------------------------------------------
// Scenario 38: both dialects on one executor.

// A codex 0.169 client on TestClient: requests without "jsonrpc" and with string ids.
struct CodexClient {
  Client c;
  int next_id = 1;

  asio::awaitable<jsonrpc::Reply> call(std::string method, json::value params) {
    const std::string id = "codex-" + std::to_string(next_id++);
    json::object request;
    request["id"] = id;
    request["method"] = method;
    request["params"] = std::move(params);
    auto response = co_await c->raw_call(std::move(request));
    EXPECT_TRUE(response.id && jsonrpc::to_json(*response.id) == json::value(id))
        << method << ": the string id did not come back";
    co_return std::move(response.reply);
  }

  asio::awaitable<json::value> ok(std::string method, json::value params) {
    const std::string what = method + " " + str(params);
    auto reply = co_await call(std::move(method), std::move(params));
    if (!reply) {
      ADD_FAILURE() << what << " failed (" << reply.error().code << "): " << reply.error().message;
      co_return json::value();
    }
    co_return std::move(*reply);
  }

  // Reads a process to its end the way codex catches up: from the highest seq seen, deduplicating.
  struct Drained {
    std::string stdout_bytes;
    json::value exit_code;
    bool closed = false;
  };
  asio::awaitable<Drained> drain(std::string process_id) {
    Drained drained;
    std::int64_t highest = 0;
    for (int round = 0; round < 200 && !drained.closed; ++round) {
      json::object p{{"processId", process_id}, {"maxBytes", nullptr}, {"waitMs", 1000}};
      p["afterSeq"] = highest;
      auto r = co_await ok("process/read", std::move(p));
      if (!r.is_object()) break;
      for (const auto& chunk : r.at("chunks").as_array()) {
        const auto seq = chunk.at("seq").to_number<std::int64_t>();
        if (seq <= highest) continue;
        highest = seq;
        if (chunk.at("stream") == "stdout")
          drained.stdout_bytes += unb64(chunk.at("chunk").as_string());
      }
      drained.exit_code = r.at("exitCode");
      drained.closed = r.at("closed").as_bool();
    }
    EXPECT_TRUE(drained.closed) << process_id << " did not close";
    co_return drained;
  }
};

bool is_uuid(const json::value& v) {
  static const std::regex kUuid("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
                                std::regex::icase);
  return v.is_string() && std::regex_match(std::string(v.as_string()), kUuid);
}

TEST(ExecDialects, AprilAndCodexClientsOnOneExecutor) {
  ExecServer::Options options;
  options.extra_env = {"HOME=/tmp", "TMPDIR=/tmp"};
  ExecServer server(options);
  TempDir dir;
  const std::string work = dir / "a b";
  fs::create_directory(work);
  const std::string marker = unique("proto38-dialects");
  run_async([&]() -> asio::awaitable<void> {
    // April: jsonrpc present, integer ids, plain paths, no writeId; it ignores sessionId.
    auto april = co_await TestClient::connect(server.port());
    co_await expect_ok(*april, "initialize", J(R"({"clientName":"april"})"));
    april->peer().notify("initialized", json::object{});

    // codex 0.169: exactly the codex example of docs/exec-protocol.md "Example session".
    auto codex_connection = co_await TestClient::connect(server.port());
    CodexClient codex{codex_connection};
    auto init =
        co_await codex.ok("initialize", J(R"({"clientName":"codex","resumeSessionId":null})"));
    CO_ASSERT_TRUE(init.is_object());
    EXPECT_TRUE(is_uuid(init.at("sessionId"))) << str(init);
    CO_ASSERT_TRUE(init.as_object().contains("environmentInfo"));
    const auto& info = init.at("environmentInfo");
    EXPECT_EQ(info.at("platformOs"), "linux");
    EXPECT_EQ(info.at("userHomeDir"), "file:///tmp");  // HOME of the executor
    EXPECT_EQ(info.at("tempDir"), "file:///tmp");
    EXPECT_EQ(info.at("capabilities"), json::object{});
    codex.c->send_text(R"({"method":"initialized","params":{}})");
    EXPECT_EQ(co_await codex.ok("environment/status", J("{}")), J(R"({"status":"ready"})"));
    EXPECT_EQ(co_await codex.ok("environment/info", J("{}")), info);

    // Both use process id "p1": every connection has its own process table.
    json::object april_start{
        {"processId", "p1"},
        {"argv",
         json::array{"/bin/sh", "-c",
                     "pwd; IFS= read -r x; echo got:$x; IFS= read -r y; echo got:$y", marker}},
        {"env", json::object{{"PATH", "/usr/bin:/bin"}}},
        {"tty", false},
        {"pipeStdin", true},
        {"arg0", nullptr}};
    april_start["cwd"] = work;
    EXPECT_EQ(co_await expect_ok(*april, "process/start", std::move(april_start)),
              J(R"({"processId":"p1","sandboxType":"none"})"));

    auto codex_start = codex_envpolicy_start(
        "p1", file_uri(work),
        json::array{"sh", "-c", "pwd; for i in 1 2 3; do IFS= read -r l; printf '%s|' \"$l\"; done",
                    marker});
    EXPECT_EQ(co_await codex.ok("process/start", std::move(codex_start)),
              J(R"({"processId":"p1","sandboxType":"none"})"));

    // codex writes with writeId "1", "2", ...; a repeated id is accepted and writes nothing.
    struct Write {
      const char* id;
      const char* bytes;
    };
    const std::vector<Write> writes{{"1", "a\n"}, {"2", "b\n"}, {"2", "DUPLICATE\n"}, {"3", "c\n"}};
    for (const auto& w : writes) {
      json::object p{{"processId", "p1"}, {"chunk", b64(w.bytes)}, {"writeId", w.id}};
      EXPECT_EQ(co_await codex.ok("process/write", std::move(p)), J(R"({"status":"accepted"})"));
    }
    // April writes without writeId: the same bytes twice are written twice.
    for (int i = 0; i < 2; ++i) {
      json::object p{{"processId", "p1"}, {"chunk", b64("same\n")}};
      EXPECT_EQ(co_await expect_ok(*april, "process/write", std::move(p)),
                J(R"({"status":"accepted"})"));
    }

    auto drained = co_await codex.drain("p1");
    EXPECT_EQ(drained.stdout_bytes, work + "\na|b|c|");
    EXPECT_EQ(drained.exit_code, 0);
    EXPECT_TRUE(co_await april->wait_closed("p1"));
    EXPECT_EQ(april->output("p1"), work + "\ngot:same\ngot:same\n");

    // process/signal interrupts, in the codex dialect.
    auto sleeper = codex_envpolicy_start(
        "sleeper", "file:///tmp", json::array{"sh", "-c", "echo up; sleep 301.38001", marker});
    co_await codex.ok("process/start", std::move(sleeper));
    EXPECT_TRUE(co_await codex.c->wait_output("sleeper", "up\n"));
    EXPECT_EQ(
        co_await codex.ok("process/signal", J(R"({"processId":"sleeper","signal":"interrupt"})")),
        json::object{});
    auto interrupted = co_await codex.drain("sleeper");
    EXPECT_EQ(interrupted.exit_code, 128 + SIGINT);

    // Neither sees the other's processes.
    co_await expect_error(*april, "process/read", J(R"({"processId":"sleeper"})"), kInvalidRequest,
                          "unknown process id sleeper");
    auto foreign = co_await codex.call("process/write",
                                       J(R"({"processId":"p1","chunk":"eA==","writeId":"4"})"));
    EXPECT_TRUE(foreign && *foreign == J(R"({"status":"stdinClosed"})"));

    // The April client's responses carry jsonrpc; it never needed sessionId.
    april->close();
    codex.c->close();
  });
  EXPECT_TRUE(wait_gone(marker)) << "processes left: " << marker;
}

// Spellings of `work` (TempDir/"a b") in both dialects.
std::vector<std::string> same_directory_forms(const TempDir& dir, const std::string& work) {
  const std::string encoded = file_uri(work).substr(std::string("file://").size());
  const std::string dir_encoded = file_uri(dir.path.string()).substr(7);
  return {
      work,                                    // plain, with a space
      "file://" + encoded,                     // percent-encoded
      "file://localhost" + encoded,            // localhost host
      "FILE://" + encoded,                     // the scheme is case-insensitive
      "file:" + encoded,                       // no authority
      "file://" + dir_encoded + "/%61%20%62",  // encoded unreserved characters
  };
}

// The same with dot segments, which the server removes.
std::vector<std::string> dot_segment_forms(const TempDir& dir) {
  const std::string dir_encoded = file_uri(dir.path.string()).substr(7);
  return {
      "file://" + dir_encoded + "/other/../a%20b",
      "file://" + dir_encoded + "/./a%20b/.",
      "file://localhost" + dir_encoded + "/other/./../a%20b",
      "file:" + dir_encoded + "/other/../../" + dir.path.filename().string() + "/a%20b",
  };
}

// Starts `pwd` in each cwd and expects `work`.
asio::awaitable<void> expect_pwd(TestClient& c, std::vector<std::string> cwds, std::string work) {
  static int n = 0;
  for (const auto& cwd : cwds) {
    const std::string id = "pwd-" + std::to_string(n++);
    json::object start = sh_start(id, "pwd");
    start["cwd"] = cwd;
    auto started = co_await expect_ok(c, "process/start", std::move(start));
    if (started.is_null()) continue;  // reported
    EXPECT_TRUE(co_await c.wait_closed(id));
    EXPECT_EQ(c.output(id), work + "\n") << cwd;
  }
}

struct BadPath {
  std::string path;
  int code;
  std::string message;  // exact when set
  std::string needle;   // else contained when set
};

// A foreign host: -32600 with the spec's text; a foreign scheme: -32602; relative or empty: -32602.
std::vector<BadPath> bad_paths() {
  return {
      {"file://otherhost/tmp", kInvalidRequest, "'file://otherhost/tmp' is invalid on 'linux'", ""},
      {"http://x/y", kInvalidParams, "", "unsupported path URI scheme `http`"},
      {"https://localhost/tmp", kInvalidParams, "", "unsupported path URI scheme `https`"},
      {"tmp/relative", kInvalidParams, "", ""},
      {"", kInvalidParams, "", ""},
      {"./x", kInvalidParams, "", ""},
      {"file:relative", kInvalidParams, "", ""},
  };
}

TEST(ExecDialects, PathFormsForProcessCwd) {
  ExecServer server;
  TempDir dir;
  const std::string work = dir / "a b";
  fs::create_directory(work);
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);
    co_await expect_pwd(*c, same_directory_forms(dir, work), work);
    const auto bad = bad_paths();
    for (const auto& b : bad) {
      json::object start = sh_start("never", "true");
      start["cwd"] = b.path;
      auto e = co_await expect_error(*c, "process/start", std::move(start), b.code, b.message);
      if (!b.needle.empty()) {
        EXPECT_TRUE(contains(e.message, b.needle)) << e.message;
      }
    }
    c->close();
  });
}

// Dot segments are removed from file: URIs (Boost.URL 1.81 needs a re-parse after
// normalize_path(), see protocol.cpp).
TEST(ExecDialects, DotSegmentsInFileUrisAreRemoved) {
  ExecServer server;
  TempDir dir;
  const std::string work = dir / "a b";
  fs::create_directory(work);
  fs::create_directory(dir / "other");
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);
    co_await expect_pwd(*c, dot_segment_forms(dir), work);
    c->close();
  });
}

TEST(ExecDialects, PathFormsForFsPaths) {
  ExecServer server;
  TempDir dir;
  const std::string work = dir / "a b";
  fs::create_directory(work);
  fs::create_directory(dir / "other");
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server);
    const std::string expected_uri = file_uri(work);
    auto forms = same_directory_forms(dir, work);
    for (auto& form : dot_segment_forms(dir)) forms.push_back(std::move(form));
    for (const auto& form : forms) {
      json::object canon{{"path", form}};
      auto r = co_await expect_ok(*c, "fs/canonicalize", std::move(canon));
      EXPECT_EQ(r, (json::object{{"path", expected_uri}})) << form;
      json::object meta{{"path", form}};
      auto m = co_await expect_ok(*c, "fs/getMetadata", std::move(meta));
      EXPECT_TRUE(m.is_object() && m.at("isDirectory") == true) << form;
    }
    // writeFile / copy through URIs.
    const std::string encoded = expected_uri.substr(7);
    json::object w{{"path", "file://" + encoded + "/f%201.txt"}, {"dataBase64", b64("uri\n")}};
    co_await expect_ok(*c, "fs/writeFile", std::move(w));
    EXPECT_EQ(read_file(work + "/f 1.txt"), "uri\n");
    json::object cp{{"sourcePath", "file://localhost" + encoded + "/f%201.txt"},
                    {"destinationPath", work + "/f 2.txt"},
                    {"recursive", false}};
    co_await expect_ok(*c, "fs/copy", std::move(cp));
    EXPECT_EQ(read_file(work + "/f 2.txt"), "uri\n");

    const auto bad = bad_paths();
    for (const auto& b : bad) {
      // Each path field.
      std::vector<std::pair<std::string, json::object>> calls;
      calls.emplace_back("fs/getMetadata", json::object{{"path", b.path}});
      calls.emplace_back("fs/writeFile", json::object{{"path", b.path}, {"dataBase64", "eA=="}});
      calls.emplace_back("fs/copy", json::object{{"sourcePath", b.path},
                                                 {"destinationPath", work + "/never"},
                                                 {"recursive", false}});
      calls.emplace_back("fs/copy", json::object{{"sourcePath", work + "/f 1.txt"},
                                                 {"destinationPath", b.path},
                                                 {"recursive", false}});
      for (auto& call : calls) {
        auto e = co_await expect_error(*c, call.first, std::move(call.second), b.code, b.message);
        if (!b.needle.empty()) {
          EXPECT_TRUE(contains(e.message, b.needle)) << e.message;
        }
      }
    }
    EXPECT_FALSE(fs::exists(work + "/never"));
    c->close();
  });
}

// envPolicy, checked with `env -0` against the executor's own environment (/proc/<pid>/environ).
class ExecEnvPolicy : public ::testing::Test {
 protected:
  static ExecServer::Options options() {
    ExecServer::Options o;
    o.extra_env = {"MY_API_KEY=1",  "MY_SECRET_X=2", "TETHER_TEST_PLAIN=3",
                   "lower_token=4", "LANG=C.UTF-8",  "HOME=/tmp",
                   "PROTO38_A=a",   "PROTO38_B=b",   "Other_Mixed_Key=m"};
    return o;
  }
  ExecEnvPolicy() : server_(options()), server_env_(process_environment(server_.pid())) {}

  using Env = std::map<std::string, std::string>;
  template <class Keep>
  Env filtered(Keep keep) const {
    Env out;
    for (const auto& [k, v] : server_env_)
      if (keep(k)) out.emplace(k, v);
    return out;
  }
  static bool default_excluded(const std::string& name) {
    std::string upper;
    for (char ch : name) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return contains(upper, "KEY") || contains(upper, "SECRET") || contains(upper, "TOKEN");
  }

  ExecServer server_;
  Env server_env_;
};

json::object env_start(const std::string& id, const std::string& policy, json::object env) {
  json::object p{{"processId", id},    {"argv", json::array{"/usr/bin/env", "-0"}},
                 {"cwd", "/tmp"},      {"tty", false},
                 {"pipeStdin", false}, {"arg0", nullptr}};
  if (!policy.empty()) p["envPolicy"] = J(policy);
  p["env"] = std::move(env);
  return p;
}

asio::awaitable<std::map<std::string, std::string>> child_env(TestClient& c, json::object params) {
  const std::string id(params.at("processId").as_string());
  const std::string what = str(params);
  co_await expect_ok(c, "process/start", std::move(params));
  const bool closed = co_await c.wait_closed(id);
  if (!closed) ADD_FAILURE() << "env did not finish: " << what;
  co_return parse_env(c.output(id));
}

TEST_F(ExecEnvPolicy, InheritModesDefaultExcludesExcludeIncludeOnlySetAndEnv) {
  // The executor saw what we gave it.
  ASSERT_EQ(server_env_["MY_API_KEY"], "1");
  ASSERT_EQ(server_env_["PROTO38_A"], "a");
  ASSERT_EQ(server_env_["HOME"], "/tmp");
  ASSERT_EQ(server_env_["LANG"], "C.UTF-8");
  run_async([&]() -> asio::awaitable<void> {
    auto c = co_await ready_client(server_);
    const std::set<std::string> core{"HOME",  "LANG", "LC_ALL", "LOGNAME", "PATH",
                                     "SHELL", "TERM", "TMPDIR", "TZ",      "USER"};
    const auto is_core = [&](const std::string& k) { return core.contains(k); };

    // Without envPolicy, env is the entire environment.
    auto only = co_await child_env(*c, env_start("no-policy", "", J(R"({"X":"1"})").as_object()));
    EXPECT_EQ(env_dump(only), "X=1\n");

    // inherit core: only the core names that are set.
    auto core_env = co_await child_env(
        *c,
        env_start(
            "core",
            R"({"inherit":"core","ignoreDefaultExcludes":true,"exclude":[],"set":{},"includeOnly":[]})",
            json::object()));
    EXPECT_EQ(env_dump(core_env), env_dump(filtered(is_core)));
    EXPECT_EQ(core_env["HOME"], "/tmp");
    EXPECT_EQ(core_env["LANG"], "C.UTF-8");
    EXPECT_FALSE(core_env.contains("PROTO38_A"));

    // inherit all with the default excludes (*KEY*, *SECRET*, *TOKEN*, case-insensitive).
    auto all = co_await child_env(
        *c,
        env_start(
            "all",
            R"({"inherit":"all","ignoreDefaultExcludes":false,"exclude":[],"set":{},"includeOnly":[]})",
            json::object()));
    EXPECT_EQ(env_dump(all),
              env_dump(filtered([](const std::string& k) { return !default_excluded(k); })));
    for (const char* gone : {"MY_API_KEY", "MY_SECRET_X", "lower_token", "Other_Mixed_Key"})
      EXPECT_FALSE(all.contains(gone)) << gone;
    EXPECT_EQ(all["TETHER_TEST_PLAIN"], "3");

    // ... and without them: everything.
    auto everything = co_await child_env(
        *c,
        env_start(
            "everything",
            R"({"inherit":"all","ignoreDefaultExcludes":true,"exclude":[],"set":{},"includeOnly":[]})",
            json::object()));
    EXPECT_EQ(env_dump(everything), env_dump(server_env_));

    // inherit none starts empty.
    auto none = co_await child_env(
        *c,
        env_start(
            "none",
            R"({"inherit":"none","ignoreDefaultExcludes":true,"exclude":[],"set":{},"includeOnly":[]})",
            json::object()));
    EXPECT_EQ(env_dump(none), "");

    // exclude globs.
    auto excluded = co_await child_env(
        *c,
        env_start(
            "exclude",
            R"({"inherit":"all","ignoreDefaultExcludes":true,"exclude":["PROTO38_*","LANG"],"set":{},"includeOnly":[]})",
            json::object()));
    EXPECT_EQ(env_dump(excluded), env_dump(filtered([](const std::string& k) {
                return !k.starts_with("PROTO38_") && k != "LANG";
              })));

    // includeOnly globs keep only what matches (after the default excludes).
    auto include = co_await child_env(
        *c,
        env_start(
            "include",
            R"({"inherit":"all","ignoreDefaultExcludes":false,"exclude":[],"set":{},"includeOnly":["PROTO38_*","HOME","MY_*"]})",
            json::object()));
    EXPECT_EQ(env_dump(include), "HOME=/tmp\nPROTO38_A=a\nPROTO38_B=b\n");
    auto include_secrets = co_await child_env(
        *c,
        env_start(
            "include-secrets",
            R"({"inherit":"all","ignoreDefaultExcludes":true,"exclude":["PROTO38_B"],"set":{},"includeOnly":["PROTO38_*","MY_*"]})",
            json::object()));
    EXPECT_EQ(env_dump(include_secrets), "MY_API_KEY=1\nMY_SECRET_X=2\nPROTO38_A=a\n");

    // set comes after includeOnly (docs/exec-protocol.md "Environment"), so what it sets is kept.
    auto include_then_set = co_await child_env(
        *c,
        env_start(
            "include-then-set",
            R"({"inherit":"all","ignoreDefaultExcludes":true,"exclude":[],"set":{"OUTSIDE":"x"},"includeOnly":["PROTO38_A"]})",
            json::object()));
    EXPECT_EQ(env_dump(include_then_set), "OUTSIDE=x\nPROTO38_A=a\n");

    // set is applied after the filters; env overlays last.
    auto layered = co_await child_env(
        *c,
        env_start(
            "layered",
            R"({"inherit":"core","ignoreDefaultExcludes":false,"exclude":["PROTO38_A"],"set":{"LANG":"set-lang","NEW_TOKEN":"t","PROTO38_A":"from-set","ONLY_SET":"s"},"includeOnly":[]})",
            J(R"({"LANG":"env-lang","ONLY_ENV":"e"})").as_object()));
    auto expected = filtered(is_core);
    expected["LANG"] = "env-lang";
    expected["NEW_TOKEN"] = "t";
    expected["PROTO38_A"] = "from-set";
    expected["ONLY_SET"] = "s";
    expected["ONLY_ENV"] = "e";
    EXPECT_EQ(env_dump(layered), env_dump(expected));

    // All five fields are required; inherit is one of three words.
    const std::vector<std::string> fields{"inherit", "ignoreDefaultExcludes", "exclude", "set",
                                          "includeOnly"};
    for (const auto& field : fields) {
      json::object policy =
          J(R"({"inherit":"core","ignoreDefaultExcludes":true,"exclude":[],"set":{},"includeOnly":[]})")
              .as_object();
      policy.erase(field);
      json::object p = env_start("missing-" + field, "", {});
      p["envPolicy"] = std::move(policy);
      co_await expect_error(*c, "process/start", std::move(p), kInvalidParams);
    }
    const std::vector<std::string> bad_policies{
        R"({"inherit":"some","ignoreDefaultExcludes":true,"exclude":[],"set":{},"includeOnly":[]})",
        R"({"inherit":"core","ignoreDefaultExcludes":"yes","exclude":[],"set":{},"includeOnly":[]})",
        R"({"inherit":"core","ignoreDefaultExcludes":true,"exclude":"X","set":{},"includeOnly":[]})",
        R"({"inherit":"core","ignoreDefaultExcludes":true,"exclude":[],"set":{"A":1},"includeOnly":[]})",
        R"({"inherit":"core","ignoreDefaultExcludes":true,"exclude":[],"set":{},"includeOnly":[1]})",
        R"({})"};
    int n = 0;
    for (const auto& policy : bad_policies) {
      co_await expect_error(*c, "process/start",
                            env_start("bad-policy-" + std::to_string(n++), policy, json::object()),
                            kInvalidParams);
    }
    c->close();
  });
}

}  // namespace
}  // namespace tether::testing
