// Test support: the building blocks of the ExecClient scenarios that client_test.cpp runs against
// tether's executor and codex_client_test.cpp against the stock codex one: start parameters, an
// endpoint, a temporary directory, a checked connect and start, and the fs round trip steps
// both executors must pass.
//
// Owns nothing that runs: the tests start the servers and close their clients. A failed step is
// reported as a test failure with the client's error message; the coroutine helpers then give
// nullptr (or nullopt), for the caller's CO_ASSERT_TRUE.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include <tether/exec/client.hpp>

namespace tether::testing {

// process/start parameters with a minimal PATH.
exec::StartParams start_params(std::string id, std::vector<std::string> argv,
                               bool pipe_stdin = false);
// A WebSocket endpoint without a bearer token.
exec::WebSocketEndpoint ws_endpoint(const std::string& url);

// A fresh, empty directory under the system temp dir, named `stem` and this process's pid;
// removed with its contents on destruction (also when the test fails).
class TempDir {
 public:
  explicit TempDir(const std::string& stem);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// ExecClient::connect with the default options, on the calling coroutine's executor.
boost::asio::awaitable<std::shared_ptr<exec::ExecClient>> connect_client(exec::Endpoint endpoint);
// client.start(params). Callers build `params` outside the co_await expression (GCC 12 rejects
// a braced argv of string literals inside one).
boost::asio::awaitable<std::shared_ptr<exec::Process>> start_process(exec::ExecClient& client,
                                                                     exec::StartParams params);

// Creates `dir` (with parents), writes `bytes` to `file` and reads them back; checks the
// content and the metadata (a file of that size). The metadata, for further checks, when the
// read back and the metadata call succeeded.
boost::asio::awaitable<std::optional<exec::FileMetadata>> write_and_read_back(
    exec::ExecClient& client, std::string dir, std::string file, std::string bytes);

}  // namespace tether::testing
