// The executor's security gate and startup rules (docs/exec-protocol.md "Security" and
// "Transport", docs/exec-server.md "Options"; acceptance 17): bearer-token auth from every token
// source (--token-file, the environment, codex's --ws-auth capability-token flags, the generated
// 0600 token file), the Origin and Host checks, /readyz, refusing unsafe or malformed --listen
// settings at startup, the stdout URL line, and the connection and process limits.
//
// Startup checks run the real binary directly (process::Child) with every run bounded; the rest
// goes through ExecServer and real sockets on 127.0.0.1.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <signal.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "requests.hpp"
#include "test_client.hpp"

namespace tether::testing {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using namespace std::chrono_literals;

using Response = http::response<http::string_body>;

constexpr std::string_view kOriginRefused = "browser Origin websocket requests are not allowed";

// A file in the temp directory holding `content`; removed with the object.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "tether-security-test-XXXXXX").string();
    const int fd = ::mkstemp(pattern.data());
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    ::close(fd);
    path_ = pattern;
    std::ofstream(path_) << content;
  }
  ~TempFile() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

ExecServer::Options with_args(std::vector<std::string> args) {
  ExecServer::Options options;
  options.args = std::move(args);
  return options;
}

Headers bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

// A WebSocket upgrade attempt at "/" (the response is read, the connection then dropped).
asio::awaitable<Response> upgrade(unsigned short port, Headers headers = {}) {
  auto response = co_await http_request(port, http::verb::get, "/", std::move(headers), true);
  co_return response;
}

asio::awaitable<Response> get(unsigned short port, std::string target, Headers headers = {}) {
  auto response =
      co_await http_request(port, http::verb::get, std::move(target), std::move(headers));
  co_return response;
}

// Whether a TestClient with `headers` connects and completes initialize.
asio::awaitable<bool> client_works(unsigned short port, Headers headers) {
  std::shared_ptr<TestClient> client;
  try {
    client = co_await TestClient::connect(port, std::move(headers));
  } catch (const std::exception&) {
    co_return false;
  }
  auto init = co_await client->initialize();
  const bool ok = init.contains("sessionId");
  client->close();
  co_return ok;
}

// Expects a 401 with exactly `body` and no upgrade.
void expect_unauthorized(const Response& response, std::string_view body) {
  EXPECT_EQ(response.result(), http::status::unauthorized);
  EXPECT_EQ(response.body(), body);
}

// The first `tether` run started directly: stdout and stderr collected until EOF, the exit
// status once reaped. The Child's destructor SIGKILLs its group if it still runs.
struct Captured {
  std::string out, err;
  bool out_done = false, err_done = false;
  std::optional<process::ExitStatus> status;
};

class TetherRun {
 public:
  TetherRun(const asio::any_io_executor& executor, std::vector<std::string> args)
      : captured_(std::make_shared<Captured>()) {
    process::SpawnOptions spawn;
    spawn.argv = {tether_binary()};
    spawn.argv.insert(spawn.argv.end(), args.begin(), args.end());
    spawn.env = test_environment();
    spawn.stdin_mode = process::StdinMode::closed;
    spawn.contain = false;  // what tether leaves behind is for the tests to see
    auto child = process::Child::spawn(executor, spawn);
    if (!child) throw std::runtime_error("cannot start tether: " + child.error().message);
    child_ = *child;
    asio::co_spawn(executor, drain(child_, child_->stdout_stream(), true, captured_),
                   asio::detached);
    asio::co_spawn(executor, drain(child_, child_->stderr_stream(), false, captured_),
                   asio::detached);
    asio::co_spawn(
        executor,
        [child = child_, captured = captured_]() -> asio::awaitable<void> {
          captured->status = co_await child->wait();
        },
        asio::detached);
  }
  ~TetherRun() {
    if (!captured_->status) child_->signal_group(SIGKILL);
  }
  TetherRun(const TetherRun&) = delete;
  TetherRun& operator=(const TetherRun&) = delete;

  const Captured& captured() const { return *captured_; }
  process::Child& child() { return *child_; }

