// fs/* on std::filesystem, with statx for creation times. Paths are parsed before any I/O.
#include "fs_methods.hpp"

#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

namespace tether::exec {
namespace fs = std::filesystem;
namespace {

Error os_error(const std::error_code& ec, std::string_view what, const std::string& path) {
  const int code = ec == std::errc::no_such_file_or_directory ? jsonrpc::code::kNotFound
                                                              : jsonrpc::code::kInternalError;
  return jsonrpc::make_error(
      code, fmt::format("{} '{}': {} (os error {})", what, path, ec.message(), ec.value()));
}

std::error_code last_error() {
  return {errno, std::generic_category()};
}

std::int64_t to_ms(const statx_timestamp& t) {
  return static_cast<std::int64_t>(t.tv_sec) * 1000 + t.tv_nsec / 1'000'000;
}

// FIFOs, devices and sockets: opening one can block (a FIFO waits for a writer) or never end.
const char* special_kind(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return nullptr;
}

Error special_file_error(std::string_view what, const std::string& path, const char* kind) {
  return invalid_params(fmt::format("{} '{}': it is {}, not a regular file", what, path, kind));
}

// Opens `path` unless it is a special file: refused by its type before the open, and the open
// is non-blocking and checked again, so a FIFO swapped in meanwhile cannot block it either.
// With O_CREAT, a path that does not exist yet passes the first check.
Expected<int> open_regular(const std::string& path, int flags, bool follow, std::string_view what) {
  struct stat st {};
  const int stat_result = follow ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st);
  if (stat_result == 0) {
    if (const char* kind = special_kind(st.st_mode)) return special_file_error(what, path, kind);
  } else if (errno != ENOENT || !(flags & O_CREAT)) {
    return os_error(last_error(), what, path);
  }
  const int fd =
      ::open(path.c_str(), flags | O_NONBLOCK | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW), 0666);
  if (fd < 0) return os_error(last_error(), what, path);
  if (::fstat(fd, &st) != 0) {
    auto ec = last_error();
    ::close(fd);
    return os_error(ec, what, path);
  }
  if (const char* kind = special_kind(st.st_mode)) {
    ::close(fd);
    return special_file_error(what, path, kind);
  }
  return Expected<int>(boost::system::in_place_value, fd);
}

}  // namespace

Expected<FileContents> fs_read_file(const ReadFileParams& p) {
  const std::string& path = p.path;
  auto opened = open_regular(path, O_RDONLY, p.follow_symlinks.value_or(true), "cannot read");
  if (!opened) return opened.error();
  const int fd = *opened;
  std::string data;
  char buffer[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      auto ec = last_error();
      ::close(fd);
      return os_error(ec, "cannot read", path);
    }
    if (n == 0) break;
    data.append(buffer, static_cast<std::size_t>(n));
    if (data.size() > kMaxReadFileBytes) {
      ::close(fd);
      return jsonrpc::make_error(
          jsonrpc::code::kInternalError,
          fmt::format("cannot read '{}': file is larger than {} bytes", path, kMaxReadFileBytes));
    }
  }
  ::close(fd);
  return FileContents{std::move(data)};
}

Expected<Empty> fs_write_file(const WriteFileParams& p) {
  const std::string& path = p.path;
  const std::string& data = p.bytes;
  auto opened = open_regular(path, O_WRONLY | O_CREAT | O_TRUNC, true, "cannot write");
  if (!opened) return opened.error();
  const int fd = *opened;
  for (std::size_t written = 0; written < data.size();) {
    const ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      auto ec = last_error();
      ::close(fd);
      return os_error(ec, "cannot write", path);
    }
    written += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) return os_error(last_error(), "cannot write", path);
  return Empty{};
}

Expected<Empty> fs_create_directory(const CreateDirectoryParams& p) {
  const std::string& path = p.path;
  std::error_code ec;
  if (p.recursive) {
    fs::create_directories(path, ec);
  } else {
    fs::create_directory(path, ec);
  }
  if (ec) return os_error(ec, "cannot create directory", path);
  if (!fs::is_directory(path, ec)) {
    return os_error(std::make_error_code(std::errc::file_exists), "cannot create directory", path);
  }
  return Empty{};
}

Expected<FileMetadata> fs_get_metadata(const PathParams& p) {
  const std::string& path = p.path;
  struct statx link {};
  if (::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME,
              &link) != 0)
    return os_error(last_error(), "cannot stat", path);
  struct statx target = link;
  const bool is_symlink = S_ISLNK(link.stx_mode);
  if (is_symlink) {
    // A dangling link still has metadata of its own.
    if (::statx(AT_FDCWD, path.c_str(), 0, STATX_BASIC_STATS | STATX_BTIME, &target) != 0)
      target = link;
  }
  FileMetadata metadata;
  metadata.is_directory = S_ISDIR(target.stx_mode);
  metadata.is_file = S_ISREG(target.stx_mode);
  metadata.is_symlink = is_symlink;
  metadata.created_at_ms = (target.stx_mask & STATX_BTIME) ? to_ms(target.stx_btime) : 0;
  metadata.modified_at_ms = to_ms(target.stx_mtime);
  metadata.size = target.stx_size;
  return metadata;
}

Expected<DirectoryListing> fs_read_directory(const PathParams& p) {
  const std::string& path = p.path;
  std::error_code ec;
  DirectoryListing listing;
  for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    const auto status = it->status(type_ec);
    listing.entries.push_back(DirectoryEntry{
        it->path().filename().string(), fs::is_directory(status), fs::is_regular_file(status)});
  }
  if (ec) return os_error(ec, "cannot read directory", path);
  return listing;
}

Expected<Empty> fs_remove(const RemoveParams& p) {
  const std::string& path = p.path;
  std::error_code ec;
  const bool exists = fs::exists(fs::symlink_status(path, ec));
  if (!exists) {
    if (p.force) return Empty{};
    return os_error(std::make_error_code(std::errc::no_such_file_or_directory), "cannot remove",
                    path);
  }
  if (p.recursive) {
    fs::remove_all(path, ec);
  } else {
    fs::remove(path, ec);
  }
  if (ec) return os_error(ec, "cannot remove", path);
  return Empty{};
}

Expected<Empty> fs_copy(const CopyParams& p) {
  const std::string& source = p.source_path;
  const std::string& destination = p.destination_path;
  std::error_code ec;
  const auto status = fs::symlink_status(source, ec);
  if (ec) return os_error(ec, "cannot copy", source);
  if (fs::is_directory(status) && !p.recursive) {
    return invalid_params(fmt::format(
        "fs/copy requires recursive: true when sourcePath is a directory: '{}'", source));
  }
  fs::copy(source, destination,
           fs::copy_options::recursive | fs::copy_options::overwrite_existing |
               fs::copy_options::copy_symlinks,
           ec);
  if (ec) return os_error(ec, "cannot copy", source);
  return Empty{};
}

Expected<PathParams> fs_canonicalize(const PathParams& p) {
  std::error_code ec;
  const auto canonical = fs::canonical(p.path, ec);
  if (ec) return os_error(ec, "cannot canonicalize", p.path);
  return PathParams{canonical.string()};
}

}  // namespace tether::exec
