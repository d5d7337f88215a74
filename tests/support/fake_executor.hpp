// Test support: FakeExecutor, a scripted stand-in for `tether exec-server` that a test drives.
//
// It is a fake, not the real executor, on purpose: the client's tests need wire situations a
// real executor never produces on demand — notifications out of seq order (acceptance scenario
// 10: a real executor always sends a process's events in seq order) and 4097 notifications for
// one process at a precise moment (scenario 11: a real process's output cannot be timed and
// chunked that exactly). Everything else is tested against the real binary (ExecServer).
//
// Owns: a WebSocket server on ws://127.0.0.1:port() (Beast, no auth, no HTTP gate), one
// jsonrpc::Peer per accepted connection, the record of every message the client sent, and the
// answers. Does not own: any process, session or protocol rule (no initialize-before checks).
// Answers: `initialize` -> {"sessionId": "fake-session", "environmentInfo": {... "cwd":
// "file:///"}}; `process/start` -> {"processId": <its processId>, "sandboxType": "none"};
// any other method -> {}; answer()/answer_error() replace the answer for a method (built-in
// ones included). Notifications (`initialized`, ...) are recorded and otherwise ignored.
// Data flow: client text -> recorded (received()) -> Peer -> canned answer;
// test send(text) -> the newest connection, verbatim as one text frame.
// Threading: lives on one executor (run_async's io_context) and is used from it only; build and
// destroy it inside the test body. The destructor closes the listener and aborts connections.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

namespace tether::testing {

namespace detail {
struct FakeExecutorState;
}  // namespace detail

class FakeExecutor {
 public:
  static constexpr const char* kSessionId = "fake-session";

  explicit FakeExecutor(const boost::asio::any_io_executor& executor);
  ~FakeExecutor();
  FakeExecutor(const FakeExecutor&) = delete;
  FakeExecutor& operator=(const FakeExecutor&) = delete;

  unsigned short port() const;
  std::string url() const;  // ws://127.0.0.1:<port>

  // Later requests for `method` get this result (or error) instead of the default.
  void answer(std::string method, boost::json::value result);
  void answer_error(std::string method, int code, std::string message);

  // Sends `text` verbatim as one text frame to the newest connection (throws when none is open).
  void send(std::string text);
  // Every message the client sent, over all connections, in arrival order: parsed JSON (a JSON
  // string holding the raw text when it was not JSON).
  const std::vector<boost::json::value>& received() const;
  // Waits until at least `count` messages with this "method" were received (false on timeout).
  boost::asio::awaitable<bool> wait_received(
      std::string method, std::size_t count = 1,
      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // WebSocket connections accepted so far.
  std::size_t connections() const;

 private:
  std::shared_ptr<detail::FakeExecutorState> state_;
};

}  // namespace tether::testing
