// Test support: http_peer.mjs as a child of the test (see http_peer.hpp).
#include "http_peer.hpp"

#include <csignal>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <unistd.h>

#include <boost/algorithm/string/predicate.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "async_test.hpp"
#include "build_paths.hpp"
#include "exec_server.hpp"
#include "npm_peers.hpp"
#include "test_client.hpp"

namespace tether::testing {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;

namespace {

constexpr auto kStartDeadline = std::chrono::seconds(30);
constexpr auto kStatsDeadline = std::chrono::seconds(10);

std::string make_log_path() {
  static int counter = 0;
  return (std::filesystem::temp_directory_path() /
          ("tether-test-http-peer-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) +
           ".log"))
      .string();
}

// Through `sh -c 'exec ...'` so stderr goes to a file without a reader in the test; the pid
// stays node's.
process::SpawnOptions peer_spawn_options(const HttpPeer::Options& options,
                                         const std::string& log_path) {
  process::SpawnOptions spawn;
  spawn.argv = {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>>\"$TETHER_TEST_LOG\"",
                node_binary().string(), std::string(source_dir()) + "/tests/support/http_peer.mjs"};
  if (!options.cert.empty()) {
    spawn.argv.insert(spawn.argv.end(), {"--cert", options.cert, "--key", options.key});
  }
  spawn.env = {"PATH=/usr/bin:/bin", "TETHER_TEST_LOG=" + log_path};
  spawn.stdin_mode = process::StdinMode::closed;
  spawn.contain = false;  // directly our child: its group is ended by pid on destruction
  return spawn;
}

asio::ip::tcp::endpoint loopback(unsigned short port) {
  return asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port);
}

http::request<http::empty_body> stats_request(unsigned short port) {
  http::request<http::empty_body> request(http::verb::get, "/stats", 11);
  request.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  request.keep_alive(false);
  return request;
}

asio::awaitable<std::string> get_stats(unsigned short port) {
  const auto executor = co_await asio::this_coro::executor;
  beast::tcp_stream stream(executor);
  stream.expires_after(kStatsDeadline);
  const auto endpoint = loopback(port);
  co_await stream.async_connect(endpoint, asio::use_awaitable);
  auto request = stats_request(port);
  co_await http::async_write(stream, request, asio::use_awaitable);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  co_await http::async_read(stream, buffer, response, asio::use_awaitable);
  if (response.result_int() != 200)
    throw std::runtime_error("http peer /stats answered " + std::to_string(response.result_int()));
  co_return response.body();
}

HttpPeerStats parse_stats(const std::string& body) {
  const auto value = json::parse(body);
  const auto& object = value.as_object();
  HttpPeerStats stats;
  stats.open = json::value_to<std::size_t>(object.at("open"));
  stats.served = json::value_to<std::size_t>(object.at("served"));
  for (const auto& port : object.at("remotePorts").as_array())
    stats.remote_ports.push_back(json::value_to<unsigned short>(port));
  stats.bytes_written = json::value_to<std::uint64_t>(object.at("bytesWritten"));
  return stats;
}

}  // namespace

HttpPeer::HttpPeer() : HttpPeer(Options{}) {}

HttpPeer::HttpPeer(Options options) : log_path_(make_log_path()) {
  auto spawned = process::Child::spawn(io_.get_executor(), peer_spawn_options(options, log_path_));
  if (!spawned) throw std::runtime_error("cannot start node: " + spawned.error().message);
  child_ = *spawned;
  // {"port":N,"tlsPort":M|null}
  const auto line = read_first_line(io_, *child_, kStartDeadline);
  std::optional<json::value> announced;
  if (line) {
    boost::system::error_code ec;
    auto parsed = json::parse(*line, ec);
    if (!ec && parsed.is_object() && parsed.as_object().contains("port")) announced = parsed;
  }
  if (!announced) {
    stop_child(io_, *child_, "http_peer.mjs", log_path_);
    throw std::runtime_error("http_peer.mjs printed no port line (got '" + line.value_or("") +
                             "'); its stderr:\n" + log());
  }
  const auto& object = announced->as_object();
  port_ = json::value_to<unsigned short>(object.at("port"));
  if (const auto* tls = object.if_contains("tlsPort"); tls && !tls->is_null())
    tls_port_ = json::value_to<unsigned short>(*tls);
}

HttpPeer::~HttpPeer() {
  stop_child(io_, *child_, "http_peer.mjs", log_path_);
  child_.reset();
  // Kept (and shown) when a test failed and node had something to say.
  const std::string text = log();
  const bool keep = ::testing::Test::HasFailure() && !text.empty();
  if (keep)
    std::fprintf(stderr, "http_peer.mjs stderr (%s):\n%s\n", log_path_.c_str(), text.c_str());
  std::error_code ignored;
  if (!keep) std::filesystem::remove(log_path_, ignored);
}

unsigned short HttpPeer::tls_port() const {
  if (!tls_port_) throw std::logic_error("this HttpPeer was started without --cert/--key");
  return *tls_port_;
}

std::string HttpPeer::url(std::string_view path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
}

std::string HttpPeer::tls_url(std::string_view path) const {
  return "https://127.0.0.1:" + std::to_string(tls_port()) + std::string(path);
}

