// tether::host JSON host configs — the JSON reader and `${...}` references (see json_config.hpp).
//
// Owns: turning Boost.JSON's parse events into toml++ nodes whose keys carry where they were
// written (line and column, 1-based, counting UTF-8 characters as toml++ does).
// Does not own: the meaning of any key (config.cpp).
// Data flows: text -> basic_parser<Builder> (positions) -> toml::table; a string ->
// variable_references.
#include "json_config.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <variant>

#include <boost/json/basic_parser_impl.hpp>
#include <fmt/format.h>

#include <tether/exec/client.hpp>
#include <tether/jsonrpc/json_text.hpp>

namespace tether::host {
namespace {

// Byte `at` of `text` as toml++ counts lines and columns.
toml::source_position source_position(std::string_view text, std::size_t at) {
  const auto where = jsonrpc::position_of(text, at);
  return {static_cast<toml::source_index>(where.line),
          static_cast<toml::source_index>(where.column)};
}

// Builds toml++ nodes from Boost.JSON's parse events. The parser is fed one byte at a time so
// that each event knows where in the text it happened (`at`): keys keep where they were written.
class Builder {
 public:
  // Boost.JSON's limits for one object, array, key or string: far beyond any config.
  static constexpr std::size_t max_object_size = 1u << 20;
  static constexpr std::size_t max_array_size = 1u << 20;
  static constexpr std::size_t max_key_size = 1u << 16;
  static constexpr std::size_t max_string_size = 1u << 24;

  // `plain`: the text as the parser reads it (comments blanked); `text`: as written, for positions.
  Builder(std::string_view plain, std::string_view text, const std::string& file)
      : plain_(plain), text_(text), file_(std::make_shared<const std::string>(file)) {}

  // Where the byte being fed is, and the offset after the last event that ended a token.
  std::size_t offset = 0;

  std::optional<toml::table> root;
  std::optional<std::pair<std::size_t, std::string>> failure;  // offset, what

  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }
  bool on_object_begin(boost::system::error_code&) {
    toml::table table;
    table.is_inline(true);  // warnings call a TOML header table a table, a JSON object a key
    stack_.emplace_back(std::move(table), std::move(key_));
    key_.reset();
    token_end_ = offset + 1;
    return true;
  }
  bool on_object_end(std::size_t, boost::system::error_code& ec) { return close(ec); }
  bool on_array_begin(boost::system::error_code& ec) {
    if (stack_.empty()) return refuse(ec, 0, "a JSON config must be an object ({...})");
    stack_.emplace_back(toml::array{}, std::move(key_));
    key_.reset();
    token_end_ = offset + 1;
    return true;
  }
  bool on_array_end(std::size_t, boost::system::error_code& ec) { return close(ec); }
  bool on_key_part(std::string_view part, std::size_t, boost::system::error_code&) {
    text_part_ += part;
    return true;
  }
  bool on_key(std::string_view part, std::size_t, boost::system::error_code& ec) {
    text_part_ += part;
    // The key starts at the first quote after the previous token (whitespace and a comma between).
    const auto begin = plain_.find('"', token_end_);
    auto& table = std::get<toml::table>(stack_.back().first);
    if (table.contains(text_part_))
      return refuse(ec, begin, fmt::format("duplicate key '{}'", text_part_));
    key_.emplace(std::move(text_part_),
                 toml::source_region{position(begin), position(offset + 1), file_});
    text_part_.clear();
    token_end_ = offset + 1;
    return true;
  }
  bool on_string_part(std::string_view part, std::size_t, boost::system::error_code&) {
    text_part_ += part;
    return true;
  }
  bool on_string(std::string_view part, std::size_t, boost::system::error_code& ec) {
    text_part_ += part;
    const bool added = add(toml::value<std::string>(std::move(text_part_)), ec);
    text_part_.clear();
    return added;
  }
  bool on_number_part(std::string_view, boost::system::error_code&) { return true; }
  bool on_int64(std::int64_t value, std::string_view, boost::system::error_code& ec) {
    return add(toml::value<std::int64_t>(value), ec);
  }
  bool on_uint64(std::uint64_t value, std::string_view, boost::system::error_code& ec) {
    return add(toml::value<double>(static_cast<double>(value)), ec);  // beyond TOML's integers
  }
  bool on_double(double value, std::string_view, boost::system::error_code& ec) {
    return add(toml::value<double>(value), ec);
  }
  bool on_bool(bool value, boost::system::error_code& ec) {
    return add(toml::value<bool>(value), ec);
  }
  // A null member is left out; a null array item is an empty table, so type checks report it.
  bool on_null(boost::system::error_code& ec) {
    if (stack_.empty()) return refuse(ec, 0, "a JSON config must be an object ({...})");
    if (std::holds_alternative<toml::array>(stack_.back().first)) return add(toml::table{}, ec);
    key_.reset();
    token_end_ = offset + 1;
    return true;
  }
  // Comments never reach the parser (blank_comments).
  bool on_comment_part(std::string_view, boost::system::error_code&) { return true; }
  bool on_comment(std::string_view, boost::system::error_code&) { return true; }

