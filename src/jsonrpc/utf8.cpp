// UTF-8 checks (see include/tether/jsonrpc/utf8.hpp), on Boost.Locale's header-only decoder.
#include <boost/locale/utf.hpp>

#include <tether/jsonrpc/utf8.hpp>

namespace tether::jsonrpc {

namespace utf = boost::locale::utf;

bool is_valid_utf8(std::string_view text) {
  for (auto p = text.begin(); p != text.end();) {
    const auto code_point = utf::utf_traits<char>::decode(p, text.end());
    if (code_point == utf::illegal || code_point == utf::incomplete) return false;
  }
  return true;
}

std::string to_valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (auto p = text.begin(); p != text.end();) {
    const auto start = p;
    const auto code_point = utf::utf_traits<char>::decode(p, text.end());
    if (code_point == utf::illegal || code_point == utf::incomplete) {
      out += "\xEF\xBF\xBD";
      p = start + 1;
    } else {
      out.append(start, p);
    }
  }
  return out;
}

}  // namespace tether::jsonrpc
