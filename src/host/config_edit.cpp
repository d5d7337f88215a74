// tether::host config editing — adding and removing MCP servers in config.toml's text, and
// replacing the file safely.
//
// Owns: TOML basic-string output, finding a server's lines from toml++ source positions, and the
// temp-file + rename write with the parse_config check before it.
// Does not own: validation (parse_config decides whether a result is a config) or the model.
// Data flows: text -> toml::parse -> LineMap (which lines are headers, values, the server's) ->
// line ranges -> text with those lines dropped; file -> edit -> parse_config -> temp -> rename.
// Removal works on whole lines: outside an inline table one line never holds two settings, so a
// line range is exactly a set of settings, and every other byte (comments included) is kept.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>

#include <tether/host/config_edit.hpp>
#include <tether/jsonrpc/error.hpp>

namespace tether::host {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

// Server names (as config.cpp checks them) and bare TOML keys are both [A-Za-z0-9_-]+.
bool bare_key(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

std::string key_text(std::string_view key) {
  return bare_key(key) ? std::string{key} : toml_basic_string(key);
}

// The parsed document, or the error parse_config gives for the text, so a syntax error reads the
// same (`<file>:<line>:<column>: ...`) whichever entry point meets it.
Expected<toml::table> parse_toml(std::string_view text, const std::string& file) {
  try {
    return toml::parse(text, file);
  } catch (const toml::parse_error& error) {
    auto config = parse_config({text, file});
    if (!config) return config.error();
    return jsonrpc::make_error(jsonrpc::code::kInvalidParams,
                               fmt::format("{}: {}", file, error.description()));
  }
}

// The text's lines, each with its '\n' (the last one may have none); index 0 is line 1.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    auto end = text.find('\n');
    auto size = end == std::string_view::npos ? text.size() : end + 1;
    lines.push_back(text.substr(0, size));
    text.remove_prefix(size);
  }
  return lines;
}