  // Where byte `at` is. Positions are asked for in increasing order while parsing, so each one
  // continues from the last: a file of megabytes (~/.claude.json) stays one pass.
  toml::source_position position(std::size_t at) {
    if (at < cursor_offset_) {
      cursor_offset_ = 0;
      cursor_ = {};
    }
    const auto step = jsonrpc::position_of(text_.substr(cursor_offset_), at - cursor_offset_);
    cursor_.column = step.line == 1 ? cursor_.column + step.column - 1 : step.column;
    cursor_.line += step.line - 1;
    cursor_offset_ = at;
    return {static_cast<toml::source_index>(cursor_.line),
            static_cast<toml::source_index>(cursor_.column)};
  }

 private:
  bool refuse(boost::system::error_code& ec, std::size_t at, std::string what) {
    failure.emplace(at, std::move(what));
    ec = boost::json::error::syntax;
    return false;
  }

  template <typename Node>
  bool add(Node&& node, boost::system::error_code& ec) {
    token_end_ = offset + 1;
    if (stack_.empty()) return refuse(ec, 0, "a JSON config must be an object ({...})");
    auto& top = stack_.back().first;
    if (auto* array = std::get_if<toml::array>(&top)) {
      array->push_back(std::forward<Node>(node));
    } else {
      std::get<toml::table>(top).insert(*key_, std::forward<Node>(node));
      key_.reset();
    }
    return true;
  }

  bool close(boost::system::error_code& ec) {
    auto [node, key] = std::move(stack_.back());
    stack_.pop_back();
    token_end_ = offset + 1;
    if (stack_.empty()) {
      root = std::move(std::get<toml::table>(node));
      return true;
    }
    key_ = std::move(key);
    return std::visit(
        [&](auto&& container) { return add(std::forward<decltype(container)>(container), ec); },
        std::move(node));
  }

  std::string_view plain_;
  std::string_view text_;
  std::size_t cursor_offset_ = 0;  // position()'s last answer, and where it was
  jsonrpc::TextPosition cursor_;
  std::shared_ptr<const std::string> file_;
  std::size_t token_end_ = 0;
  std::string text_part_;
  std::optional<toml::key> key_;  // the member whose value comes next
  // Open containers, each with the key it will be stored under in its parent.
  std::vector<std::pair<std::variant<toml::table, toml::array>, std::optional<toml::key>>> stack_;
};

// VS Code's JSONC comments turned into spaces (line breaks kept, so every offset stays where it
// was); the offset of a `/*` that never ends, if any. Boost.JSON 1.81 can read past its input
// when it resumes inside a comment (boostorg/json#933, fixed in a later release), and the parser
// is fed piece by piece here, so comments never reach it.
std::optional<std::size_t> blank_comments(std::string& text) {
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (in_string) {
      if (text[i] == '\\') {
        ++i;
      } else if (text[i] == '"') {
        in_string = false;
      }
      continue;
    }
    if (text[i] == '"') in_string = true;
    if (text[i] != '/' || i + 1 == text.size()) continue;
    if (text[i + 1] == '/') {
      for (; i < text.size() && text[i] != '\n'; ++i) text[i] = ' ';
    } else if (text[i + 1] == '*') {
      const auto end = text.find("*/", i + 2);
      if (end == std::string::npos) return i;
      for (; i < end + 2; ++i)
        if (text[i] != '\n') text[i] = ' ';
      --i;
    }
  }
  return std::nullopt;
}

