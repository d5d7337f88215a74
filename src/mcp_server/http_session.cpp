// HttpSession: every message to the client becomes an event on a stream; writers (the HTTP
// connections) follow a stream by sequence number, so a connection that drops loses nothing the
// history still holds, and a GET with Last-Event-ID picks up where it left. The history is
// bounded by bytes (trim): what goes first is events a reader has written or that no one reads
// now (oldest first; responses stay), then streams delivered whole; a reader that falls four
// budgets behind loses its oldest unread events; last go whole streams whose response no one
// has read. A stream answered as plain JSON is not kept at all (no event id was given out), and
// at most 64 finished streams are kept, whatever their bytes.
#include "http_session.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace tether::mcp_server {
namespace asio = boost::asio;
using jsonrpc::make_error;
using jsonrpc::Reply;

namespace {

// How far past the replay budget a session may hold events a reader has not read yet.
constexpr std::size_t kLaggingFactor = 4;
// Finished streams kept for replay, whatever their bytes.
constexpr std::size_t kMaxKeptStreams = 64;

class HttpOutbound : public Outbound {
 public:
  explicit HttpOutbound(std::weak_ptr<HttpSession> session) : session_(std::move(session)) {}

  void notify(jsonrpc::Notification notification,
              const std::optional<jsonrpc::Id>& related) override {
    if (auto session = session_.lock()) session->push(related, jsonrpc::serialize(notification));
  }

  asio::awaitable<Reply> request(std::string method, json::value params,
                                 std::optional<jsonrpc::Id> related,
                                 std::chrono::milliseconds timeout) override {
    auto session = session_.lock();
    if (!session)
      co_return Reply{boost::system::in_place_error,
                      make_error(jsonrpc::code::kConnectionClosed, "the client session has ended")};
    co_return co_await session->request(std::move(method), std::move(params), std::move(related),
                                        timeout);
  }

 private:
  std::weak_ptr<HttpSession> session_;
};

}  // namespace

HttpSession::HttpSession(asio::any_io_executor executor, std::string id,
                         std::shared_ptr<Service> service, std::size_t replay_bytes,
                         std::shared_ptr<Parking> parking)
    : executor_(std::move(executor)),
      id_(std::move(id)),
      service_(std::move(service)),
      replay_bytes_(replay_bytes),
      parking_(std::move(parking)),
      own_stream_(std::make_shared<Stream>(executor_, 0)),
      last_active_(std::chrono::steady_clock::now()) {
  streams_.emplace(0, own_stream_);
}

void HttpSession::open() {
  session_ = std::make_shared<Session>(
      executor_, service_, std::make_unique<HttpOutbound>(weak_from_this()), id_, parking_);
}

std::string HttpSession::event_id(const Stream& stream, const Event& event) {
  return fmt::format("{}-{}", stream.id, event.seq);
}

