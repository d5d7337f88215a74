// tether::exec server — `tether exec-server`, the executor.
//
// Owns: listening (ws://, wss://, stdio), the HTTP gate in front of the WebSocket upgrade
// (Origin, Host, bearer token, /readyz, connection limit), one JSON-RPC connection per client,
// sessions that survive lost connections for a TTL, and shutting everything down on
// SIGTERM/SIGINT with every process group terminated.
// Does not own: the CLI (cli/), the client side (client.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace tether::exec {

struct ServerOptions {
  std::string listen = "ws://127.0.0.1:0";

  // Auth. The token comes from token_file, else token_sha256_hex, else the environment variable
  // TETHER_EXEC_SERVER_TOKEN, else it is generated and written to a 0600 file.
  std::optional<std::string> token_file;
  std::optional<std::string> token_sha256_hex;
  bool insecure_no_auth = false;  // loopback only
  bool allow_non_loopback = false;
  std::vector<std::string> allowed_hosts;  // Host header names besides IP literals and localhost

  std::optional<std::string> tls_cert;
  std::optional<std::string> tls_key;

  std::chrono::milliseconds session_ttl{60'000};
  std::chrono::milliseconds kill_grace{2'000};
  std::chrono::milliseconds closed_process_retention{30'000};
  std::chrono::milliseconds ping_interval{10'000};
  std::chrono::milliseconds idle_timeout{30'000};
  std::size_t max_connections = 128;
  std::size_t max_processes_per_session = 1024;
  std::size_t max_message_bytes = std::size_t{64} << 20;
  // Per connection (docs/exec-server.md "Limits"): past any of the first three the executor
  // reads nothing more from that client until it is back under. The byte bound counts the
  // message sizes of unanswered requests; one request is always read, whatever its size.
  std::size_t max_requests_in_flight = 256;
  std::size_t max_request_bytes_in_flight = std::size_t{64} << 20;
  std::size_t max_queued_bytes = std::size_t{4} << 20;
  std::size_t max_fs_calls = 4;  // fs/* calls running at once
  std::size_t fs_threads = 8;    // fs/* workers shared by every connection
  // http/request (docs/exec-server.md "HTTP requests"): calls and streamed bodies open at once
  // per connection; the largest body answered whole; resolving, connecting and the TLS
  // handshake of each request.
  std::size_t max_http_requests = 64;
  std::size_t max_http_body_bytes = std::size_t{32} << 20;
  std::chrono::milliseconds http_connect_timeout{30'000};
  // Connections accepted that have not completed the WebSocket upgrade; more are closed at once.
  std::size_t max_pending_connections = 64;
};

// Validates the options, binds, prints the bound URL as the first stdout line (nothing for
// stdio), serves until SIGTERM/SIGINT (or stdin EOF with stdio). Returns the exit code; a bad
// option is reported on stderr with exit code 2.
int run_server(const ServerOptions& options);

}  // namespace tether::exec
