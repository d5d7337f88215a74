// `tether exec-server` options, including codex's flag names so tether is a drop-in for
// `codex exec-server` (--listen, --ws-auth capability-token, --ws-token-file, --ws-token-sha256).
#include "commands.hpp"
#include <tether/exec/server.hpp>

namespace tether::cli {

Run add_exec_server_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("exec-server", "Run processes for a remote client (the executor)");
  cmd->fallthrough();  // --log-level after `exec-server`, as the docs show it
  auto options = std::make_shared<exec::ServerOptions>();
  auto ws_auth = std::make_shared<std::string>();
  auto ttl_seconds = std::make_shared<double>(60);
  auto grace_ms = std::make_shared<long>(2000);
  auto ping_ms = std::make_shared<long>(10'000);
  auto idle_ms = std::make_shared<long>(30'000);

  cmd->add_option("--listen", options->listen,
                  "ws://IP:PORT (default ws://127.0.0.1:0), wss://IP:PORT or stdio");
  auto* token_file = cmd->add_option("--token-file", options->token_file,
                                     "file holding the bearer token clients must send");
  cmd->add_option("--ws-token-file", options->token_file, "codex's name for --token-file")
      ->excludes(token_file);
  cmd->add_option("--ws-token-sha256", options->token_sha256_hex,
                  "accept the token whose SHA-256 is this hex digest");
  cmd->add_option("--ws-auth", *ws_auth, "codex compatibility: capability-token")
      ->check(CLI::IsMember({"capability-token"}));
  cmd->add_flag("--insecure-no-auth", options->insecure_no_auth,
                "accept clients without a token (loopback addresses only)");
  cmd->add_flag("--allow-non-loopback", options->allow_non_loopback,
                "allow a non-loopback listen address (auth stays on)");
  cmd->add_option("--allow-host", options->allowed_hosts,
                  "a Host header name to accept besides IP literals and localhost");
  cmd->add_option("--tls-cert", options->tls_cert, "certificate chain (PEM) for wss://");
  cmd->add_option("--tls-key", options->tls_key, "private key (PEM) for wss://");
  cmd->add_option("--session-ttl", *ttl_seconds,
                  "seconds a lost connection's processes are kept for resume (default 60)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--kill-grace-ms", *grace_ms, "SIGTERM to SIGKILL delay (default 2000)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--ping-interval-ms", *ping_ms,
                  "WebSocket keepalive ping interval (default 10000)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--idle-timeout-ms", *idle_ms,
                  "a client silent this long (no pong either) is lost (default 30000)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-connections", options->max_connections, "concurrent connections");
  cmd->add_option("--max-processes", options->max_processes_per_session,
                  "running processes per session");
  cmd->add_option("--max-requests-in-flight", options->max_requests_in_flight,
                  "requests a connection may have unanswered before the executor stops reading it "
                  "(default 256)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-request-bytes-in-flight", options->max_request_bytes_in_flight,
                  "bytes of unanswered requests a connection may have before the executor stops "
                  "reading it; one request of any size is always read (default 67108864)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-queued-bytes", options->max_queued_bytes,
                  "bytes queued for a connection before the executor stops reading it and pauses "
                  "its output (default 4194304)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-fs-calls", options->max_fs_calls,
                  "fs/* calls a connection may have running at once (default 4)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--fs-threads", options->fs_threads,
                  "threads running fs/* calls, shared by all connections (default 8)")
      ->check(CLI::Range(1, 256));
  cmd->add_option("--max-http-requests", options->max_http_requests,
                  "http/request calls and streamed bodies a connection may have open at once "
                  "(default 64)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-http-body-bytes", options->max_http_body_bytes,
                  "largest http/request body answered whole; bigger ones need streamResponse "
                  "(default 33554432)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-pending-connections", options->max_pending_connections,
                  "connections that have not completed the WebSocket upgrade; more are closed "
                  "(default 64)")
      ->check(CLI::PositiveNumber);

  // Everything CLI11 writes into must outlive parsing: the closure keeps it.
  return [options, ws_auth, ttl_seconds, grace_ms, ping_ms, idle_ms] {
    options->session_ttl = std::chrono::milliseconds(static_cast<long>(*ttl_seconds * 1000));
    options->kill_grace = std::chrono::milliseconds(*grace_ms);
    options->ping_interval = std::chrono::milliseconds(*ping_ms);
    options->idle_timeout = std::chrono::milliseconds(*idle_ms);
    return exec::run_server(*options);
  };
}

}  // namespace tether::cli
