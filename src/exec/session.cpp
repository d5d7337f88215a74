// Sessions and their registry. A detached session's TTL timer holds only a weak reference, so
// a session that was resumed or ended in the meantime is left alone when the timer fires.
#include "session.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/uuid/uuid_generators.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <spdlog/spdlog.h>

#include <tether/exec/protocol.hpp>

namespace tether::exec {
namespace asio = boost::asio;

void ConnectionOutlet::output(const ManagedProcess& process, std::uint64_t seq,
                              std::string_view stream, std::string_view bytes,
                              std::function<void()> on_delivered) {
  if (!peer) return;
  peer->send(output_notification(process.id_json(), seq, stream, bytes), std::move(on_delivered));
}

void ConnectionOutlet::exited(const ManagedProcess& process, std::uint64_t seq,
                              const process::ExitStatus& status) {
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
      outlet_(std::make_shared<ConnectionOutlet>(executor)),
      ttl_timer_(executor) {}

void Session::attach(std::shared_ptr<jsonrpc::Peer> peer) {
  ttl_timer_.cancel();
  outlet_->peer = std::move(peer);
  outlet_->changed.notify_all();
}

void Session::detach(std::chrono::milliseconds ttl) {
  outlet_->peer.reset();
  outlet_->changed.notify_all();
  // Their answers would reach nobody; the resuming client retries them.
  for (auto& [id, process] : processes_) process->drop_waiting_writes();
  if (ttl.count() <= 0) {
    end();
    return;
  }
  spdlog::info("exec: session {} detached; its processes are kept for {} ms", id_, ttl.count());
  ttl_timer_.expires_after(ttl);
  ttl_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    if (ec) return;
    if (auto self = weak.lock(); self && !self->attached()) {
      spdlog::info("exec: session {} expired", self->id_);
      self->end();
    }
  });
}

void Session::end() {
  if (ended_) return;
  ended_ = true;
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
  for (auto& [id, session] : sessions) session->end();
}

}  // namespace tether::exec