  // Waits until the process exited and both streams reached EOF.
  // (The conditions are named locals: GCC 12 destroys a value-capturing lambda temporary inside a
  // co_await expression twice, which would drop a reference to `captured` too many.)
  asio::awaitable<bool> finished(std::chrono::milliseconds deadline) {
    const std::function<bool()> done = [captured = captured_] {
      return captured->status && captured->out_done && captured->err_done;
    };
    const bool ok = co_await eventually(done, deadline);
    co_return ok;
  }
  // Waits for the first stdout line; returns it without the newline.
  asio::awaitable<std::optional<std::string>> first_line(std::chrono::milliseconds deadline) {
    const std::function<bool()> has_line = [captured = captured_] {
      return captured->out.find('\n') != std::string::npos || captured->out_done;
    };
    const bool got = co_await eventually(has_line, deadline);
    const auto newline = captured_->out.find('\n');
    if (!got || newline == std::string::npos) co_return std::nullopt;
    co_return captured_->out.substr(0, newline);
  }

 private:
  // `child` keeps the Child, and so `stream`, alive until the read loop ends.
  static asio::awaitable<void> drain([[maybe_unused]] std::shared_ptr<process::Child> child,
                                     asio::posix::stream_descriptor* stream, bool is_stdout,
                                     std::shared_ptr<Captured> captured) {
    std::string buffer(4096, '\0');
    for (;;) {
      boost::system::error_code ec;
      const std::size_t n = co_await stream->async_read_some(
          asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
      (is_stdout ? captured->out : captured->err).append(buffer, 0, n);
      if (ec) break;
    }
    (is_stdout ? captured->out_done : captured->err_done) = true;
  }

  std::shared_ptr<process::Child> child_;
  std::shared_ptr<Captured> captured_;
};

// Runs `tether <args>` expecting it to refuse to start; returns what it captured.
asio::awaitable<Captured> run_refused(std::vector<std::string> args) {
  const auto executor = co_await asio::this_coro::executor;
  TetherRun run(executor, std::move(args));
  const bool finished = co_await run.finished(10s);
  EXPECT_TRUE(finished) << "tether did not exit within 10 s";
  co_return run.captured();
}

unsigned short port_of(const std::string& url) {
  return static_cast<unsigned short>(std::stoi(url.substr(url.rfind(':') + 1)));
}

TEST(ExecSecurity, TokenFileAuthRefusesWithoutTheRightBearerToken) {
  TempFile token("  secret-token\n");  // trimmed by the server
  ExecServer server(with_args({"--token-file", token.path()}));
  run_async([&]() -> asio::awaitable<void> {
    const auto port = server.port();
    expect_unauthorized(co_await upgrade(port), "missing websocket bearer token");
    expect_unauthorized(co_await upgrade(port, bearer("wrong-token")),
                        "invalid websocket bearer token");
    // The untrimmed file content is not the token either.
    expect_unauthorized(co_await upgrade(port, bearer("secret-token x")),
                        "invalid websocket bearer token");
    Headers basic{{"Authorization", "Basic abc"}};
    expect_unauthorized(co_await upgrade(port, std::move(basic)), "invalid authorization header");
    Headers no_scheme{{"Authorization", "secret-token"}};
    expect_unauthorized(co_await upgrade(port, std::move(no_scheme)),
                        "invalid authorization header");
    EXPECT_FALSE(co_await client_works(port, bearer("wrong-token")));

    // The scheme is case-insensitive; the token is the trimmed file content.
    Headers lowercase{{"Authorization", "bearer secret-token"}};
    auto accepted = co_await upgrade(port, lowercase);
    EXPECT_EQ(accepted.result(), http::status::switching_protocols);
    EXPECT_TRUE(co_await client_works(port, lowercase));
    Headers upper{{"Authorization", "BEARER secret-token"}};
    EXPECT_TRUE(co_await client_works(port, std::move(upper)));
  });
}

TEST(ExecSecurity, TokenFromTheEnvironment) {
  ExecServer::Options options = with_args({});
  options.extra_env = {"TETHER_EXEC_SERVER_TOKEN=env-token-302"};
  ExecServer server(options);
  run_async([&]() -> asio::awaitable<void> {
    const auto port = server.port();
    expect_unauthorized(co_await upgrade(port), "missing websocket bearer token");
    expect_unauthorized(co_await upgrade(port, bearer("other")), "invalid websocket bearer token");
    EXPECT_TRUE(co_await client_works(port, bearer("env-token-302")));
  });
  // The environment was the token source: nothing was generated.
  EXPECT_EQ(server.log().find("generated a bearer token"), std::string::npos) << server.log();
}

TEST(ExecSecurity, CodexCapabilityTokenWithSha256) {
  // sha256("abc")
  ExecServer server(
      with_args({"--ws-auth", "capability-token", "--ws-token-sha256",
                 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}));
  run_async([&]() -> asio::awaitable<void> {
    const auto port = server.port();
    expect_unauthorized(co_await upgrade(port), "missing websocket bearer token");
    expect_unauthorized(co_await upgrade(port, bearer("abd")), "invalid websocket bearer token");
    expect_unauthorized(co_await upgrade(port, bearer("abcabc")), "invalid websocket bearer token");
    EXPECT_TRUE(co_await client_works(port, bearer("abc")));
  });
}

TEST(ExecSecurity, CodexCapabilityTokenWithTokenFile) {
  TempFile token("codex-file-token\n");
  ExecServer server(with_args({"--ws-auth", "capability-token", "--ws-token-file", token.path()}));
  run_async([&]() -> asio::awaitable<void> {
    const auto port = server.port();
    expect_unauthorized(co_await upgrade(port), "missing websocket bearer token");
    expect_unauthorized(co_await upgrade(port, bearer("codex-file")),
                        "invalid websocket bearer token");
    EXPECT_TRUE(co_await client_works(port, bearer("codex-file-token")));
  });
}

TEST(ExecSecurity, WithoutATokenSourceAGeneratedTokenFileIsUsedThenRemoved) {
  ExecServer server(with_args({}));
  std::string token_path;
  run_async([&]() -> asio::awaitable<void> {
    // The server names the file on stderr.
    const std::regex announced(R"(it is in (\S+/token))");
    std::smatch match;
    std::string log;
    const bool found = co_await eventually(
        [&] {
          log = server.log();
          return std::regex_search(log, match, announced);
        },
        5s);
    CO_ASSERT_TRUE(found);
    token_path = match[1].str();

    struct stat info {};
    CO_ASSERT_EQ(::stat(token_path.c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 07777, 0600u);
    EXPECT_TRUE(S_ISREG(info.st_mode));
    std::ifstream in(token_path);
    std::string token((std::istreambuf_iterator<char>(in)), {});
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())))
      token.pop_back();
    CO_ASSERT_TRUE(!token.empty());
    // 256 random bits: at least 32 bytes of token text.
    EXPECT_GE(token.size(), 32u);
    EXPECT_EQ(log.find(token), std::string::npos) << "the token itself was logged";

    expect_unauthorized(co_await upgrade(server.port()), "missing websocket bearer token");
    EXPECT_TRUE(co_await client_works(server.port(), bearer(token)));
  });
  if (token_path.empty()) return;
  const auto directory = std::filesystem::path(token_path).parent_path();
  server.signal(SIGTERM);
  auto status = server.wait_exit(10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code, 0);
  EXPECT_FALSE(std::filesystem::exists(token_path)) << token_path << " outlived the server";
  EXPECT_FALSE(std::filesystem::exists(directory)) << directory << " outlived the server";
}

