// Test support: tests/support/http_peer.mjs (a plain Node HTTP server with the routes the fetch
// and http/request tests need) as a child of the test.
//
// Owns the node process: reads its port line within a bounded wait, keeps its stderr in a log
// file (shown when a test failed), and on destruction ends its process group (SIGTERM, bounded
// wait, SIGKILL), so a failing test leaves nothing behind. stats() asks the server what it saw,
// to check that nothing stays open and who connected. Loopback only.
//
// Also the client-side helpers of the tests that fetch from it: the bytes /bytes answers, an
// /echo answer decoded, and a whole fetch or a body read in the background through any
// fetch::Client (the direct one or an executor's).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <tether/fetch/fetch.hpp>
#include <tether/process/child.hpp>

namespace tether::testing {

// What http_peer.mjs reports on /stats.
struct HttpPeerStats {
  std::size_t open = 0;                      // sockets open now (/stats callers not counted)
  std::size_t served = 0;                    // requests so far (/stats not counted)
  std::vector<unsigned short> remote_ports;  // the client port of each of those requests
  std::uint64_t bytes_written = 0;           // by /big-stream, into its sockets
};

class HttpPeer {
 public:
  struct Options {
    // With both: an HTTPS listener too, on tls_port().
    std::string cert;
    std::string key;
  };
  HttpPeer();
  explicit HttpPeer(Options options);
  ~HttpPeer();
  HttpPeer(const HttpPeer&) = delete;
  HttpPeer& operator=(const HttpPeer&) = delete;

  unsigned short port() const { return port_; }
  unsigned short tls_port() const;
  // http://127.0.0.1:<port><path>, https://127.0.0.1:<tls port><path>; `path` starts with '/'.
  std::string url(std::string_view path) const;
  std::string tls_url(std::string_view path) const;
  pid_t pid() const { return child_->pid(); }

  // GET /stats over a connection of its own, blocking for at most 10 s; throws on failure.
  HttpPeerStats stats() const;
  // What node wrote on stderr so far.
  std::string log() const;

 private:
  boost::asio::io_context io_;
  std::string log_path_;
  std::shared_ptr<process::Child> child_;
  unsigned short port_ = 0;
  std::optional<unsigned short> tls_port_;
};

// Polls stats() until no socket is open, for up to `deadline`; whether that happened.
boost::asio::awaitable<bool> wait_idle(const HttpPeer& peer, std::chrono::milliseconds deadline);

// The body /bytes?n=N answers: byte i is (i*7)%251.
std::string peer_bytes(std::size_t n);

using HeaderPairs = std::vector<std::pair<std::string, std::string>>;

// An /echo answer: the request as the peer saw it.
struct Echo {
  std::string method;
  std::string url;      // the request target
  HeaderPairs headers;  // in order, repeats included
  std::string body;
  // The values of the headers named `name` (case-insensitive), in order.
  std::vector<std::string> values(std::string_view name) const;
  // The headers whose names start with `prefix` (case-insensitive), in order.
  HeaderPairs starting_with(std::string_view prefix) const;
};
// Throws when `body` is not an /echo answer.
Echo parse_echo(std::string_view body);

// The headers the echo tests send: X-Tether-A twice, around an X-Tether-B.
HeaderPairs interleaved_headers();
fetch::Headers interleaved_fetch_headers();
// Whether `echo` saw them with each name's values in the order sent (HTTP gives meaning to the
// order of the fields of one name only; interleaved names may be regrouped).
::testing::AssertionResult saw_interleaved_headers(const Echo& echo);

// Every byte value once, as a body: nothing in between may treat it as text.
std::string all_bytes();

// A one-element list (a braced list in a coroutine body is what GCC 12 miscompiles).
std::vector<std::string> just(std::string value);

// Whether `result` holds a value; if not, a test failure naming `what` and the error.
template <class T>
bool succeeded(const fetch::Expected<T>& result, std::string_view what) {
  if (result) return true;
  ADD_FAILURE() << what << " failed (" << result.error().code << "): " << result.error().message;
  return false;
}

struct Fetched {
  fetch::Head head;
  std::string body;
};
// head() then the whole body (at most `limit` bytes).
boost::asio::awaitable<fetch::Expected<Fetched>> fetch_whole(fetch::Client& client,
                                                             fetch::Request request,
                                                             std::size_t limit = 64 << 20);

// What read_body saw: the pieces in order, and how the body ended.
struct BodyLog {
  std::vector<std::string> pieces;
  std::optional<fetch::Error> error;
  bool ended = false;  // complete (read() gave "") or failed
  std::string body() const;
};
// Reads `exchange` until the body ends or fails, recording into `log`; for co_spawn, so a test
// can act while a read() is pending.
boost::asio::awaitable<void> read_body(std::shared_ptr<fetch::Exchange> exchange,
                                       std::shared_ptr<BodyLog> log);
// read_body started in the background on `executor`; the log it fills.
std::shared_ptr<BodyLog> read_in_background(const boost::asio::any_io_executor& executor,
                                            std::shared_ptr<fetch::Exchange> exchange);
// Whether `log` holds at least `pieces` pieces within `within`.
boost::asio::awaitable<bool> has_read(std::shared_ptr<BodyLog> log, std::size_t pieces,
                                      std::chrono::milliseconds within);
// The error `log` ended with, once it ends within `within`; none when it did not end in time or
// ended without one.
boost::asio::awaitable<std::optional<fetch::Error>> ended_with(std::shared_ptr<BodyLog> log,
                                                               std::chrono::milliseconds within);

}  // namespace tether::testing
