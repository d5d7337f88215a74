// libFuzzer target for the executor's message handling.
//
// Each input is used twice:
// 1. as one message for jsonrpc::parse (and, when it parses, its serialization must parse
//    again and keep its kind: the executor echoes what it parsed);
// 2. as a newline-delimited stream of messages fed to a full in-process executor connection:
//    the real exec::ServerContext and exec::Connection (sessions, lifecycle, process/* and
//    environment/* handlers, jsonrpc::Peer) over a fake jsonrpc::Transport that yields the lines
//    as messages and discards what the executor writes.
//
// FAKE: the transport is the one fake, so that an iteration needs no socket and no thread and
// ends as soon as the input is consumed (the transport then reports the end of the connection;
// input ending with '\n' ends it cleanly (session ended), otherwise it is "lost" (session
// detached, TTL 0, so ended at once)).
//
// SAFETY: the target must never spawn a process or touch the filesystem.
// - ServerOptions::max_processes_per_session = 0: Connection::start_process checks
//   `running_count() >= max_processes_per_session` before ManagedProcess::start, so every
//   process/start is refused before anything is spawned; with no process, process/read,
//   write, terminate and signal answer at once.
// - Lines that could reach an fs/* method are dropped before they are fed: fs/* reads, writes,
//   copies and removes real files at paths the input chooses. A line is dropped when it contains
//   "fs/" anywhere, or when it parses to a message whose method starts with "fs/" (JSON escapes
//   such as "fs\/remove" or "\u0066s/remove" spell the method without the raw bytes). The
//   connection parses the same bytes with the same parser, so it sees the method we checked.
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "../src/exec/connection.hpp"
#include <tether/exec/server.hpp>
#include <tether/jsonrpc/message.hpp>
#include <tether/jsonrpc/transport.hpp>

namespace {

namespace asio = boost::asio;
using namespace tether;

// An iteration that has not ended after this long is a hang: reported as a crash.
constexpr auto kIterationBound = std::chrono::seconds(10);

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_exec_messages: %s\n", what);
  std::abort();
}

// FAKE transport (see the file comment): yields the prepared messages, then ends.
class FeedTransport final : public jsonrpc::Transport {
 public:
  FeedTransport(std::deque<std::string> messages, bool clean_end)
      : messages_(std::move(messages)), clean_end_(clean_end) {}

  asio::awaitable<boost::system::result<std::string>> read() override {
    // One trip through the executor per message, as a socket read would: handlers, the writer
    // and the read loop interleave.
    auto executor = co_await asio::this_coro::executor;
    co_await asio::post(executor, asio::use_awaitable);
    if (aborted_) co_return boost::system::error_code(asio::error::operation_aborted);
    if (messages_.empty()) {
      if (clean_end_) remote_close_ = jsonrpc::close_code::kNormal;
      co_return boost::system::error_code(asio::error::eof);
    }
    std::string next = std::move(messages_.front());
    messages_.pop_front();
    co_return next;
  }

  asio::awaitable<boost::system::error_code> write(const std::string& message) override {
    written_ += message.size();  // discarded
    co_return boost::system::error_code{};
  }

  asio::awaitable<boost::system::error_code> ping(std::string) override {
    co_return boost::system::error_code{};
  }
  void on_pong(std::function<void(std::string_view)>) override {}

  asio::awaitable<void> close(std::uint16_t) override { co_return; }
  void abort() override { aborted_ = true; }
  std::optional<std::uint16_t> remote_close_code() const override { return remote_close_; }
  bool has_keepalive() const override { return false; }
  bool idle_expired() const override { return false; }

 private:
  std::deque<std::string> messages_;
  bool clean_end_;
  bool aborted_ = false;
  std::size_t written_ = 0;
  std::optional<std::uint16_t> remote_close_;
};

bool may_reach_filesystem(std::string_view line) {
  if (line.find("fs/") != std::string_view::npos) return true;
  auto parsed = jsonrpc::parse(line);
  if (!parsed) return false;
  if (const auto* r = std::get_if<jsonrpc::Request>(&*parsed)) return r->method.starts_with("fs/");
  if (const auto* n = std::get_if<jsonrpc::Notification>(&*parsed))
    return n->method.starts_with("fs/");
  return false;
}

// The input as the line transport would deliver it: split on '\n', one trailing '\r' trimmed,
// empty lines skipped; minus the lines that could reach fs/*.
std::deque<std::string> messages_of(std::string_view input) {
  std::deque<std::string> messages;
  while (!input.empty()) {
    const auto nl = input.find('\n');
    std::string_view line = input.substr(0, nl);
    input = nl == std::string_view::npos ? std::string_view{} : input.substr(nl + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty() || may_reach_filesystem(line)) continue;
    messages.emplace_back(line);
  }
  return messages;
}

void check_parser(std::string_view input) {
  auto parsed = jsonrpc::parse(input);
  if (!parsed) {
    if (parsed.error().error.message.empty()) fail("an invalid message without an error message");
    return;
  }
  const std::string text = jsonrpc::serialize(*parsed);
  auto again = jsonrpc::parse(text);
  if (!again) fail("serialize() produced a message that parse() rejects");
  if (again->index() != parsed->index()) fail("serialize() changed the message kind");
}

const exec::ServerOptions& fuzz_options() {
  static const exec::ServerOptions options = [] {
    exec::ServerOptions o;
    o.max_processes_per_session = 0;  // SAFETY: every process/start is refused before spawning
    o.session_ttl = std::chrono::milliseconds(0);
    o.ping_interval = std::chrono::milliseconds(0);
    o.max_message_bytes = 1 << 20;
    return o;
  }();
  return options;
}

void run_connection(std::string_view input) {
  auto messages = messages_of(input);
  const bool clean_end = input.empty() || input.back() == '\n';

  asio::io_context io(1);
  auto context = std::make_shared<exec::ServerContext>(fuzz_options(), io.get_executor());
  bool done = false;
  {
    auto connection = std::make_shared<exec::Connection>(
        context, std::make_unique<FeedTransport>(std::move(messages), clean_end), "fuzz");
    asio::co_spawn(
        io,
        [connection, &done]() -> asio::awaitable<void> {
          co_await connection->run();
          done = true;
        },
        asio::detached);
  }
  const auto deadline = std::chrono::steady_clock::now() + kIterationBound;
  while (!done && std::chrono::steady_clock::now() < deadline)
    io.run_one_for(std::chrono::milliseconds(100));
  if (!done) fail("the connection did not end after its input was consumed");
  io.poll();  // whatever the end of the connection made ready (session end)
  if (context->sessions.size() != 0) fail("a session outlived its connection (TTL 0)");
  if (context->live_processes != 0) fail("a process was started");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  std::signal(SIGPIPE, SIG_IGN);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_parser(input);
  run_connection(input);
  return 0;
}