// The spec says the generated token's path is printed on stderr, with no condition. The server
// logs it at info level, so `--log-level warn` (or TETHER_LOG=warn) hides it and the user cannot
// find the token. Disabled until server.cpp prints the path regardless of the log level.
TEST(ExecSecurity, GeneratedTokenPathIsPrintedWhateverTheLogLevel) {
  run_async([&]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    TetherRun run(executor, {"--log-level", "warn", "exec-server"});
    auto url = co_await run.first_line(15s);
    CO_ASSERT_TRUE(url.has_value());
    const std::regex announced(R"((/\S+/token))");
    std::smatch match;
    std::string err;
    const bool printed = co_await eventually(
        [&] {
          err = run.captured().err;
          return std::regex_search(err, match, announced);
        },
        5s);
    EXPECT_TRUE(printed) << "stderr: " << err;
    if (printed) {
      EXPECT_TRUE(std::filesystem::exists(match[1].str()));
    }
    run.child().signal_group(SIGTERM);
    EXPECT_TRUE(co_await run.finished(10s));
  });
}

TEST(ExecSecurity, OriginHeaderIsRefusedBeforeAuth) {
  TempFile token("origin-token");
  ExecServer server(with_args({"--token-file", token.path()}));
  run_async([&]() -> asio::awaitable<void> {
    const auto port = server.port();
    const std::vector<std::string> origins{"http://evil.example", "null", "http://127.0.0.1"};
    for (const auto& origin : origins) {
      // Without a token: 403, not 401, so the Origin check comes first.
      Headers no_token{{"Origin", origin}};
      auto refused = co_await upgrade(port, std::move(no_token));
      EXPECT_EQ(refused.result(), http::status::forbidden) << origin;
      EXPECT_EQ(refused.body(), kOriginRefused) << origin;
      // With the right token: still 403.
      Headers with_token{{"Origin", origin}, {"Authorization", "Bearer origin-token"}};
      refused = co_await upgrade(port, std::move(with_token));
      EXPECT_EQ(refused.result(), http::status::forbidden) << origin;
      EXPECT_EQ(refused.body(), kOriginRefused) << origin;
      // /readyz too.
      Headers readyz{{"Origin", origin}};
      refused = co_await get(port, "/readyz", std::move(readyz));
      EXPECT_EQ(refused.result(), http::status::forbidden) << origin;
      EXPECT_EQ(refused.body(), kOriginRefused) << origin;
    }
    EXPECT_TRUE(co_await client_works(port, bearer("origin-token")));
  });
}

