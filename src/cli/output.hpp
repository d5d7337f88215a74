// What `tether mcp` shows a person or a script: styling that honours the terminal and NO_COLOR,
// aligned tables, JSON (indented, for --json and structured results), and the startup status
// (a live line on a TTY, plain lines otherwise; always on stderr so stdout stays the answer).
// Does not own: what the commands do (mcp_command.cpp).
#pragma once

#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include <tether/host/manager.hpp>

namespace tether::cli {

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

// Startup progress on stderr: one live line rewritten in place on a terminal, one plain line per
// event otherwise. report_failures prints each failure's error once startup is over.
class StartupView {
 public:
  explicit StartupView(bool report_failures);
  void update(const host::ServerStatus& status);
  // Startup is over: the live line is cleared, failures are printed when asked; later updates
  // (a restart on use) are not shown. Idempotent.
  void finish();

 private:
  void redraw();
  Style style_;
  bool report_failures_;
  std::vector<std::string> order_;
  std::map<std::string, host::ServerStatus> latest_;
  bool drawn_ = false;
  bool finished_ = false;
};

}  // namespace tether::cli