bool blank(std::string_view line) {
  return line.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// What each line of the document is, from toml++ source positions (1-based lines), and which
// lines belong to the server being removed.
class LineMap {
 public:
  LineMap(const std::vector<std::string_view>& lines, const toml::node* server)
      : lines_(lines),
        server_(server),
        header_owner_(lines.size() + 2, Owner::none),
        content_(lines.size() + 2, false),
        other_(lines.size() + 2, false) {}

  void walk(const toml::table& table, bool mine) {
    for (const auto& [key, value] : table) walk_entry(key, value, mine || &value == server_);
  }

  // The server's lines, or nullopt when some of them also hold other settings.
  std::optional<std::vector<bool>> server_lines() const {
    std::vector<bool> remove(lines_.size() + 2, false);
    std::vector<std::size_t> headers;
    for (std::size_t line = 1; line <= lines_.size(); ++line)
      if (header_owner_[line] != Owner::none) headers.push_back(line);
    for (std::size_t i = 0; i < headers.size(); ++i) {
      if (header_owner_[headers[i]] != Owner::server) continue;
      // A header's table runs to the last value before the next header; comments and blank
      // lines after that value describe the next table, so they stay.
      auto next = i + 1 < headers.size() ? headers[i + 1] : lines_.size() + 1;
      auto last = headers[i];
      for (auto line = headers[i]; line < next; ++line)
        if (content_[line]) last = line;
      for (auto line = headers[i]; line <= last; ++line) remove[line] = true;
    }
    for (const auto& [first, last] : server_values_)
      for (auto line = first; line <= last; ++line) remove[line] = true;
    bool any = false;
    for (std::size_t line = 1; line <= lines_.size(); ++line) {
      if (remove[line] && (other_[line] || header_owner_[line] == Owner::other))
        return std::nullopt;
      any = any || remove[line];
    }
    if (!any) return std::nullopt;
    return remove;
  }

 private:
  enum class Owner : std::uint8_t { none, other, server };

  void walk_entry(const toml::key& key, const toml::node& value, bool mine) {
    if (const auto* table = value.as_table(); table != nullptr && !table->is_inline()) {
      note_table(*table, mine);
      walk(*table, mine);
      return;
    }
    if (const auto* array = value.as_array(); array != nullptr && table_array(*array)) {
      for (const auto& element : *array) {
        note_table(*element.as_table(), mine);
        walk(*element.as_table(), mine);
      }
      return;
    }
    // A key/value: from its key to the end of its value (toml++ gets value ends right, unlike
    // the ends of header tables, which are not used here).
    auto first = std::min(key.source().begin.line, value.source().begin.line);
    auto last = std::max(first, value.source().end.line);
    last = std::min<std::size_t>(last, lines_.size());
    for (std::size_t line = first; line <= last; ++line) {
      content_[line] = true;
      if (!mine) other_[line] = true;
    }
    if (mine) server_values_.emplace_back(first, last);
    // A server inside an inline `mcp_servers = { ... }` shares its line with that key/value.
    if (const auto* table = value.as_table()) walk(*table, mine);
  }

  // `[[a]]` tables, as opposed to a value `a = [{ ... }]`.
  static bool table_array(const toml::array& array) {
    return !array.empty() && std::all_of(array.begin(), array.end(), [](const toml::node& node) {
      return node.is_table() && !node.as_table()->is_inline();
    });
  }

  // A table defined by a header (`[a.b]` / `[[a.b]]`) starts on that header's line. Tables made
  // implicitly by a header (`a` for `[a.b]`) start there too and are visited before the table
  // the header defines, which then takes the line; tables made by dotted keys start on a key.
  void note_table(const toml::table& table, bool mine) {
    auto line = table.source().begin.line;
    if (line == 0 || line > lines_.size()) return;
    auto text = lines_[line - 1];
    if (line == 1 && text.starts_with(kBom)) text.remove_prefix(kBom.size());
    auto start = text.find_first_not_of(" \t");
    if (start == std::string_view::npos || text[start] != '[') return;
    header_owner_[line] = mine ? Owner::server : Owner::other;
    content_[line] = true;
  }

  const std::vector<std::string_view>& lines_;
  const toml::node* server_;
  std::vector<Owner> header_owner_;
  std::vector<bool> content_;  // a header or part of a key/value
  std::vector<bool> other_;    // part of a key/value that is not the server's
  std::vector<std::pair<std::size_t, std::size_t>> server_values_;
};

// `text` with `[<header>]` and the `body` lines appended, after a blank line unless the text is
// empty or already ends with one, in the file's own line endings.
std::string append_table(std::string_view text, std::string_view header,
                         const std::vector<std::string>& body) {
  auto newline_at = text.find('\n');
  std::string_view eol =
      newline_at != std::string_view::npos && newline_at > 0 && text[newline_at - 1] == '\r'
          ? "\r\n"
          : "\n";
  std::string out{text};
  if (!out.empty() && out.back() != '\n') out += eol;
  auto lines = split_lines(out);
  if (!lines.empty() && !blank(lines.back())) out += eol;
  out += fmt::format("[{}]{}", header, eol);
  for (const auto& line : body) out += fmt::format("{}{}", line, eol);
  return out;
}

// `text` with `[<table>.<name>]` and its `body` appended (a server or an environment; `noun`
// names it in messages), unless `<table>` already has it or cannot take a header.
Expected<std::string> add_entry(std::string_view text, const std::string& file,
                                std::string_view table, const std::string& name,
                                std::string_view noun, const std::vector<std::string>& body) {
  auto root = parse_toml(text, file);
  if (!root) return root.error();
  if (const auto* node = root->get(table)) {
    const auto* entries = node->as_table();
    if (entries != nullptr && entries->contains(name))
      return jsonrpc::make_error(jsonrpc::code::kInvalidParams,
                                 fmt::format("{} '{}' already exists in {}", noun, name, file));
    // A closed inline table (or a non-table) cannot take a `[<table>.<name>]` header.
    if (entries == nullptr || entries->is_inline())
      return jsonrpc::make_error(
          jsonrpc::code::kInvalidParams,
          fmt::format("cannot add {} '{}' to {}: {} is not a table [{}.{}] can extend", noun, name,
                      file, table, table, name));
  }
  return append_table(text, fmt::format("{}.{}", table, key_text(name)), body);
}

std::string read_error(const std::string& path) {
  return fmt::format("{}: {}", path, std::strerror(errno));
}

}  // namespace

std::string toml_basic_string(std::string_view value) {
  std::string out = "\"";
  for (char c : value) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default: {
        auto byte = static_cast<unsigned char>(c);
        // TOML forbids raw control characters in basic strings; UTF-8 bytes pass as they are.
        if (byte < 0x20 || byte == 0x7f) {
          out += fmt::format("\\u{:04X}", byte);
        } else {
          out += c;
        }
      }
    }
  }
  out += '"';
  return out;
}

Expected<std::string> add_server_table(std::string_view text, const std::string& file,
                                       std::string_view name,
                                       const std::vector<std::string>& body) {
  if (!bare_key(name))
    return jsonrpc::make_error(
        jsonrpc::code::kInvalidParams,
        fmt::format("Invalid MCP server name '{}': must match pattern ^[a-zA-Z0-9_-]+$", name));
  return add_entry(text, file, "mcp_servers", std::string(name), "MCP server", body);
}

