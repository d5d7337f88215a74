// Test support: where the build put what the tests run (the tether binary, the test MCP server,
// the host test helper) and the source tree, from a file the build generates.
#pragma once

namespace tether::testing {

const char* tether_binary();
const char* test_mcp_server();
const char* test_host();
const char* source_dir();

}  // namespace tether::testing