TEST(ExecSecurity, HostHeaderMustBeAnIpLiteralLocalhostOrAnAllowedName) {
  TempFile token("host-token");
  ExecServer plain(with_args({"--token-file", token.path()}));
  ExecServer allowing(with_args({"--token-file", token.path(), "--allow-host", "my.box"}));
  run_async([&]() -> asio::awaitable<void> {
    const std::vector<const ExecServer*> servers{&plain, &allowing};
    const std::vector<std::string> foreign{"evil.example", "evil.example:80", "my.box.evil:80"};
    const std::vector<std::string> local{"localhost:1234", "127.0.0.1:1", "[::1]:5", "localhost"};
    for (const auto* server : servers) {
      const auto port = server->port();
      for (const auto& host : foreign) {
        Headers h{{"Host", host}};
        EXPECT_EQ((co_await get(port, "/readyz", h)).result(), http::status::forbidden) << host;
        h.emplace_back("Authorization", "Bearer host-token");
        EXPECT_EQ((co_await upgrade(port, h)).result(), http::status::forbidden) << host;
      }
      for (const auto& host : local) {
        Headers h{{"Host", host}};
        EXPECT_EQ((co_await get(port, "/readyz", h)).result(), http::status::ok) << host;
        h.emplace_back("Authorization", "Bearer host-token");
        EXPECT_EQ((co_await upgrade(port, h)).result(), http::status::switching_protocols) << host;
      }
    }
    // A name is accepted only where --allow-host gave it.
    Headers my_box{{"Host", "my.box:80"}, {"Authorization", "Bearer host-token"}};
    EXPECT_EQ((co_await upgrade(plain.port(), my_box)).result(), http::status::forbidden);
    EXPECT_EQ((co_await upgrade(allowing.port(), my_box)).result(),
              http::status::switching_protocols);
    Headers my_box_readyz{{"Host", "my.box:80"}};
    EXPECT_EQ((co_await get(allowing.port(), "/readyz", my_box_readyz)).result(), http::status::ok);
    // And a full session works through that Host header.
    EXPECT_TRUE(co_await client_works(allowing.port(), my_box));
  });
}

TEST(ExecSecurity, ReadyzAnswersWithoutAuthOtherPathsAndMethodsDoNot) {
  TempFile token("readyz-token");
  ExecServer server(with_args({"--token-file", token.path()}));
  run_async([&]() -> asio::awaitable<void> {
    const auto port = server.port();
    auto ready = co_await get(port, "/readyz");
    EXPECT_EQ(ready.result(), http::status::ok);
    EXPECT_EQ(ready.body(), "ok");
    auto post = co_await http_request(port, http::verb::post, "/readyz");
    EXPECT_EQ(post.result(), http::status::method_not_allowed);
    auto other = co_await get(port, "/other");
    EXPECT_EQ(other.result(), http::status::not_found);
    auto root = co_await get(port, "/");  // not an upgrade
    EXPECT_EQ(root.result(), http::status::not_found);
    // Still serving after all that.
    EXPECT_TRUE(co_await client_works(port, bearer("readyz-token")));
  });
}

TEST(ExecSecurity, UnsupportedListenUrlIsRefusedWithExitCode2) {
  run_async([&]() -> asio::awaitable<void> {
    const std::vector<std::string> urls{"tcp://x", "ws://localhost:0", "ws://127.0.0.1",
                                        "http://127.0.0.1:0"};
    for (const auto& url : urls) {
      std::vector<std::string> args{"exec-server", "--listen", url};
      auto run = co_await run_refused(std::move(args));
      CO_ASSERT_TRUE(run.status.has_value());
      EXPECT_EQ(run.status->code, 2) << url;
      EXPECT_NE(run.err.find("unsupported --listen URL '" + url +
                             "'; expected ws://IP:PORT, wss://IP:PORT or stdio"),
                std::string::npos)
          << run.err;
      EXPECT_EQ(run.out, "") << "nothing may be printed on stdout by a refused start";
    }
  });
}

