// Test support: the test client on jsonrpc::Peer (see test_client.hpp).
#include "test_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <tether/jsonrpc/base64.hpp>

namespace tether::testing {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

std::string b64(std::string_view bytes) {
  return jsonrpc::base64_encode(bytes);
}

std::string unb64(std::string_view text) {
  auto decoded = jsonrpc::base64_decode(text);
  if (!decoded) throw std::runtime_error("invalid base64 from the server: " + std::string(text));
  return *decoded;
}

TestClient::TestClient(std::shared_ptr<jsonrpc::Peer> peer)
    : peer_(std::move(peer)), changed_(peer_->get_executor()) {}

asio::awaitable<std::shared_ptr<TestClient>> TestClient::connect(unsigned short port,
                                                                 Headers headers) {
  auto ws = co_await ws_connect(port, std::move(headers));
  co_return over(co_await asio::this_coro::executor,
                 jsonrpc::make_websocket_transport(std::move(ws), {}));
}

std::shared_ptr<TestClient> TestClient::over(const asio::any_io_executor& executor,
                                             std::unique_ptr<jsonrpc::Transport> transport) {
  auto peer = jsonrpc::Peer::create(executor, std::move(transport), {});
  std::shared_ptr<TestClient> client(new TestClient(std::move(peer)));
  client->start();
  return client;
}

void TestClient::start() {
  std::weak_ptr<TestClient> weak = shared_from_this();
  peer_->on_notification([weak](jsonrpc::Notification n) {
    auto self = weak.lock();
    if (!self) return;
    if (auto* params = n.params.if_object()) {
      json::object event = *params;
      event["method"] = n.method;
      const auto* id = params->if_contains("processId");
      self->events_[id && id->is_string() ? std::string(id->get_string()) : ""].push_back(
          std::move(event));
    }
    self->changed_.notify_all();
  });
  peer_->on_unmatched_response([weak](jsonrpc::Response r) {
    if (auto self = weak.lock()) {
      self->unmatched_.push_back(std::move(r));
      self->changed_.notify_all();
    }
  });
  auto peer = peer_;
  asio::co_spawn(
      peer_->get_executor(),
      [peer, weak]() -> asio::awaitable<void> {
        co_await peer->run();
        if (auto self = weak.lock()) self->changed_.notify_all();
      },
      asio::detached);
}

asio::awaitable<jsonrpc::Reply> TestClient::call(std::string method, json::value params,
                                                 std::chrono::milliseconds timeout) {
  co_return co_await peer_->call(std::move(method), std::move(params), timeout);
}

asio::awaitable<json::value> TestClient::call_ok(std::string method, json::value params) {
  auto reply = co_await call(method, std::move(params));
  if (!reply) {
    throw std::runtime_error(method + " failed (" + std::to_string(reply.error().code) +
                             "): " + reply.error().message);
  }
  co_return std::move(*reply);
}

asio::awaitable<json::object> TestClient::initialize(std::optional<std::string> resume) {
  json::object params{{"clientName", "tether-test"}};
  params["resumeSessionId"] = resume ? json::value(*resume) : json::value(nullptr);
  auto result = co_await call_ok("initialize", std::move(params));
  peer_->notify("initialized", json::object{});
  co_return result.as_object();
}

asio::awaitable<jsonrpc::Response> TestClient::raw_call(json::object request,
                                                        std::chrono::milliseconds timeout) {
  const json::value id = request.at("id");
  peer_->send(json::serialize(request));
  std::optional<jsonrpc::Response> found;
  co_await wait_until(
      [&] {
        for (auto it = unmatched_.begin(); it != unmatched_.end(); ++it) {
          if (it->id && jsonrpc::to_json(*it->id) == id) {
            found = std::move(*it);
            unmatched_.erase(it);
            return true;
          }
        }
        return false;
      },
      timeout);
  if (!found) throw std::runtime_error("no response to raw request " + json::serialize(request));
  co_return std::move(*found);
}

std::vector<json::object> TestClient::events(const std::string& process_id) const {
  auto it = events_.find(process_id);
  return it == events_.end() ? std::vector<json::object>{} : it->second;
}

asio::awaitable<bool> TestClient::wait_until(const std::function<bool()>& condition,
                                             std::chrono::milliseconds timeout) {
  asio::steady_timer timer(peer_->get_executor(), timeout);
  bool timed_out = false;
  while (!condition()) {
    if (timed_out) co_return false;
    boost::system::error_code ec;
    auto which = co_await (changed_.wait() ||
                           timer.async_wait(asio::redirect_error(asio::use_awaitable, ec)));
    timed_out = which.index() == 1;
  }
  co_return true;
}

asio::awaitable<bool> TestClient::wait_closed(const std::string& process_id,
                                              std::chrono::milliseconds timeout) {
  co_return co_await wait_until(
      [&] {
        for (const auto& e : events(process_id))
          if (e.at("method") == "process/closed") return true;
        return false;
      },
      timeout);
}

asio::awaitable<bool> TestClient::wait_output(const std::string& process_id,
                                              const std::string& needle,
                                              std::chrono::milliseconds timeout) {
  co_return co_await wait_until(
      [&] { return output(process_id).find(needle) != std::string::npos; }, timeout);
}

asio::awaitable<bool> TestClient::wait_unmatched(std::size_t count,
                                                 std::chrono::milliseconds timeout) {
  co_return co_await wait_until([&] { return unmatched_.size() >= count; }, timeout);
}

asio::awaitable<bool> TestClient::wait_disconnected(std::chrono::milliseconds timeout) {
  co_return co_await wait_until([&] { return peer_->is_closed(); }, timeout);
}

std::string TestClient::output(const std::string& process_id,
                               std::optional<std::string> stream) const {
  std::map<std::int64_t, std::string> by_seq;
  for (const auto& e : events(process_id)) {
    if (e.at("method") != "process/output") continue;
    if (stream && e.at("stream").as_string() != *stream) continue;
    by_seq[e.at("seq").as_int64()] = unb64(e.at("chunk").as_string());
  }
  std::string out;
  for (auto& [seq, bytes] : by_seq) out += bytes;
  return out;
}

}  // namespace tether::testing
