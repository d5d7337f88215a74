// Styling, tables, JSON and the startup view of `tether mcp` (see output.hpp).
#include "output.hpp"

#include <algorithm>
#include <cstdlib>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <fmt/format.h>

namespace tether::cli {
namespace json = boost::json;

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
  fmt::print(stderr, "mcp: {} {}\n", status.server, host::to_string(status.state));
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
  std::string line = fmt::format("starting MCP servers: {}/{} ready", ready, order_.size());
  if (failed > 0) line += ", " + style_.red(fmt::format("{} failed", failed));
  if (!waiting.empty())
    line += style_.dim(fmt::format(" (waiting for {})", fmt::join(waiting, ", ")));
  fmt::print(stderr, "\r\033[K{}", line);
  std::fflush(stderr);
  drawn_ = true;
}

void StartupView::finish() {
  if (finished_) return;
  finished_ = true;
  if (drawn_) fmt::print(stderr, "\r\033[K");
  drawn_ = false;
  if (!report_failures_) return;
  for (const auto& name : order_) {
    const auto& status = latest_[name];
    if (status.state == host::ServerState::failed)
      fmt::print(stderr, "{} {}\n", style_.red("error:"), status.error);
  }
  std::fflush(stderr);
}

}  // namespace tether::cli