bool variable_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front()))) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

}  // namespace

bool is_json_config(std::string_view text, std::string_view file) {
  if (file.ends_with(".json")) return true;
  const auto first = text.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && text[first] == '{';
}

Expected<toml::table> parse_json(std::string_view text, const std::string& file) {
  const auto fail = [&](const toml::source_position& at, std::string_view what) {
    return exec::invalid_params(fmt::format("{}:{}:{}: {}", file, at.line, at.column, what));
  };
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos)
    return fail({1, 1}, "the file is empty: expected a JSON object ({...})");
  std::string plain(text);
  if (auto open = blank_comments(plain))
    return fail(source_position(text, *open), "unterminated /* comment");
  boost::json::parse_options options;
  options.allow_trailing_commas = true;  // VS Code's JSONC
  boost::json::basic_parser<Builder> parser(options, plain, text, file);
  auto& builder = parser.handler();
  boost::system::error_code ec;
  for (; builder.offset < plain.size() && !ec && !builder.root; ++builder.offset)
    parser.write_some(true, plain.data() + builder.offset, 1, ec);
  if (builder.root) {
    // Only whitespace (and comments) may follow the document.
    const auto after = plain.find_first_not_of(" \t\r\n", builder.offset);
    if (after != std::string::npos)
      return fail(builder.position(after), "unexpected text after the JSON document");
    return std::move(*builder.root);
  }
  if (!ec) parser.write_some(false, nullptr, 0, ec);
  if (builder.failure)
    return fail(builder.position(builder.failure->first), builder.failure->second);
  if (ec == boost::json::error::incomplete)
    return fail(builder.position(text.size()), "the file ends inside the JSON document");
  if (ec) {
    // The parser stopped at the byte it was given last.
    const auto at = std::min(builder.offset - 1, text.size() - 1);
    const auto byte = static_cast<unsigned char>(text[at]);
    return fail(builder.position(at), std::isprint(byte)
                                          ? fmt::format("{} at '{}'", ec.message(), text[at])
                                          : fmt::format("{} at byte 0x{:02x}", ec.message(), byte));
  }
  return std::move(*builder.root);
}

std::vector<VariableReference> variable_references(std::string_view value) {
  std::vector<VariableReference> out;
  std::size_t from = 0;
  while (true) {
    const auto begin = value.find("${", from);
    if (begin == std::string_view::npos) break;
    const auto close = value.find('}', begin + 2);
    if (close == std::string_view::npos) break;
    VariableReference ref;
    ref.begin = begin;
    ref.end = close + 1;
    ref.written = std::string{value.substr(begin, ref.end - begin)};
    auto inner = value.substr(begin + 2, close - begin - 2);
    const bool env = inner.starts_with("env:");
    if (env) inner.remove_prefix(4);
    if (!env && inner.starts_with("input:")) {
      ref.kind = VariableReference::Kind::input;
      ref.name = inner.substr(6);
    } else if (!env && inner == "userHome") {
      ref.kind = VariableReference::Kind::user_home;
    } else if (!env && inner == "workspaceFolder") {
      ref.kind = VariableReference::Kind::workspace_folder;
    } else {
      const auto dash = inner.find(":-");
      const auto name = inner.substr(0, dash);
      if (variable_name(name)) {
        ref.kind = VariableReference::Kind::variable;
        ref.name = name;
        if (dash != std::string_view::npos) ref.fallback = std::string{inner.substr(dash + 2)};
      }
    }
    out.push_back(std::move(ref));
    from = close + 1;
  }
  return out;
}

}  // namespace tether::host
