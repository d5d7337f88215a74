// Acceptance scenario 41 (client part): tether's ExecClient drives a stock codex 0.169
// exec-server from the pinned npm package (tests/support/codex_exec_server.hpp): start, write,
// stream, read, terminate, and an fs round trip, all in the codex dialect the client speaks.
// The other half of scenario 41, an MCP server from npm placed on the codex executor through the
// host config, needs the MCP client and host (the next issue) and is not tested here.
#include <csignal>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "async_test.hpp"
#include "client_scenarios.hpp"
#include "codex_exec_server.hpp"
#include "exec_server.hpp"
#include <tether/exec/client.hpp>

namespace tether::testing {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST(CodexClient, StartWriteStreamReadTerminate) {
  CodexExecServer codex;
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await connect_client(ws_endpoint(codex.url()));
    CO_ASSERT_TRUE(client != nullptr);
    EXPECT_FALSE(client->session_id().empty());

    // One line in, two lines out (stdout, then stderr), then it waits for stdin EOF or a kill.
    auto start_params_1 = start_params(
        "codex-1",
        {"sh", "-c", "IFS= read -r line; printf 'out:%s\\n' \"$line\"; printf 'err\\n' >&2; cat"},
        true);
    auto process = co_await start_process(*client, std::move(start_params_1));
    CO_ASSERT_TRUE(process != nullptr);
    auto sub = process->subscribe();
    auto status = co_await process->write("hello\n");
    CO_ASSERT_TRUE(status.has_value());
    EXPECT_EQ(*status, exec::WriteStatus::accepted);

    std::string out;
    std::string err;
    std::uint64_t last_seq = 0;
    while (out != "out:hello\n" || err != "err\n") {
      auto event = co_await sub->next();
      CO_ASSERT_TRUE(event.has_value());
      const auto* output = std::get_if<exec::OutputEvent>(&*event);
      CO_ASSERT_TRUE(output != nullptr);
      EXPECT_GT(output->seq, last_seq);
      last_seq = output->seq;
      (output->stream == "stdout" ? out : err) += output->bytes;
    }

    auto read = co_await process->read(0, std::nullopt, 0ms);
    CO_ASSERT_TRUE(read.has_value());
    std::string read_out;
    for (const auto& chunk : read->chunks)
      if (chunk.stream == "stdout") read_out += chunk.bytes;
    EXPECT_EQ(read_out, "out:hello\n");
    EXPECT_FALSE(read->exited);

    // cat echoes further writes.
    auto more = co_await process->write("again\n");
    CO_ASSERT_TRUE(more.has_value());
    auto echoed = co_await sub->next();
    CO_ASSERT_TRUE(echoed.has_value());
    const auto* again = std::get_if<exec::OutputEvent>(&*echoed);
    CO_ASSERT_TRUE(again != nullptr);
    EXPECT_EQ(again->bytes, "again\n");

    auto running = co_await process->terminate();
    CO_ASSERT_TRUE(running.has_value());
    EXPECT_TRUE(*running);
    bool exited = false;
    bool closed = false;
    for (;;) {
      auto event = co_await sub->next();
      if (!event) break;
      if (const auto* e = std::get_if<exec::ExitedEvent>(&*event)) {
        exited = true;
        // codex kills at once: SIGKILL (137); -1 is accepted for "killed" too.
        EXPECT_TRUE(e->exit_code == 128 + SIGKILL || e->exit_code == 128 + SIGTERM ||
                    e->exit_code == -1)
            << e->exit_code;
      }
      if (std::holds_alternative<exec::ClosedEvent>(*event)) closed = true;
      EXPECT_FALSE(std::holds_alternative<exec::FailedEvent>(*event));
    }
    EXPECT_TRUE(exited);
    EXPECT_TRUE(closed);
    co_await client->close();
    EXPECT_FALSE(client->disconnected() && !client->disconnected()->ends_with("client closed"));
  });
}

// Not built inside a coroutine: GCC 12 rejects a char array initializer in one.
std::string binary_bytes() {
  return std::string("codex\0bytes\xfe\n", 13);
}

TEST(CodexClient, FilesystemRoundTrip) {
  CodexExecServer codex;
  const TempDir temp("tether-codex-client-fs");
  const auto& dir = temp.path();
  // Paths are built here: GCC 12 rejects path / "literal" (an array argument) in a coroutine.
  const std::string top = (dir / "a b").string();
  const std::string sub = top + "/sub";
  const std::string copy_dir = (dir / "copy.bin").string();
  run_async([&]() -> asio::awaitable<void> {
    auto client = co_await connect_client(ws_endpoint(codex.url()));
    CO_ASSERT_TRUE(client != nullptr);
    const std::string file = sub + "/f.bin";
    auto metadata = co_await write_and_read_back(*client, sub, file, binary_bytes());
    CO_ASSERT_TRUE(metadata.has_value());
    auto copied = co_await client->copy(file, copy_dir, false);
    EXPECT_TRUE(copied.has_value());
    auto entries = co_await client->read_directory(dir.string());
    CO_ASSERT_TRUE(entries.has_value());
    EXPECT_EQ(entries->size(), 2u);
    auto canonical = co_await client->canonicalize(sub + "/../sub/f.bin");
    CO_ASSERT_TRUE(canonical.has_value());
    EXPECT_EQ(*canonical, std::filesystem::canonical(file).string());
    auto removed = co_await client->remove(top);
    EXPECT_TRUE(removed.has_value());
    EXPECT_FALSE(std::filesystem::exists(top));
    auto missing = co_await client->read_file(file);
    EXPECT_FALSE(missing);
    co_await client->close();
  });
}

}  // namespace
}  // namespace tether::testing
