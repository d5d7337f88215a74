// Peer: read loop, writer and keepalive as three coroutines on one executor. Every state change
// (closed_, pending_, queue_) happens synchronously between suspensions, so "check, register,
// send" in call() cannot race with finish(): a call either registers before the drain and is
// failed by it, or sees closed_ and fails at once.
// Delivery confirmation: each ping carries the count of messages written before it; its pong
// proves the remote read those bytes (TCP is ordered, and a WebSocket peer answers a ping when
// its reader reaches it). One confirming ping is in flight at a time, so a stream of messages
// costs one ping per round trip, not one per message.
#include <algorithm>
#include <charconv>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <tether/jsonrpc/peer.hpp>

namespace tether::jsonrpc {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

Peer::Peer(asio::any_io_executor executor, std::unique_ptr<Transport> transport,
           PeerOptions options)
    : executor_(std::move(executor)),
      transport_(std::move(transport)),
      options_(options),
      queue_changed_(executor_),
      writable_(executor_),
      readable_(executor_),
      keepalive_timer_(executor_) {}

std::shared_ptr<Peer> Peer::create(asio::any_io_executor executor,
                                   std::unique_ptr<Transport> transport, PeerOptions options) {
  auto peer = std::shared_ptr<Peer>(new Peer(std::move(executor), std::move(transport), options));
  // The transport is owned by the peer, so the raw pointer cannot dangle.
  peer->transport_->on_pong(
      [raw = peer.get()](std::string_view payload) { raw->confirm(payload); });
  return peer;
}

asio::awaitable<void> Peer::run() {
  auto self = shared_from_this();
  asio::co_spawn(executor_, write_loop(), asio::detached);
  if (transport_->has_keepalive() && options_.ping_interval.count() > 0)
    asio::co_spawn(executor_, keepalive_loop(), asio::detached);

  while (!closed_) {
    while (!closed_ && reading_paused()) co_await readable_.wait();
    if (closed_) break;
    auto text = co_await transport_->read();
    if (!text) {
      const auto remote = transport_->remote_close_code();
      finish(remote ? "connection closed by peer (code " + std::to_string(*remote) + ")"
                    : text.error().message());
      break;
    }
    dispatch(*text);
  }
}

bool Peer::reading_paused() const {
  if (options_.max_in_flight_request_bytes > 0 &&
      in_flight_bytes_ >= options_.max_in_flight_request_bytes)
    return true;
  return options_.max_in_flight_requests > 0 && (in_flight_ >= options_.max_in_flight_requests ||
                                                 queued_bytes_ > options_.send_high_water);
}

void Peer::dispatch(const std::string& text) {
  auto parsed = parse(text);
  if (!parsed && !options_.answer_invalid_input) {
    spdlog::warn("jsonrpc: skipping invalid message ({}): {:.200}", parsed.error().error.message,
                 text);
    return;
  }
  if (!parsed) {
    respond(
        Response{parsed.error().id, Reply{boost::system::in_place_error, parsed.error().error}});
    return;
  }
  auto self = shared_from_this();
  if (auto* request = std::get_if<Request>(&*parsed)) {
    ++in_flight_;
    in_flight_bytes_ += text.size();
    asio::co_spawn(
        executor_,
        [self, request = std::move(*request),
         bytes = text.size()]() mutable -> asio::awaitable<void> {
          Id id = request.id;
          // Not a conditional expression: GCC 12 miscompiles co_await inside `?:`.
          Reply reply{boost::system::in_place_error,
                      make_error(code::kMethodNotFound, "method not found")};
          if (self->on_request_) reply = co_await self->on_request_(std::move(request));
          if (reply || reply.error().code != code::kRequestCancelled)
            self->respond(Response{std::move(id), std::move(reply)});
          --self->in_flight_;
          self->in_flight_bytes_ -= bytes;
          self->readable_.notify_all();
        },
        asio::detached);
  } else if (auto* notification = std::get_if<Notification>(&*parsed)) {
    if (on_notification_) on_notification_(std::move(*notification));
  } else {
    auto& response = std::get<Response>(*parsed);
    const auto* int_id = response.id ? std::get_if<std::int64_t>(&*response.id) : nullptr;
    auto it = int_id ? pending_.find(*int_id) : pending_.end();
    if (it == pending_.end()) {
      if (on_unmatched_) on_unmatched_(std::move(response));
      return;
    }
    it->second->reply = std::move(response.reply);
    it->second->timer.cancel();
    pending_.erase(it);
  }
}

asio::awaitable<Reply> Peer::call_with_id(std::int64_t id, std::string method, json::value params,
                                          std::optional<std::chrono::milliseconds> timeout) {
  if (closed_)
    co_return Reply{boost::system::in_place_error,
                    make_error(code::kConnectionClosed, end_reason_)};
  auto pending = std::make_shared<Pending>(executor_);
  pending_.emplace(id, pending);
  // Leaving early (timeout, cancellation) must not leave the entry behind.
  struct Unregister {
    Peer* peer;
    std::int64_t id;
    ~Unregister() { peer->pending_.erase(id); }
  } unregister{this, id};
  send(serialize(Request{id, std::move(method), std::move(params)}));

  pending->deadline = timeout ? std::chrono::steady_clock::now() + *timeout
                              : std::chrono::steady_clock::time_point::max();
  pending->timer.expires_at(pending->deadline);
  while (!pending->reply) {
    boost::system::error_code ec;
    co_await pending->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (!pending->reply && std::chrono::steady_clock::now() >= pending->deadline)
      co_return Reply{boost::system::in_place_error,
                      make_error(code::kRequestTimedOut, "request timed out")};
  }
  co_return std::move(*pending->reply);
}

bool Peer::extend_deadline(std::int64_t id, std::chrono::milliseconds timeout) {
  auto it = pending_.find(id);
  if (it == pending_.end() || it->second->reply) return false;
  it->second->deadline = std::chrono::steady_clock::now() + timeout;
  it->second->timer.expires_at(it->second->deadline);  // wakes the waiter, which waits again
  return true;
}

void Peer::notify(std::string method, json::value params) {
  send(serialize(Notification{std::move(method), std::move(params)}));
}

void Peer::respond(const Response& response) {
  std::function<void()> hook;
  if (response.id) {
    if (auto it = response_hooks_.find(*response.id); it != response_hooks_.end()) {
      hook = std::move(it->second);
      response_hooks_.erase(it);
    }
  }
  send(serialize(response), std::move(hook));
}

void Peer::on_response_delivered(const Id& id, std::function<void()> on_delivered) {
  if (closed_) return;
  response_hooks_[id] = std::move(on_delivered);
}

void Peer::send(std::string text, std::function<void()> on_delivered) {
  if (closed_ || close_requested_) return;
  queued_bytes_ += text.size();
  queue_.push_back(Outgoing{std::move(text), false, std::move(on_delivered)});
  queue_changed_.notify_all();
}

void Peer::queue_ping() {
  queue_.push_back(Outgoing{{}, true, {}});
  queue_changed_.notify_all();
}

void Peer::confirm(std::string_view pong_payload) {
  std::uint64_t marker = 0;
  const auto* end = pong_payload.data() + pong_payload.size();
  if (std::from_chars(pong_payload.data(), end, marker).ptr != end) return;
  // A pong cannot vouch for more than we have pinged for.
  marker = std::min(marker, pinged_at_);
  while (!unconfirmed_.empty() && unconfirmed_.front().written_index <= marker) {
    auto callback = std::move(unconfirmed_.front().on_delivered);
    unconfirmed_.pop_front();
    callback();
  }
  if (marker == pinged_at_) confirming_ = false;
  if (!unconfirmed_.empty() && !confirming_ && !closed_ && !close_requested_) {
    confirming_ = true;
    queue_ping();
  }
}

asio::awaitable<void> Peer::wait_writable() {
  while (!closed_ && queued_bytes_ > options_.send_high_water) co_await writable_.wait();
}

void Peer::close(std::uint16_t code) {
  if (closed_ || close_requested_) return;
  close_requested_ = code;
  queue_changed_.notify_all();
}

void Peer::abort(std::string reason) {
  if (closed_) return;
  transport_->abort();
  finish(std::move(reason));
}

void Peer::finish(std::string reason) {
  if (closed_) return;
  closed_ = true;
  end_reason_ = std::move(reason);
  queue_.clear();
  queued_bytes_ = 0;
  unconfirmed_.clear();
  response_hooks_.clear();
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, p] : pending) {
    p->reply =
        Reply{boost::system::in_place_error, make_error(code::kConnectionClosed, end_reason_)};
    p->timer.cancel();
  }
  queue_changed_.notify_all();
  writable_.notify_all();
  readable_.notify_all();
  keepalive_timer_.cancel();
}

