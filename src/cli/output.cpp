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
#include <boost/json/value_from.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/base_sink.h>

#include <tether/host/describe.hpp>

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
    // Empty cells at the end leave no trailing spaces.
    std::size_t cells = plain.size();
    while (cells > 1 && plain[cells - 1].empty()) --cells;
    std::string out;
    for (std::size_t i = 0; i < cells; ++i) {
      out += shown[i];
      if (i + 1 < cells) out += std::string(widths[i] - plain[i].size() + 2, ' ');
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
    // A placement that does not resolve still names where the config asked for.
    std::string where =
        info.placement_ok ? info.placement : info.environment_setting + " (unavailable)";
    if (!info.process.empty()) where += " (" + process_label(info.process) + ")";
    table.add({info.name, shown_state, tools, protocol, where, info.target},
              {info.name, state, tools, protocol, where, info.target});
    if (!info.error.empty()) table.note(style.red("error: ") + info.error);
  }
  write_out(table.render(style));
}

namespace {

// A property's type as a person reads it: `integer`, `string | null`, `array of string`,
// `string, one of: a, b`; `any` when its schema says nothing.
std::string type_text(const json::object& property) {
  std::vector<std::string> types;
  const auto add = [&types](const json::value* type) {
    if (type && type->is_string()) types.emplace_back(type->get_string());
    if (type && type->is_array())
      for (const auto& item : type->get_array())
        if (item.is_string()) types.emplace_back(item.get_string());
  };
  add(property.if_contains("type"));
  for (std::string_view key : {"anyOf", "oneOf"})
    if (const auto* members = property.if_contains(key); members && members->is_array())
      for (const auto& member : members->get_array())
        if (member.is_object()) add(member.get_object().if_contains("type"));
  for (auto& type : types)
    if (const auto* items = property.if_contains("items");
        type == "array" && items && items->is_object() && items->get_object().contains("type"))
      type = "array of " + type_text(items->get_object());
  std::string out = types.empty() ? std::string("any") : fmt::format("{}", fmt::join(types, " | "));
  if (const auto* choices = property.if_contains("enum"); choices && choices->is_array()) {
    std::vector<std::string> shown;
    for (const auto& choice : choices->get_array())
      shown.push_back(choice.is_string() ? std::string(choice.get_string())
                                         : json::serialize(choice));
    out += fmt::format(", one of: {}", fmt::join(shown, ", "));
  }
  return out;
}

// One tool in full: its names, description and arguments (from its inputSchema).
std::string tool_details(const host::OfferedTool& offered, const Style& style) {
  const auto& tool = offered.tool;
  std::string out = fmt::format("{}  ({} tool '{}')\n", style.bold(offered.name), offered.server,
                                text_of(tool, "name"));
  const auto indent = [](std::string_view text, std::string_view by) {
    std::string lines;
    std::size_t start = 0;
    while (start < text.size()) {
      auto end = text.find('\n', start);
      if (end == std::string_view::npos) end = text.size();
      lines += fmt::format("{}{}\n", end > start ? by : "", text.substr(start, end - start));
      start = end + 1;
    }
    return lines;
  };
  if (auto description = text_of(tool, "description"); !description.empty())
    out += indent(description, "  ");
  const json::object* properties = nullptr;
  std::vector<std::string> required;
  if (const auto* schema = tool.if_contains("inputSchema"); schema && schema->is_object()) {
    if (const auto* found = schema->get_object().if_contains("properties");
        found && found->is_object())
      properties = &found->get_object();
    if (const auto* found = schema->get_object().if_contains("required");
        found && found->is_array())
      for (const auto& name : found->get_array())
        if (name.is_string()) required.emplace_back(name.get_string());
  }
  if (properties == nullptr || properties->empty()) return out + "  arguments: none\n";
  Table table({"ARGUMENT", "TYPE", "REQUIRED", "DESCRIPTION"});
  for (const auto& [name, value] : *properties) {
    const auto* property = value.if_object();
    const json::object empty;
    const auto& schema = property ? *property : empty;
    std::string description = text_of(schema, "description");
    if (const auto* fallback = schema.if_contains("default"))
      description += fmt::format("{}(default: {})", description.empty() ? "" : " ",
                                 json::serialize(*fallback));
    const bool needed = std::find(required.begin(), required.end(), name) != required.end();
    table.add({std::string(name), type_text(schema), needed ? "yes" : "", description});
  }
  return out + "\n" + indent(table.render(style), "  ");
}

}  // namespace

