// fetch::direct_client (include/tether/fetch/direct.hpp) against http_peer.mjs on loopback:
// headers sent with repeats (each name's values in order, and the exact order fetch.hpp
// promises), bodies both ways byte for byte, the body read piece by piece, redirects (followed,
// 303 turning POST into GET, stopped on request, credentials kept from another origin), https
// trusting a test CA and refusing an untrusted certificate, the error codes for a refused port, a
// timeout, a cancel and an unsendable header, and that a cancelled or timed out exchange leaves no
// connection open at the server. No test resolves a name: every URL is http(s)://127.0.0.1.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/this_coro.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "exec_server.hpp"
#include "http_peer.hpp"
#include "test_certificates.hpp"
#include <tether/fetch/direct.hpp>
#include <tether/jsonrpc/error.hpp>

namespace tether::testing {
namespace {
namespace asio = boost::asio;
namespace code = jsonrpc::code;

// Named durations: a conversion inside a co_await expression would be a class temporary there,
// which GCC 12 miscompiles.
constexpr std::chrono::milliseconds kSettle{10'000};

std::shared_ptr<fetch::Client> direct(const asio::any_io_executor& executor) {
  return fetch::direct_client(executor, fetch::DirectOptions{});
}

fetch::Request get(std::string url) {
  fetch::Request request;
  request.url = std::move(url);
  return request;
}

// GET or POST /echo?q=1 with X-Tether-A twice around an X-Tether-B.
fetch::Request echo_request(const HttpPeer& peer, std::string method, std::string body = {}) {
  fetch::Request request = get(peer.url("/echo?q=1"));
  request.method = std::move(method);
  request.headers = interleaved_fetch_headers();
  if (!body.empty()) {
    request.headers.push_back({"Content-Type", "application/octet-stream"});
    request.body = std::move(body);
  }
  return request;
}

TEST(FetchDirect, GetKeepsRepeatedHeadersInOrder) {
  HttpPeer peer;
  const auto request = echo_request(peer, "GET");
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto client = direct(executor);
    EXPECT_EQ(client->origin(), "local");
    auto fetched = co_await fetch_whole(*client, request);
    CO_ASSERT_TRUE(succeeded(fetched, "GET /echo"));
    EXPECT_EQ(fetched->head.status, 200u);
    EXPECT_EQ(fetch::find_header(fetched->head.headers, "content-type").value_or(""),
              "application/json");
    const auto echo = parse_echo(fetched->body);
    EXPECT_EQ(echo.method, "GET");
    EXPECT_EQ(echo.url, "/echo?q=1");
    EXPECT_TRUE(saw_interleaved_headers(echo));
    EXPECT_EQ(echo.values("host"), just("127.0.0.1:" + std::to_string(peer.port())));
    const auto agent = echo.values("user-agent");
    EXPECT_TRUE(agent.size() == 1 && agent[0].starts_with("tether/"));
    EXPECT_EQ(echo.body, "");
  });
}

// fetch.hpp promises more than HTTP needs: "sent in this order, repeats included".
TEST(FetchDirect, HeadersGoOutInTheOrderGiven) {
  HttpPeer peer;
  const auto request = echo_request(peer, "GET");
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto client = direct(executor);
    auto fetched = co_await fetch_whole(*client, request);
    CO_ASSERT_TRUE(succeeded(fetched, "GET /echo"));
    EXPECT_EQ(parse_echo(fetched->body).starting_with("X-Tether-"), interleaved_headers());
  });
}

TEST(FetchDirect, PostSendsTheBodyByteForByte) {
  HttpPeer peer;
  const auto request = echo_request(peer, "POST", all_bytes());
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto client = direct(executor);
    auto fetched = co_await fetch_whole(*client, request);
    CO_ASSERT_TRUE(succeeded(fetched, "POST /echo"));
    const auto echo = parse_echo(fetched->body);
    EXPECT_EQ(echo.method, "POST");
    EXPECT_EQ(echo.body, all_bytes());
    EXPECT_EQ(echo.values("content-length"), just("256"));
    EXPECT_TRUE(saw_interleaved_headers(echo));
  });
}