std::optional<std::pair<std::shared_ptr<HttpSession::Stream>, std::uint64_t>>
HttpSession::find_event(std::string_view event_id) const {
  const auto dash = event_id.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::uint64_t stream = 0;
  std::uint64_t seq = 0;
  try {
    std::size_t used = 0;
    const std::string stream_text(event_id.substr(0, dash));
    const std::string seq_text(event_id.substr(dash + 1));
    stream = std::stoull(stream_text, &used);
    if (used != stream_text.size()) return std::nullopt;
    seq = std::stoull(seq_text, &used);
    if (used != seq_text.size()) return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  auto it = streams_.find(stream);
  if (it == streams_.end() || seq >= it->second->next_seq) return std::nullopt;
  // Events after `seq` that the history no longer holds cannot be replayed: not found.
  const auto& events = it->second->events;
  const auto first_kept = events.empty() ? it->second->next_seq : events.front().seq;
  if (first_kept > seq + 1) return std::nullopt;
  return std::make_pair(it->second, seq);
}

std::shared_ptr<HttpSession::Stream> HttpSession::begin_request(jsonrpc::Request request) {
  auto stream = std::make_shared<Stream>(executor_, next_stream_++);
  stream->readers = 1;  // the POST that carried the request; its writer counts it down
  streams_.emplace(stream->id, stream);
  request_streams_[request.id] = stream;
  asio::co_spawn(executor_, run_request(shared_from_this(), stream, std::move(request)),
                 asio::detached);
  return stream;
}

asio::awaitable<void> HttpSession::run_request(std::shared_ptr<HttpSession> self,
                                               std::shared_ptr<Stream> stream,
                                               jsonrpc::Request request) {
  const jsonrpc::Id id = request.id;
  auto reply = co_await self->session_->handle_request(std::move(request));
  if (self->request_streams_[id] == stream) self->request_streams_.erase(id);
  if (reply || reply.error().code != jsonrpc::code::kRequestCancelled)
    self->append(*stream, jsonrpc::serialize(jsonrpc::Response{id, std::move(reply)}));
  stream->done = true;
  stream->changed.notify_all();
  self->trim();
}

void HttpSession::append(Stream& stream, std::string text) {
  retained_ += text.size();
  stream.events.push_back(Event{stream.next_seq++, next_order_++, std::move(text)});
  stream.changed.notify_all();
  trim();
}

void HttpSession::push(const std::optional<jsonrpc::Id>& related, std::string text) {
  if (ended_) return;
  Stream* target = own_stream_.get();
  if (related) {
    auto it = request_streams_.find(*related);
    if (it != request_streams_.end()) target = it->second.get();
  }
  append(*target, std::move(text));
}

void HttpSession::mark_written(Stream& stream, std::uint64_t seq, bool delivered) {
  stream.written = std::max(stream.written, seq);
  stream.delivered = stream.delivered || delivered;
  trim();
}

void HttpSession::forget(const Stream& stream) {
  auto it = streams_.find(stream.id);
  if (it == streams_.end() || it->second.get() != &stream) return;
  for (const auto& event : stream.events) retained_ -= event.data.size();
  streams_.erase(it);
}

void HttpSession::drop_oldest(std::size_t budget, bool (*droppable)(const Stream&, const Event&)) {
  while (retained_ > budget) {
    Stream* oldest = nullptr;
    for (const auto& [id, stream] : streams_) {
      const auto& events = stream->events;
      const bool response_next = stream->done && events.size() <= 1;
      if (events.empty() || response_next || !droppable(*stream, events.front())) continue;
      if (!oldest || events.front().order < oldest->events.front().order) oldest = stream.get();
    }
    if (oldest == nullptr) return;
    retained_ -= oldest->events.front().data.size();
    oldest->events.pop_front();
  }
}

void HttpSession::trim() {
  // Finished streams cost memory beyond their bytes: at most kMaxKeptStreams are kept, the
  // oldest delivered ones going first.
  std::size_t finished = 0;
  for (const auto& [id, stream] : streams_) finished += stream->done ? 1 : 0;
  for (auto it = streams_.begin(); finished > kMaxKeptStreams && it != streams_.end();) {
    const auto& stream = *it->second;
    if (!stream.done || !stream.delivered || stream.readers > 0) {
      ++it;
      continue;
    }
    for (const auto& event : stream.events) retained_ -= event.data.size();
    it = streams_.erase(it);
    --finished;
  }
  if (retained_ <= replay_bytes_) return;
  auto drop_streams = [&](bool delivered_only) {
    for (auto it = streams_.begin(); retained_ > replay_bytes_ && it != streams_.end();) {
      const auto& stream = *it->second;
      if (!stream.done || (delivered_only && !stream.delivered) ||
          (!delivered_only && stream.readers > 0)) {
        ++it;
        continue;
      }
      for (const auto& event : stream.events) retained_ -= event.data.size();
      it = streams_.erase(it);
    }
  };
  // What a reader has seen, or what no one is reading now (a client that may come back); then
  // the responses of streams delivered whole.
  drop_oldest(replay_bytes_, [](const Stream& stream, const Event& event) {
    return event.seq <= stream.written || stream.readers == 0;
  });
  drop_streams(true);
  // A reader far behind (a client that stopped reading) loses its oldest unread events too.
  if (retained_ > kLaggingFactor * replay_bytes_ && !warned_lagging_) {
    warned_lagging_ = true;
    spdlog::warn("gateway: session {}...: a client reads too slowly; its oldest events are dropped",
                 id_.substr(0, 8));
  }
  drop_oldest(kLaggingFactor * replay_bytes_, [](const Stream&, const Event&) { return true; });
  drop_streams(false);
}

void HttpSession::deliver(jsonrpc::Response response) {
  const auto* id = response.id ? std::get_if<std::int64_t>(&*response.id) : nullptr;
  auto it = id ? pending_.find(*id) : pending_.end();
  if (it == pending_.end()) {
    spdlog::debug("gateway: session {}: an answer to no request of ours", id_);
    return;
  }
  it->second->reply = std::move(response.reply);
  it->second->timer.cancel();
  pending_.erase(it);
}

void HttpSession::notify(const jsonrpc::Notification& notification) {
  session_->handle_notification(notification);
}

asio::awaitable<Reply> HttpSession::request(std::string method, json::value params,
                                            std::optional<jsonrpc::Id> related,
                                            std::chrono::milliseconds timeout) {
  // (Only Session::request calls this, and it checks first that the session has not ended.)
  auto self = shared_from_this();
  const std::int64_t id = next_request_id_++;
  auto pending = std::make_shared<Pending>(executor_);
  pending_.emplace(id, pending);
  struct Forget {
    HttpSession* session;
    std::int64_t id;
    ~Forget() { session->pending_.erase(id); }
  } forget{this, id};
  push(related, jsonrpc::serialize(jsonrpc::Request{id, std::move(method), std::move(params)}));
  pending->timer.expires_after(timeout);
  boost::system::error_code ec;
  co_await pending->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (pending->reply) co_return std::move(*pending->reply);
  if (ended_)
    co_return Reply{boost::system::in_place_error,
                    make_error(jsonrpc::code::kConnectionClosed, "the client session has ended")};
  co_return Reply{boost::system::in_place_error,
                  make_error(jsonrpc::code::kRequestTimedOut, "the client did not answer in time")};
}

void HttpSession::end() {
  if (ended_) return;
  ended_ = true;
  session_->end();
  for (auto& [id, pending] : pending_) pending->timer.cancel();
  for (auto& [id, stream] : streams_) stream->changed.notify_all();
}

}  // namespace tether::mcp_server
