// libFuzzer target for the MCP stdio framing: jsonrpc::LineSplitter (a server's stdout, and the
// `--listen stdio` transport), stdio::StderrLog (a server's stderr) and jsonrpc::is_valid_utf8
// (argv and environment checks before an executor spawns a server).
//
// Input: byte 0 picks the line limit, byte 1 seeds the sizes of the chunks the rest (the stream)
// is fed in, as pipe reads would cut it. Each component is checked against a model written here
// from the documented rules, so a finding is any difference, not only a crash:
// - LineSplitter: the lines are the stream split on '\n' with one trailing '\r' trimmed; a line
//   (or the unterminated tail, a trailing '\r' not counted) longer than the limit is an error,
//   after the lines before it; the lines, their separators and take_rest() put back together
//   are the stream; the result does not depend on the chunking.
// - StderrLog: the stderr tail holds the same lines minus the empty ones, the unterminated last
//   line included once finish() is called.
// - is_valid_utf8: agrees with the Unicode well-formed byte sequences (Table 3-7) on the stream.
// No fakes: these are pure functions of their input.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include "../src/mcp/stdio_common.hpp"
#include "pieces.hpp"
#include <tether/jsonrpc/line_splitter.hpp>
#include <tether/jsonrpc/utf8.hpp>
#include <tether/mcp/connection.hpp>

namespace {

using namespace tether;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_mcp_lines: %s\n", what);
  std::abort();
}

struct Framing {
  std::vector<std::string> lines;
  bool overlong = false;
};

// The documented rules, on the whole stream at once.
Framing model_framing(std::string_view stream, std::size_t limit) {
  Framing out;
  std::size_t start = 0;
  for (auto nl = stream.find('\n'); nl != std::string_view::npos; nl = stream.find('\n', start)) {
    std::string_view line = stream.substr(start, nl - start);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.size() > limit) {
      out.overlong = true;
      return out;
    }
    out.lines.emplace_back(line);
    start = nl + 1;
  }
  const std::string_view tail = stream.substr(start);
  if (tail.size() > limit + (tail.ends_with('\r') ? 1 : 0)) out.overlong = true;
  return out;
}

void check_splitter(std::string_view stream, std::size_t limit,
                    const std::vector<std::string_view>& chunks) {
  jsonrpc::LineSplitter splitter(limit);
  Framing got;
  for (auto chunk : chunks) {
    splitter.append(chunk);
    for (;;) {
      auto line = splitter.next_line();
      if (!line) {
        got.overlong = true;
        break;
      }
      if (!*line) break;
      got.lines.push_back(std::move(**line));
    }
    if (got.overlong) break;
  }
  const Framing expected = model_framing(stream, limit);
  if (got.overlong != expected.overlong) fail("line limit verdict differs from the model");
  if (got.lines != expected.lines) fail("lines differ from the model");
  if (got.overlong) return;

  // Lines + separators + the rest reproduce the stream; only one '\r' before '\n' is dropped.
  std::size_t pos = 0;
  for (const auto& line : got.lines) {
    if (line.find('\n') != std::string::npos) fail("a line contains '\\n'");
    if (stream.substr(pos, line.size()) != line) fail("a line is not the next bytes of the stream");
    pos += line.size();
    if (stream.substr(pos, 1) == "\n") {
      if (line.ends_with('\r')) fail("a line separated by '\\n' kept its trailing '\\r'");
      pos += 1;
    } else if (stream.substr(pos, 2) == "\r\n") {
      pos += 2;
    } else {
      fail("a line is not followed by '\\n' or '\\r\\n'");
    }
  }
  const std::string_view tail = stream.substr(pos);
  if (tail.find('\n') != std::string_view::npos) fail("a complete line was not delivered");
  if (splitter.empty() != tail.empty()) fail("empty() disagrees with the unterminated tail");
  if (splitter.take_rest() != tail) fail("take_rest() is not the unterminated tail");
  if (!splitter.empty()) fail("not empty after take_rest()");
}

// StderrLog logs lines in pieces past 16 KiB; the model covers streams below that.
constexpr std::size_t kStderrModelBytes = 16 << 10;

void check_stderr(std::string_view stream, const std::vector<std::string_view>& chunks) {
  if (stream.size() > kStderrModelBytes) return;
  auto diagnostics = std::make_shared<mcp::ServerDiagnostics>(stream.size() + 1);
  mcp::stdio::StderrLog log("fuzz", diagnostics);
  for (auto chunk : chunks) log.append(chunk);
  log.finish();

  std::string expected;
  std::size_t start = 0;
  while (start <= stream.size()) {
    auto nl = stream.find('\n', start);
    if (nl == std::string_view::npos) nl = stream.size();
    std::string_view line = stream.substr(start, nl - start);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (!line.empty()) {
      if (!expected.empty()) expected += '\n';
      expected += line;
    }
    start = nl + 1;
  }
  if (diagnostics->stderr_tail() != expected) fail("stderr tail differs from the model");
}

// Unicode 15, Table 3-7 (well-formed UTF-8 byte sequences).
bool model_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  auto in = [](unsigned char c, unsigned lo, unsigned hi) { return c >= lo && c <= hi; };
  while (p < end) {
    const unsigned char c = *p;
    std::size_t n = 0;
    unsigned lo = 0x80, hi = 0xBF;  // range of the second byte
    if (c <= 0x7F) {
      ++p;
      continue;
    } else if (in(c, 0xC2, 0xDF)) {
      n = 1;
    } else if (c == 0xE0) {
      n = 2, lo = 0xA0;
    } else if (in(c, 0xE1, 0xEC) || in(c, 0xEE, 0xEF)) {
      n = 2;
    } else if (c == 0xED) {
      n = 2, hi = 0x9F;
    } else if (c == 0xF0) {
      n = 3, lo = 0x90;
    } else if (in(c, 0xF1, 0xF3)) {
      n = 3;
    } else if (c == 0xF4) {
      n = 3, hi = 0x8F;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) < n + 1) return false;
    if (!in(p[1], lo, hi)) return false;
    for (std::size_t i = 2; i <= n; ++i)
      if (!in(p[i], 0x80, 0xBF)) return false;
    p += n + 1;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // StderrLog logs every line
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return -1;
  // Small limits reach the limit paths; 250 and above stand for the default-sized limit.
  const std::size_t limit = data[0] < 250 ? data[0] : std::size_t{64} << 20;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  const auto chunks = fuzz::pieces_of(stream, data[1], 64);
  check_splitter(stream, limit, chunks);
  check_splitter(stream, limit, {stream});
  check_stderr(stream, chunks);
  if (jsonrpc::is_valid_utf8(stream) != model_utf8(stream))
    fail("is_valid_utf8 differs from the Unicode well-formedness table");
  return 0;
}