// read() returns what has arrived, at most read_piece bytes at a time, then "" at the end.
TEST(FetchDirect, ReadsTheBodyPieceByPiece) {
  HttpPeer peer;
  const auto request = get(peer.url("/bytes?n=100"));
  run_async([&]() -> asio::awaitable<void> {
    fetch::DirectOptions options;
    options.read_piece = 7;
    auto executor = co_await asio::this_coro::executor;
    auto client = fetch::direct_client(executor, options);
    auto exchange = client->start(request);
    auto head = co_await exchange->head();
    CO_ASSERT_TRUE(succeeded(head, "GET /bytes"));
    EXPECT_EQ(fetch::find_header(head->headers, "content-length").value_or(""), "100");
    std::string body;
    int pieces = 0;
    for (;;) {
      auto piece = co_await exchange->read();
      CO_ASSERT_TRUE(succeeded(piece, "read()"));
      if (piece->empty()) break;
      EXPECT_LE(piece->size(), 7u);
      body += *piece;
      ++pieces;
    }
    EXPECT_EQ(body, peer_bytes(100));
    EXPECT_GE(pieces, 15);
    auto after = co_await exchange->read();
    EXPECT_TRUE(after && after->empty()) << "read() after the end gives \"\" again";
  });
}

// A body that never ends still arrives: each read() returns what came so far.
TEST(FetchDirect, ReadsAnEndlessBodyAsItArrives) {
  HttpPeer peer;
  const auto request = get(peer.url("/forever"));
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto client = direct(executor);
    auto exchange = client->start(request);
    auto head = co_await exchange->head();
    CO_ASSERT_TRUE(succeeded(head, "GET /forever"));
    std::string body;
    while (body.find("tick-2\n") == std::string::npos) {
      auto piece = co_await exchange->read();
      CO_ASSERT_TRUE(succeeded(piece, "read()"));
      CO_ASSERT_TRUE(!piece->empty());
      body += *piece;
    }
    EXPECT_TRUE(body.starts_with("tick-0\ntick-1\ntick-2\n")) << body;
    exchange->cancel();
  });
}

TEST(FetchDirect, LargeBodyArrivesIntact) {
  HttpPeer peer;
  constexpr std::size_t kSize = std::size_t{8} << 20;
  const auto request = get(peer.url("/bytes?n=" + std::to_string(kSize)));
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto client = direct(executor);
    auto fetched = co_await fetch_whole(*client, request);
    CO_ASSERT_TRUE(succeeded(fetched, "GET /bytes (8 MiB)"));
    EXPECT_EQ(fetched->body.size(), kSize);
    EXPECT_TRUE(fetched->body == peer_bytes(kSize)) << "the 8 MiB body differs";
  });
}

TEST(FetchDirect, ReadAllRefusesABodyOverItsLimit) {
  HttpPeer peer;
  const auto request = get(peer.url("/bytes?n=1000"));
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto client = direct(executor);
    auto fetched = co_await fetch_whole(*client, request, 100);
    CO_ASSERT_TRUE(!fetched);
    EXPECT_NE(fetched.error().message.find("100 bytes"), std::string::npos)
        << fetched.error().message;
    const bool idle = co_await wait_idle(peer, kSettle);
    EXPECT_TRUE(idle) << "the refused body's connection stayed open";
  });
}

// 303 turns the POST into a GET without a body (and without its Content-Type). Each hop is a
// connection of its own (nothing is pooled).
TEST(FetchDirect, FollowsRedirectsByDefault) {
  HttpPeer peer;
  auto request = echo_request(peer, "POST", "payload");
  request.url = peer.url("/redirect?status=303&to=/echo");
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto client = direct(executor);
    auto fetched = co_await fetch_whole(*client, request);
    CO_ASSERT_TRUE(succeeded(fetched, "POST /redirect"));
    EXPECT_EQ(fetched->head.status, 200u);
    const auto echo = parse_echo(fetched->body);
    EXPECT_EQ(echo.method, "GET");
    EXPECT_EQ(echo.url, "/echo");
    EXPECT_EQ(echo.body, "");
    EXPECT_TRUE(echo.values("content-type").empty());
    EXPECT_TRUE(saw_interleaved_headers(echo));
  });
  const auto stats = peer.stats();
  EXPECT_EQ(stats.served, 2u);
  ASSERT_EQ(stats.remote_ports.size(), 2u);
  EXPECT_NE(stats.remote_ports[0], stats.remote_ports[1]);
}

// 307 keeps the method and the body.
TEST(FetchDirect, TemporaryRedirectKeepsMethodAndBody) {
  HttpPeer peer;
  auto request = echo_request(peer, "POST", all_bytes());
  request.url = peer.url("/redirect?status=307&to=/echo");
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto client = direct(executor);
    auto fetched = co_await fetch_whole(*client, request);
    CO_ASSERT_TRUE(succeeded(fetched, "POST /redirect (307)"));
    const auto echo = parse_echo(fetched->body);
    EXPECT_EQ(echo.method, "POST");
    EXPECT_EQ(echo.body, all_bytes());
  });
}

