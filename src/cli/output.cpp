// Writes, styling, tables, JSON, the subcommands' answers and the startup view of `tether mcp`
// (see output.hpp).
#include "output.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <fcntl.h>
#include <mutex>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/base_sink.h>

namespace tether::cli {
namespace json = boost::json;

namespace {

constexpr std::string_view kClearLine = "\r\033[K";

// What has been written to stdout and stderr, and what failed. Logs may come from any thread.
struct Console {
  std::mutex mutex;
  // Readable once abandon_blocked_writes() was called; a write waits on it beside its stream.
  int abandon_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  bool failed[2] = {false, false};
  std::optional<WriteFailure> first_failure;
  std::function<void(const WriteFailure&)> on_failure;
  bool live_line = false;
  bool wrote_stdout = false;
};

Console& console() {
  static Console instance;
  return instance;
}

// 0, the errno of the failed write, or ECANCELED when it was abandoned. A write to a pipe or a
// socket waits for room first, at most PIPE_BUF bytes at a time (what a pipe that polls writable
// takes without blocking), so that abandon_blocked_writes() can end the wait. This also covers a
// non-blocking file description shared with another process.
int write_all(int fd, std::string_view text) {
  struct stat info {};
  const bool waits = ::fstat(fd, &info) == 0 && (S_ISFIFO(info.st_mode) || S_ISSOCK(info.st_mode));
  while (!text.empty()) {
    std::size_t chunk = text.size();
    if (waits) {
      pollfd ready[2] = {{fd, POLLOUT, 0}, {console().abandon_fd, POLLIN, 0}};
      if (::poll(ready, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return errno;
      }
      if ((ready[0].revents & (POLLOUT | POLLERR | POLLHUP)) == 0) return ECANCELED;
      chunk = std::min<std::size_t>(chunk, PIPE_BUF);
    }
    const ssize_t n = ::write(fd, text.data(), chunk);
    if (n > 0) {
      text.remove_prefix(static_cast<std::size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if (!waits) {
        pollfd ready{fd, POLLOUT, 0};
        ::poll(&ready, 1, -1);
      }
    } else {
      return n < 0 ? errno : EIO;
    }
  }
  return 0;
}

// Under the console's lock; returns whether this write was the first failure.
bool write_locked(Console& c, Stream stream, std::string_view text) {
  const auto index = static_cast<std::size_t>(stream);
  if (c.failed[index] || text.empty()) return false;
  const int error = write_all(stream == Stream::out ? STDOUT_FILENO : STDERR_FILENO, text);
  if (error == 0) return false;
  c.failed[index] = true;
  if (error == ECANCELED || c.first_failure) return false;
  c.first_failure = WriteFailure{stream, error};
  return true;
}

}  // namespace

void reserve_standard_fds() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    // open() takes the lowest free number: this one, as the lower ones are open already.
    const int reserved = ::open("/dev/null", O_RDONLY);
    if (reserved != fd && reserved >= 0) ::close(reserved);
  }
}

void write_to(Stream stream, std::string_view text) {
  auto& c = console();
  std::function<void(const WriteFailure&)> notify;
  WriteFailure failure{};
  {
    std::lock_guard lock(c.mutex);
    if (stream == Stream::out) c.wrote_stdout = true;
    bool first = false;
    if (c.live_line) {
      c.live_line = false;
      first = write_locked(c, Stream::err, kClearLine);
    }
    first = write_locked(c, stream, text) || first;
    if (first && c.on_failure) {
      notify = c.on_failure;
      failure = *c.first_failure;
    }
  }
  if (notify) notify(failure);
}

void abandon_blocked_writes() {
  const std::uint64_t one = 1;
  // Not under the lock: the writer holding it is the one to wake.
  [[maybe_unused]] const auto ignored = ::write(console().abandon_fd, &one, sizeof one);
}

std::optional<WriteFailure> write_failure() {
  std::lock_guard lock(console().mutex);
  return console().first_failure;
}

void on_write_failure(std::function<void(const WriteFailure&)> handler) {
  std::lock_guard lock(console().mutex);
  console().on_failure = std::move(handler);
}

bool wrote_stdout() {
  std::lock_guard lock(console().mutex);
  return console().wrote_stdout;
}

void draw_live_line(std::string_view line) {
  write_err(std::string(kClearLine) + std::string(line));
  std::lock_guard lock(console().mutex);
  console().live_line = !console().failed[static_cast<std::size_t>(Stream::err)];
}

void clear_live_line() {
  bool drawn = false;
  {
    std::lock_guard lock(console().mutex);
    drawn = console().live_line;
  }
  // write_to clears a drawn line before writing nothing.
  if (drawn) write_err({});
}

namespace {

class LogSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& message) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(message, formatted);
    std::string_view text(formatted.data(), formatted.size());
    const auto start = std::min(message.color_range_start, text.size());
    const auto end = std::clamp(message.color_range_end, start, text.size());
    const auto level = text.substr(start, end - start);
    const auto shown = message.level >= spdlog::level::err    ? style_.red(level)
                       : message.level == spdlog::level::warn ? style_.yellow(level)
                       : message.level == spdlog::level::info ? style_.green(level)
                                                              : std::string(level);
    write_err(fmt::format("{}{}{}", text.substr(0, start), shown, text.substr(end)));
  }
  void flush_() override {}

 private:
  Style style_{stderr};
};

}  // namespace

