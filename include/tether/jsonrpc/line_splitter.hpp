// tether::jsonrpc line framing — newline-delimited messages (MCP stdio, `--listen stdio`).
//
// Owns: turning a byte stream into complete lines: split on '\n', one trailing '\r' trimmed,
// a bounded line length. Does not own: reading the bytes or parsing the lines.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

namespace tether::jsonrpc {

class LineSplitter {
 public:
  explicit LineSplitter(std::size_t max_line_bytes) : max_line_(max_line_bytes) {}

  void append(std::string_view bytes) { buffer_.append(bytes); }
  // The next complete line, nullopt when none is buffered yet, or message_size when the line
  // (complete or still growing) exceeds the limit.
  boost::system::result<std::optional<std::string>> next_line();
  // What is left after the last '\n' (the unterminated tail), emptying the buffer.
  std::string take_rest();
  bool empty() const { return consumed_ == buffer_.size(); }

 private:
  std::size_t max_line_;
  std::string buffer_;
  std::size_t consumed_ = 0;
  std::size_t scanned_ = 0;  // no '\n' in [consumed_, scanned_)
};

}  // namespace tether::jsonrpc
