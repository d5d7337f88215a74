// Test support: the scripted fake executor (see fake_executor.hpp for why it is a fake).
#include "fake_executor.hpp"

#include <functional>
#include <map>
#include <stdexcept>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/json.hpp>

#include <tether/jsonrpc/async_signal.hpp>
#include <tether/jsonrpc/peer.hpp>
#include <tether/jsonrpc/transport.hpp>

namespace tether::testing {
namespace asio = boost::asio;
namespace json = boost::json;
using asio::ip::tcp;
using jsonrpc::Reply;
using namespace asio::experimental::awaitable_operators;

namespace {

// Passes everything through to the real WebSocket transport and shows each message read to
// `record` before the Peer parses it, so received() is the exact wire content.
class RecordingTransport final : public jsonrpc::Transport {
 public:
  RecordingTransport(std::unique_ptr<Transport> inner,
                     std::function<void(const std::string&)> record)
      : inner_(std::move(inner)), record_(std::move(record)) {}

  asio::awaitable<boost::system::result<std::string>> read() override {
    auto message = co_await inner_->read();
    if (message) record_(*message);
    co_return message;
  }
  asio::awaitable<boost::system::error_code> write(const std::string& message) override {
    co_return co_await inner_->write(message);
  }
  asio::awaitable<boost::system::error_code> ping(std::string payload) override {
    co_return co_await inner_->ping(std::move(payload));
  }
  void on_pong(std::function<void(std::string_view)> handler) override {
    inner_->on_pong(std::move(handler));
  }
  asio::awaitable<void> close(std::uint16_t code) override { co_await inner_->close(code); }
  void abort() override { inner_->abort(); }
  std::optional<std::uint16_t> remote_close_code() const override {
    return inner_->remote_close_code();
  }
  bool has_keepalive() const override { return inner_->has_keepalive(); }
  bool idle_expired() const override { return inner_->idle_expired(); }

 private:
  std::unique_ptr<Transport> inner_;
  std::function<void(const std::string&)> record_;
};

asio::awaitable<Reply> ready(Reply reply) {
  co_return reply;
}

json::value initialize_result() {
  return json::object{{"sessionId", FakeExecutor::kSessionId},
                      {"environmentInfo",
                       {{"shell", {{"name", "sh"}, {"path", "/bin/sh"}}},
                        {"executorVersion", "fake"},
                        {"platformOs", "linux"},
                        {"cwd", "file:///"},
                        {"userHomeDir", "file:///"},
                        {"tempDir", "file:///tmp"},
                        {"capabilities", json::object{}}}}};
}

json::value start_result(const json::value& params) {
  json::value id = nullptr;
  if (const auto* object = params.if_object())
    if (const auto* found = object->if_contains("processId")) id = *found;
  return json::object{{"processId", std::move(id)}, {"sandboxType", "none"}};
}

}  // namespace

namespace detail {

struct FakeExecutorState {
  explicit FakeExecutorState(const asio::any_io_executor& ex)
      : executor(ex), acceptor(ex), changed(ex) {}

  Reply reply_to(const jsonrpc::Request& request) const {
    if (auto it = answers.find(request.method); it != answers.end()) return it->second;
    if (request.method == "initialize") return initialize_result();
    if (request.method == "process/start") return start_result(request.params);
    return json::object{};
  }

  void record(const std::string& text) {
    boost::system::error_code ec;
    auto message = json::parse(text, ec);
    received.push_back(ec ? json::value(text) : std::move(message));
    changed.notify_all();
  }

  std::size_t count(const std::string& method) const {
    std::size_t n = 0;
    for (const auto& message : received) {
      const auto* object = message.if_object();
      const auto* found = object ? object->if_contains("method") : nullptr;
      if (found && found->is_string() && found->get_string() == method) ++n;
    }
    return n;
  }

