// The client's http/request: answered whole, or as a fetch::Client whose exchanges stream
// their bodies through bodyDelta notifications routed by request id.
//
// A stream's route exists from before its request is sent until its last delta, a failure or a
// cancel; deltas arrive in seq order on the one connection, so a gap means the executor broke
// the protocol. The reader pulls pieces from the route; the connection is never paused for it,
// so a reader that falls too far behind loses its stream instead.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <fmt/format.h>

#include "client_impl.hpp"

namespace tether::exec {
namespace asio = boost::asio;

namespace {

// A tether executor marks the failures where nothing reached the server (codex does not): they
// are kUnreachable here, as the direct client's are.
jsonrpc::Error unreachable_or(jsonrpc::Error error) {
  const auto* data = error.data ? error.data->if_object() : nullptr;
  const auto* unreachable = data ? data->if_contains("unreachable") : nullptr;
  if (unreachable && unreachable->is_bool() && unreachable->as_bool())
    error.code = jsonrpc::code::kUnreachable;
  return error;
}

jsonrpc::Error stream_failure(std::string message) {
  return jsonrpc::make_error(jsonrpc::code::kInternalError, std::move(message));
}

asio::awaitable<void> send_cancel(std::shared_ptr<ExecClient::Impl> impl, std::string request_id) {
  HttpCancelParams params{std::move(request_id)};
  // codex has no such method (-32601): its stream then runs until the body ends.
  co_await impl->call(kHttpCancel, std::move(params), false);
}

// The answer to one exchange's http/request, shared with the call that waits for it (the
// exchange may be gone before it arrives).
struct PendingHead {
  explicit PendingHead(const asio::any_io_executor& executor) : arrived(executor) {}
  std::optional<Expected<HttpResponse>> response;
  jsonrpc::AsyncSignal arrived;
};

asio::awaitable<void> call_http(std::shared_ptr<ExecClient::Impl> impl, HttpRequestParams params,
                                std::shared_ptr<PendingHead> pending) {
  // Never sent twice: the executor may have made the request before the connection dropped.
  pending->response = co_await impl->call(kHttpRequest, std::move(params), false);
  pending->arrived.notify_all();
}

class ExecutorExchange final : public fetch::Exchange {
 public:
  ExecutorExchange(std::shared_ptr<ExecClient::Impl> impl, fetch::Request request)
      : impl_(std::move(impl)), request_(std::move(request)) {}
  ExecutorExchange(const ExecutorExchange&) = delete;
  ExecutorExchange& operator=(const ExecutorExchange&) = delete;
  ~ExecutorExchange() override { cancel(); }

  asio::awaitable<Expected<void>> send() override {
    if (auto valid = fetch::check_request(request_); !valid) co_return valid.error();
    if (cancelled_) co_return cancelled();
    if (pending_) co_return Expected<void>{};
    auto opened = impl_->open_body_route();
    request_id_ = opened.first;
    route_ = opened.second;
    HttpRequestParams params;
    params.method = request_.method;
    params.url = request_.url;
    params.headers = std::move(request_.headers);
    if (!request_.body.empty()) params.body = std::move(request_.body);
    if (request_.timeout) params.timeout_ms = static_cast<std::uint64_t>(request_.timeout->count());
    params.request_id = request_id_;
    params.stream_response = true;
    params.redirect_policy = request_.redirects;
    pending_ = std::make_shared<PendingHead>(impl_->executor());
    // Started here, so calls leave in the order their exchanges were sent.
    asio::co_spawn(impl_->executor(), call_http(impl_, std::move(params), pending_),
                   asio::detached);
    co_return Expected<void>{};
  }

  asio::awaitable<Expected<fetch::Head>> head() override {
    if (!pending_) {
      auto sent = co_await send();
      if (!sent) co_return sent.error();
    }
    auto pending = pending_;
    while (!pending->response && !cancelled_) co_await pending->arrived.wait();
    if (cancelled_) co_return cancelled();
    auto& response = *pending->response;
    if (!response) {
      forget();
      co_return unreachable_or(response.error());
    }
    fetch::Head head;
    head.status = response->status;
    head.headers = std::move(response->headers);
    co_return head;
  }

