// PeerSession: the Peer calls into the Session through weak pointers, so a Peer still reading
// after the PeerSession is gone calls nothing.
#include <tether/mcp_server/peer_session.hpp>

namespace tether::mcp_server {
namespace asio = boost::asio;

namespace {

class PeerOutbound : public Outbound {
 public:
  explicit PeerOutbound(std::weak_ptr<jsonrpc::Peer> peer) : peer_(std::move(peer)) {}

  void notify(jsonrpc::Notification notification,
              const std::optional<jsonrpc::Id>& /*related*/) override {
    if (auto peer = peer_.lock())
      peer->notify(std::move(notification.method), std::move(notification.params));
  }

  asio::awaitable<jsonrpc::Reply> request(std::string method, json::value params,
                                          std::optional<jsonrpc::Id> /*related*/,
                                          std::chrono::milliseconds timeout) override {
    auto peer = peer_.lock();
    if (!peer)
      co_return jsonrpc::Reply{
          boost::system::in_place_error,
          jsonrpc::make_error(jsonrpc::code::kConnectionClosed, "the client session has ended")};
    co_return co_await peer->call(std::move(method), std::move(params), timeout);
  }

 private:
  std::weak_ptr<jsonrpc::Peer> peer_;
};

// A plain function, not a capturing lambda: the coroutine frame must not refer to a closure.
asio::awaitable<jsonrpc::Reply> answer(std::weak_ptr<Session> weak, jsonrpc::Request request) {
  auto session = weak.lock();
  if (!session)
    co_return jsonrpc::Reply{
        boost::system::in_place_error,
        jsonrpc::make_error(jsonrpc::code::kInvalidRequest, "the session has ended")};
  co_return co_await session->handle_request(std::move(request));
}

}  // namespace

PeerSession::PeerSession(const asio::any_io_executor& executor, std::shared_ptr<Service> service,
                         std::unique_ptr<jsonrpc::Transport> transport,
                         PeerSessionOptions options) {
  jsonrpc::PeerOptions peer_options;
  peer_options.max_in_flight_requests = options.max_in_flight_requests;
  peer_options.send_high_water = options.send_high_water;
  peer_ = jsonrpc::Peer::create(executor, std::move(transport), peer_options);
  session_ = std::make_shared<Session>(
      executor, std::move(service), std::make_unique<PeerOutbound>(peer_), "stdio",
      std::make_shared<Parking>(executor, options.max_parked, options.parked_lifetime));
  std::weak_ptr<Session> weak = session_;
  peer_->on_request([weak](jsonrpc::Request request) { return answer(weak, std::move(request)); });
  peer_->on_notification([weak](const jsonrpc::Notification& notification) {
    if (auto session = weak.lock()) session->handle_notification(notification);
  });
}

PeerSession::~PeerSession() {
  session_->end();
  peer_->abort("MCP session ended");
}

asio::awaitable<void> PeerSession::run() {
  auto peer = peer_;
  auto session = session_;
  co_await peer->run();
  session->end();
}

void PeerSession::close() {
  peer_->close();
}

}  // namespace tether::mcp_server
