// ManagedProcess: readers wait for readiness, then read into one shared scratch buffer, so an
// idle process holds no read buffer (the executor is single-threaded). Every event gets its seq
// and is pushed in the same synchronous step, so pushes leave in seq order.
#include "managed_process.hpp"

#include <csignal>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

namespace tether::exec {
namespace asio = boost::asio;

namespace {

constexpr std::size_t kReadChunk = std::size_t{256} << 10;

std::string_view stream_name(bool tty, bool is_stdout) {
  if (tty) return "pty";
  return is_stdout ? "stdout" : "stderr";
}

}  // namespace

ManagedProcess::ManagedProcess(const asio::any_io_executor& executor, std::string id,
                               std::shared_ptr<Outlet> outlet, const ProcessLimits& limits,
                               ClosedCallback on_closed)
    : executor_(executor),
      id_(std::move(id)),
      id_json_(boost::json::serialize(boost::json::string(id_))),
      outlet_(std::move(outlet)),
      limits_(limits),
      on_closed_(std::move(on_closed)),
      room_(executor),
      changed_(executor),
      stdin_drained_(executor) {}

Expected<std::shared_ptr<ManagedProcess>> ManagedProcess::start(
    const asio::any_io_executor& executor, std::string id, const process::SpawnOptions& options,
    bool stdin_open, std::shared_ptr<Outlet> outlet, const ProcessLimits& limits,
    ClosedCallback on_closed) {
  auto child = process::Child::spawn(executor, options);
  if (!child) return jsonrpc::make_error(jsonrpc::code::kInternalError, child.error().message);
  std::shared_ptr<ManagedProcess> self(
      new ManagedProcess(executor, std::move(id), std::move(outlet), limits, std::move(on_closed)));
  self->child_ = std::move(*child);
  self->stdin_open_ = stdin_open || options.tty;
  const bool tty = options.tty;
  self->streams_[0] = Stream{self->child_->stdout_stream(), stream_name(tty, true), true};
  if (!tty) self->streams_[1] = Stream{self->child_->stderr_stream(), "stderr", true};
  for (auto& stream : self->streams_) {
    if (stream.open) asio::co_spawn(executor, self->read_stream(stream), asio::detached);
  }
  asio::co_spawn(executor, self->wait_exit(), asio::detached);
  return self;
}

asio::awaitable<void> ManagedProcess::wait_for_capacity() {
  using namespace asio::experimental::awaitable_operators;
  for (;;) {
    if (terminating_) co_return;
    if (outlet_->attached()) co_await outlet_->wait_writable();
    if (!retention_full() || terminating_) co_return;
    co_await (room_.wait() || outlet_->changed.wait());
  }
}

bool ManagedProcess::retention_full() const {
  return retained_bytes_ >= limits_.retained_bytes + limits_.unconfirmed_bytes ||
         retained_.size() >= limits_.retained_chunks + limits_.unconfirmed_chunks;
}

boost::system::error_code ManagedProcess::read_available(Stream& stream) {
  // One shared buffer: the executor is single-threaded and an idle process holds none.
  static std::string scratch(kReadChunk, '\0');
  // Drain what the pipe already holds (up to the scratch size) into one chunk: a producer that
  // writes in small pieces then costs one message per read burst, not one per write.
  boost::system::error_code ec;
  std::size_t n = 0;
  while (!ec && n < scratch.size()) {
    n += stream.descriptor->read_some(asio::buffer(scratch.data() + n, scratch.size() - n), ec);
  }
  if (ec == asio::error::would_block || ec == asio::error::try_again) ec = {};
  if (n > 0) add_output(stream.name, std::string_view(scratch.data(), n));
  return ec;
}

asio::awaitable<void> ManagedProcess::read_stream(Stream& stream) {
  auto self = shared_from_this();
  for (;;) {
    co_await wait_for_capacity();
    boost::system::error_code ec;
    co_await stream.descriptor->async_wait(asio::posix::stream_descriptor::wait_read,
                                           asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) ec = read_available(stream);
    if (ec) {
      if (!process::is_end_of_stream(ec) && ec != asio::error::operation_aborted &&
          ec != asio::error::bad_descriptor) {
        spdlog::debug("exec: reading {} of {} failed: {}", stream.name, id_, ec.message());
      }
      break;
    }
  }
  stream.open = false;
  maybe_close();
}

void ManagedProcess::add_output(std::string_view stream, std::string_view bytes) {
  const std::uint64_t seq = next_seq_++;
  // Retained before it is pushed: a consumer may confirm it at once.
  retained_.push_back(Chunk{seq, stream, std::string(bytes)});
  retained_bytes_ += bytes.size();
  outlet_->output(*this, seq, stream, bytes, [weak = weak_from_this(), seq] {
    if (auto self = weak.lock()) self->confirm_range(seq, seq);
  });
  evict();
  changed_.notify_all();
}

void ManagedProcess::confirm_range(std::uint64_t first, std::uint64_t last) {
  auto it = std::partition_point(retained_.begin(), retained_.end(),
                                 [&](const Chunk& c) { return c.seq < first; });
  for (; it != retained_.end() && it->seq <= last; ++it) it->confirmed = true;
  evict();
}

void ManagedProcess::acknowledge(std::uint64_t seq) {
  if (seq <= acknowledged_seq_) return;
  acknowledged_seq_ = seq;
  evict();
}

void ManagedProcess::evict() {
  // Oldest first, and only what the client confirmed: anything else may be the very output a
  // resuming client still has to read (the reader pauses at the allowance instead).
  bool any = false;
  while (!retained_.empty() &&
         (retained_.front().confirmed || retained_.front().seq <= acknowledged_seq_) &&
         (retained_bytes_ > limits_.retained_bytes || retained_.size() > limits_.retained_chunks)) {
    retained_bytes_ -= retained_.front().bytes.size();
    retained_.pop_front();
    any = true;
  }
  if (any) room_.notify_all();
}

asio::awaitable<void> ManagedProcess::wait_exit() {
  auto self = shared_from_this();
  process::ExitStatus status;
  try {
    status = co_await child_->wait();
  } catch (const boost::system::system_error& e) {
    spdlog::warn("exec: waiting for {} failed: {}", id_, e.what());
    status.code = -1;
  }
  // Whatever the child wrote before it exited is in its pipes by now: relay it first, so that
  // output written before the exit is numbered before `exited`.
  for (auto& stream : streams_) {
    if (stream.open) read_available(stream);
  }
  exit_ = status;
  stdin_queue_.clear();
  stdin_queued_bytes_ = 0;
  stdin_drained_.notify_all();
  outlet_->exited(*this, next_seq_++, status);
  changed_.notify_all();
  maybe_close();
}

void ManagedProcess::maybe_close() {
  if (closed_ || !exit_ ||
      std::any_of(streams_.begin(), streams_.end(), [](const Stream& s) { return s.open; }))
    return;
  closed_ = true;
  outlet_->closed(*this, next_seq_++);
  changed_.notify_all();
  if (on_closed_) on_closed_(id_);
}

asio::awaitable<WriteStatus> ManagedProcess::write(std::string bytes,
                                                   std::optional<std::string> write_id) {
  auto self = shared_from_this();
  if (write_id && write_ids_.contains(*write_id)) co_return WriteStatus::accepted;
  if (!stdin_open_ || exit_ || !child_->stdin_stream()) co_return WriteStatus::stdin_closed;
  if (write_id) remember_write_id(*write_id);
  if (bytes.empty()) co_return WriteStatus::accepted;
  const std::uint64_t number = stdin_next_number_++;
  while (number >= stdin_dropped_below_ && stdin_open_ && !exit_ &&
         (number != stdin_turn_ || stdin_queued_bytes_ > limits_.stdin_queue_bytes)) {
    co_await stdin_drained_.wait();
  }
  if (number < stdin_dropped_below_) {
    if (write_id) forget_write_id(*write_id);
    co_return WriteStatus::stdin_closed;
  }
  if (!stdin_open_ || exit_) co_return WriteStatus::stdin_closed;
  ++stdin_turn_;
  stdin_drained_.notify_all();  // the next in line may fit too
  stdin_queued_bytes_ += bytes.size();
  stdin_queue_.push_back(std::move(bytes));
  if (!stdin_writing_) {
    stdin_writing_ = true;
    asio::co_spawn(executor_, write_stdin(), asio::detached);
  }
  co_return WriteStatus::accepted;
}

void ManagedProcess::drop_waiting_writes() {
  if (stdin_turn_ == stdin_next_number_) return;
  stdin_dropped_below_ = stdin_turn_ = stdin_next_number_;
  stdin_drained_.notify_all();
}

void ManagedProcess::remember_write_id(const std::string& write_id) {
  write_ids_.insert(write_id);
  write_id_order_.push_back(write_id);
  if (write_id_order_.size() > limits_.remembered_write_ids) {
    write_ids_.erase(write_id_order_.front());
    write_id_order_.pop_front();
  }
}

void ManagedProcess::forget_write_id(const std::string& write_id) {
  write_ids_.erase(write_id);
  std::erase(write_id_order_, write_id);
}

asio::awaitable<void> ManagedProcess::write_stdin() {
  auto self = shared_from_this();
  while (!stdin_queue_.empty()) {
    auto* stream = child_->stdin_stream();
    if (!stream) break;
    boost::system::error_code ec;
    const std::string& front = stdin_queue_.front();
    co_await asio::async_write(*stream, asio::buffer(front),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (stdin_queue_.empty()) break;  // cleared by exit meanwhile
    stdin_queued_bytes_ -= stdin_queue_.front().size();
    stdin_queue_.pop_front();
    stdin_drained_.notify_all();
    if (ec) {
      // The child closed its stdin (EPIPE) or went away: later writes report stdinClosed.
      spdlog::debug("exec: stdin of {} closed: {}", id_, ec.message());
      stdin_open_ = false;
      stdin_queue_.clear();
      stdin_queued_bytes_ = 0;
      break;
    }
  }
  stdin_writing_ = false;
  stdin_drained_.notify_all();
}

bool ManagedProcess::has_news(std::uint64_t after_seq) const {
  return exit_ || (!retained_.empty() && retained_.back().seq > after_seq);
}

ReadResult ManagedProcess::read(std::uint64_t after_seq,
                                std::optional<std::size_t> max_bytes) const {
  ReadResult result;
  std::size_t bytes = 0;
  bool cut = false;
  auto it = std::partition_point(retained_.begin(), retained_.end(),
                                 [&](const Chunk& c) { return c.seq <= after_seq; });
  for (; it != retained_.end(); ++it) {
    if (max_bytes && !result.chunks.empty() && bytes + it->bytes.size() > *max_bytes) {
      cut = true;
      break;
    }
    bytes += it->bytes.size();
    result.chunks.push_back(OutputEvent{it->seq, std::string(it->stream), it->bytes});
  }
  result.next_seq = cut ? result.chunks.back().seq + 1 : next_seq_;
  result.exited = exit_.has_value();
  if (exit_) result.exit_code = exit_->code;
  result.closed = closed_;
  return result;
}

bool ManagedProcess::terminate() {
  if (exit_) return false;
  terminating_ = true;
  room_.notify_all();  // a paused reader must drain the pipes so the child can exit
  child_->terminate(limits_.kill_grace);
  return true;
}

void ManagedProcess::interrupt() {
  if (!exit_) child_->signal_group(SIGINT);
}

void ManagedProcess::end() {
  terminating_ = true;
  room_.notify_all();
  child_->terminate(limits_.kill_grace);
  if (closed_) return;
  // Something outside the tree may still hold the pipes open: once the grace is over, stop
  // waiting for their EOF so the session's memory is released. A named coroutine, not a
  // capturing lambda: a lambda coroutine's captures live in the closure, which is a temporary.
  asio::co_spawn(executor_, release_pipes_later(shared_from_this()), asio::detached);
}

asio::awaitable<void> ManagedProcess::release_pipes_later(std::shared_ptr<ManagedProcess> self) {
  asio::steady_timer timer(self->executor_, self->limits_.kill_grace + std::chrono::seconds(1));
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (self->closed_) co_return;
  boost::system::error_code ignored;
  if (auto* s = self->child_->stdout_stream()) s->close(ignored);
  if (auto* s = self->child_->stderr_stream()) s->close(ignored);
}

}  // namespace tether::exec
