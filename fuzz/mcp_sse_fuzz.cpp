// libFuzzer target for the Server-Sent Events parser of the MCP streamable HTTP transport
// (src/mcp/sse.*).
//
// Input: byte 0 picks the parser's byte limit, byte 1 seeds the sizes of the pieces the rest
// (the event stream) is fed in, as HTTP body reads would cut it. Checks:
// - fed in one piece or in pieces, the parser yields the same events, the same verdict (a
//   line or data over the limit fails feed()), the same last event id and retry;
// - both agree with a model of the documented rules (sse.hpp, after WHATWG HTML "Interpreting an
//   event stream") written here on the whole stream: one leading BOM dropped; lines end with
//   CRLF, LF or CR; blank line dispatches non-empty data (joined with '\n', type "message" by
//   default, the last event id at that point); ':' comments; one space after the colon dropped;
//   `id` with NUL ignored; `retry` 1 to 9 ASCII digits; the unfinished last line and event are
//   not dispatched.
// No fakes: the parser is a pure function of its input.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../src/mcp/sse.hpp"
#include "pieces.hpp"

namespace {

using namespace tether::mcp;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_mcp_sse: %s\n", what);
  std::abort();
}

struct Outcome {
  bool ok = true;
  std::vector<sse::Event> events;
  std::string last_event_id;
  std::optional<std::chrono::milliseconds> retry;
};

bool same_events(const std::vector<sse::Event>& a, const std::vector<sse::Event>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
    return x.type == y.type && x.data == y.data && x.id == y.id;
  });
}

// The caller's pattern (http.cpp): feed pieces until one fails.
Outcome parse(const std::vector<std::string_view>& pieces, std::size_t limit) {
  sse::Parser parser(limit);
  Outcome out;
  for (auto piece : pieces) {
    if (!parser.feed(piece, out.events)) {
      out.ok = false;
      return out;
    }
  }
  out.last_event_id = parser.last_event_id();
  out.retry = parser.retry();
  return out;
}

Outcome model(std::string_view stream, std::size_t limit) {
  Outcome out;
  // A stream that is only the start of a BOM is held until it decides: nothing to check yet.
  if (stream.size() < 3 && std::string_view("\xEF\xBB\xBF").starts_with(stream)) return out;
  if (stream.starts_with("\xEF\xBB\xBF")) stream.remove_prefix(3);
  std::string data, type;
  auto process = [&](std::string_view line) {
    if (line.empty()) {
      if (!data.empty()) {
        data.pop_back();
        out.events.push_back({type.empty() ? "message" : type, data, out.last_event_id});
      }
      data.clear();
      type.clear();
      return;
    }
    if (line.front() == ':') return;
    const auto colon = line.find(':');
    const std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    if (value.starts_with(' ')) value.remove_prefix(1);
    if (field == "event") {
      type = value;
    } else if (field == "data") {
      data += value;
      data += '\n';
    } else if (field == "id") {
      if (value.find('\0') == std::string_view::npos) out.last_event_id = value;
    } else if (field == "retry") {
      const bool digits = !value.empty() && value.size() <= 9 &&
                          value.find_first_not_of("0123456789") == std::string_view::npos;
      if (digits) out.retry = std::chrono::milliseconds(std::stoll(std::string(value)));
    }
  };
  while (!stream.empty()) {
    const auto end = stream.find_first_of("\r\n");
    const std::string_view line = stream.substr(0, end);
    if (line.size() > limit) {
      out.ok = false;
      return out;
    }
    if (end == std::string_view::npos) break;  // unfinished line: never processed
    stream.remove_prefix(end + (stream.substr(end, 2) == "\r\n" ? 2 : 1));
    process(line);
    if (data.size() > limit) {
      out.ok = false;
      return out;
    }
  }
  return out;
}

void check_same(const Outcome& a, const Outcome& b, const char* what) {
  if (a.ok != b.ok) fail(what);
  if (!same_events(a.events, b.events)) fail(what);
  if (a.ok && (a.last_event_id != b.last_event_id || a.retry != b.retry)) fail(what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return -1;
  // Small limits reach the limit paths; 200 and above stand for the transport's 64 MiB.
  const std::size_t limit = data[0] < 200 ? data[0] : std::size_t{64} << 20;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  const Outcome whole = parse({stream}, limit);
  const Outcome split = parse(tether::fuzz::pieces_of(stream, data[1], 32), limit);
  // One byte at a time: every CR/LF pair and the BOM cut at every point.
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < stream.size(); ++i) bytes.push_back(stream.substr(i, 1));
  const Outcome bytewise = parse(bytes, limit);
  check_same(whole, split, "fed in pieces, the parser disagrees with one piece");
  check_same(whole, bytewise, "fed byte by byte, the parser disagrees with one piece");
  check_same(whole, model(stream, limit), "the parser disagrees with the model");
  return 0;
}
