// What `tether mcp` shows a person or a script: styling that honours the terminal and NO_COLOR,
// aligned tables, JSON (indented, for --json and structured results), each subcommand's answer
// (a table or text for a person, one JSON document with --json), failures (`error: ...` on
// stderr, an error object on stdout with --json), the startup status (a live line on a TTY, cut
// to its width, plain lines otherwise; always on stderr so stdout stays the answer), and every
// write to stdout and stderr, logs included: a write that fails (the reader went away, a closed
// or full stream) is recorded once and handed to the run, which then ends.
// Does not own: what the commands do or ask the servers, or exit codes (mcp_command.cpp).
#pragma once

#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
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
// A failure on stderr: `error: <message>`, the label in red when styled.
void print_error(std::string_view message);
// Something the user likely wants to fix that does not stop the run (a config key that looks
// like a typo): `warning: <message>` on stderr, the label in yellow when styled.
void print_warning(std::string_view message);

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
// `value` on stdout as pretty_json, one line break after it.
void print_json(const boost::json::value& value);

// A string member of `object`; empty when it is absent or not a string.
std::string text_of(const boost::json::object& object, std::string_view key);

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

// --- The answers of the `tether mcp` subcommands, on stdout. `as_json`: one JSON document (what
// --json prints) instead of a table or text. Listings carry each item's server as `server`.

// list: each server with its status, tool count, where it runs (and its session's process) and
// command; a failed one's error under it. JSON: {"servers": [...]}, every field of ServerInfo.
void print_servers(const std::vector<host::ServerInfo>& servers, bool as_json);
// tools: qualified name, server, own name, the first line of the description; `details` (tool,
// tools --long): each tool in full, its description and a table of its arguments. JSON:
// {"tools": [...]}, with {"failed": [{"server", "error"}]} when servers in `failed` did not start.
void print_tools(const std::vector<host::OfferedTool>& tools, bool as_json, bool details = false,
                 const std::vector<host::ServerInfo>& failed = {});
// call: the result's content blocks as text (its structured content when there are none). JSON:
// the whole result.
void print_tool_result(const boost::json::object& result, bool as_json);
// resources: resources, then templates. JSON: {"resources", "resourceTemplates"}.
void print_resources(boost::json::array resources, boost::json::array templates, bool as_json);
// read: the contents as text. JSON: the whole result.
void print_resource(const boost::json::object& result, bool as_json);
// prompts: name, server, arguments (`?` after optional ones), description. JSON: {"prompts"}.
void print_prompts(boost::json::array prompts, bool as_json);
// prompt: each message as `role:` and its content. JSON: the whole result.
void print_prompt(const boost::json::object& result, bool as_json);

// get: one server's config (every setting; values of env and headers masked) and where it runs
// (`info`, resolved as a start would). JSON: codex's `mcp get --json` shape (a structured
// `transport`) with tether's required, environment, placement and the file it is defined in.
void print_server_config(const host::ServerConfig& server, const host::ServerInfo& info,
                         bool as_json);

// environments: each executor environment (id, how it is reached, the file that defines it,
// whether it is the default) and where `remote` servers go. JSON: {"environments": [...],
// "default", "remote": {"environment", "source"}}.
void print_environments(const host::Config& config, const host::RemoteEnvironment& remote,
                        bool as_json);

// add, remove and environments add / remove: which server or environment went into or out of
// which config file. JSON: {"added" | "removed": name, "kind": "server" | "environment",
// "config": path}.
enum class ConfigEdit { added, removed, environment_added, environment_removed };
void print_config_edit(ConfigEdit edit, const std::string& name, const std::string& path,
                       bool as_json);

}  // namespace tether::cli
