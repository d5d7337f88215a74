// tether::exec protocol — every executor method's params and result, typed once and shared by
// the executor server, its client and the local process backend (docs/exec-protocol.md).
//
// Owns: one struct per params, result and notification shape; a descriptor per method (its name
// and its two types); their conversions both ways (to_json, and decode<T>, which answers -32602
// in codex's serde wording); path fields (plain absolute paths and `file:` URIs).
// Does not own: error codes and Expected (jsonrpc/error.hpp), method behaviour (the server's
// handlers), or when a call is sent (the client).
//
// Adding a method: write its params and result here with their to_json/from_json, a descriptor,
// and one handler in the server's route table (src/exec/connection.cpp); the client calls it by
// its descriptor (docs/exec-protocol.md "Adding a method").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <tether/fetch/fetch.hpp>
#include <tether/jsonrpc/error.hpp>

namespace tether::exec {

namespace json = boost::json;
using jsonrpc::Error;
using jsonrpc::Expected;

Error invalid_params(std::string message);
Error invalid_request(std::string message);
// -32602 `<field> contains a NUL byte` when `value` has one: argv, arg0, environment names and
// values and paths reach the OS as C strings, which would silently cut it short there.
std::optional<Error> nul_byte_error(std::string_view field, std::string_view value);

// A plain absolute path, or a `file:` URI (percent-decoded, dot segments removed, host empty or
// localhost). Errors carry the protocol's codes and messages.
Expected<std::string> parse_path(std::string_view text);
// A percent-encoded `file://` URI for an absolute path.
std::string to_file_uri(std::string_view path);

// A method: its wire name and its params and result types.
template <class P, class R>
struct Method {
  using Params = P;
  using Result = R;
  std::string_view name;
};
// A notification: its wire name and its params type.
template <class P>
struct Notice {
  using Params = P;
  std::string_view name;
};

// Params or a result with nothing in it; any value decodes to it (codex ignores them).
struct Empty {};

// --- initialize, initialized ---------------------------------------------------------------

struct InitializeParams {
  std::string client_name;
  std::optional<std::string> resume_session_id;
};
struct InitializeResult {
  std::string session_id;  // empty from an executor without sessions (no resume)
  json::object environment_info;
};
inline constexpr Method<InitializeParams, InitializeResult> kInitialize{"initialize"};
inline constexpr Notice<Empty> kInitialized{"initialized"};

// --- environment/* -------------------------------------------------------------------------

struct EnvironmentStatus {
  std::string status;  // "ready"
};
inline constexpr Method<Empty, EnvironmentStatus> kEnvironmentStatus{"environment/status"};
// shell {name, path}, executorVersion, platformOs, cwd, userHomeDir, tempDir (file: URIs),
// capabilities: passed through as the executor describes itself.
inline constexpr Method<Empty, json::object> kEnvironmentInfo{"environment/info"};

// --- process/* -----------------------------------------------------------------------------

// How the child's environment starts before `env` goes on top (docs/exec-protocol.md,
// "Environment"): inherit, then the default excludes, exclude, includeOnly, then set.
struct EnvPolicy {
  enum class Inherit { all, core, none };
  Inherit inherit = Inherit::core;
  bool ignore_default_excludes = false;
  std::vector<std::string> exclude;       // shell globs, case-insensitive
  std::vector<std::string> include_only;  // empty: everything left
  std::map<std::string, std::string> set;
};

// `process/start`. The wire's codex-only fields (sandbox, managed network, shell snapshot) are
// refused when decoding: they have no field here.
struct StartParams {
  std::string process_id;
  std::vector<std::string> argv;   // non-empty
  std::optional<std::string> cwd;  // absolute; absent = the placement's default
  std::map<std::string, std::string> env;
  std::optional<EnvPolicy> env_policy;  // absent = `env` is the whole environment
  bool tty = false;
  bool pipe_stdin = false;
  std::optional<std::string> arg0;
};
struct StartResult {
  std::string process_id;
  std::string sandbox_type = "none";
};
inline constexpr Method<StartParams, StartResult> kProcessStart{"process/start"};

struct ReadParams {
  std::string process_id;
  std::uint64_t after_seq = 0;
  std::optional<std::uint64_t> max_bytes;  // decoded bytes; at least one chunk when any
  std::uint64_t wait_ms = 0;
};
struct OutputEvent {
  std::uint64_t seq = 0;
  std::string stream;  // "stdout", "stderr" or "pty"
  std::string bytes;   // base64 on the wire
};
struct ReadResult {
  std::vector<OutputEvent> chunks;
  std::uint64_t next_seq = 1;
  bool exited = false;
  std::optional<int> exit_code;
  bool closed = false;
  std::optional<std::string> failure;
};
inline constexpr Method<ReadParams, ReadResult> kProcessRead{"process/read"};

struct WriteParams {
  std::string process_id;
  std::string bytes;  // `chunk`, base64 on the wire
  std::optional<std::string> write_id;
};
enum class WriteStatus { accepted, unknown_process, starting, stdin_closed };
std::string_view to_string(WriteStatus status);
struct WriteResult {
  WriteStatus status = WriteStatus::accepted;
};
inline constexpr Method<WriteParams, WriteResult> kProcessWrite{"process/write"};

struct ProcessRef {
  std::string process_id;
};
struct TerminateResult {
  bool running = false;
};
inline constexpr Method<ProcessRef, TerminateResult> kProcessTerminate{"process/terminate"};

// `signal` has one variant on the wire, `interrupt`: SIGINT to the process group.
struct SignalParams {
  std::string process_id;
};
inline constexpr Method<SignalParams, Empty> kProcessSignal{"process/signal"};

struct OutputNotice {
  std::string process_id;
  OutputEvent output;
};
struct ExitedNotice {
  std::string process_id;
  std::uint64_t seq = 0;
  int exit_code = -1;         // 128 + N when killed by signal N
  std::optional<int> signal;  // N
};
struct ClosedNotice {
  std::string process_id;
  std::uint64_t seq = 0;
};
inline constexpr Notice<OutputNotice> kProcessOutput{"process/output"};
inline constexpr Notice<ExitedNotice> kProcessExited{"process/exited"};
inline constexpr Notice<ClosedNotice> kProcessClosed{"process/closed"};

// The whole process/output message, the chunk base64-encoded straight into place: the bulk
// path. `process_id_json` is the id already serialized as a JSON string.
std::string output_notification(std::string_view process_id_json, std::uint64_t seq,
                                std::string_view stream, std::string_view bytes);

// --- fs/* ----------------------------------------------------------------------------------
// Every fs method refuses a non-null `sandbox`. Paths are plain absolute paths here and file:
// URIs on the wire.

struct PathParams {
  std::string path;
};
struct ReadFileParams {
  std::string path;
  std::optional<bool> follow_symlinks;  // absent = true
};
struct FileContents {
  std::string bytes;  // `dataBase64`
};
struct WriteFileParams {
  std::string path;
  std::string bytes;  // `dataBase64`
};
struct CreateDirectoryParams {
  std::string path;
  bool recursive = true;
};
struct FileMetadata {
  bool is_directory = false;
  bool is_file = false;
  bool is_symlink = false;
  std::int64_t created_at_ms = 0;
  std::int64_t modified_at_ms = 0;
  std::uint64_t size = 0;
};
struct DirectoryEntry {
  std::string file_name;
  bool is_directory = false;
  bool is_file = false;
};
struct DirectoryListing {
  std::vector<DirectoryEntry> entries;
};
struct RemoveParams {
  std::string path;
  bool recursive = true;
  bool force = true;
};
struct CopyParams {
  std::string source_path;
  std::string destination_path;
  bool recursive = false;
};
inline constexpr Method<ReadFileParams, FileContents> kFsReadFile{"fs/readFile"};
inline constexpr Method<WriteFileParams, Empty> kFsWriteFile{"fs/writeFile"};
inline constexpr Method<CreateDirectoryParams, Empty> kFsCreateDirectory{"fs/createDirectory"};
inline constexpr Method<PathParams, FileMetadata> kFsGetMetadata{"fs/getMetadata"};
inline constexpr Method<PathParams, DirectoryListing> kFsReadDirectory{"fs/readDirectory"};
inline constexpr Method<RemoveParams, Empty> kFsRemove{"fs/remove"};
inline constexpr Method<CopyParams, Empty> kFsCopy{"fs/copy"};
// The result's path is canonical.
inline constexpr Method<PathParams, PathParams> kFsCanonicalize{"fs/canonicalize"};

// --- http/request --------------------------------------------------------------------------
// The executor makes the request from its own network position (docs/exec-protocol.md "HTTP").

struct HttpRequestParams {
  std::string method;
  std::string url;  // http:// or https://
  fetch::Headers headers;
  std::optional<std::string> body;          // `bodyBase64`
  std::optional<std::uint64_t> timeout_ms;  // absent or null: no timeout
  // Names the streamed body's notifications; needed with stream_response. Buffered requests may
  // all share one (codex sends `buffered-request`).
  std::optional<std::string> request_id;
  bool stream_response = false;
  fetch::Redirects redirect_policy = fetch::Redirects::follow;
};
struct HttpResponse {
  unsigned status = 0;
  fetch::Headers headers;  // values that are not UTF-8 are left out
  std::string body;        // `bodyBase64`; empty when the body is streamed
};
inline constexpr Method<HttpRequestParams, HttpResponse> kHttpRequest{"http/request"};

// One piece of a streamed body. `seq` counts from 1 by one; the last has `done`, and `error`
// when the body failed.
struct HttpBodyDelta {
  std::string request_id;
  std::uint64_t seq = 0;
  std::string bytes;  // `deltaBase64`
  bool done = false;
  std::optional<std::string> error;
};
inline constexpr Notice<HttpBodyDelta> kHttpBodyDelta{"http/request/bodyDelta"};

// tether extension: stops a streamed request (its connection closed, no more deltas). An
// unknown id is not an error. codex answers -32601, and its streams end only with their body.
struct HttpCancelParams {
  std::string request_id;
};
inline constexpr Method<HttpCancelParams, Empty> kHttpCancel{"http/request/cancel"};

// --- conversions ---------------------------------------------------------------------------
// to_json writes what tether sends (codex 0.169's dialect: optional fields as null, paths as
// file: URIs); from_json accepts what a tether or codex peer sends (unknown fields ignored).

json::value to_json(const Empty& value);
Expected<void> from_json(const json::value& json, Empty& out);
json::value to_json(const json::object& value);
Expected<void> from_json(const json::value& json, json::object& out);
json::value to_json(const InitializeParams& value);
Expected<void> from_json(const json::value& json, InitializeParams& out);
json::value to_json(const InitializeResult& value);
Expected<void> from_json(const json::value& json, InitializeResult& out);
json::value to_json(const EnvironmentStatus& value);
Expected<void> from_json(const json::value& json, EnvironmentStatus& out);
json::value to_json(const EnvPolicy& value);
Expected<void> from_json(const json::value& json, EnvPolicy& out);
json::value to_json(const StartParams& value);
Expected<void> from_json(const json::value& json, StartParams& out);
json::value to_json(const StartResult& value);
Expected<void> from_json(const json::value& json, StartResult& out);
json::value to_json(const ReadParams& value);
Expected<void> from_json(const json::value& json, ReadParams& out);
json::value to_json(const ReadResult& value);
Expected<void> from_json(const json::value& json, ReadResult& out);
json::value to_json(const WriteParams& value);
Expected<void> from_json(const json::value& json, WriteParams& out);
json::value to_json(const WriteResult& value);
Expected<void> from_json(const json::value& json, WriteResult& out);
json::value to_json(const ProcessRef& value);
Expected<void> from_json(const json::value& json, ProcessRef& out);
json::value to_json(const TerminateResult& value);
Expected<void> from_json(const json::value& json, TerminateResult& out);
json::value to_json(const SignalParams& value);
Expected<void> from_json(const json::value& json, SignalParams& out);
// (process/output is sent by output_notification.)
Expected<void> from_json(const json::value& json, OutputNotice& out);
json::value to_json(const ExitedNotice& value);
Expected<void> from_json(const json::value& json, ExitedNotice& out);
json::value to_json(const ClosedNotice& value);
Expected<void> from_json(const json::value& json, ClosedNotice& out);
json::value to_json(const PathParams& value);
Expected<void> from_json(const json::value& json, PathParams& out);
json::value to_json(const ReadFileParams& value);
Expected<void> from_json(const json::value& json, ReadFileParams& out);
json::value to_json(const FileContents& value);
Expected<void> from_json(const json::value& json, FileContents& out);
json::value to_json(const WriteFileParams& value);
Expected<void> from_json(const json::value& json, WriteFileParams& out);
json::value to_json(const CreateDirectoryParams& value);
Expected<void> from_json(const json::value& json, CreateDirectoryParams& out);
json::value to_json(const FileMetadata& value);
Expected<void> from_json(const json::value& json, FileMetadata& out);
json::value to_json(const DirectoryListing& value);
Expected<void> from_json(const json::value& json, DirectoryListing& out);
json::value to_json(const RemoveParams& value);
Expected<void> from_json(const json::value& json, RemoveParams& out);
json::value to_json(const CopyParams& value);
Expected<void> from_json(const json::value& json, CopyParams& out);
json::value to_json(const HttpRequestParams& value);
Expected<void> from_json(const json::value& json, HttpRequestParams& out);
json::value to_json(const HttpResponse& value);
Expected<void> from_json(const json::value& json, HttpResponse& out);
json::value to_json(const HttpBodyDelta& value);
Expected<void> from_json(const json::value& json, HttpBodyDelta& out);
json::value to_json(const HttpCancelParams& value);
Expected<void> from_json(const json::value& json, HttpCancelParams& out);

template <class T>
Expected<T> decode(const json::value& json) {
  T out;
  if (auto decoded = from_json(json, out); !decoded) return decoded.error();
  return out;
}

}  // namespace tether::exec
