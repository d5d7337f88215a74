// tether::host JSON host configs — the JSON reader and `${...}` references (see json_config.hpp).
//
// Owns: a recursive-descent JSON reader that builds toml++ nodes, tracking line and column
// (1-based, counting UTF-8 characters as toml++ does) so each key carries where it was written.
// Does not own: the meaning of any key (config.cpp).
// Data flows: text -> Reader (positions) -> toml::table; a string -> variable_references.
#include "json_config.hpp"

#include <cctype>
#include <charconv>
#include <cstdint>
#include <memory>

#include <fmt/format.h>

#include <tether/exec/client.hpp>

namespace tether::host {
namespace {

struct SyntaxError {
  toml::source_position at;
  std::string what;
};

class Reader {
 public:
  Reader(std::string_view text, const std::string& file)
      : text_(text), file_(std::make_shared<const std::string>(file)) {}

  toml::table document() {
    skip();
    if (pos_ == text_.size()) fail("the file is empty: expected a JSON object ({...})");
    if (peek() != '{') fail("a JSON config must be an object ({...})");
    toml::table root;
    object(root);
    skip();
    if (pos_ != text_.size()) fail("unexpected text after the JSON document");
    return root;
  }

 private:
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool at_end() const { return pos_ >= text_.size(); }

  void advance() {
    const auto byte = static_cast<unsigned char>(text_[pos_++]);
    if (byte == '\n') {
      ++line_;
      column_ = 1;
    } else if ((byte & 0xC0) != 0x80) {  // not a UTF-8 continuation byte
      ++column_;
    }
  }

  toml::source_position here() const { return {line_, column_}; }

  [[noreturn]] void fail(std::string what) const { throw SyntaxError{here(), std::move(what)}; }

  // Whitespace and comments (JSONC: `// ...` and `/* ... */`).
  void skip() {
    while (!at_end()) {
      const char c = peek();
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        advance();
      } else if (text_.substr(pos_).starts_with("//")) {
        while (!at_end() && peek() != '\n') advance();
      } else if (text_.substr(pos_).starts_with("/*")) {
        const auto start = here();
        advance();
        advance();
        while (!at_end() && !text_.substr(pos_).starts_with("*/")) advance();
        if (at_end()) throw SyntaxError{start, "unterminated /* comment"};
        advance();
        advance();
      } else {
        return;
      }
    }
  }

  void expect(char c, std::string_view what) {
    if (peek() != c || at_end()) fail(std::string{what});
    advance();
  }

  // A value, handed to `sink` (a null to `on_null`).
  template <typename Sink, typename OnNull>
  void value(Sink&& sink, OnNull&& on_null) {
    if (at_end()) fail("expected a value");
    switch (peek()) {
      case '{': {
        toml::table table;
        object(table);
        sink(std::move(table));
        return;
      }
      case '[': {
        toml::array array;
        list(array);
        sink(std::move(array));
        return;
      }
      case '"':
        sink(toml::value<std::string>(string()));
        return;
      case 't':
        literal("true");
        sink(toml::value<bool>(true));
        return;
      case 'f':
        literal("false");
        sink(toml::value<bool>(false));
        return;
      case 'n':
        literal("null");
        on_null();
        return;
      default:
        if (peek() == '-' || std::isdigit(static_cast<unsigned char>(peek()))) {
          number(sink);
          return;
        }
        fail(fmt::format("expected a value, saw '{}'", peek()));
    }
  }

  void literal(std::string_view word) {
    if (!text_.substr(pos_).starts_with(word)) fail("expected a value (true, false or null?)");
    for (std::size_t i = 0; i < word.size(); ++i) advance();
  }

  // Objects are marked inline: warnings call a TOML header table a table, a JSON object a key.
  void object(toml::table& table) {
    table.is_inline(true);
    expect('{', "expected '{'");
    skip();
    while (peek() != '}' || at_end()) {
      if (peek() != '"' || at_end()) fail("expected a member name in double quotes, or '}'");
      const auto begin = here();
      auto name = string();
      toml::source_region where{begin, here(), file_};
      if (table.contains(name)) throw SyntaxError{begin, fmt::format("duplicate key '{}'", name)};
      skip();
      expect(':', fmt::format("expected ':' after \"{}\"", name));
      skip();
      toml::key key{std::move(name), std::move(where)};
      value([&](auto&& node) { table.insert(key, std::forward<decltype(node)>(node)); }, [] {});
      skip();
      if (peek() == ',' && !at_end()) {
        advance();
        skip();  // a trailing comma before '}' is allowed (JSONC)
      } else if (peek() != '}' || at_end()) {
        fail("expected ',' or '}' after a member");
      }
    }
    advance();
  }