TEST(ExecSecurity, NonLoopbackListenNeedsAllowNonLoopbackAndAuth) {
  run_async([&]() -> asio::awaitable<void> {
    std::vector<std::string> wildcard{"exec-server", "--listen", "ws://0.0.0.0:0"};
    auto refused = co_await run_refused(wildcard);
    CO_ASSERT_TRUE(refused.status.has_value());
    EXPECT_NE(refused.status->code, 0);
    EXPECT_NE(refused.err.find("--allow-non-loopback"), std::string::npos) << refused.err;
    EXPECT_EQ(refused.out, "");

    std::vector<std::string> wildcard_no_auth = wildcard;
    wildcard_no_auth.insert(wildcard_no_auth.end(), {"--allow-non-loopback", "--insecure-no-auth"});
    auto no_auth = co_await run_refused(std::move(wildcard_no_auth));
    CO_ASSERT_TRUE(no_auth.status.has_value());
    EXPECT_NE(no_auth.status->code, 0);
    EXPECT_NE(no_auth.err.find("--insecure-no-auth"), std::string::npos) << no_auth.err;
    EXPECT_EQ(no_auth.out, "");

    // With --allow-non-loopback and auth on, it starts (and a token is required).
    TempFile token("wide-token");
    const auto executor = co_await asio::this_coro::executor;
    TetherRun wide(executor, {"exec-server", "--listen", "ws://0.0.0.0:0", "--allow-non-loopback",
                              "--token-file", token.path()});
    auto url = co_await wide.first_line(15s);
    CO_ASSERT_TRUE(url.has_value());
    EXPECT_TRUE(std::regex_match(*url, std::regex(R"(ws://0\.0\.0\.0:[0-9]+)"))) << *url;
    expect_unauthorized(co_await upgrade(port_of(*url)), "missing websocket bearer token");
    EXPECT_TRUE(co_await client_works(port_of(*url), bearer("wide-token")));
    wide.child().signal_group(SIGTERM);
    CO_ASSERT_TRUE(co_await wide.finished(10s));
    EXPECT_EQ(wide.captured().status->code, 0);
  });
}

TEST(ExecSecurity, InsecureNoAuthOnLoopbackPrintsOnlyTheUrlOnStdout) {
  run_async([&]() -> asio::awaitable<void> {
    // Debug logging on, so that any log line that went to stdout would show.
    const auto executor = co_await asio::this_coro::executor;
    TetherRun run(executor, {"--log-level", "debug", "exec-server", "--insecure-no-auth"});
    auto url = co_await run.first_line(15s);
    CO_ASSERT_TRUE(url.has_value());
    EXPECT_TRUE(std::regex_match(*url, std::regex(R"(ws://127\.0\.0\.1:[1-9][0-9]*)"))) << *url;
    const auto port = port_of(*url);

    // No token needed; a process that prints must not leak onto the executor's stdout.
    auto client = co_await TestClient::connect(port);
    co_await client->initialize();
    json::object start{{"processId", "p"},
                       {"argv", json::array{"/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2"}},
                       {"cwd", "/tmp"},
                       {"env", json::object{{"PATH", "/usr/bin:/bin"}}},
                       {"tty", false}};
    co_await client->call_ok("process/start", std::move(start));
    EXPECT_TRUE(co_await client->wait_closed("p"));
    client->close();
    EXPECT_TRUE(co_await client->wait_disconnected());

    run.child().signal_group(SIGTERM);
    CO_ASSERT_TRUE(co_await run.finished(10s));
    EXPECT_EQ(run.captured().status->code, 0);
    EXPECT_EQ(run.captured().out, *url + "\n") << "stdout carries exactly the URL line";
    EXPECT_FALSE(run.captured().err.empty()) << "debug logs are expected on stderr";
  });
}