std::string toml_string_array(const std::vector<std::string>& items) {
  std::vector<std::string> quoted;
  quoted.reserve(items.size());
  for (const auto& item : items) quoted.push_back(toml_basic_string(item));
  return fmt::format("[{}]", fmt::join(quoted, ", "));
}

std::string toml_string_table(const std::map<std::string, std::string>& entries) {
  std::vector<std::string> pairs;
  pairs.reserve(entries.size());
  for (const auto& [key, value] : entries)
    pairs.push_back(key_text(key) + " = " + toml_basic_string(value));
  return fmt::format("{{ {} }}", fmt::join(pairs, ", "));
}

Expected<std::string> add_server(std::string_view text, const std::string& file,
                                 const NewServer& server) {
  std::vector<std::string> body;
  if (!server.url.empty()) {
    body.push_back("url = " + toml_basic_string(server.url));
    if (server.bearer_token_env_var)
      body.push_back("bearer_token_env_var = " + toml_basic_string(*server.bearer_token_env_var));
    if (!server.http_headers.empty())
      body.push_back("http_headers = " + toml_string_table(server.http_headers));
  } else {
    body.push_back("command = " + toml_basic_string(server.command));
    if (!server.args.empty()) body.push_back("args = " + toml_string_array(server.args));
    if (!server.env.empty()) body.push_back("env = " + toml_string_table(server.env));
  }
  if (server.environment) body.push_back("environment = " + toml_basic_string(*server.environment));
  return add_server_table(text, file, server.name, body);
}

namespace {

// `text` without `<table>.<name>` (a server or an environment; `noun` names it in messages),
// however it was written, as whole lines (see remove_server).
Expected<std::string> remove_entry(std::string_view text, const std::string& file,
                                   std::string_view table, std::string_view name,
                                   std::string_view noun) {
  auto root = parse_toml(text, file);
  if (!root) return root.error();
  const toml::node* server = nullptr;
  if (const auto* entries = root->get_as<toml::table>(table)) server = entries->get(name);
  if (server == nullptr)
    return jsonrpc::make_error(jsonrpc::code::kInvalidParams,
                               fmt::format("no {} '{}' in {}", noun, name, file));

  auto lines = split_lines(text);
  LineMap map(lines, server);
  map.walk(*root, false);
  auto remove = map.server_lines();
  if (!remove)
    return jsonrpc::make_error(
        jsonrpc::code::kInvalidParams,
        fmt::format("cannot remove {} '{}' from {}: it shares lines with other settings", noun,
                    name, file));

  // Removing a table that sat between blank lines (or ended the file) would leave two blank
  // lines (or a trailing one): drop the blank lines before it, never those after it.
  auto& drop = *remove;
  auto n = lines.size();
  for (std::size_t line = 1; line <= n; ++line) {
    if (!drop[line] || (line > 1 && drop[line - 1])) continue;
    auto end = line;
    while (end + 1 <= n && drop[end + 1]) ++end;
    if (end == n || blank(lines[end]))
      for (auto before = line - 1; before >= 1 && !drop[before] && blank(lines[before - 1]);
           --before)
        drop[before] = true;
    line = end;
  }
  // Nor start the file with blank lines it did not start with.
  if (n > 0 && drop[1])
    for (std::size_t line = 2; line <= n && (drop[line] || blank(lines[line - 1])); ++line)
      drop[line] = true;

  std::string out;
  // The byte order mark is not part of line 1's settings: it stays even when line 1 goes.
  if (text.starts_with(kBom) && !lines.empty() && drop[1]) out += kBom;
  for (std::size_t line = 1; line <= n; ++line)
    if (!drop[line]) out += lines[line - 1];
  return out;
}

}  // namespace

Expected<std::string> remove_server(std::string_view text, const std::string& file,
                                    std::string_view name) {
  return remove_entry(text, file, "mcp_servers", name, "MCP server");
}

Expected<std::string> add_environment(std::string_view text, const std::string& file,
                                      const EnvironmentConfig& environment) {
  std::vector<std::string> body;
  if (const auto* url = std::get_if<EnvironmentConfig::Url>(&environment.how)) {
    body.push_back("url = " + toml_basic_string(url->url));
    if (url->token_env_var)
      body.push_back("token_env_var = " + toml_basic_string(*url->token_env_var));
    if (url->token_file) body.push_back("token_file = " + toml_basic_string(*url->token_file));
  } else if (std::holds_alternative<EnvironmentConfig::Spawn>(environment.how)) {
    body.emplace_back("spawn = true");
  } else {
    body.push_back("command = " +
                   toml_string_array(std::get<EnvironmentConfig::Command>(environment.how).argv));
  }
  return add_entry(text, file, "environments", environment.id, "environment", body);
}