  asio::awaitable<Expected<std::string>> read() override {
    auto route = route_;
    if (cancelled_ || !route) co_return cancelled();
    for (;;) {
      if (!route->pieces.empty()) {
        auto piece = std::move(route->pieces.front());
        route->pieces.pop_front();
        route->buffered -= piece.size();
        co_return piece;
      }
      if (route->failure) co_return stream_failure(*route->failure);
      if (route->done) {
        forget();
        co_return std::string();
      }
      co_await route->changed.wait();
      if (cancelled_) co_return cancelled();
    }
  }

  void cancel() override {
    if (cancelled_) return;
    cancelled_ = true;
    const bool open = route_ && !route_->done && !route_->failure;
    if (route_) route_->changed.notify_all();
    if (pending_) pending_->arrived.notify_all();
    forget();
    if (open && !impl_->disconnected())
      asio::co_spawn(impl_->executor(), send_cancel(impl_, request_id_), asio::detached);
  }

 private:
  static jsonrpc::Error cancelled() {
    return jsonrpc::make_error(jsonrpc::code::kRequestCancelled, "the request was cancelled");
  }

  void forget() {
    if (!request_id_.empty()) impl_->close_body_route(request_id_);
  }

  std::shared_ptr<ExecClient::Impl> impl_;
  fetch::Request request_;
  std::string request_id_;
  std::shared_ptr<ExecClient::Impl::BodyRoute> route_;
  std::shared_ptr<PendingHead> pending_;
  bool cancelled_ = false;
};

class ExecutorHttpClient final : public fetch::Client {
 public:
  ExecutorHttpClient(std::shared_ptr<ExecClient::Impl> impl, std::string origin)
      : impl_(std::move(impl)), origin_(std::move(origin)) {}
  std::shared_ptr<fetch::Exchange> start(fetch::Request request) override {
    return std::make_shared<ExecutorExchange>(impl_, std::move(request));
  }
  std::string origin() const override { return origin_; }

 private:
  std::shared_ptr<ExecClient::Impl> impl_;
  std::string origin_;
};

}  // namespace

std::pair<std::string, std::shared_ptr<ExecClient::Impl::BodyRoute>>
ExecClient::Impl::open_body_route() {
  auto id = fmt::format("tether-http-{}", next_http_id_++);
  auto route = std::make_shared<BodyRoute>(executor_);
  body_routes_[id] = route;
  return {std::move(id), std::move(route)};
}

void ExecClient::Impl::close_body_route(const std::string& request_id) {
  body_routes_.erase(request_id);
}

void ExecClient::Impl::route_body_delta(const jsonrpc::Notification& n) {
  auto delta = decode<HttpBodyDelta>(n.params);
  if (!delta) return;
  auto it = body_routes_.find(delta->request_id);
  if (it == body_routes_.end()) return;  // cancelled or unknown: nobody reads it
  auto& route = *it->second;
  const auto fail = [&](std::string message) {
    route.failure = std::move(message);
    route.changed.notify_all();
    body_routes_.erase(it);
  };
  if (delta->seq != route.next_seq)
    return fail(
        fmt::format("the executor broke the protocol: http/request/bodyDelta {} of {} "
                    "came where {} was expected",
                    delta->seq, delta->request_id, route.next_seq));
  ++route.next_seq;
  if (!delta->bytes.empty()) {
    route.buffered += delta->bytes.size();
    route.pieces.push_back(std::move(delta->bytes));
  }
  if (route.buffered > options_.max_http_buffered_bytes) {
    fail(fmt::format("the HTTP body was not read fast enough: more than {} bytes waited",
                     options_.max_http_buffered_bytes));
    asio::co_spawn(executor_, send_cancel(shared_from_this(), delta->request_id), asio::detached);
    return;
  }
  if (delta->error) return fail(fmt::format("the HTTP body failed: {}", *delta->error));
  route.done = delta->done;
  route.changed.notify_all();
  if (route.done) body_routes_.erase(it);
}

void ExecClient::Impl::fail_body_routes(const std::string& reason) {
  for (auto& [id, route] : body_routes_) {
    route->failure = reason;
    route->changed.notify_all();
  }
  body_routes_.clear();
}

asio::awaitable<Expected<HttpResponse>> ExecClient::http_request(HttpRequestParams params) {
  params.stream_response = false;
  // codex refuses a request without one; its own buffered requests all send this id.
  if (!params.request_id) params.request_id = "buffered-request";
  return impl_->call(kHttpRequest, std::move(params), false);
}

std::shared_ptr<fetch::Client> ExecClient::http_client(std::string origin) {
  return std::make_shared<ExecutorHttpClient>(impl_, std::move(origin));
}

}  // namespace tether::exec
