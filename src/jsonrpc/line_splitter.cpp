// Line splitting with amortized O(n) scanning: the unscanned tail is remembered, and consumed
// bytes are dropped in bulk rather than per line.
#include <boost/system/errc.hpp>

#include <tether/jsonrpc/line_splitter.hpp>

namespace tether::jsonrpc {

boost::system::result<std::optional<std::string>> LineSplitter::next_line() {
  const std::size_t from = std::max(scanned_, consumed_);
  const std::size_t nl = buffer_.find('\n', from);
  if (nl == std::string::npos) {
    scanned_ = buffer_.size();
    // A trailing '\r' may be the first half of "\r\n", which does not count toward the limit.
    const std::size_t pending = buffer_.size() - consumed_;
    const bool maybe_crlf = pending > 0 && buffer_.back() == '\r';
    if (pending > max_line_ + (maybe_crlf ? 1 : 0))
      return boost::system::errc::make_error_code(boost::system::errc::message_size);
    if (consumed_ > 0 && consumed_ == buffer_.size()) {
      buffer_.clear();
      consumed_ = scanned_ = 0;
    }
    return std::optional<std::string>{};
  }
  std::size_t end = nl;
  if (end > consumed_ && buffer_[end - 1] == '\r') --end;
  if (end - consumed_ > max_line_)
    return boost::system::errc::make_error_code(boost::system::errc::message_size);
  std::string line = buffer_.substr(consumed_, end - consumed_);
  consumed_ = nl + 1;
  scanned_ = consumed_;
  if (consumed_ >= buffer_.size() / 2) {
    buffer_.erase(0, consumed_);
    scanned_ -= consumed_;
    consumed_ = 0;
  }
  return std::optional<std::string>{std::move(line)};
}

std::string LineSplitter::take_rest() {
  std::string rest = buffer_.substr(consumed_);
  buffer_.clear();
  consumed_ = scanned_ = 0;
  return rest;
}

}  // namespace tether::jsonrpc