std::shared_ptr<spdlog::sinks::sink> log_sink() {
  return std::make_shared<LogSink>();
}

void print_json_error(std::string_view kind, std::string_view message, int exit_code) {
  const json::object error{{"kind", kind}, {"message", message}, {"exitCode", exit_code}};
  write_out(pretty_json(json::object{{"error", error}}) + "\n");
}

void print_error(std::string_view message) {
  write_err(fmt::format("{} {}\n", Style(stderr).red("error:"), message));
}

void print_warning(std::string_view message) {
  write_err(fmt::format("{} {}\n", Style(stderr).yellow("warning:"), message));
}

std::size_t terminal_columns(int fd) {
  winsize size{};
  if (::ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  if (const char* columns = std::getenv("COLUMNS")) {
    std::size_t parsed = 0;
    const std::string_view text(columns);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), parsed);
    if (ec == std::errc() && end == text.data() + text.size() && parsed > 0) return parsed;
  }
  return 80;
}

Style::Style(std::FILE* stream) {
  terminal_ = ::isatty(::fileno(stream)) != 0;
  const char* no_color = std::getenv("NO_COLOR");
  color_ = terminal_ && (no_color == nullptr || *no_color == '\0');
}

std::string Style::wrap(std::string_view code, std::string_view text) const {
  if (!color_) return std::string(text);
  return fmt::format("\033[{}m{}\033[0m", code, text);
}

namespace {

void pretty(const json::value& value, std::string& out, int depth) {
  const std::string indent(static_cast<std::size_t>(depth + 1) * 2, ' ');
  const std::string closing(static_cast<std::size_t>(depth) * 2, ' ');
  if (const auto* object = value.if_object(); object && !object->empty()) {
    out += "{\n";
    bool first = true;
    for (const auto& [key, item] : *object) {
      out += first ? "" : ",\n";
      first = false;
      out += indent + json::serialize(json::string(key)) + ": ";
      pretty(item, out, depth + 1);
    }
    out += "\n" + closing + "}";
  } else if (const auto* array = value.if_array(); array && !array->empty()) {
    out += "[\n";
    for (std::size_t i = 0; i < array->size(); ++i) {
      out += (i == 0 ? "" : ",\n") + indent;
      pretty((*array)[i], out, depth + 1);
    }
    out += "\n" + closing + "]";
  } else {
    out += json::serialize(value);
  }
}

}  // namespace

std::string pretty_json(const json::value& value) {
  std::string out;
  pretty(value, out, 0);
  return out;
}

void print_json(const json::value& value) {
  write_out(pretty_json(value) + "\n");
}

std::string text_of(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value && value->is_string() ? std::string(value->get_string()) : std::string();
}

void Table::add(std::vector<std::string> shown, std::vector<std::string> plain) {
  rows_.emplace_back(std::move(shown), std::move(plain));
}

std::string Table::render(const Style& style) const {
  std::vector<std::size_t> widths;
  for (const auto& cell : header_) widths.push_back(cell.size());
  for (const auto& [shown, plain] : rows_)
    for (std::size_t i = 0; i < plain.size() && i < widths.size(); ++i)
      widths[i] = std::max(widths[i], plain[i].size());
  auto line = [&](const std::vector<std::string>& shown, const std::vector<std::string>& plain) {
    std::string out;
    for (std::size_t i = 0; i < shown.size(); ++i) {
      out += shown[i];
      if (i + 1 < shown.size()) out += std::string(widths[i] - plain[i].size() + 2, ' ');
    }
    return out + "\n";
  };
  std::vector<std::string> header;
  for (const auto& cell : header_) header.push_back(style.bold(cell));
  std::string out = line(header, header_);
  for (std::size_t row = 0; row < rows_.size(); ++row) {
    out += line(rows_[row].first, rows_[row].second);
    if (auto notes = notes_.find(row); notes != notes_.end())
      for (const auto& note : notes->second) {
        std::string indented = "  ";
        for (char c : note) indented += c == '\n' ? std::string("\n    ") : std::string(1, c);
        out += indented + "\n";
      }
  }
  return out;
}