HttpPeerStats HttpPeer::stats() const {
  asio::io_context io;
  bool done = false;
  std::exception_ptr failure;
  std::string body;
  asio::co_spawn(io, get_stats(port_), [&](std::exception_ptr e, std::string answer) {
    done = true;
    failure = e;
    body = std::move(answer);
  });
  io.run_for(kStatsDeadline + std::chrono::seconds(1));
  if (!done) throw std::runtime_error("http_peer.mjs did not answer /stats within 10 s");
  if (failure) std::rethrow_exception(failure);
  return parse_stats(body);
}

std::string HttpPeer::log() const {
  return read_text_file(log_path_);
}

asio::awaitable<bool> wait_idle(const HttpPeer& peer, std::chrono::milliseconds deadline) {
  const std::function<bool()> idle = [&peer] { return peer.stats().open == 0; };
  co_return co_await eventually(idle, deadline);
}

std::string peer_bytes(std::size_t n) {
  std::string bytes(n, '\0');
  for (std::size_t i = 0; i < n; ++i) bytes[i] = static_cast<char>((i * 7) % 251);
  return bytes;
}

std::vector<std::string> Echo::values(std::string_view name) const {
  std::vector<std::string> found;
  for (const auto& [header, value] : headers)
    if (boost::algorithm::iequals(header, name)) found.push_back(value);
  return found;
}

HeaderPairs Echo::starting_with(std::string_view prefix) const {
  HeaderPairs found;
  for (const auto& header : headers)
    if (boost::algorithm::istarts_with(header.first, prefix)) found.push_back(header);
  return found;
}

HeaderPairs interleaved_headers() {
  return {{"X-Tether-A", "1"}, {"X-Tether-B", "2"}, {"X-Tether-A", "3"}};
}

fetch::Headers interleaved_fetch_headers() {
  fetch::Headers headers;
  for (auto& [name, value] : interleaved_headers())
    headers.push_back(fetch::Header{std::move(name), std::move(value)});
  return headers;
}

::testing::AssertionResult saw_interleaved_headers(const Echo& echo) {
  const std::vector<std::string> a{"1", "3"};
  const std::vector<std::string> b{"2"};
  if (echo.values("X-Tether-A") == a && echo.values("X-Tether-B") == b &&
      echo.starting_with("X-Tether-").size() == 3)
    return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure() << "the server saw the X-Tether-* headers as:";
  for (const auto& [name, value] : echo.starting_with("X-Tether-"))
    failure << " " << name << ": " << value << ";";
  return failure << " (sent X-Tether-A: 1; X-Tether-B: 2; X-Tether-A: 3)";
}

Echo parse_echo(std::string_view body) {
  boost::system::error_code ec;
  const auto value = json::parse(body, ec);
  if (ec || !value.is_object() || !value.as_object().contains("rawHeaders"))
    throw std::runtime_error("not an /echo answer: " + std::string(body.substr(0, 300)));
  const auto& object = value.as_object();
  Echo echo;
  echo.method = json::value_to<std::string>(object.at("method"));
  echo.url = json::value_to<std::string>(object.at("url"));
  for (const auto& pair : object.at("rawHeaders").as_array())
    echo.headers.emplace_back(json::value_to<std::string>(pair.as_array().at(0)),
                              json::value_to<std::string>(pair.as_array().at(1)));
  echo.body = unb64(object.at("bodyBase64").as_string());
  return echo;
}

asio::awaitable<fetch::Expected<Fetched>> fetch_whole(fetch::Client& client, fetch::Request request,
                                                      std::size_t limit) {
  auto exchange = client.start(std::move(request));
  auto head = co_await exchange->head();
  if (!head) co_return head.error();
  auto body = co_await fetch::read_all(*exchange, limit);
  if (!body) co_return body.error();
  Fetched fetched;
  fetched.head = std::move(*head);
  fetched.body = std::move(*body);
  co_return fetched;
}

std::string BodyLog::body() const {
  std::string whole;
  for (const auto& piece : pieces) whole += piece;
  return whole;
}

asio::awaitable<void> read_body(std::shared_ptr<fetch::Exchange> exchange,
                                std::shared_ptr<BodyLog> log) {
  for (;;) {
    auto piece = co_await exchange->read();
    if (!piece) {
      log->error = piece.error();
      break;
    }
    if (piece->empty()) break;
    log->pieces.push_back(std::move(*piece));
  }
  log->ended = true;
}

std::string all_bytes() {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  return bytes;
}

std::vector<std::string> just(std::string value) {
  return {std::move(value)};
}

std::shared_ptr<BodyLog> read_in_background(const asio::any_io_executor& executor,
                                            std::shared_ptr<fetch::Exchange> exchange) {
  auto log = std::make_shared<BodyLog>();
  asio::co_spawn(executor, read_body(std::move(exchange), log), asio::detached);
  return log;
}

asio::awaitable<bool> has_read(std::shared_ptr<BodyLog> log, std::size_t pieces,
                               std::chrono::milliseconds within) {
  const std::function<bool()> read = [&log, pieces] { return log->pieces.size() >= pieces; };
  co_return co_await eventually(read, within);
}

asio::awaitable<std::optional<fetch::Error>> ended_with(std::shared_ptr<BodyLog> log,
                                                        std::chrono::milliseconds within) {
  const std::function<bool()> ended = [&log] { return log->ended; };
  const bool done = co_await eventually(ended, within);
  if (!done) ADD_FAILURE() << "the body did not end within " << within.count() << " ms";
  co_return done ? log->error : std::nullopt;
}

}  // namespace tether::testing
