// Sessions and their registry. A detached session's TTL timer holds only a weak reference, so
// a session that was resumed or ended in the meantime is left alone when the timer fires.
#include "session.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/uuid/uuid_generators.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <tether/exec/protocol.hpp>
#include <tether/jsonrpc/duration.hpp>

namespace tether::exec {
namespace asio = boost::asio;

namespace {

std::string processes_phrase(std::size_t running) {
  return fmt::format("{} running process{}", running, running == 1 ? "" : "es");
}

}  // namespace

void ConnectionOutlet::output(const ManagedProcess& process, std::uint64_t seq,
                              std::string_view stream, std::string_view bytes,
                              std::function<void()> on_delivered) {
  if (!peer) return;
  peer->send(output_notification(process.id_json(), seq, stream, bytes), std::move(on_delivered));
}

void ConnectionOutlet::exited(const ManagedProcess& process, std::uint64_t seq,
                              const process::ExitStatus& status) {
  const auto ran = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - process.started_at());
  if (status.signal) {
    spdlog::info("exec: process {:?} of session {} killed by signal {} after {}", process.id(),
                 session_id_, *status.signal, jsonrpc::format_duration(ran));
  } else {
    spdlog::info("exec: process {:?} of session {} exited with code {} after {}", process.id(),
                 session_id_, status.code, jsonrpc::format_duration(ran));
  }
  if (!peer) return;
  peer->notify(std::string(kProcessExited.name),
               to_json(ExitedNotice{process.id(), seq, status.code, status.signal}));
}

void ConnectionOutlet::closed(const ManagedProcess& process, std::uint64_t seq) {
  if (!peer) return;
  peer->notify(std::string(kProcessClosed.name), to_json(ClosedNotice{process.id(), seq}));
}

asio::awaitable<void> ConnectionOutlet::wait_writable() {
  if (auto p = peer) co_await p->wait_writable();
}

Session::Session(const asio::any_io_executor& executor, std::string id, SessionRegistry& registry)
    : executor_(executor),
      id_(std::move(id)),
      registry_(registry),
      outlet_(std::make_shared<ConnectionOutlet>(executor, id_)),
      ttl_timer_(executor) {}

void Session::attach(std::shared_ptr<jsonrpc::Peer> peer, std::uint64_t connection) {
  ttl_timer_.cancel();
  connection_ = connection;
  outlet_->peer = std::move(peer);
  outlet_->changed.notify_all();
}

void Session::detach(std::chrono::milliseconds ttl) {
  outlet_->peer.reset();
  outlet_->changed.notify_all();
  // Their answers would reach nobody; the resuming client retries them.
  for (auto& [id, process] : processes_) process->drop_waiting_writes();
  if (ttl.count() <= 0) {
    end(fmt::format("ended: connection {} lost and --session-ttl is 0", connection_));
    return;
  }
  spdlog::info("exec: session {} detached: connection {} lost; kept {} for resume with {}", id_,
               connection_, jsonrpc::format_duration(ttl), processes_phrase(running_count()));
  ttl_timer_.expires_after(ttl);
  ttl_timer_.async_wait([weak = weak_from_this(), ttl](boost::system::error_code ec) {
    if (ec) return;
    if (auto self = weak.lock(); self && !self->attached())
      self->end(fmt::format("expired: not resumed within {}", jsonrpc::format_duration(ttl)));
  });
}

void Session::end(std::string_view why) {
  if (ended_) return;
  ended_ = true;
  spdlog::info("exec: session {} {}; {} terminated", id_, why, processes_phrase(running_count()));
  ttl_timer_.cancel();
  outlet_->peer.reset();
  for (auto& [id, process] : processes_) process->end();
  processes_.clear();
  registry_.remove(id_);  // may destroy *this: nothing after
}

std::shared_ptr<ManagedProcess> Session::find(const std::string& process_id) const {
  auto it = processes_.find(process_id);
  return it == processes_.end() ? nullptr : it->second;
}

void Session::add(std::shared_ptr<ManagedProcess> process) {
  processes_.emplace(process->id(), std::move(process));
}

std::size_t Session::running_count() const {
  return static_cast<std::size_t>(std::count_if(processes_.begin(), processes_.end(),
                                                [](const auto& p) { return !p.second->closed(); }));
}

void Session::forget_later(const std::string& process_id, std::chrono::milliseconds retention) {
  auto timer = std::make_shared<asio::steady_timer>(executor_, retention);
  timer->async_wait([timer, weak = weak_from_this(), process_id](boost::system::error_code ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->processes_.erase(process_id);
  });
}

std::shared_ptr<Session> SessionRegistry::create() {
  static thread_local boost::uuids::random_generator generate;
  auto id = boost::uuids::to_string(generate());
  auto session = std::make_shared<Session>(executor_, id, *this);
  sessions_.emplace(std::move(id), session);
  return session;
}

std::shared_ptr<Session> SessionRegistry::find(const std::string& id) const {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second;
}

void SessionRegistry::end_all() {
  auto sessions = sessions_;
  for (auto& [id, session] : sessions) session->end("ended: the server is shutting down");
}

}  // namespace tether::exec
