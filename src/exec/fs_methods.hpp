// The executor's `fs/*` methods. Each runs to completion synchronously (the connection calls
// them off the I/O thread) and maps OS errors to the protocol's codes: -32004 not found,
// -32603 otherwise, -32602 for what the method refuses (special files, a directory copied
// without recursive).
#pragma once

#include <tether/exec/protocol.hpp>

namespace tether::exec {

// Largest file fs/readFile returns: its base64 must fit in one 64 MiB message.
inline constexpr std::size_t kMaxReadFileBytes = 45 * 1024 * 1024;

Expected<FileContents> fs_read_file(const ReadFileParams& params);
Expected<Empty> fs_write_file(const WriteFileParams& params);
Expected<Empty> fs_create_directory(const CreateDirectoryParams& params);
Expected<FileMetadata> fs_get_metadata(const PathParams& params);
Expected<DirectoryListing> fs_read_directory(const PathParams& params);
Expected<Empty> fs_remove(const RemoveParams& params);
Expected<Empty> fs_copy(const CopyParams& params);
Expected<PathParams> fs_canonicalize(const PathParams& params);

}  // namespace tether::exec
