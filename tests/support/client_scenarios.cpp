// Test support: shared steps of the ExecClient scenarios (see client_scenarios.hpp).
#include "client_scenarios.hpp"

#include <unistd.h>

#include <boost/asio/this_coro.hpp>
#include <gtest/gtest.h>

namespace tether::testing {
namespace asio = boost::asio;

exec::StartParams start_params(std::string id, std::vector<std::string> argv, bool pipe_stdin) {
  exec::StartParams p;
  p.process_id = std::move(id);
  p.argv = std::move(argv);
  p.env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"}};
  p.pipe_stdin = pipe_stdin;
  return p;
}

exec::WebSocketEndpoint ws_endpoint(const std::string& url) {
  return exec::WebSocketEndpoint{url, std::nullopt, nullptr};
}

TempDir::TempDir(const std::string& stem)
    : path_(std::filesystem::temp_directory_path() / (stem + "-" + std::to_string(::getpid()))) {
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

asio::awaitable<std::shared_ptr<exec::ExecClient>> connect_client(exec::Endpoint endpoint) {
  auto executor = co_await asio::this_coro::executor;
  auto connected = co_await exec::ExecClient::connect(executor, std::move(endpoint));
  if (!connected) {
    ADD_FAILURE() << "connect failed: " << connected.error().message;
    co_return nullptr;
  }
  co_return *connected;
}

asio::awaitable<std::shared_ptr<exec::Process>> start_process(exec::ExecClient& client,
                                                              exec::StartParams params) {
  const std::string id = params.process_id;
  auto started = co_await client.start(std::move(params));
  if (!started) {
    ADD_FAILURE() << "start of " << id << " failed: " << started.error().message;
    co_return nullptr;
  }
  co_return *started;
}

asio::awaitable<std::optional<exec::FileMetadata>> write_and_read_back(exec::ExecClient& client,
                                                                       std::string dir,
                                                                       std::string file,
                                                                       std::string bytes) {
  auto made = co_await client.create_directory(dir);
  EXPECT_TRUE(made.has_value()) << made.error().message;
  auto written = co_await client.write_file(file, bytes);
  EXPECT_TRUE(written.has_value()) << written.error().message;
  auto back = co_await client.read_file(file);
  if (!back) {
    ADD_FAILURE() << "read_file " << file << ": " << back.error().message;
    co_return std::nullopt;
  }
  EXPECT_EQ(*back, bytes);
  auto metadata = co_await client.get_metadata(file);
  if (!metadata) {
    ADD_FAILURE() << "get_metadata " << file << ": " << metadata.error().message;
    co_return std::nullopt;
  }
  EXPECT_TRUE(metadata->is_file);
  EXPECT_EQ(metadata->size, bytes.size());
  co_return *metadata;
}

}  // namespace tether::testing
