// Server-Sent Events parser: see sse.hpp for the rules it follows (WHATWG HTML, "Interpreting
// an event stream"). Bytes -> lines (CR, LF, CRLF) -> fields -> events on blank lines.
#include "sse.hpp"

#include <algorithm>

namespace tether::mcp::sse {

namespace {
constexpr std::string_view kBom = "\xEF\xBB\xBF";
}  // namespace

bool Parser::feed(std::string_view bytes, std::vector<Event>& out) {
  if (!bom_decided_) {
    // The BOM may arrive split across feeds: hold the first bytes until they decide.
    while (bom_pending_.size() < kBom.size() && !bytes.empty() &&
           kBom.substr(0, bom_pending_.size()) == bom_pending_) {
      bom_pending_ += bytes.front();
      bytes.remove_prefix(1);
    }
    const bool is_prefix = kBom.substr(0, bom_pending_.size()) == bom_pending_;
    if (is_prefix && bom_pending_.size() < kBom.size()) return true;
    bom_decided_ = true;
    if (!is_prefix && !consume(bom_pending_, out)) return false;
    bom_pending_.clear();
  }
  return consume(bytes, out);
}

bool Parser::consume(std::string_view bytes, std::vector<Event>& out) {
  while (!bytes.empty()) {
    if (after_cr_ && bytes.front() == '\n') bytes.remove_prefix(1);  // CRLF split across feeds
    after_cr_ = false;
    if (bytes.empty()) break;
    const auto end = bytes.find_first_of("\r\n");
    if (end == std::string_view::npos) {
      line_.append(bytes);
      return line_.size() <= max_bytes_;
    }
    line_.append(bytes.substr(0, end));
    if (line_.size() > max_bytes_) return false;
    after_cr_ = bytes[end] == '\r';
    bytes.remove_prefix(end + 1);
    if (after_cr_ && !bytes.empty()) {
      if (bytes.front() == '\n') bytes.remove_prefix(1);
      after_cr_ = false;
    }
    process_line(line_, out);
    line_.clear();
    if (data_.size() > max_bytes_) return false;
  }
  return true;
}

void Parser::process_line(std::string_view line, std::vector<Event>& out) {
  if (line.empty()) {
    if (data_.empty()) {
      event_type_.clear();
      return;
    }
    data_.pop_back();  // the '\n' after the last data line
    out.push_back(Event{event_type_.empty() ? "message" : std::move(event_type_), std::move(data_),
                        last_event_id_});
    data_.clear();
    event_type_.clear();
    return;
  }
  if (line.front() == ':') return;  // comment (servers use them as keep-alives)
  std::string_view field = line;
  std::string_view value;
  if (const auto colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "event") {
    event_type_ = value;
  } else if (field == "data") {
    data_.append(value);
    data_ += '\n';
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_event_id_ = value;
  } else if (field == "retry") {
    // Digits only, per the rules; more than 9 digits (over 11 days) is ignored as absurd.
    if (!value.empty() && value.size() <= 9 &&
        std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }))
      retry_ = std::chrono::milliseconds(std::stoll(std::string(value)));
  }
}

}  // namespace tether::mcp::sse
