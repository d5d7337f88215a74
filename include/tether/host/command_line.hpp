// A command line as a person reads it (listings, `tether mcp get`, messages).
#pragma once

#include <string>
#include <vector>

namespace tether::host {

// Words joined by spaces, quoted as a POSIX shell would need them to read them back: `it's`
// is `'it'\''s'`, a word with a tab or a line break is `$'a\tb'` (the listing stays one line).
std::string command_line(const std::vector<std::string>& words);

}  // namespace tether::host