asio::awaitable<void> Peer::write_loop() {
  auto self = shared_from_this();
  while (!closed_) {
    if (queue_.empty()) {
      if (close_requested_) {
        co_await transport_->close(*close_requested_);
        transport_->abort();
        finish("connection closed");
        co_return;
      }
      co_await queue_changed_.wait();
      continue;
    }
    Outgoing next = std::move(queue_.front());
    queue_.pop_front();
    boost::system::error_code ec;
    if (next.is_ping) {
      pinged_at_ = written_;
      ec = co_await transport_->ping(std::to_string(written_));
    } else {
      ec = co_await transport_->write(next.text);
    }
    if (closed_) co_return;
    queued_bytes_ -= next.text.size();
    if (queued_bytes_ <= options_.send_high_water) {
      writable_.notify_all();
      readable_.notify_all();
    }
    if (ec) {
      spdlog::debug("jsonrpc: write failed: {}", ec.message());
      abort(ec.message());
      co_return;
    }
    if (next.is_ping) continue;
    ++written_;
    if (!next.on_delivered) continue;
    if (!transport_->has_keepalive()) {
      next.on_delivered();
      continue;
    }
    unconfirmed_.push_back(Unconfirmed{written_, std::move(next.on_delivered)});
    if (!confirming_) {
      confirming_ = true;
      queue_ping();
    }
  }
}

asio::awaitable<void> Peer::keepalive_loop() {
  auto self = shared_from_this();
  while (!closed_) {
    keepalive_timer_.expires_after(options_.ping_interval);
    boost::system::error_code ec;
    co_await keepalive_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (closed_ || close_requested_) co_return;
    if (transport_->idle_expired()) {
      abort("no answer to keepalive pings");
      co_return;
    }
    queue_ping();
  }
}

}  // namespace tether::jsonrpc
