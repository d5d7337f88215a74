// tether::exec ExecClient — the client side of the executor protocol (docs/exec-protocol.md).
//
// Owns: reaching an executor (ws:// or wss:// with a bearer token, or a command whose
// stdin/stdout speak newline-delimited JSON), the initialize handshake, typed calls for every
// process/*, fs/*, environment/* and http/request method in the codex 0.169 dialect (file://
// URIs, writeId counters, env and tty always sent), routing notifications to each process's
// EventLog and each streamed HTTP body, resume after a lost connection, and the latched
// disconnect once resume is impossible.
// Does not own: the wire framing and correlation (jsonrpc::Peer), replay rules (EventLog), or
// when to connect (host::Environment opens it lazily).
// Data flows: call -> Peer -> executor; process/* notifications -> route by processId ->
// EventLog -> subscribers. On loss: reconnect with resumeSessionId, re-send what is safe, read
// every open process from its last seq; or latch `exec-server transport disconnected[: why]`.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/json/object.hpp>

#include <tether/exec/event_log.hpp>
#include <tether/exec/process_api.hpp>
#include <tether/fetch/fetch.hpp>

namespace tether::exec {

// The latched message, and its prefix for callers that match it.
inline constexpr std::string_view kDisconnected = "exec-server transport disconnected";

struct WebSocketEndpoint {
  std::string url;                          // ws://host:port or wss://host:port
  std::optional<std::string> bearer_token;  // sent as `Authorization: Bearer <token>`
  // Trust roots for wss:// (the certificate is checked against the URL's host). Not owned.
  boost::asio::ssl::context* tls = nullptr;
};

// A command that speaks the protocol on its stdin/stdout (`ssh host tether exec-server --listen
// stdio`). It runs in its own process group and dies with this process. No resume: its pipe is
// its session.
struct CommandEndpoint {
  std::vector<std::string> argv;
  std::optional<std::map<std::string, std::string>> env;  // absent = this process's environment
  std::optional<std::string> cwd;
};

using Endpoint = std::variant<WebSocketEndpoint, CommandEndpoint>;

struct ClientOptions {
  std::string client_name = "tether";
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds initialize_timeout{10'000};
  // Resume: reconnect attempts within this window, backing off from resume_backoff (doubling,
  // at most 1 s between attempts).
  std::chrono::milliseconds resume_window{10'000};
  std::chrono::milliseconds resume_backoff{100};
  std::chrono::milliseconds ping_interval{10'000};
  // Nothing heard for this long (pongs count) makes the connection lost.
  std::chrono::milliseconds idle_timeout{30'000};
  EventLogLimits event_limits;
  // Bytes of a streamed HTTP body received and not yet read; past it the stream fails and is
  // cancelled (the connection is shared: it is never paused for one slow reader).
  std::size_t max_http_buffered_bytes = std::size_t{16} << 20;
};

class ExecClient : public ProcessStarter, public std::enable_shared_from_this<ExecClient> {
 public:
  // Connects and initializes. Errors carry the spec's texts (`timed out connecting to
  // exec-server websocket '<url>' after <d>`, `failed to connect ...`, `timed out waiting for
  // exec-server initialize handshake after <d>`, `exec-server rejected request (<code>): ...`).
  static boost::asio::awaitable<Expected<std::shared_ptr<ExecClient>>> connect(
      boost::asio::any_io_executor executor, Endpoint endpoint, ClientOptions options);
  // With default options. An overload, not a default argument: GCC 12 builds a default
  // argument of class type wrongly when the call is inside a co_await expression.
  static boost::asio::awaitable<Expected<std::shared_ptr<ExecClient>>> connect(
      boost::asio::any_io_executor executor, Endpoint endpoint);
  ~ExecClient() override;

  // ProcessStarter: registers the process's event route before sending process/start.
  boost::asio::awaitable<Expected<std::shared_ptr<Process>>> start(StartParams params) override;

  // Typed calls. `write` sends a writeId from the process's counter.
  boost::asio::awaitable<Expected<ReadResult>> read(const std::string& process_id,
                                                    std::uint64_t after_seq,
                                                    std::optional<std::size_t> max_bytes,
                                                    std::chrono::milliseconds wait);
  boost::asio::awaitable<Expected<WriteStatus>> write(const std::string& process_id,
                                                      std::string bytes);
  boost::asio::awaitable<Expected<bool>> terminate(const std::string& process_id);
  boost::asio::awaitable<Expected<void>> interrupt(const std::string& process_id);

  boost::asio::awaitable<Expected<std::string>> read_file(const std::string& path);
  boost::asio::awaitable<Expected<void>> write_file(const std::string& path, std::string bytes);
  boost::asio::awaitable<Expected<void>> create_directory(const std::string& path,
                                                          bool recursive = true);
  boost::asio::awaitable<Expected<FileMetadata>> get_metadata(const std::string& path);
  boost::asio::awaitable<Expected<std::vector<DirectoryEntry>>> read_directory(
      const std::string& path);
  boost::asio::awaitable<Expected<void>> remove(const std::string& path, bool recursive = true,
                                                bool force = true);
  boost::asio::awaitable<Expected<void>> copy(const std::string& source,
                                              const std::string& destination, bool recursive);
  boost::asio::awaitable<Expected<std::string>> canonicalize(const std::string& path);
  // http/request answered whole (no requestId needed; never sent twice across a resume).
  boost::asio::awaitable<Expected<HttpResponse>> http_request(HttpRequestParams params);
  // HTTP requests made from the executor's network position: each exchange is an http/request
  // with a streamed body, its route registered before it is sent; a seq gap or a lost connection
  // (even one that resumes) fails it, and cancel() sends http/request/cancel. `origin` names
  // the executor in messages.
  std::shared_ptr<fetch::Client> http_client(std::string origin);
  boost::asio::awaitable<Expected<std::string>> environment_status();
  boost::asio::awaitable<Expected<boost::json::object>> environment_info();

  // From the initialize result (empty session id: an April server, resume off).
  const std::string& session_id() const;
  const boost::json::object& initial_environment_info() const;
  // The executor's default working directory (environmentInfo.cwd as a path), or "/".
  std::string default_cwd() const;

  // Closing on purpose: terminates every live process this client started, then closes with
  // 1000 (a command executor: closes its stdin and waits for it to exit, bounded).
  boost::asio::awaitable<void> close();

  // Set once the disconnect is latched (message starts with kDisconnected).
  const std::optional<std::string>& disconnected() const;

  class Impl;

 private:
  explicit ExecClient(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace tether::exec
