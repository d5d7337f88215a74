// wss:// (tether extension): the executor behind TLS with a certificate signed by a test CA, a
// client that trusts that CA, and the startup rules for the TLS options.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>

#include <boost/asio/ssl/context.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "test_certificates.hpp"
#include "test_client.hpp"
#include <tether/exec/client.hpp>

namespace tether::testing {
namespace {

namespace fs = std::filesystem;

struct Run {
  int exit_code;
  std::string stderr_text;
};

// Runs the binary to completion (bounded by coreutils timeout) and captures stderr.
Run run_tether(const std::string& args) {
  const auto err = fs::temp_directory_path() / ("tether-tls-stderr-" + std::to_string(::getpid()));
  const std::string command = "timeout 20 '" + std::string(tether_binary()) + "' exec-server " +
                              args + " >/dev/null 2>'" + err.string() + "'";
  const int status = std::system(command.c_str());
  std::ifstream in(err);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  fs::remove(err);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

json::value echo_params() {
  return json::object{{"processId", "tls-echo"},
                      {"argv", json::array{"/bin/echo", "over tls"}},
                      {"cwd", "/tmp"},
                      {"env", json::object{}},
                      {"tty", false},
                      {"pipeStdin", false},
                      {"arg0", nullptr}};
}

TEST(ExecTls, VerifiedClientRunsAProcessOverWss) {
  TestCertificates certificates;
  const std::string token = "tls-test-token";
  ExecServer server(
      ExecServer::Options{{"--listen", "wss://127.0.0.1:0", "--tls-cert",
                           certificates.server_cert(), "--tls-key", certificates.server_key()},
                          {"TETHER_EXEC_SERVER_TOKEN=" + token}});
  EXPECT_TRUE(server.url().starts_with("wss://127.0.0.1:")) << server.url();

  boost::asio::ssl::context tls(boost::asio::ssl::context::tls_client);
  tls.load_verify_file(certificates.ca_cert());
  tls.set_verify_mode(boost::asio::ssl::verify_peer);
  jsonrpc::ConnectOptions options;
  options.headers.emplace_back("Authorization", "Bearer " + token);
  options.tls = &tls;

  run_async([&]() -> boost::asio::awaitable<void> {
    auto transport = co_await jsonrpc::connect_websocket(server.url(), options);
    CO_ASSERT_TRUE(transport.has_value());
    auto client =
        TestClient::over(co_await boost::asio::this_coro::executor, std::move(*transport));
    co_await client->initialize();
    co_await client->call_ok("process/start", echo_params());
    EXPECT_TRUE(co_await client->wait_closed("tls-echo"));
    EXPECT_EQ(client->output("tls-echo"), "over tls\n");
    client->close();
  });
}

// The project's executor client over wss:// with a bearer token, through the process API.
TEST(ExecTls, ExecClientRunsAProcessOverWss) {
  TestCertificates certificates;
  const std::string token = "tls-client-token";
  ExecServer server(
      ExecServer::Options{{"--listen", "wss://127.0.0.1:0", "--tls-cert",
                           certificates.server_cert(), "--tls-key", certificates.server_key()},
                          {"TETHER_EXEC_SERVER_TOKEN=" + token}});
  boost::asio::ssl::context tls(boost::asio::ssl::context::tls_client);
  tls.load_verify_file(certificates.ca_cert());
  tls.set_verify_mode(boost::asio::ssl::verify_peer);

  run_async([&]() -> boost::asio::awaitable<void> {
    auto ex = co_await boost::asio::this_coro::executor;
    exec::Endpoint endpoint = exec::WebSocketEndpoint{server.url(), token, &tls};
    auto client = co_await exec::ExecClient::connect(ex, std::move(endpoint));
    CO_ASSERT_TRUE(client.has_value());
    exec::StartParams params;
    params.process_id = "tls-echo";
    params.argv = {"/bin/echo", "over tls"};
    auto process = co_await (*client)->start(std::move(params));
    CO_ASSERT_TRUE(process.has_value());
    auto events = (*process)->subscribe();
    std::string out;
    for (auto event = co_await events->next(); event; event = co_await events->next()) {
      if (const auto* output = std::get_if<exec::OutputEvent>(&*event)) out += output->bytes;
    }
    EXPECT_EQ(out, "over tls\n");
    co_await (*client)->close();
  });
}

TEST(ExecTls, UntrustedCertificateAndPlainClientsAreRefused) {
  TestCertificates certificates;
  ExecServer server(ExecServer::Options{
      {"--listen", "wss://127.0.0.1:0", "--tls-cert", certificates.server_cert(), "--tls-key",
       certificates.server_key(), "--insecure-no-auth"},
      {}});
  boost::asio::ssl::context untrusting(boost::asio::ssl::context::tls_client);
  untrusting.set_verify_mode(boost::asio::ssl::verify_peer);  // no trust roots for this cert
  jsonrpc::ConnectOptions options;
  options.tls = &untrusting;
  const std::string plain_url = "ws://127.0.0.1:" + std::to_string(server.port());

  run_async([&]() -> boost::asio::awaitable<void> {
    auto refused = co_await jsonrpc::connect_websocket(server.url(), options);
    EXPECT_FALSE(refused.has_value()) << "a certificate nobody vouches for must fail verification";
    jsonrpc::ConnectOptions plain_options;
    plain_options.timeout = std::chrono::seconds(5);
    auto plain = co_await jsonrpc::connect_websocket(plain_url, plain_options);
    EXPECT_FALSE(plain.has_value()) << "a plain WebSocket client must not get through a TLS port";
  });
  EXPECT_FALSE(server.wait_exit(std::chrono::milliseconds(100)).has_value()) << "the executor died";
}

TEST(ExecTls, StartupRefusesIncompleteTlsOptions) {
  TestCertificates certificates;
  auto missing = run_tether("--listen wss://127.0.0.1:0 --insecure-no-auth");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.stderr_text.find("wss:// needs --tls-cert and --tls-key"), std::string::npos)
      << missing.stderr_text;

  auto stray =
      run_tether("--listen ws://127.0.0.1:0 --insecure-no-auth --tls-cert '" +
                 certificates.server_cert() + "' --tls-key '" + certificates.server_key() + "'");
  EXPECT_EQ(stray.exit_code, 2);
  EXPECT_NE(stray.stderr_text.find("--tls-cert and --tls-key go with a wss:// --listen URL"),
            std::string::npos)
      << stray.stderr_text;

  auto unreadable = run_tether(
      "--listen wss://127.0.0.1:0 --insecure-no-auth --tls-cert /nonexistent.pem --tls-key '" +
      certificates.server_key() + "'");
  EXPECT_EQ(unreadable.exit_code, 2);
  EXPECT_NE(unreadable.stderr_text.find("cannot load --tls-cert /nonexistent.pem"),
            std::string::npos)
      << unreadable.stderr_text;
}

}  // namespace
}  // namespace tether::testing
