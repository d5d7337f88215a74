// Exchange and Parking (see exchange.hpp). A parked exchange's expiry timer holds only a weak
// reference to the Parking: the Parking may go first (its transport ended).
#include <tether/jsonrpc/http_auth.hpp>
#include <tether/mcp_server/exchange.hpp>

namespace tether::mcp_server {

std::vector<std::shared_ptr<Exchange::Ask>> Exchange::unanswered() const {
  std::vector<std::shared_ptr<Ask>> out;
  for (const auto& ask : asks)
    if (!ask->answer) out.push_back(ask);
  return out;
}

void Exchange::abandon(std::string reason) {
  if (!done()) failure = jsonrpc::make_error(jsonrpc::code::kRequestCancelled, std::move(reason));
  expiry.cancel();
  cancel.emit(boost::asio::cancellation_type::terminal);
  changed.notify_all();
}

Parking::Parking(boost::asio::any_io_executor executor, std::size_t capacity,
                 std::chrono::milliseconds lifetime)
    : executor_(std::move(executor)), capacity_(capacity), lifetime_(lifetime) {}

Parking::~Parking() {
  // Their expiry handlers refer to this Parking: each returns early once the exchange is not
  // parked.
  for (auto& [token, exchange] : parked_) {
    exchange->parked = false;
    exchange->abandon("the MCP connection ended");
  }
}

std::optional<std::string> Parking::park(const std::shared_ptr<Exchange>& exchange) {
  if (parked_.size() >= capacity_) return std::nullopt;
  auto token = jsonrpc::random_token();
  if (!token) return std::nullopt;
  parked_[*token] = exchange;
  exchange->parked = true;
  exchange->expiry.expires_after(lifetime_);
  exchange->expiry.async_wait(
      [this, key = *token, weak = std::weak_ptr<Exchange>(exchange)](boost::system::error_code ec) {
        auto parked = weak.lock();
        if (ec || !parked || !parked->parked) return;
        parked_.erase(key);
        parked->parked = false;
        parked->abandon("the client did not answer in time");
      });
  return token;
}

std::shared_ptr<Exchange> Parking::take(std::string_view token) {
  auto it = parked_.find(token);
  if (it == parked_.end()) return nullptr;
  auto exchange = std::move(it->second);
  parked_.erase(it);
  exchange->parked = false;
  exchange->expiry.cancel();
  return exchange;
}

}  // namespace tether::mcp_server
