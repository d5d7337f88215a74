// tether::mcp Server-Sent Events parser (private to the streamable HTTP transport).
//
// Owns: turning the bytes of a `text/event-stream` body into events per the WHATWG HTML
// "Interpreting an event stream" rules: a leading UTF-8 BOM is dropped; lines end with CRLF, LF
// or CR (also when split across feeds); `:` lines are comments; `field: value` (one leading
// space dropped) for data/event/id/retry, other fields ignored; a blank line dispatches; data
// lines are joined with '\n'; an event with no data is not dispatched (but its id still counts);
// an `id` containing NUL is ignored; `retry` takes ASCII digits only; an unfinished event at the
// end of the stream is discarded (the caller simply stops feeding).
// Does not own: HTTP, reconnecting, or what the data means (sse.cpp is fed by http.cpp).
// Written here because Debian packages no C++ SSE parser; it is small and fully specified.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether::mcp::sse {

struct Event {
  std::string type;  // "message" unless an `event:` field said otherwise
  std::string data;
  std::string id;  // the stream's last event id when the event was dispatched
};

class Parser {
 public:
  // Lines and an event's data longer than this make feed() fail (a stream that never ends a line
  // must not grow memory without bound).
  // A reconnected stream starts from the previous one's last event id and retry (as an
  // EventSource keeps them across reconnections).
  explicit Parser(std::size_t max_bytes, std::string last_event_id = {},
                  std::optional<std::chrono::milliseconds> retry = std::nullopt)
      : max_bytes_(max_bytes), last_event_id_(std::move(last_event_id)), retry_(retry) {}

  // Appends the events completed by `bytes` to `out`. Returns false when a line or an event's
  // data exceeds the limit (the parser is then unusable).
  bool feed(std::string_view bytes, std::vector<Event>& out);

  // The last event id buffer: set by `id:` fields whether or not their event was dispatched
  // (priming events carry an id and no data); what a reconnect sends as Last-Event-ID.
  const std::string& last_event_id() const { return last_event_id_; }
  // The reconnection time from the last valid `retry:` field.
  std::optional<std::chrono::milliseconds> retry() const { return retry_; }

 private:
  bool consume(std::string_view bytes, std::vector<Event>& out);
  void process_line(std::string_view line, std::vector<Event>& out);

  std::size_t max_bytes_;
  bool bom_decided_ = false;
  std::string bom_pending_;  // the first bytes, until they are known to be (or not be) a BOM
  bool after_cr_ = false;    // the previous byte ended a line with CR: a following LF is its pair
  std::string line_;
  std::string data_;  // each data line followed by '\n'
  std::string event_type_;
  std::string last_event_id_;
  std::optional<std::chrono::milliseconds> retry_;
};

}  // namespace tether::mcp::sse