TEST(FetchDirect, RedirectsStopWhenAsked) {
  HttpPeer peer;
  auto request = get(peer.url("/redirect?status=303&to=/echo"));
  request.redirects = fetch::Redirects::stop;
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto client = direct(executor);
    auto fetched = co_await fetch_whole(*client, request);
    CO_ASSERT_TRUE(succeeded(fetched, "GET /redirect"));
    EXPECT_EQ(fetched->head.status, 303u);
    EXPECT_EQ(fetch::find_header(fetched->head.headers, "location").value_or(""), "/echo");
    EXPECT_EQ(fetched->body, "");
  });
  EXPECT_EQ(peer.stats().served, 1u);
}

fetch::Request with_credentials(std::string url) {
  fetch::Request request = get(std::move(url));
  request.headers = {
      {"Authorization", "Bearer secret"}, {"Cookie", "session=1"}, {"X-Tether-Keep", "yes"}};
  return request;
}

// Two ports are two origins: Authorization and Cookie stay with the first one.
TEST(FetchDirect, CredentialsAreNotCarriedToAnotherOrigin) {
  HttpPeer first;
  HttpPeer second;
  const auto cross = with_credentials(first.url("/redirect?status=302&to=" + second.url("/echo")));
  const auto same = with_credentials(first.url("/redirect?status=302&to=/echo"));
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto client = direct(executor);
    auto elsewhere = co_await fetch_whole(*client, cross);
    CO_ASSERT_TRUE(succeeded(elsewhere, "the cross-origin redirect"));
    const auto seen = parse_echo(elsewhere->body);
    EXPECT_TRUE(seen.values("authorization").empty());
    EXPECT_TRUE(seen.values("cookie").empty());
    EXPECT_EQ(seen.values("x-tether-keep"), just("yes"));

    auto here = co_await fetch_whole(*client, same);
    CO_ASSERT_TRUE(succeeded(here, "the same-origin redirect"));
    const auto kept = parse_echo(here->body);
    EXPECT_EQ(kept.values("authorization"), just("Bearer secret"));
    EXPECT_EQ(kept.values("cookie"), just("session=1"));
  });
  EXPECT_EQ(second.stats().served, 1u);
}

// A client context that trusts the test CA only.
std::unique_ptr<asio::ssl::context> trusting(const TestCertificates& certificates) {
  auto tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  tls->load_verify_file(certificates.ca_cert());
  tls->set_verify_mode(asio::ssl::verify_peer);
  return tls;
}

// GET /echo over https to `peer`, from a direct client that trusts the test CA.
fetch::Expected<Fetched> fetch_https(const TestCertificates& certificates, const HttpPeer& peer) {
  auto tls = trusting(certificates);
  const auto request = get(peer.tls_url("/echo"));
  std::optional<fetch::Expected<Fetched>> out;
  run_async([&]() -> asio::awaitable<void> {
    fetch::DirectOptions options;
    options.tls = tls.get();
    auto executor = co_await asio::this_coro::executor;
    auto client = fetch::direct_client(executor, options);
    out = co_await fetch_whole(*client, request);
  });
  if (!out) return jsonrpc::make_error(code::kInternalError, "the https fetch did not finish");
  return std::move(*out);
}

TEST(FetchDirect, HttpsWithATrustedCertificate) {
  TestCertificates certificates;
  HttpPeer peer(HttpPeer::Options{certificates.server_cert(), certificates.server_key()});
  auto fetched = fetch_https(certificates, peer);
  ASSERT_TRUE(succeeded(fetched, "GET https://.../echo"));
  EXPECT_EQ(fetched->head.status, 200u);
  EXPECT_EQ(parse_echo(fetched->body).method, "GET");
}

TEST(FetchDirect, HttpsWithAnUntrustedCertificateIsUnreachable) {
  TestCertificates certificates;
  HttpPeer peer(HttpPeer::Options{certificates.untrusted_cert(), certificates.untrusted_key()});
  auto fetched = fetch_https(certificates, peer);
  ASSERT_FALSE(fetched.has_value());
  EXPECT_EQ(fetched.error().code, code::kUnreachable) << fetched.error().message;
  EXPECT_NE(fetched.error().message.find("TLS handshake"), std::string::npos)
      << fetched.error().message;
  EXPECT_EQ(peer.stats().served, 0u);
}

