// jsonrpc::LineSplitter: splitting on '\n', trimming one trailing '\r', lines that arrive in
// pieces across appends, the line length limit (on complete lines and on a line still growing),
// take_rest() for the unterminated tail, and correctness under many tiny appends (the splitter
// keeps a scan position and compacts its buffer; only results are checked, never timing).
#include <string>
#include <vector>

#include <boost/system/errc.hpp>
#include <gtest/gtest.h>

#include <tether/jsonrpc/line_splitter.hpp>

namespace tether::jsonrpc {
namespace {

// Every complete line currently buffered; fails the test on a size error.
std::vector<std::string> drain(LineSplitter& splitter) {
  std::vector<std::string> lines;
  for (;;) {
    auto line = splitter.next_line();
    EXPECT_TRUE(line) << "unexpected error: " << (line ? "" : line.error().message());
    if (!line || !*line) return lines;
    lines.push_back(std::move(**line));
  }
}

bool is_message_size(const boost::system::result<std::optional<std::string>>& r) {
  return !r && r.error() == boost::system::errc::message_size;
}

TEST(LineSplitter, SplitsOnNewline) {
  LineSplitter splitter(1024);
  EXPECT_TRUE(splitter.empty());
  splitter.append("one\ntwo\n\nthree\n");
  EXPECT_FALSE(splitter.empty());
  // Empty lines are returned as such (the transport skips them, not the splitter).
  EXPECT_EQ(drain(splitter), (std::vector<std::string>{"one", "two", "", "three"}));
  EXPECT_TRUE(splitter.empty());
}

TEST(LineSplitter, NoLineYetIsNullopt) {
  LineSplitter splitter(1024);
  auto none = splitter.next_line();
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  splitter.append("partial");
  auto still_none = splitter.next_line();
  ASSERT_TRUE(still_none);
  EXPECT_FALSE(*still_none);
}

TEST(LineSplitter, TrimsOneTrailingCarriageReturn) {
  LineSplitter splitter(1024);
  splitter.append("a\r\nb\r\r\n\r\nc\rd\n");
  // One '\r' right before '\n' goes; others are data.
  EXPECT_EQ(drain(splitter), (std::vector<std::string>{"a", "b\r", "", "c\rd"}));
}

TEST(LineSplitter, LinesAcrossAppends) {
  LineSplitter splitter(1024);
  splitter.append("{\"id\":");
  EXPECT_TRUE(drain(splitter).empty());
  splitter.append("1}");
  EXPECT_TRUE(drain(splitter).empty());
  splitter.append("\n{\"id\"");
  EXPECT_EQ(drain(splitter), (std::vector<std::string>{"{\"id\":1}"}));
  splitter.append(":2}\r");
  EXPECT_TRUE(drain(splitter).empty());
  splitter.append("\nx");
  EXPECT_EQ(drain(splitter), (std::vector<std::string>{"{\"id\":2}"}));
  EXPECT_EQ(splitter.take_rest(), "x");
}

TEST(LineSplitter, CompleteLineAtTheLimitIsAccepted) {
  LineSplitter splitter(4);
  splitter.append("abcd\nabc\r\n\n");
  EXPECT_EQ(drain(splitter), (std::vector<std::string>{"abcd", "abc", ""}));
  // The trimmed '\r' does not count against the limit.
  splitter.append("wxyz\r\n");
  EXPECT_EQ(drain(splitter), (std::vector<std::string>{"wxyz"}));
}

TEST(LineSplitter, CompleteLineOverTheLimitIsMessageSize) {
  LineSplitter splitter(4);
  splitter.append("ok\nabcde\n");
  auto first = splitter.next_line();
  ASSERT_TRUE(first);
  ASSERT_TRUE(*first);
  EXPECT_EQ(**first, "ok");
  EXPECT_TRUE(is_message_size(splitter.next_line()));
}

TEST(LineSplitter, GrowingLineOverTheLimitIsMessageSize) {
  // The limit applies before the '\n' arrives: a sender cannot make us buffer without bound.
  LineSplitter splitter(8);
  splitter.append("12345678");
  auto at_limit = splitter.next_line();
  ASSERT_TRUE(at_limit);
  EXPECT_FALSE(*at_limit);
  splitter.append("9");
  EXPECT_TRUE(is_message_size(splitter.next_line()));
}

TEST(LineSplitter, GrowingLineCountsOnlyTheUnconsumedTail) {
  LineSplitter splitter(8);
  splitter.append("aaaaaaaa\nbbbbbbbb");  // 17 bytes buffered, but each line is within the limit
  EXPECT_EQ(drain(splitter), (std::vector<std::string>{"aaaaaaaa"}));
  splitter.append("\n");
  EXPECT_EQ(drain(splitter), (std::vector<std::string>{"bbbbbbbb"}));
}

// A line of exactly the limit followed by "\r\n" is accepted when it arrives in one append
// (CompleteLineAtTheLimitIsAccepted). It must not depend on where the reads split the bytes:
// here the '\r' arrives before the '\n' and the still-growing check counts it.
TEST(LineSplitter, LineAtTheLimitWithCrlfSplitAcrossAppends) {
  LineSplitter splitter(4);
  splitter.append("abcd\r");
  auto pending = splitter.next_line();
  ASSERT_TRUE(pending) << pending.error().message();
  EXPECT_FALSE(*pending);
  splitter.append("\n");
  EXPECT_EQ(drain(splitter), (std::vector<std::string>{"abcd"}));
}

TEST(LineSplitter, TakeRestReturnsTheUnterminatedTailAndEmpties) {
  LineSplitter splitter(1024);
  splitter.append("done\nhalf a li");
  EXPECT_EQ(drain(splitter), (std::vector<std::string>{"done"}));
  EXPECT_FALSE(splitter.empty());
  EXPECT_EQ(splitter.take_rest(), "half a li");
  EXPECT_TRUE(splitter.empty());
  EXPECT_EQ(splitter.take_rest(), "");
  // Usable again afterwards.
  splitter.append("next\n");
  EXPECT_EQ(drain(splitter), (std::vector<std::string>{"next"}));
}

TEST(LineSplitter, TakeRestWithoutAnyNewline) {
  LineSplitter splitter(1024);
  splitter.append("abc");
  EXPECT_TRUE(drain(splitter).empty());
  splitter.append("def");
  EXPECT_EQ(splitter.take_rest(), "abcdef");
}

TEST(LineSplitter, ManyTinyAppendsKeepEveryLineIntact) {
  // Lines of varied lengths, delivered one byte at a time with a next_line() call after each
  // byte: exercises the remembered scan position and the buffer compaction.
  std::vector<std::string> expected;
  std::string stream;
  for (int i = 0; i < 3000; ++i) {
    std::string line(static_cast<std::size_t>(i % 97), static_cast<char>('a' + i % 26));
    line += std::to_string(i);
    expected.push_back(line);
    stream += line;
    stream += (i % 3 == 0) ? "\r\n" : "\n";
  }
  LineSplitter splitter(200);
  std::vector<std::string> got;
  for (char c : stream) {
    splitter.append(std::string_view(&c, 1));
    auto line = splitter.next_line();
    ASSERT_TRUE(line) << line.error().message();
    if (*line) got.push_back(std::move(**line));
  }
  EXPECT_EQ(got, expected);
  EXPECT_TRUE(splitter.empty());
}

TEST(LineSplitter, ManyAppendsOfUnevenChunks) {
  // The same stream in chunks of 1..37 bytes, draining only every few appends, so several lines
  // and partial lines accumulate between calls.
  std::vector<std::string> expected;
  std::string stream;
  for (int i = 0; i < 5000; ++i) {
    expected.push_back("{\"id\":" + std::to_string(i) + ",\"method\":\"m\"}");
    stream += expected.back() + "\n";
  }
  LineSplitter splitter(64);
  std::vector<std::string> got;
  std::size_t pos = 0;
  for (int round = 0; pos < stream.size(); ++round) {
    const std::size_t n = std::min<std::size_t>(1 + round % 37, stream.size() - pos);
    splitter.append(std::string_view(stream).substr(pos, n));
    pos += n;
    if (round % 5 == 0) {
      for (auto& line : drain(splitter)) got.push_back(std::move(line));
    }
  }
  for (auto& line : drain(splitter)) got.push_back(std::move(line));
  EXPECT_EQ(got, expected);
  EXPECT_EQ(splitter.take_rest(), "");
}

}  // namespace
}  // namespace tether::jsonrpc
