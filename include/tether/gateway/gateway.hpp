// tether::gateway Gateway — every configured MCP server offered as one MCP server.
//
// Owns: aggregation over one host::Manager per docs/gateway.md ("Aggregation"): starting every
// server at once and holding the first listings until each is ready or failed, the names hosts
// see and routing them back, resources by URI and template, completions, logging, progress and
// cancellation both ways, server-to-client requests sent to the right session, list_changed and
// resources/updated relayed, and tool failures as `isError` results naming the server.
// Does not own: sessions and transports (mcp_server), server life cycles, restart and filtering
// (host::Manager), or the command line.
// Data flows: session request -> handle -> Catalog route -> Manager::use -> mcp::Client ->
// server; server notifications and requests -> the handlers made here -> the sessions.
// Threading: one executor; every method runs on it.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <tether/gateway/metrics.hpp>
#include <tether/host/config.hpp>
#include <tether/host/manager.hpp>
#include <tether/mcp_server/session.hpp>

namespace tether::gateway {

using jsonrpc::Expected;
namespace json = boost::json;

enum class Names {
  prefixed,   // `<server>__<tool>`
  qualified,  // `mcp__<server>__<tool>`, as `tether mcp tools` shows them
  raw,        // the servers' own names; two servers may not offer the same one
};
Expected<Names> parse_names(std::string_view text);

struct GatewayOptions {
  Names names = Names::prefixed;
  // Passed to the Manager; the gateway sets `handlers` itself and calls `on_status` after its
  // own.
  host::ManagerOptions manager;
  // Where requests, durations, server states and restarts are counted (none: not counted).
  std::shared_ptr<Metrics> metrics;
};

class Gateway : public mcp_server::Service {
 public:
  static std::shared_ptr<Gateway> create(boost::asio::any_io_executor executor, host::Config config,
                                         GatewayOptions options);
  ~Gateway() override;
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Starts every enabled server and lists what each offers. Errors: a required server failed
  // (`required MCP servers failed to initialize: ...`), or with raw names two servers offer
  // one name.
  boost::asio::awaitable<Expected<void>> start();
  // Ends every server; returns when all are gone.
  boost::asio::awaitable<void> shutdown();

  std::vector<host::ServerInfo> servers() const;

  json::object describe() override;
  void attach(const std::shared_ptr<mcp_server::Session>& session) override;
  void detach(mcp_server::Session& session) override;
  boost::asio::awaitable<jsonrpc::Reply> handle(std::shared_ptr<mcp_server::Session> session,
                                                mcp_server::IncomingRequest request) override;
  void notified(const std::shared_ptr<mcp_server::Session>& session,
                const jsonrpc::Notification& notification) override;

  struct State;

 private:
  explicit Gateway(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace tether::gateway