void print_tools(const std::vector<host::OfferedTool>& tools, bool as_json, bool details,
                 const std::vector<host::ServerInfo>& failed) {
  if (as_json) {
    json::array out;
    for (const auto& tool : tools)
      out.push_back(
          json::object{{"name", tool.name}, {"server", tool.server}, {"tool", tool.tool}});
    json::object answer{{"tools", std::move(out)}};
    if (!failed.empty()) {
      json::array servers;
      for (const auto& info : failed)
        servers.push_back(json::object{{"server", info.name}, {"error", info.error}});
      answer["failed"] = std::move(servers);
    }
    print_json(answer);
    return;
  }
  Style style(stdout);
  if (details) {
    std::string text;
    for (const auto& tool : tools) text += (text.empty() ? "" : "\n") + tool_details(tool, style);
    write_out(text);
    return;
  }
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

namespace {

constexpr std::string_view kMasked = "*****";

double seconds_of(std::chrono::milliseconds duration) {
  return static_cast<double>(duration.count()) / 1000;
}

// Whole seconds as an integer (30, not 3E1).
json::value seconds_json(std::chrono::milliseconds duration) {
  if (duration.count() % 1000 == 0) return duration.count() / 1000;
  return seconds_of(duration);
}

json::value strings_json(const std::vector<std::string>& strings) {
  return json::value_from(strings);
}

// The transport as `get --json` shows it (codex's shape): values of env and headers masked.
json::object transport_json(const host::ServerConfig& server) {
  json::object out;
  if (const auto* stdio = std::get_if<mcp::StdioCommand>(&server.transport)) {
    json::object env;
    for (const auto& [key, value] : stdio->env) env[key] = kMasked;
    out = {{"type", "stdio"},
           {"command", stdio->program},
           {"args", strings_json(stdio->args)},
           {"env", std::move(env)},
           {"env_vars", strings_json(stdio->env_vars)},
           {"cwd", stdio->cwd ? json::value(*stdio->cwd) : json::value(nullptr)}};
    return out;
  }
  const auto& http = std::get<host::HttpServerSettings>(server.transport);
  json::object headers;
  for (const auto& [key, value] : http.http_headers) headers[key] = kMasked;
  json::object env_headers;
  for (const auto& [key, variable] : http.env_http_headers) env_headers[key] = variable;
  out = {
      {"type", "streamable_http"},
      {"url", http.url},
      {"bearer_token_env_var",
       http.bearer_token_env_var ? json::value(*http.bearer_token_env_var) : json::value(nullptr)},
      {"http_headers", std::move(headers)},
      {"env_http_headers", std::move(env_headers)}};
  return out;
}

// `K=*****, L=*****` (masked) or `K=VAR` (variable names); `-` for none.
std::string pairs_text(const std::map<std::string, std::string>& pairs, bool mask) {
  std::vector<std::string> shown;
  shown.reserve(pairs.size());
  for (const auto& [key, value] : pairs)
    shown.push_back(fmt::format("{}={}", key, mask ? kMasked : std::string_view(value)));
  return shown.empty() ? "-" : fmt::format("{}", fmt::join(shown, ", "));
}

std::string list_text(const std::vector<std::string>& items) {
  return items.empty() ? "-" : fmt::format("{}", fmt::join(items, ", "));
}

}  // namespace

void print_server_config(const host::ServerConfig& server, const host::ServerInfo& info,
                         bool as_json) {
  if (as_json) {
    json::object out{
        {"name", server.name},
        {"enabled", server.enabled},
        {"required", server.required},
        {"transport", transport_json(server)},
        {"environment", server.environment},
        {"placement", info.placement_ok ? json::value(info.placement) : json::value(nullptr)},
        {"placement_error", info.placement_ok ? json::value(nullptr) : json::value(info.placement)},
        {"enabled_tools",
         server.enabled_tools ? strings_json(*server.enabled_tools) : json::value(nullptr)},
        {"disabled_tools", strings_json(server.disabled_tools)},
        {"startup_timeout_sec", seconds_json(server.startup_timeout)},
        {"tool_timeout_sec", seconds_json(server.tool_timeout)},
        {"file", server.location.file},
        {"line", server.location.line}};
    print_json(out);
    return;
  }
  Style style(stdout);
  std::vector<std::pair<std::string_view, std::string>> rows;
  rows.emplace_back("enabled", server.enabled ? "true" : "false");
  rows.emplace_back("required", server.required ? "true" : "false");
  if (const auto* stdio = std::get_if<mcp::StdioCommand>(&server.transport)) {
    rows.emplace_back("transport", "stdio");
    rows.emplace_back("command", host::command_line({stdio->program}));
    rows.emplace_back("args", stdio->args.empty() ? "-" : host::command_line(stdio->args));
    rows.emplace_back("cwd", stdio->cwd.value_or("-"));
    rows.emplace_back("env", pairs_text(stdio->env, true));
    rows.emplace_back("env_vars", list_text(stdio->env_vars));
  } else {
    const auto& http = std::get<host::HttpServerSettings>(server.transport);
    rows.emplace_back("transport", "streamable_http");
    rows.emplace_back("url", http.url);
    rows.emplace_back("bearer_token_env_var", http.bearer_token_env_var.value_or("-"));
    rows.emplace_back("http_headers", pairs_text(http.http_headers, true));
    rows.emplace_back("env_http_headers", pairs_text(http.env_http_headers, false));
  }
  rows.emplace_back("environment",
                    server.environment == info.placement || !info.placement_ok
                        ? server.environment
                        : fmt::format("{} ({})", server.environment, info.placement));
  if (!info.placement_ok) rows.emplace_back("placement", style.red(info.placement));
  rows.emplace_back("startup_timeout_sec", fmt::format("{:g}", seconds_of(server.startup_timeout)));
  rows.emplace_back("tool_timeout_sec", fmt::format("{:g}", seconds_of(server.tool_timeout)));
  rows.emplace_back("enabled_tools",
                    server.enabled_tools ? list_text(*server.enabled_tools) : std::string("-"));
  rows.emplace_back("disabled_tools", list_text(server.disabled_tools));
  rows.emplace_back("config", server.location.line > 0
                                  ? fmt::format("{}:{}", server.location.file, server.location.line)
                                  : server.location.file);
  rows.emplace_back("remove", fmt::format("tether mcp remove {}", server.name));
  std::string text = style.bold(server.name) + "\n";
  for (const auto& [key, value] : rows) text += fmt::format("  {}: {}\n", key, value);
  write_out(text);
}

void print_config_edit(ConfigEdit edit, const std::string& name, const std::string& path,
                       bool as_json) {
  const bool added = edit == ConfigEdit::added || edit == ConfigEdit::environment_added;
  const bool server = edit == ConfigEdit::added || edit == ConfigEdit::removed;
  if (as_json) {
    print_json(json::object{{added ? "added" : "removed", name},
                            {"kind", server ? "server" : "environment"},
                            {"config", path}});
    return;
  }
  write_out(fmt::format("{} {} '{}' {} {}\n", added ? "Added" : "Removed",
                        server ? "MCP server" : "environment", name, added ? "to" : "from", path));
}

void print_environments(const host::Config& config, const host::RemoteEnvironment& remote,
                        bool as_json) {
  const auto where = [](const host::EnvironmentConfig& environment) {
    // describe_environment's text after its `<id>: `.
    return host::describe_environment(environment).substr(environment.id.size() + 2);
  };
  const auto defined_at = [](const host::SourceLocation& at) {
    return at.line > 0 ? fmt::format("{}:{}", at.file, at.line) : at.file;
  };
  if (as_json) {
    json::array out;
    for (const auto& environment : config.environments)
      out.push_back(json::object{{"id", environment.id},
                                 {"where", where(environment)},
                                 {"default", config.default_environment == environment.id},
                                 {"file", environment.location.file},
                                 {"line", environment.location.line}});
    json::object remote_json{
        {"environment",
         remote.environment ? json::value(remote.environment->id) : json::value(nullptr)},
        {"source", remote.source}};
    print_json(json::object{
        {"environments", std::move(out)},
        {"default", config.default_environment ? json::value(*config.default_environment)
                                               : json::value(nullptr)},
        {"remote", std::move(remote_json)}});
    return;
  }
  Style style(stdout);
  Table table({"ENVIRONMENT", "WHERE", "DEFINED IN", "DEFAULT"});
  for (const auto& environment : config.environments)
    table.add({environment.id, where(environment), defined_at(environment.location),
               config.default_environment == environment.id ? "yes" : ""});
  std::string text = config.environments.empty() ? std::string() : table.render(style);
  text +=
      fmt::format("remote servers go to: {}\n",
                  remote.environment ? fmt::format("{} ({})", remote.environment->id, remote.source)
                                     : fmt::format("none ({})", remote.source));
  if (config.environments.empty())
    text +=
        "no environments configured; add one with `tether mcp environments add ID --url "
        "URL` (or --spawn, or -- COMMAND ARGS...)\n";
  write_out(text);
}

}  // namespace tether::cli
