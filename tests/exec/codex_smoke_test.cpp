// The stock codex exec-server pinned in tests/npm (installed by `make test`) starts, prints its
// URL and answers a codex-dialect initialize: proves the pin, the install and the launcher that
// the interop tests (scenario 41) build on. Fails, never skips, when the install is missing.
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "codex_exec_server.hpp"
#include "test_client.hpp"

namespace tether::testing {
namespace {

// As codex's own client sends it: no "jsonrpc" member, integer ids from 1.
json::object codex_initialize_request() {
  return json::object{{"id", 1},
                      {"method", "initialize"},
                      {"params", {{"clientName", "tether-test"}, {"resumeSessionId", nullptr}}}};
}

TEST(CodexSmoke, StockExecServerAnswersInitializeWithSessionId) {
  CodexExecServer codex;
  EXPECT_EQ(codex.url(), "ws://127.0.0.1:" + std::to_string(codex.port()));
  run_async([&]() -> boost::asio::awaitable<void> {
    auto client = co_await TestClient::connect(codex.port());
    auto response = co_await client->raw_call(codex_initialize_request());
    CO_ASSERT_TRUE(response.reply.has_value());
    const json::value result = *response.reply;
    CO_ASSERT_TRUE(result.is_object());
    const auto* session = result.as_object().if_contains("sessionId");
    CO_ASSERT_TRUE(session != nullptr);
    EXPECT_TRUE(session->is_string() && !session->as_string().empty()) << json::serialize(result);
    client->send_text(R"({"method":"initialized","params":{}})");
    client->close();
  });
}

}  // namespace
}  // namespace tether::testing