// Query strings and credentials never reach the log, at the default level or at debug: a
// client that puts its token in the URL (or sends a wrong one) must not have it written to disk.
TEST(ExecSecurity, QueryStringsAndTokensAreNotLogged) {
  constexpr std::string_view kSecret = "SECRET-7f3c9a";
  const std::string secret(kSecret);
  TempFile token("the-right-token\n");
  for (std::string level : {"info", "debug"}) {
    SCOPED_TRACE("--log-level " + level);
    run_async([&]() -> asio::awaitable<void> {
      const auto executor = co_await asio::this_coro::executor;
      TetherRun run(executor, {"--log-level", level, "exec-server", "--token-file", token.path()});
      auto url = co_await run.first_line(15s);
      CO_ASSERT_TRUE(url.has_value());
      const auto port = port_of(*url);
      EXPECT_EQ((co_await get(port, "/?token=" + secret)).result(), http::status::not_found);
      EXPECT_EQ((co_await get(port, "/readyz?token=" + secret)).result(), http::status::ok);
      auto refused = co_await http_request(port, http::verb::get, "/?token=" + secret, {}, true);
      EXPECT_EQ(refused.result(), http::status::unauthorized);
      expect_unauthorized(co_await upgrade(port, bearer(secret)), "invalid websocket bearer token");

      run.child().signal_group(SIGTERM);
      CO_ASSERT_TRUE(co_await run.finished(10s));
      const std::string& log = run.captured().err;
      EXPECT_NE(log.find("refused"), std::string::npos) << "refusals are still logged:\n" << log;
      EXPECT_EQ(log.find(secret), std::string::npos) << "the log holds the secret:\n" << log;
    });
  }
}

TEST(ExecSecurity, ConnectionLimitRefusesWithAnHttpErrorThenRecovers) {
  ExecServer server(with_args({"--insecure-no-auth", "--max-connections", "2"}));
  run_async([&]() -> asio::awaitable<void> {
    const auto port = server.port();
    auto c1 = co_await TestClient::connect(port);
    co_await c1->initialize();
    auto c2 = co_await TestClient::connect(port);
    co_await c2->initialize();

    auto third = co_await upgrade(port);
    EXPECT_GE(third.result_int(), 400u) << third.result_int() << " " << third.body();
    EXPECT_LT(third.result_int(), 600u);
    EXPECT_FALSE(co_await client_works(port, {}));
    // The server is fine: /readyz and the two connections still work.
    EXPECT_EQ((co_await get(port, "/readyz")).result(), http::status::ok);
    json::object no_params;
    auto status = co_await c2->call_ok("environment/status", no_params);
    EXPECT_EQ(status.at("status"), "ready");

    c1->close();
    EXPECT_TRUE(co_await c1->wait_disconnected());
    // The server frees the slot once it has seen the close: retry for a bounded time.
    std::shared_ptr<TestClient> c3;
    const auto end = std::chrono::steady_clock::now() + 10s;
    while (!c3 && std::chrono::steady_clock::now() < end) {
      try {
        c3 = co_await TestClient::connect(port);
      } catch (const std::exception&) {
      }
      if (!c3) co_await sleep_for(50ms);
    }
    CO_ASSERT_TRUE(c3 != nullptr);
    auto init = co_await c3->initialize();
    EXPECT_TRUE(init.contains("sessionId"));
    c2->close();
    c3->close();
  });
}

TEST(ExecSecurity, ProcessLimitIsAJsonRpcError) {
  ExecServer server(with_args({"--insecure-no-auth", "--max-processes", "2"}));
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await TestClient::connect(server.port());
    co_await client->initialize();
    co_await client->call_ok("process/start", start_sleep("p1", "302.7201"));
    co_await client->call_ok("process/start", start_sleep("p2", "302.7202"));
    auto over = co_await client->call("process/start", start_sleep("p3", "302.7203"));
    CO_ASSERT_TRUE(!over);
    EXPECT_FALSE(over.error().message.empty());
    EXPECT_TRUE(processes_matching("sleep 302.7203").empty()) << "the refused process started";

    // The executor is fine, and a slot freed by a closed process can be used again.
    json::object no_params;
    auto status = co_await client->call_ok("environment/status", no_params);
    EXPECT_EQ(status.at("status"), "ready");
    json::object terminate{{"processId", "p1"}};
    co_await client->call_ok("process/terminate", std::move(terminate));
    EXPECT_TRUE(co_await client->wait_closed("p1"));
    co_await client->call_ok("process/start", start_sleep("p4", "302.7204"));
    client->close();  // ends p2 and p4
    EXPECT_TRUE(co_await client->wait_disconnected());
    EXPECT_TRUE(co_await eventually(
        [] {
          return processes_matching("sleep 302.7202").empty() &&
                 processes_matching("sleep 302.7204").empty();
        },
        5s));
  });
}

}  // namespace
}  // namespace tether::testing