  void list(toml::array& array) {
    expect('[', "expected '['");
    skip();
    while (peek() != ']' || at_end()) {
      value([&](auto&& node) { array.push_back(std::forward<decltype(node)>(node)); },
            [&] { array.push_back(toml::table{}); });
      skip();
      if (peek() == ',' && !at_end()) {
        advance();
        skip();
      } else if (peek() != ']' || at_end()) {
        fail("expected ',' or ']' after an array item");
      }
    }
    advance();
  }

  unsigned hex4() {
    unsigned code = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = peek();
      if (at_end() || !std::isxdigit(static_cast<unsigned char>(c)))
        fail("expected four hex digits after \\u");
      code = code * 16 + static_cast<unsigned>(std::isdigit(static_cast<unsigned char>(c))
                                                   ? c - '0'
                                                   : std::tolower(c) - 'a' + 10);
      advance();
    }
    return code;
  }

  static void append_utf8(std::string& out, unsigned code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xC0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xE0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }

  std::string string() {
    const auto start = here();
    advance();  // the opening quote
    std::string out;
    while (true) {
      if (at_end()) throw SyntaxError{start, "unterminated string"};
      const char c = peek();
      if (c == '"') break;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string (escape it)");
      if (c != '\\') {
        out += c;
        advance();
        continue;
      }
      advance();
      const char escaped = peek();
      if (at_end()) throw SyntaxError{start, "unterminated string"};
      constexpr std::string_view kFrom = "\"\\/bfnrt";
      constexpr std::string_view kTo = "\"\\/\b\f\n\r\t";
      if (auto at = kFrom.find(escaped); at != std::string_view::npos) {
        out += kTo[at];
        advance();
        continue;
      }
      if (escaped != 'u') fail(fmt::format("invalid escape '\\{}'", escaped));
      advance();
      unsigned code = hex4();
      // A surrogate pair spells one character beyond the basic plane.
      if (code >= 0xD800 && code < 0xDC00 && text_.substr(pos_).starts_with("\\u")) {
        advance();
        advance();
        const unsigned low = hex4();
        if (low < 0xDC00 || low > 0xDFFF) fail("invalid \\u surrogate pair");
        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
      } else if (code >= 0xD800 && code < 0xE000) {
        fail("invalid \\u surrogate pair");
      }
      append_utf8(out, code);
    }
    advance();  // the closing quote
    return out;
  }

  template <typename Sink>
  void number(Sink& sink) {
    const auto start_pos = pos_;
    auto digits = [&] {
      if (at_end() || !std::isdigit(static_cast<unsigned char>(peek()))) fail("expected a digit");
      while (!at_end() && std::isdigit(static_cast<unsigned char>(peek()))) advance();
    };
    bool integer = true;
    if (peek() == '-') advance();
    if (peek() == '0' && !at_end()) {
      advance();
    } else {
      digits();
    }
    if (peek() == '.' && !at_end()) {
      integer = false;
      advance();
      digits();
    }
    if ((peek() == 'e' || peek() == 'E') && !at_end()) {
      integer = false;
      advance();
      if (peek() == '+' || peek() == '-') advance();
      digits();
    }
    const auto text = text_.substr(start_pos, pos_ - start_pos);
    if (integer) {
      std::int64_t value = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec == std::errc() && end == text.data() + text.size()) {
        sink(toml::value<std::int64_t>(value));
        return;
      }
    }
    double value = 0;
    std::from_chars(text.data(), text.data() + text.size(), value);
    sink(toml::value<double>(value));
  }

  std::string_view text_;
  std::shared_ptr<const std::string> file_;
  std::size_t pos_ = 0;
  toml::source_index line_ = 1;
  toml::source_index column_ = 1;
};

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
  try {
    return Reader(text, file).document();
  } catch (const SyntaxError& error) {
    return exec::invalid_params(
        fmt::format("{}:{}:{}: {}", file, error.at.line, error.at.column, error.what));
  }
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
