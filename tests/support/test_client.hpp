// Test support: a small executor client for tests, on the project's jsonrpc::Peer.
//
// It records every notification per processId (in arrival order), collects responses that
// match no call (the server's id -1 errors, codex-dialect raw calls), and offers both dialects:
// call() sends the April shape ("jsonrpc": "2.0", integer ids); raw_call() sends a request
// exactly as given (codex 0.169 omits "jsonrpc"). The full client library is exec::Client.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/json.hpp>

#include "exec_server.hpp"
#include <tether/jsonrpc/peer.hpp>

namespace tether::testing {

namespace json = boost::json;

class TestClient : public std::enable_shared_from_this<TestClient> {
 public:
  static boost::asio::awaitable<std::shared_ptr<TestClient>> connect(unsigned short port,
                                                                     Headers headers = {});
  static std::shared_ptr<TestClient> over(const boost::asio::any_io_executor& executor,
                                          std::unique_ptr<jsonrpc::Transport> transport);

  jsonrpc::Peer& peer() { return *peer_; }

  boost::asio::awaitable<jsonrpc::Reply> call(
      std::string method, json::value params,
      std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // The result, or an exception carrying the error code and message.
  boost::asio::awaitable<json::value> call_ok(std::string method, json::value params);
  // initialize (+ initialized); returns the initialize result.
  boost::asio::awaitable<json::object> initialize(std::optional<std::string> resume = {});
  // Sends `request` verbatim (it must carry "id") and waits for the response with that id.
  boost::asio::awaitable<jsonrpc::Response> raw_call(
      json::object request, std::chrono::milliseconds timeout = std::chrono::seconds(20));
  void send_text(std::string text) { peer_->send(std::move(text)); }

  // Notifications' params for a process, in arrival order.
  std::vector<json::object> events(const std::string& process_id) const;
  // Waits until a `process/closed` for the process arrived (false on timeout).
  boost::asio::awaitable<bool> wait_closed(
      const std::string& process_id, std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Waits until the decoded output of the process contains `needle`.
  boost::asio::awaitable<bool> wait_output(
      const std::string& process_id, const std::string& needle,
      std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Decoded output chunks in seq order (optionally one stream only).
  std::string output(const std::string& process_id, std::optional<std::string> stream = {}) const;
  // Responses no call waited for (e.g. the server's errors with id -1).
  const std::deque<jsonrpc::Response>& unmatched() const { return unmatched_; }
  boost::asio::awaitable<bool> wait_unmatched(
      std::size_t count, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  bool closed() const { return peer_->is_closed(); }
  boost::asio::awaitable<bool> wait_disconnected(
      std::chrono::milliseconds timeout = std::chrono::seconds(10));

  void close(std::uint16_t code = jsonrpc::close_code::kNormal) { peer_->close(code); }
  void abort() { peer_->abort("aborted by test"); }

 private:
  explicit TestClient(std::shared_ptr<jsonrpc::Peer> peer);
  void start();
  boost::asio::awaitable<bool> wait_until(const std::function<bool()>& condition,
                                          std::chrono::milliseconds timeout);

  std::shared_ptr<jsonrpc::Peer> peer_;
  std::map<std::string, std::vector<json::object>> events_;
  std::deque<jsonrpc::Response> unmatched_;
  jsonrpc::AsyncSignal changed_;
};

// Base64 helpers for tests (the project's own codec).
std::string b64(std::string_view bytes);
std::string unb64(std::string_view text);

}  // namespace tether::testing
