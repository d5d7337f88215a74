// The client's fs/* and environment/* calls: typed calls over the shared connection, with
// nothing of the process machinery.
#include "client_impl.hpp"

namespace tether::exec {
namespace asio = boost::asio;

namespace {

template <class R>
Expected<void> ok_or_error(const Expected<R>& result) {
  if (!result) return result.error();
  return {};
}

}  // namespace

asio::awaitable<Expected<void>> ExecClient::interrupt(const std::string& process_id) {
  SignalParams params{process_id};
  co_return ok_or_error(co_await impl_->call(kProcessSignal, std::move(params)));
}

asio::awaitable<Expected<std::string>> ExecClient::read_file(const std::string& path) {
  ReadFileParams params{path, std::nullopt};
  auto result = co_await impl_->call(kFsReadFile, std::move(params));
  if (!result) co_return result.error();
  co_return std::move(result->bytes);
}

asio::awaitable<Expected<void>> ExecClient::write_file(const std::string& path, std::string bytes) {
  WriteFileParams params{path, std::move(bytes)};
  co_return ok_or_error(co_await impl_->call(kFsWriteFile, std::move(params)));
}

asio::awaitable<Expected<void>> ExecClient::create_directory(const std::string& path,
                                                             bool recursive) {
  CreateDirectoryParams params{path, recursive};
  co_return ok_or_error(co_await impl_->call(kFsCreateDirectory, std::move(params)));
}

asio::awaitable<Expected<FileMetadata>> ExecClient::get_metadata(const std::string& path) {
  PathParams params{path};
  co_return co_await impl_->call(kFsGetMetadata, std::move(params));
}

asio::awaitable<Expected<std::vector<DirectoryEntry>>> ExecClient::read_directory(
    const std::string& path) {
  PathParams params{path};
  auto result = co_await impl_->call(kFsReadDirectory, std::move(params));
  if (!result) co_return result.error();
  co_return std::move(result->entries);
}

asio::awaitable<Expected<void>> ExecClient::remove(const std::string& path, bool recursive,
                                                   bool force) {
  RemoveParams params{path, recursive, force};
  co_return ok_or_error(co_await impl_->call(kFsRemove, std::move(params)));
}

asio::awaitable<Expected<void>> ExecClient::copy(const std::string& source,
                                                 const std::string& destination, bool recursive) {
  CopyParams params{source, destination, recursive};
  co_return ok_or_error(co_await impl_->call(kFsCopy, std::move(params)));
}

asio::awaitable<Expected<std::string>> ExecClient::canonicalize(const std::string& path) {
  PathParams params{path};
  auto result = co_await impl_->call(kFsCanonicalize, std::move(params));
  if (!result) co_return result.error();
  co_return std::move(result->path);
}

asio::awaitable<Expected<std::string>> ExecClient::environment_status() {
  auto result = co_await impl_->call(kEnvironmentStatus, Empty());
  if (!result) co_return result.error();
  co_return std::move(result->status);
}

asio::awaitable<Expected<json::object>> ExecClient::environment_info() {
  co_return co_await impl_->call(kEnvironmentInfo, Empty());
}

}  // namespace tether::exec