StartupView::StartupView(bool report_failures)
    : style_(stderr), report_failures_(report_failures) {}

void StartupView::update(const host::ServerStatus& status) {
  if (finished_) return;
  if (latest_.find(status.server) == latest_.end()) order_.push_back(status.server);
  latest_[status.server] = status;
  if (style_.terminal()) {
    redraw();
    return;
  }
  // Plain lines for logs and pipes; the error comes once, when startup is over.
  write_err(fmt::format("mcp: {} {}\n", status.server, host::to_string(status.state)));
}

void StartupView::redraw() {
  std::size_t ready = 0;
  std::size_t failed = 0;
  std::vector<std::string> waiting;
  for (const auto& name : order_) {
    const auto state = latest_[name].state;
    if (state == host::ServerState::ready) ++ready;
    if (state == host::ServerState::failed) ++failed;
    if (state == host::ServerState::starting) waiting.push_back(name);
  }
  // Shown text and its styling, cut to the width: a line that wraps cannot be rewritten in
  // place. The last column stays free (some terminals wrap as soon as it is written).
  const std::string plain = fmt::format("starting MCP servers: {}/{} ready", ready, order_.size());
  const std::string failures = failed > 0 ? fmt::format(", {} failed", failed) : "";
  const std::string waits =
      waiting.empty() ? "" : fmt::format(" (waiting for {})", fmt::join(waiting, ", "));
  std::size_t room = terminal_columns(STDERR_FILENO) - 1;
  auto cut = [&room](const std::string& text) {
    auto shown = text.substr(0, room);
    room -= shown.size();
    return shown;
  };
  std::string line = cut(plain);
  if (const auto shown = cut(failures); !shown.empty()) line += style_.red(shown);
  if (const auto shown = cut(waits); !shown.empty()) line += style_.dim(shown);
  draw_live_line(line);
}

void StartupView::finish() {
  if (finished_) return;
  finished_ = true;
  clear_live_line();
  if (!report_failures_) return;
  for (const auto& name : order_) {
    const auto& status = latest_[name];
    if (status.state == host::ServerState::failed) print_error(status.error);
  }
}