  asio::any_io_executor executor;
  tcp::acceptor acceptor;
  std::map<std::string, Reply> answers;
  std::vector<json::value> received;
  std::vector<std::shared_ptr<jsonrpc::Peer>> peers;  // every connection, oldest first
  jsonrpc::AsyncSignal changed;                       // a message was received
};

}  // namespace detail

namespace {

// Holds the state only weakly: a connection still in its handshake when the fake is destroyed
// ends with its handshake.
asio::awaitable<void> serve(std::weak_ptr<detail::FakeExecutorState> weak, tcp::socket socket) {
  jsonrpc::WebSocket ws(std::move(socket));
  boost::system::error_code ec;
  co_await ws.async_accept(asio::redirect_error(asio::use_awaitable, ec));
  auto state = weak.lock();
  if (ec || !state) co_return;
  auto transport = std::make_unique<RecordingTransport>(
      jsonrpc::make_websocket_transport(std::move(ws), {}), [weak](const std::string& text) {
        if (auto self = weak.lock()) self->record(text);
      });
  auto peer = jsonrpc::Peer::create(state->executor, std::move(transport), {});
  peer->on_request([weak](jsonrpc::Request request) {
    auto self = weak.lock();
    if (!self)
      return ready(Reply{boost::system::in_place_error,
                         jsonrpc::make_error(jsonrpc::code::kInternalError, "fake executor gone")});
    return ready(self->reply_to(request));
  });
  state->peers.push_back(peer);
  state.reset();
  co_await peer->run();
}

asio::awaitable<void> accept_loop(std::shared_ptr<detail::FakeExecutorState> state) {
  for (;;) {
    tcp::socket socket(state->executor);
    boost::system::error_code ec;
    co_await state->acceptor.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
    // Closed by the destructor (operation_aborted), or unusable: no more connections either way.
    if (ec) co_return;
    asio::co_spawn(state->executor, serve(state, std::move(socket)), asio::detached);
  }
}

}  // namespace

FakeExecutor::FakeExecutor(const asio::any_io_executor& executor)
    : state_(std::make_shared<detail::FakeExecutorState>(executor)) {
  const tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"), 0);
  state_->acceptor.open(endpoint.protocol());
  state_->acceptor.bind(endpoint);
  state_->acceptor.listen();
  asio::co_spawn(executor, accept_loop(state_), asio::detached);
}

FakeExecutor::~FakeExecutor() {
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
  for (const auto& peer : state_->peers) peer->abort("fake executor destroyed");
}

unsigned short FakeExecutor::port() const {
  return state_->acceptor.local_endpoint().port();
}

std::string FakeExecutor::url() const {
  return "ws://127.0.0.1:" + std::to_string(port());
}

void FakeExecutor::answer(std::string method, json::value result) {
  state_->answers.insert_or_assign(std::move(method), Reply{std::move(result)});
}

void FakeExecutor::answer_error(std::string method, int code, std::string message) {
  state_->answers.insert_or_assign(
      std::move(method),
      Reply{boost::system::in_place_error, jsonrpc::make_error(code, std::move(message))});
}

void FakeExecutor::send(std::string text) {
  for (auto it = state_->peers.rbegin(); it != state_->peers.rend(); ++it) {
    if ((*it)->is_closed()) continue;
    (*it)->send(std::move(text));
    return;
  }
  throw std::logic_error("FakeExecutor::send: no client is connected");
}

const std::vector<json::value>& FakeExecutor::received() const {
  return state_->received;
}

asio::awaitable<bool> FakeExecutor::wait_received(std::string method, std::size_t count,
                                                  std::chrono::milliseconds timeout) {
  auto state = state_;
  asio::steady_timer timer(state->executor, timeout);
  bool timed_out = false;
  while (state->count(method) < count) {
    if (timed_out) co_return false;
    boost::system::error_code ec;
    auto which = co_await (state->changed.wait() ||
                           timer.async_wait(asio::redirect_error(asio::use_awaitable, ec)));
    timed_out = which.index() == 1;
  }
  co_return true;
}

std::size_t FakeExecutor::connections() const {
  return state_->peers.size();
}

}  // namespace tether::testing
