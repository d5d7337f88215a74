// tether::mcp_server Exchange and Parking — a 2026-07-28 client's request whose handler asked
// the client for input (elicitation, sampling, roots), across the rounds of a multi-round-trip
// request (docs/gateway.md "Serving 2026-07-28").
//
// Owns: an Exchange: the handler's outcome once it finishes, the questions it asked (each
// answered from a round's `inputResponses`), a failure that ends the request, and the handler's
// cancellation. Parking: the Exchanges waiting for the client's next round, by the opaque
// `requestState` token given out, each for a bounded time and in bounded number (a token is
// used once; every round gets a new one).
// Does not own: running handlers or answering the client (session.hpp).
// Threading: one executor.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>

#include <tether/jsonrpc/async_signal.hpp>
#include <tether/jsonrpc/message.hpp>

namespace tether::mcp_server {

namespace json = boost::json;

struct Exchange {
  explicit Exchange(const boost::asio::any_io_executor& executor)
      : changed(executor), expiry(executor) {}

  // One question of the handler's, sent to the client in an input_required result.
  struct Ask {
    std::string key;  // its inputRequests / inputResponses key
    std::string method;
    json::value params;
    std::optional<jsonrpc::Reply> answer;
  };

  std::string method;  // the request served, which every round must repeat
  std::string target;  // its params' name (or uri)
  boost::asio::cancellation_signal cancel;
  std::optional<jsonrpc::Reply> outcome;  // the handler finished
  std::optional<jsonrpc::Error> failure;  // the request cannot go on (e.g. a missing capability)
  std::vector<std::shared_ptr<Ask>> asks;
  int next_key = 1;
  bool parked = false;
  jsonrpc::AsyncSignal changed;  // outcome, failure, a new ask or an answer
  boost::asio::steady_timer expiry;

  std::vector<std::shared_ptr<Ask>> unanswered() const;
  bool done() const { return outcome.has_value() || failure.has_value(); }
  // The handler stops (its upstream call is cancelled); done() holds from now on.
  void abandon(std::string reason);
};

class Parking {
 public:
  Parking(boost::asio::any_io_executor executor, std::size_t capacity,
          std::chrono::milliseconds lifetime);
  // Abandons what is still parked.
  ~Parking();
  Parking(const Parking&) = delete;
  Parking& operator=(const Parking&) = delete;

  // Keeps `exchange` under a fresh token until taken or its lifetime ends (then it is
  // abandoned); nullopt when `capacity` exchanges are parked already.
  std::optional<std::string> park(const std::shared_ptr<Exchange>& exchange);
  // The exchange under `token`, which is forgotten; null when unknown or expired.
  std::shared_ptr<Exchange> take(std::string_view token);
  std::size_t size() const { return parked_.size(); }

 private:
  boost::asio::any_io_executor executor_;
  std::size_t capacity_;
  std::chrono::milliseconds lifetime_;
  std::map<std::string, std::shared_ptr<Exchange>, std::less<>> parked_;
};

}  // namespace tether::mcp_server
