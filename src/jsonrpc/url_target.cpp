// parse_url_target: Boost.URL does the parsing; this picks out what a client connection needs.
#include <boost/url/parse.hpp>

#include <tether/jsonrpc/url_target.hpp>

namespace tether::jsonrpc {

boost::system::result<UrlTarget> parse_url_target(std::string_view url, std::string_view plain,
                                                  std::string_view secure) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return parsed.error();
  UrlTarget t;
  if (parsed->scheme() == secure) {
    t.tls = true;
  } else if (parsed->scheme() != plain) {
    return make_error_code(boost::system::errc::protocol_not_supported);
  }
  if (parsed->encoded_host().empty()) return make_error_code(boost::system::errc::invalid_argument);
  t.host = parsed->host_type() == boost::urls::host_type::ipv6
               ? parsed->host_ipv6_address().to_string()
               : std::string(parsed->encoded_host());
  t.port = parsed->has_port() ? std::string(parsed->port()) : (t.tls ? "443" : "80");
  t.host_header = parsed->encoded_host_and_port();
  t.resource = parsed->encoded_resource();
  if (t.resource.empty()) t.resource = "/";
  return t;
}

}  // namespace tether::jsonrpc