TEST(FetchDirect, RefusedPortIsUnreachable) {
  const auto request = get("http://127.0.0.1:" + std::to_string(free_port()) + "/");
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto client = direct(executor);
    auto exchange = client->start(request);
    auto sent = co_await exchange->send();
    CO_ASSERT_TRUE(!sent);
    EXPECT_EQ(sent.error().code, code::kUnreachable) << sent.error().message;
    EXPECT_NE(sent.error().message.find("could not connect"), std::string::npos)
        << sent.error().message;
    auto head = co_await exchange->head();
    CO_ASSERT_TRUE(!head);
    EXPECT_EQ(head.error().code, code::kUnreachable) << "head() reports send()'s failure";
  });
}

TEST(FetchDirect, TimeoutWhileWaitingForTheHead) {
  HttpPeer peer;
  auto request = get(peer.url("/hang"));
  request.timeout = std::chrono::milliseconds(200);
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto client = direct(executor);
    auto exchange = client->start(request);
    auto head = co_await exchange->head();
    CO_ASSERT_TRUE(!head);
    EXPECT_EQ(head.error().code, code::kRequestTimedOut) << head.error().message;
    EXPECT_NE(head.error().message.find("timed out"), std::string::npos) << head.error().message;
    const bool idle = co_await wait_idle(peer, kSettle);
    EXPECT_TRUE(idle) << "the timed out connection stayed open";
  });
}

// The timeout bounds the whole exchange, the body included.
TEST(FetchDirect, TimeoutWhileReadingTheBody) {
  HttpPeer peer;
  auto request = get(peer.url("/forever"));
  request.timeout = std::chrono::milliseconds(300);
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto client = direct(executor);
    auto exchange = client->start(request);
    auto head = co_await exchange->head();
    CO_ASSERT_TRUE(succeeded(head, "GET /forever"));
    auto log = std::make_shared<BodyLog>();
    co_await read_body(exchange, log);
    CO_ASSERT_TRUE(log->error.has_value());
    EXPECT_EQ(log->error->code, code::kRequestTimedOut) << log->error->message;
    const bool idle = co_await wait_idle(peer, kSettle);
    EXPECT_TRUE(idle) << "the timed out connection stayed open";
  });
}

TEST(FetchDirect, CancelDuringAReadEndsTheExchange) {
  HttpPeer peer;
  const auto request = get(peer.url("/forever"));
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto client = direct(executor);
    auto exchange = client->start(request);
    auto head = co_await exchange->head();
    CO_ASSERT_TRUE(succeeded(head, "GET /forever"));
    auto log = read_in_background(executor, exchange);
    const bool read_twice = co_await has_read(log, 2, kSettle);
    CO_ASSERT_TRUE(read_twice);
    // The reader is suspended in read() now (it reads again as soon as a piece came).
    exchange->cancel();
    const auto error = co_await ended_with(log, kSettle);
    CO_ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->code, code::kRequestCancelled) << error->message;
    auto later = co_await exchange->read();
    EXPECT_TRUE(!later && later.error().code == code::kRequestCancelled);
    const bool idle = co_await wait_idle(peer, kSettle);
    EXPECT_TRUE(idle) << "the cancelled connection stayed open";
  });
}

TEST(FetchDirect, UnsendableRequestsAreInvalidParams) {
  HttpPeer peer;
  auto injected = get(peer.url("/echo"));
  injected.headers = {{"X-Tether", "a\r\nX-Injected: 1"}};
  auto spaced = get(peer.url("/echo"));
  spaced.headers = {{"Bad Name", "x"}};
  const auto ftp = get("ftp://127.0.0.1/file");
  run_async([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto client = direct(executor);
    auto exchange = client->start(injected);
    auto head = co_await exchange->head();
    CO_ASSERT_TRUE(!head);
    EXPECT_EQ(head.error().code, code::kInvalidParams) << head.error().message;
    EXPECT_NE(head.error().message.find("CR, LF or NUL"), std::string::npos)
        << head.error().message;
    auto spaced_exchange = client->start(spaced);
    auto spaced_head = co_await spaced_exchange->head();
    CO_ASSERT_TRUE(!spaced_head);
    EXPECT_EQ(spaced_head.error().code, code::kInvalidParams) << spaced_head.error().message;
    auto ftp_exchange = client->start(ftp);
    auto ftp_head = co_await ftp_exchange->head();
    CO_ASSERT_TRUE(!ftp_head);
    EXPECT_EQ(ftp_head.error().code, code::kInvalidParams) << ftp_head.error().message;
  });
  EXPECT_EQ(peer.stats().served, 0u) << "nothing unsendable reached the server";
}

}  // namespace
}  // namespace tether::testing