namespace {

// The first line of a description, bounded for a table.
std::string summary_of(const json::object& object) {
  auto text = text_of(object, "description");
  if (auto newline = text.find('\n'); newline != std::string::npos) text.resize(newline);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

// Content blocks (tool results, prompt messages, resource contents) as a person reads them.
std::string render_content(const json::value& item) {
  const auto* block = item.if_object();
  if (block == nullptr) return pretty_json(item);
  const auto type = text_of(*block, "type");
  if (type == "text" || block->contains("text")) return text_of(*block, "text");
  if (type == "image" || type == "audio")
    return fmt::format("[{} {}, {} bytes of base64]", type, text_of(*block, "mimeType"),
                       text_of(*block, "data").size());
  if (type == "resource_link") return fmt::format("[resource link {}]", text_of(*block, "uri"));
  if (const auto* resource = block->if_contains("resource"); resource && resource->is_object())
    return render_content(*resource);
  if (block->contains("blob"))
    return fmt::format("[blob {} {}, {} bytes of base64]", text_of(*block, "uri"),
                       text_of(*block, "mimeType"), text_of(*block, "blob").size());
  return pretty_json(item);
}

void print_blocks(const json::value* blocks) {
  if (blocks == nullptr || !blocks->is_array()) return;
  for (const auto& item : blocks->get_array()) {
    auto text = render_content(item);
    if (!text.ends_with('\n')) text += '\n';
    write_out(text);
  }
}

// The part of a session's description a table needs beside its placement: `pid 4242` of
// `local process 'node' (pid 4242)`, `mcp-stdio-1` of `executor process mcp-stdio-1`.
std::string process_label(const std::string& description) {
  if (auto pid = description.rfind("(pid "); pid != std::string::npos)
    return description.substr(pid + 1, description.size() - pid - 2);
  constexpr std::string_view kExecutor = "executor process ";
  if (description.starts_with(kExecutor)) return description.substr(kExecutor.size());
  return description;
}

}  // namespace

void print_servers(const std::vector<host::ServerInfo>& servers, bool as_json) {
  if (as_json) {
    json::array out;
    for (const auto& info : servers) out.push_back(host::to_json(info));
    print_json(json::object{{"servers", std::move(out)}});
    return;
  }
  Style style(stdout);
  Table table({"SERVER", "STATUS", "TOOLS", "MCP", "WHERE", "COMMAND"});
  for (const auto& info : servers) {
    const std::string state(host::to_string(info.state));
    const auto shown_state = info.state == host::ServerState::ready    ? style.green(state)
                             : info.state == host::ServerState::failed ? style.red(state)
                                                                       : style.dim(state);
    const std::string tools = info.tools ? std::to_string(*info.tools) : "-";
    const std::string protocol = info.protocol.empty() ? "-" : info.protocol;
    std::string where = info.placement_ok ? info.placement : "(no placement)";
    if (!info.process.empty()) where += " (" + process_label(info.process) + ")";
    table.add({info.name, shown_state, tools, protocol, where, info.target},
              {info.name, state, tools, protocol, where, info.target});
    if (!info.error.empty()) table.note(style.red("error: ") + info.error);
  }
  write_out(table.render(style));
}

void print_tools(const std::vector<host::OfferedTool>& tools, bool as_json) {
  if (as_json) {
    json::array out;
    for (const auto& tool : tools)
      out.push_back(
          json::object{{"name", tool.name}, {"server", tool.server}, {"tool", tool.tool}});
    print_json(json::object{{"tools", std::move(out)}});
    return;
  }
  Style style(stdout);
  // The qualified name a model sees, and the server's own (either works with `call`).
  Table table({"TOOL", "SERVER", "NAME", "DESCRIPTION"});
  for (const auto& tool : tools)
    table.add({tool.name, tool.server, text_of(tool.tool, "name"), summary_of(tool.tool)});
  write_out(table.render(style));
}

void print_tool_result(const json::object& result, bool as_json) {
  if (as_json) {
    print_json(result);
    return;
  }
  const auto* content = result.if_contains("content");
  const bool has_content = content && content->is_array() && !content->get_array().empty();
  if (has_content) print_blocks(content);
  if (const auto* structured = result.if_contains("structuredContent"); structured && !has_content)
    print_json(*structured);
}

void print_resources(json::array resources, json::array templates, bool as_json) {
  if (as_json) {
    print_json(json::object{{"resources", std::move(resources)},
                            {"resourceTemplates", std::move(templates)}});
    return;
  }
  Style style(stdout);
  Table table({"URI", "SERVER", "NAME", "MIME"});
  for (const auto& item : resources) {
    const auto& r = item.get_object();
    table.add(
        {text_of(r, "uri"), text_of(r, "server"), text_of(r, "name"), text_of(r, "mimeType")});
  }
  for (const auto& item : templates) {
    const auto& r = item.get_object();
    table.add({text_of(r, "uriTemplate"), text_of(r, "server"), text_of(r, "name") + " (template)",
               text_of(r, "mimeType")});
  }
  write_out(table.render(style));
}

void print_resource(const json::object& result, bool as_json) {
  if (as_json) {
    print_json(result);
    return;
  }
  print_blocks(result.if_contains("contents"));
}

void print_prompts(json::array prompts, bool as_json) {
  if (as_json) {
    print_json(json::object{{"prompts", std::move(prompts)}});
    return;
  }
  Style style(stdout);
  Table table({"PROMPT", "SERVER", "ARGUMENTS", "DESCRIPTION"});
  for (const auto& item : prompts) {
    const auto& p = item.get_object();
    std::vector<std::string> names;
    if (const auto* list = p.if_contains("arguments"); list && list->is_array())
      for (const auto& argument : list->get_array())
        if (argument.is_object()) {
          const auto* required = argument.get_object().if_contains("required");
          names.push_back(text_of(argument.get_object(), "name") +
                          (required && required->is_bool() && required->get_bool() ? "" : "?"));
        }
    table.add({text_of(p, "name"), text_of(p, "server"), fmt::format("{}", fmt::join(names, " ")),
               summary_of(p)});
  }
  write_out(table.render(style));
}

void print_prompt(const json::object& result, bool as_json) {
  if (as_json) {
    print_json(result);
    return;
  }
  Style style(stdout);
  if (const auto* messages = result.if_contains("messages"); messages && messages->is_array()) {
    for (const auto& message : messages->get_array()) {
      if (!message.is_object()) continue;
      const auto& m = message.get_object();
      write_out(style.bold(text_of(m, "role") + ":") + "\n");
      if (const auto* content = m.if_contains("content"))
        write_out(render_content(*content) + "\n");
    }
  }
}

void print_config_edit(ConfigEdit edit, const std::string& server, const std::string& path,
                       bool as_json) {
  const bool added = edit == ConfigEdit::added;
  if (as_json) {
    print_json(json::object{{added ? "added" : "removed", server}, {"config", path}});
    return;
  }
  write_out(fmt::format("{} MCP server '{}' {} {}\n", added ? "Added" : "Removed", server,
                        added ? "to" : "from", path));
}

}  // namespace tether::cli
