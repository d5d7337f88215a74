// Executor sessions: the processes of one client, and what survives a lost connection.
//
// Owns: the process table of a session (ids, forgetting closed processes after their
// retention), attach/detach to a connection through the Outlet, the TTL of a detached session,
// ending a session (every process group terminated), the registry used for resume, and the
// log lines of a session's lifecycle and of its processes' exits.
// Does not own: request handling (connection.cpp) or a process's own state (ManagedProcess).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "managed_process.hpp"

namespace tether::exec {

class SessionRegistry;

// A session's outlet: `process/*` notifications to the attached connection, nothing while
// detached. Output confirmation is the connection's delivery confirmation (Peer::send).
class ConnectionOutlet final : public Outlet {
 public:
  ConnectionOutlet(const boost::asio::any_io_executor& executor, std::string session_id)
      : Outlet(executor), session_id_(std::move(session_id)) {}
  void output(const ManagedProcess& process, std::uint64_t seq, std::string_view stream,
              std::string_view bytes, std::function<void()> on_delivered) override;
  void exited(const ManagedProcess& process, std::uint64_t seq,
              const process::ExitStatus& status) override;
  void closed(const ManagedProcess& process, std::uint64_t seq) override;
  bool attached() const override { return peer != nullptr; }
  boost::asio::awaitable<void> wait_writable() override;

  std::shared_ptr<jsonrpc::Peer> peer;

 private:
  std::string session_id_;  // names the session in the log
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(const boost::asio::any_io_executor& executor, std::string id, SessionRegistry& registry);

  const std::string& id() const { return id_; }
  const std::shared_ptr<ConnectionOutlet>& outlet() const { return outlet_; }
  bool attached() const { return outlet_->peer != nullptr; }
  // The connection the session is or was last attached to (as logs name it).
  std::uint64_t connection() const { return connection_; }

  void attach(std::shared_ptr<jsonrpc::Peer> peer, std::uint64_t connection);
  // The connection was lost: keep the processes for `ttl`, then end the session.
  void detach(std::chrono::milliseconds ttl);
  // Terminates every process group and forgets the session; `why` completes its log line
  // ("ended: ...", "expired: ...").
  void end(std::string_view why);

  std::shared_ptr<ManagedProcess> find(const std::string& process_id) const;
  bool contains(const std::string& process_id) const { return processes_.contains(process_id); }
  void add(std::shared_ptr<ManagedProcess> process);
  std::size_t running_count() const;
  // Forgets a closed process after `retention` (its id stays reserved until then).
  void forget_later(const std::string& process_id, std::chrono::milliseconds retention);

 private:
  boost::asio::any_io_executor executor_;
  std::string id_;
  SessionRegistry& registry_;
  std::shared_ptr<ConnectionOutlet> outlet_;
  std::uint64_t connection_ = 0;
  std::unordered_map<std::string, std::shared_ptr<ManagedProcess>> processes_;
  boost::asio::steady_timer ttl_timer_;
  bool ended_ = false;
};

class SessionRegistry {
 public:
  explicit SessionRegistry(boost::asio::any_io_executor executor)
      : executor_(std::move(executor)) {}

  std::shared_ptr<Session> create();
  std::shared_ptr<Session> find(const std::string& id) const;
  void remove(const std::string& id) { sessions_.erase(id); }
  void end_all();
  std::size_t size() const { return sessions_.size(); }

 private:
  boost::asio::any_io_executor executor_;
  std::unordered_map<std::string, std::shared_ptr<Session>> sessions_;
};

}  // namespace tether::exec
