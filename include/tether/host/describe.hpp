// How listings, `tether mcp get` and messages show a command line and an executor environment.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <tether/host/config.hpp>

namespace tether::host {

// Words joined by spaces, quoted as a POSIX shell would need them to read them back: `it's`
// is `'it'\''s'`, a word with a tab or a line break is `$'a\tb'` (the listing stays one line).
std::string command_line(const std::vector<std::string>& words);

// An executor environment as a listing shows it: `<id>: <url>`, `<id>: spawned on loopback` or
// `<id>: command <argv>`; followed by ` (<source>)` when `source` (where a definition that is not
// in the config came from, e.g. `TETHER_EXEC_SERVER_URL`) is given.
std::string describe_environment(const EnvironmentConfig& environment,
                                 std::string_view source = {});

}  // namespace tether::host