Expected<std::string> remove_environment(std::string_view text, const std::string& file,
                                         std::string_view id) {
  auto config = parse_config({text, file});
  if (!config) return config.error();
  std::vector<std::string> users;
  for (const auto& server : config->servers)
    if (server.environment == id) users.push_back(fmt::format("'{}'", server.name));
  if (!users.empty())
    return jsonrpc::make_error(
        jsonrpc::code::kInvalidParams,
        fmt::format("cannot remove environment '{}' from {}: MCP server{} {} run{} there; remove "
                    "{} or change {} environment first",
                    id, file, users.size() > 1 ? "s" : "", fmt::join(users, ", "),
                    users.size() > 1 ? "" : "s", users.size() > 1 ? "them" : "it",
                    users.size() > 1 ? "their" : "its"));
  return remove_entry(text, file, "environments", id, "environment");
}

Expected<void> edit_config_file(const std::string& path,
                                const std::function<Expected<std::string>(std::string_view)>& edit,
                                const std::string& environments_path, bool dry_run) {
  namespace fs = std::filesystem;
  std::error_code error;
  // Replace a symlink's target, not the link (dotfile managers link config files).
  fs::path target = path;
  if (fs::is_symlink(target, error)) {
    target = fs::weakly_canonical(target, error);
    if (error)
      return jsonrpc::make_error(jsonrpc::code::kInvalidParams,
                                 fmt::format("{}: {}", path, error.message()));
  }

  std::string text;
  mode_t mode = 0600;
  struct stat info {};
  if (::stat(target.c_str(), &info) == 0) {
    if (!S_ISREG(info.st_mode))
      return jsonrpc::make_error(jsonrpc::code::kInvalidParams,
                                 fmt::format("{}: not a regular file", path));
    mode = info.st_mode & 07777;
    std::ifstream in(target, std::ios::binary);
    if (!in) return jsonrpc::make_error(jsonrpc::code::kInvalidParams, read_error(path));
    std::ostringstream content;
    content << in.rdbuf();
    if (in.bad()) return jsonrpc::make_error(jsonrpc::code::kInvalidParams, read_error(path));
    text = std::move(content).str();
  } else if (errno != ENOENT) {
    return jsonrpc::make_error(jsonrpc::code::kInvalidParams, read_error(path));
  }

  std::optional<std::string> environments_text;
  if (!environments_path.empty()) {
    std::ifstream in(environments_path, std::ios::binary);
    if (in) {
      std::ostringstream content;
      content << in.rdbuf();
      environments_text = std::move(content).str();
    } else if (errno != ENOENT) {
      return jsonrpc::make_error(jsonrpc::code::kInvalidParams, read_error(environments_path));
    }
  }

  auto edited = edit(text);
  if (!edited) return edited.error();
  // Never leave a config tether itself would refuse to load.
  std::optional<ConfigText> environments;
  if (environments_text) environments = ConfigText{*environments_text, environments_path};
  if (auto config = parse_config({*edited, path}, environments); !config) return config.error();
  // Nothing changed (an import that found nothing new): no write, no new empty file.
  if (dry_run || *edited == text) return {};

  auto directory = target.parent_path();
  if (directory.empty()) directory = ".";
  fs::create_directories(directory, error);
  if (error)
    return jsonrpc::make_error(jsonrpc::code::kInvalidParams,
                               fmt::format("{}: {}", directory.string(), error.message()));
  // Same directory, so the rename is atomic: readers see the old file or the new one, whole.
  auto temp = (directory / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return jsonrpc::make_error(jsonrpc::code::kInvalidParams, read_error(temp));
  auto fail = [&](int code) {
    if (fd >= 0) ::close(fd);
    ::unlink(temp.c_str());
    return jsonrpc::make_error(jsonrpc::code::kInvalidParams,
                               fmt::format("{}: {}", temp, std::strerror(code)));
  };
  std::string_view rest = *edited;
  while (!rest.empty()) {
    auto written = ::write(fd, rest.data(), rest.size());
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) return fail(errno);
    rest.remove_prefix(static_cast<std::size_t>(written));
  }
  // fchmod is not masked by the umask, so a new file is exactly 0600.
  if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0) return fail(errno);
  int closed = ::close(fd);
  fd = -1;
  if (closed != 0) return fail(errno);
  if (::rename(temp.c_str(), target.c_str()) != 0) return fail(errno);
  // Best effort: make the rename itself durable.
  if (int dir = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return {};
}

}  // namespace tether::host
