// The direct client (see include/tether/fetch/direct.hpp).
//
// One connection per exchange, `Connection: close`: nothing is pooled, so a request is never
// sent twice because a kept-alive connection turned out stale. The request's timeout is one
// timer over the exchange that closes the connection when it fires; each step then reports it.
#include <algorithm>
#include <vector>

#include <boost/algorithm/string/predicate.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <fmt/format.h>

#include <tether/fetch/direct.hpp>
#include <tether/jsonrpc/duration.hpp>
#include <tether/jsonrpc/url_target.hpp>

namespace tether::fetch {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace code = jsonrpc::code;
using boost::system::error_code;
using jsonrpc::make_error;

using Parser = http::response_parser<http::buffer_body>;

// Headers the client computes itself; a caller's would contradict the body or the connection.
bool is_framing_header(std::string_view name) {
  return boost::algorithm::iequals(name, "content-length") ||
         boost::algorithm::iequals(name, "transfer-encoding") ||
         boost::algorithm::iequals(name, "connection");
}

// Credentials are for the origin they were given to (as browsers and reqwest do on redirects).
bool is_credential_header(std::string_view name) {
  return boost::algorithm::iequals(name, "authorization") ||
         boost::algorithm::iequals(name, "proxy-authorization") ||
         boost::algorithm::iequals(name, "cookie");
}

bool is_redirect(unsigned status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// One HTTP/1.1 connection, plain or TLS.
class Conn {
 public:
  Conn(const asio::any_io_executor& executor, asio::ssl::context* tls) {
    if (tls)
      secure_.emplace(executor, *tls);
    else
      plain_.emplace(executor);
  }

  beast::tcp_stream& tcp() { return plain_ ? *plain_ : beast::get_lowest_layer(*secure_); }
  bool is_tls() const { return secure_.has_value(); }
  beast::ssl_stream<beast::tcp_stream>& tls() { return *secure_; }

  asio::awaitable<error_code> send(const std::string& bytes) {
    const auto op = [&bytes](auto& stream, auto token) {
      return asio::async_write(stream, asio::buffer(bytes), token);
    };
    co_return co_await on_stream(op);
  }

  asio::awaitable<error_code> read_header(Parser& parser) {
    const auto op = [this, &parser](auto& stream, auto token) {
      return http::async_read_header(stream, buffer_, parser, token);
    };
    co_return co_await on_stream(op);
  }

  asio::awaitable<error_code> read_some(Parser& parser) {
    const auto op = [this, &parser](auto& stream, auto token) {
      return http::async_read_some(stream, buffer_, parser, token);
    };
    co_return co_await on_stream(op);
  }

  // Pending operations complete with operation_aborted.
  void close() {
    error_code ignored;
    tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    tcp().close();
  }

 private:
  // Runs `op(stream, token)` on whichever stream this connection has.
  template <class Op>
  asio::awaitable<error_code> on_stream(Op op) {
    error_code ec;
    if (plain_)
      co_await op(*plain_, asio::redirect_error(asio::use_awaitable, ec));
    else
      co_await op(*secure_, asio::redirect_error(asio::use_awaitable, ec));
    co_return ec;
  }

  std::optional<beast::tcp_stream> plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure_;
  beast::flat_buffer buffer_;
};

struct Shared {
  asio::any_io_executor executor;
  DirectOptions options;
  std::unique_ptr<asio::ssl::context> system_tls;  // made on the first https:// request

  asio::ssl::context* tls() {
    if (options.tls) return options.tls;
    if (!system_tls) {
      system_tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
      system_tls->set_default_verify_paths();
      system_tls->set_verify_mode(asio::ssl::verify_peer);
    }
    return system_tls.get();
  }
};

// Where a redirect leads: `location` resolved against `base`; nullopt when it is no URL.
std::optional<std::string> redirect_target(const std::string& base, std::string_view location) {
  auto from = boost::urls::parse_uri(base);
  auto to = boost::urls::parse_uri_reference(location);
  if (!from || !to) return std::nullopt;
  boost::urls::url resolved;
  if (!boost::urls::resolve(*from, *to, resolved)) return std::nullopt;
  resolved.remove_fragment();
  return std::string(resolved.buffer());
}

std::string origin_of(const jsonrpc::UrlTarget& target) {
  return (target.tls ? "https://" : "http://") + target.host + ":" + target.port;
}

class DirectExchange final : public Exchange, public std::enable_shared_from_this<DirectExchange> {
 public:
  DirectExchange(std::shared_ptr<Shared> shared, Request request)
      : shared_(std::move(shared)), request_(std::move(request)), timer_(shared_->executor) {}
  DirectExchange(const DirectExchange&) = delete;
  DirectExchange& operator=(const DirectExchange&) = delete;
  ~DirectExchange() override { close(); }

  asio::awaitable<Expected<void>> send() override {
    auto self = shared_from_this();  // cancel() from the owner's destructor must find us alive
    if (auto valid = check_request(request_); !valid) co_return valid.error();
    if (sent_) co_return Expected<void>{};
    sent_ = true;
    start_timer();
    url_ = request_.url;
    method_ = request_.method;
    body_ = request_.body;
    headers_ = request_.headers;
    auto opened = co_await open();
    if (!opened) send_error_ = opened.error();
    co_return opened;
  }

  asio::awaitable<Expected<Head>> head() override {
    auto self = shared_from_this();
    if (!sent_) {
      auto sent = co_await send();
      if (!sent) co_return sent.error();
    }
    if (send_error_) co_return *send_error_;
    for (int hop = 0;; ++hop) {
      parser_.emplace();
      parser_->header_limit(static_cast<std::uint32_t>(shared_->options.max_head_bytes));
      parser_->body_limit(boost::none);
      if (method_ == "HEAD") parser_->skip(true);
      const error_code ec = co_await conn_->read_header(*parser_);
      if (ec) co_return failure(fmt::format("{} {} failed", method_, url_), ec);
      const auto& response = parser_->get();
      const unsigned status = response.result_int();
      const auto location = response.find(http::field::location);
      if (request_.redirects == Redirects::stop || !is_redirect(status) ||
          location == response.end())
        co_return head_of(response);
      auto next = redirect_target(url_, location->value());
      std::optional<jsonrpc::UrlTarget> next_target;
      if (next)
        if (auto parsed = jsonrpc::parse_url_target(*next, "http", "https")) next_target = *parsed;
      if (!next_target) co_return head_of(response);  // not somewhere we can follow
      if (hop >= shared_->options.max_redirects) {
        close();
        co_return make_error(code::kInternalError,
                             fmt::format("{} {} was redirected more than {} times", request_.method,
                                         request_.url, shared_->options.max_redirects));
      }
      if (status == 303 || ((status == 301 || status == 302) && method_ == "POST")) {
        if (method_ != "HEAD") method_ = "GET";
        body_.clear();
        std::erase_if(headers_, [](const Header& h) {
          return boost::algorithm::iequals(h.name, "content-type");
        });
      }
      if (origin_of(*next_target) != origin_of(target_))
        std::erase_if(headers_, [](const Header& h) { return is_credential_header(h.name); });
      close();
      url_ = std::move(*next);
      auto opened = co_await open();
      if (!opened) co_return opened.error();
    }
  }

  asio::awaitable<Expected<std::string>> read() override {
    auto self = shared_from_this();
    if (cancelled_) co_return cancelled();
    if (!parser_ || !conn_)
      co_return make_error(code::kInternalError, "the response body was read before its head");
    for (;;) {
      if (parser_->is_done()) {
        close();
        co_return std::string();
      }
      if (pending_) co_return failure("reading the response body failed", pending_);
      piece_.resize(shared_->options.read_piece);
      parser_->get().body().data = piece_.data();
      parser_->get().body().size = piece_.size();
      error_code ec = co_await conn_->read_some(*parser_);
      if (ec == http::error::need_buffer) ec = {};
      const std::size_t n = piece_.size() - parser_->get().body().size;
      pending_ = ec;  // after the bytes that came with it
      if (n > 0) co_return std::string(piece_.data(), n);
    }
  }

  void cancel() override {
    cancelled_ = true;
    close();
  }

 private:
  void start_timer() {
    if (!request_.timeout) return;
    timer_.expires_after(*request_.timeout);
    timer_.async_wait([weak = weak_from_this()](error_code ec) {
      auto self = weak.lock();
      if (ec || !self) return;
      self->timed_out_ = true;
      if (self->conn_) self->conn_->close();
    });
  }

  void close() {
    timer_.cancel();
    if (conn_) conn_->close();
  }

  Error cancelled() const {
    return make_error(code::kRequestCancelled, "the request was cancelled");
  }

  // What a failed step reports: the timeout or the cancellation that caused it, if any.
  Error failure(const std::string& what, error_code ec) const {
    if (timed_out_)
      return make_error(code::kRequestTimedOut,
                        fmt::format("{} {} timed out after {}", request_.method, request_.url,
                                    jsonrpc::format_duration(*request_.timeout)));
    if (cancelled_) return cancelled();
    return make_error(code::kInternalError, fmt::format("{}: {}", what, ec.message()));
  }

  Error unreachable(const std::string& what, error_code ec) const {
    auto error = failure(what, ec);
    if (!timed_out_ && !cancelled_) error.code = code::kUnreachable;
    return error;
  }

  // Resolves, connects, shakes hands and sends url_, under the connect timeout.
  asio::awaitable<Expected<void>> open() {
    const auto& options = shared_->options;
    auto parsed = jsonrpc::parse_url_target(url_, "http", "https");
    if (!parsed) co_return make_error(code::kInvalidParams, fmt::format("invalid URL '{}'", url_));
    target_ = *parsed;
    auto endpoints = co_await jsonrpc::resolve(target_, options.connect_timeout);
    if (cancelled_ || timed_out_) co_return failure("", asio::error::operation_aborted);
    if (!endpoints)
      co_return unreachable(fmt::format("could not resolve host '{}'", target_.host),
                            endpoints.error());
    conn_ = std::make_shared<Conn>(shared_->executor, target_.tls ? shared_->tls() : nullptr);
    conn_->tcp().expires_after(options.connect_timeout);
    error_code ec = co_await jsonrpc::connect_tcp(conn_->tcp(), *endpoints);
    if (ec)
      co_return unreachable(fmt::format("could not connect to {}:{}", target_.host, target_.port),
                            ec);
    if (conn_->is_tls()) {
      ec = co_await jsonrpc::tls_handshake(conn_->tls(), target_.host);
      if (ec) co_return unreachable(fmt::format("TLS handshake with {} failed", target_.host), ec);
    }
    // The head is written here, not by Beast's serializer: Beast's fields move a repeated name
    // next to its first occurrence, and the headers go out exactly in the order given.
    std::string request = method_ + " " + target_.resource + " HTTP/1.1\r\n";
    bool has_host = false;
    bool has_agent = false;
    for (const auto& header : headers_) {
      if (is_framing_header(header.name)) continue;
      has_host = has_host || boost::algorithm::iequals(header.name, "host");
      has_agent = has_agent || boost::algorithm::iequals(header.name, "user-agent");
      request += header.name + ": " + header.value + "\r\n";
    }
    if (!has_host) request += "Host: " + target_.host_header + "\r\n";
    if (!has_agent) request += "User-Agent: tether/" TETHER_VERSION "\r\n";
    request += "Connection: close\r\n";
    if (!body_.empty() || method_ == "POST" || method_ == "PUT" || method_ == "PATCH")
      request += "Content-Length: " + std::to_string(body_.size()) + "\r\n";
    request += "\r\n";
    request += body_;
    ec = co_await conn_->send(request);
    if (ec) co_return failure(fmt::format("sending {} {} failed", method_, url_), ec);
    // The answer takes as long as the server works on it: only the request's timeout bounds it.
    conn_->tcp().expires_never();
    co_return Expected<void>{};
  }

  static Head head_of(const http::response<http::buffer_body>& response) {
    Head head;
    head.status = response.result_int();
    head.reason = std::string(response.reason());
    for (const auto& field : response)
      head.headers.push_back(Header{std::string(field.name_string()), std::string(field.value())});
    return head;
  }

  std::shared_ptr<Shared> shared_;
  Request request_;
  // The current hop: where it goes and what it sends (redirects change them).
  std::string url_;
  std::string method_;
  std::string body_;
  Headers headers_;
  jsonrpc::UrlTarget target_;
  bool sent_ = false;
  std::optional<Error> send_error_;
  asio::steady_timer timer_;
  std::shared_ptr<Conn> conn_;
  std::optional<Parser> parser_;
  std::vector<char> piece_;
  error_code pending_;
  bool cancelled_ = false;
  bool timed_out_ = false;
};

class DirectClient final : public Client {
 public:
  explicit DirectClient(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
  std::shared_ptr<Exchange> start(Request request) override {
    return std::make_shared<DirectExchange>(shared_, std::move(request));
  }
  std::string origin() const override { return "local"; }

 private:
  std::shared_ptr<Shared> shared_;
};

}  // namespace

std::shared_ptr<Client> direct_client(asio::any_io_executor executor, DirectOptions options) {
  auto shared = std::make_shared<Shared>();
  shared->executor = std::move(executor);
  shared->options = options;
  return std::make_shared<DirectClient>(std::move(shared));
}

}  // namespace tether::fetch
