// What `tether mcp` shows a person or a script: styling that honours the terminal and NO_COLOR,
// aligned tables, JSON (indented, for --json and structured results), the startup status (a live
// line on a TTY, cut to its width, plain lines otherwise; always on stderr so stdout stays the
// answer), and every write to stdout and stderr, logs included: a write that fails (the reader
// went away, a closed or full stream) is recorded once and handed to the run, which then ends.
// Does not own: what the commands do (mcp_command.cpp).
#pragma once

#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>
#include <spdlog/sinks/sink.h>

#include <tether/host/manager.hpp>

namespace tether::cli {

enum class Stream { out, err };

struct WriteFailure {
  Stream stream;
  int error;  // errno: EPIPE when the reader went away, EBADF for a closed stream, ENOSPC, ...
};

// Opens /dev/null read-only on whichever of fds 0, 1 and 2 is closed, so that no file opened
// later takes its number, and writes to a closed stdout or stderr fail (EBADF) instead of landing
// in that file. Call first thing in main.
void reserve_standard_fds();

// Writes all of `text` at once (no stdio buffer, so a failure is seen when it happens). A live
// status line is cleared first. A stream that failed is not written again; the first failure is
// kept and handed to the failure handler. Never throws.
void write_to(Stream stream, std::string_view text);
inline void write_out(std::string_view text) {
  write_to(Stream::out, text);
}
inline void write_err(std::string_view text) {
  write_to(Stream::err, text);
}
std::optional<WriteFailure> write_failure();
// Called once, on the writing thread, with the first failed write (empty: none).
void on_write_failure(std::function<void(const WriteFailure&)> handler);
// From any thread: from now on a write that would wait for its reader gives up instead (that
// stream is not written again; this is not a write failure). An interrupted run must end even
// when its reader does not read.
void abandon_blocked_writes();
// Whether anything was written to stdout (with --json: the answer, so no error object follows).
bool wrote_stdout();

// The live status line on stderr (a terminal): drawn over the previous one, cleared by the next
// write or by clear_live_line.
void draw_live_line(std::string_view line);
void clear_live_line();

// The `tether mcp` logs: written through write_err with the level coloured like Style does.
std::shared_ptr<spdlog::sinks::sink> log_sink();

// A failure as --json reports it on stdout: {"error": {"kind", "message", "exitCode"}}.
void print_json_error(std::string_view kind, std::string_view message, int exit_code);

// The width of the terminal on `fd` (TIOCGWINSZ; else $COLUMNS; else 80).
std::size_t terminal_columns(int fd);

// ANSI styling for one stream: on only for a terminal and when NO_COLOR is unset.
class Style {
 public:
  explicit Style(std::FILE* stream);
  bool terminal() const { return terminal_; }
  std::string bold(std::string_view text) const { return wrap("1", text); }
  std::string dim(std::string_view text) const { return wrap("2", text); }
  std::string red(std::string_view text) const { return wrap("31", text); }
  std::string green(std::string_view text) const { return wrap("32", text); }
  std::string yellow(std::string_view text) const { return wrap("33", text); }

 private:
  std::string wrap(std::string_view code, std::string_view text) const;
  bool terminal_ = false;
  bool color_ = false;
};

// Indented JSON, two spaces a level.
std::string pretty_json(const boost::json::value& value);

// Rows under a header, each column as wide as its widest cell; the last column is not padded.
// Cells may carry styling: widths count what `plain` says each cell shows.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  // `shown`: the cells as printed (styled); `plain`: the same without styling.
  void add(std::vector<std::string> shown, std::vector<std::string> plain);
  void add(std::vector<std::string> cells) { add(cells, cells); }
  // Lines printed under the row just added (e.g. an error).
  void note(std::string line) { notes_[rows_.size() - 1].push_back(std::move(line)); }
  std::string render(const Style& style) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> rows_;
  std::map<std::size_t, std::vector<std::string>> notes_;
};

// Startup progress on stderr: one live line rewritten in place on a terminal (cut to its width,
// cleared before anything else is written), one plain line per event otherwise.
// report_failures prints each failure's error once startup is over.
class StartupView {
 public:
  explicit StartupView(bool report_failures);
  ~StartupView() { finish(); }
  StartupView(const StartupView&) = delete;
  StartupView& operator=(const StartupView&) = delete;
  void update(const host::ServerStatus& status);
  // Startup is over: the live line is cleared, failures are printed when asked; later updates
  // (a restart on use) are not shown. Idempotent; every exit path runs it (the destructor).
  void finish();

 private:
  void redraw();
  Style style_;
  bool report_failures_;
  std::vector<std::string> order_;
  std::map<std::string, host::ServerStatus> latest_;
  bool finished_ = false;
};

}  // namespace tether::cli
