// The pieces both stdio launchers share (see stdio_common.hpp). The end-of-server errors use a
// private error category whose values carry the exit code or signal, so that the message of
// the error read() returns is the same sentence as the diagnostics' end reason.
#include "stdio_common.hpp"

#include <cstdlib>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace tether::mcp::stdio {
namespace {

namespace asio = boost::asio;

// Values: kOutputClosed, kLost, kExitBase + code (0..255), kSignalBase + signal.
constexpr int kOutputClosed = 1;
constexpr int kLost = 2;
constexpr int kExitBase = 0x1000;
constexpr int kSignalBase = 0x2000;

class EndCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "mcp-stdio"; }
  std::string message(int value) const override {
    if (value >= kSignalBase) return exit_reason(128 + value - kSignalBase, value - kSignalBase);
    if (value >= kExitBase) return exit_reason(value - kExitBase, std::nullopt);
    if (value == kLost) return "MCP server process was lost";
    return "MCP server closed its output";
  }
};

const EndCategory& end_category() {
  static const EndCategory category;
  return category;
}

// Stderr without a newline for this long is logged in pieces rather than buffered forever.
constexpr std::size_t kMaxStderrLine = std::size_t{16} << 10;

}  // namespace

std::string exit_reason(int code, std::optional<int> signal) {
  if (signal) return "MCP server process killed by signal " + std::to_string(*signal);
  return "MCP server process exited with code " + std::to_string(code);
}

boost::system::error_code exit_error(int code, std::optional<int> signal) {
  if (signal && *signal > 0 && *signal < 0x1000) return {kSignalBase + *signal, end_category()};
  if (!signal && code >= 0 && code <= 255) return {kExitBase + code, end_category()};
  return output_closed_error();
}

boost::system::error_code output_closed_error() {
  return {kOutputClosed, end_category()};
}

boost::system::error_code lost_error() {
  return {kLost, end_category()};
}

std::string overlong_reason(std::size_t max_line_bytes) {
  return "MCP server sent a line longer than " + std::to_string(max_line_bytes) + " bytes";
}

void StderrLog::append(std::string_view bytes) {
  pending_.append(bytes);
  std::size_t start = 0;
  for (auto nl = pending_.find('\n'); nl != std::string::npos; nl = pending_.find('\n', start)) {
    emit(std::string_view(pending_).substr(start, nl - start));
    start = nl + 1;
  }
  pending_.erase(0, start);
  if (pending_.size() > kMaxStderrLine) finish();
}

void StderrLog::finish() {
  if (!pending_.empty()) emit(pending_);
  pending_.clear();
}

void StderrLog::emit(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) return;
  spdlog::info("MCP server stderr ({}): {}", program_, line);
  diagnostics_->add_stderr_line(std::string(line));
}

std::map<std::string, std::string> own_variables(const std::vector<std::string>& names) {
  std::map<std::string, std::string> found;
  for (const std::string& name : names) {
    if (const char* value = std::getenv(name.c_str())) found[name] = value;
  }
  return found;
}

asio::awaitable<void> wait_until(jsonrpc::AsyncSignal& signal,
                                 std::chrono::steady_clock::time_point deadline) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
  boost::system::error_code ignored;
  co_await (signal.wait() || timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored)));
}

}  // namespace tether::mcp::stdio
