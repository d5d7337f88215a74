// Errors and paths, then the protocol's conversions in the order of protocol.hpp. Decoders read
// with Fields (fields.hpp); output chunks and file contents are base64 on the wire, bytes in
// memory.
#include <algorithm>
#include <filesystem>

#include <boost/url.hpp>
#include <fmt/format.h>

#include "fields.hpp"
#include <tether/exec/protocol.hpp>
#include <tether/jsonrpc/base64.hpp>

namespace tether::exec {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

}  // namespace

Error invalid_params(std::string message) {
  return jsonrpc::make_error(jsonrpc::code::kInvalidParams, std::move(message));
}

Error invalid_request(std::string message) {
  return jsonrpc::make_error(jsonrpc::code::kInvalidRequest, std::move(message));
}

std::optional<Error> nul_byte_error(std::string_view field, std::string_view value) {
  if (value.find('\0') == std::string_view::npos) return std::nullopt;
  return invalid_params(fmt::format("{} contains a NUL byte", field));
}

Expected<std::string> parse_path(std::string_view text) {
  if (text.starts_with('/')) {
    if (auto bad = nul_byte_error("path", text)) return *bad;
    return std::string(text);
  }
  const auto colon = text.find(':');
  auto uri = boost::urls::parse_uri(text);
  if (colon == std::string_view::npos || !uri) {
    return invalid_params(fmt::format("path must be absolute or a file: URI, got '{}'", text));
  }
  if (!iequals(uri->scheme(), "file")) {
    return invalid_params(fmt::format("unsupported path URI scheme `{}`", uri->scheme()));
  }
  if (uri->has_authority() && !uri->encoded_host().empty() &&
      !iequals(uri->encoded_host(), "localhost")) {
    return invalid_request(fmt::format("'{}' is invalid on 'linux'", text));
  }
  // Dot segments are removed from the decoded path (so %2E%2E counts too) by lexically_normal(),
  // which also stops ".." at the root; Boost.URL 1.81's normalize_path() does neither reliably.
  const std::string decoded = uri->path();
  if (decoded.empty() || decoded.front() != '/') {
    return invalid_params(fmt::format("path must be absolute or a file: URI, got '{}'", text));
  }
  std::string path = std::filesystem::path(decoded).lexically_normal().string();
  if (path.empty() || path.front() != '/') {
    return invalid_params(fmt::format("path must be absolute or a file: URI, got '{}'", text));
  }
  if (auto bad = nul_byte_error("path", path)) return *bad;
  return path;
}

std::string to_file_uri(std::string_view path) {
  // Encoded by hand rather than with url::set_path, which turns "/" into "/./" in Boost.URL 1.81.
  return "file://" + boost::urls::encode(path, boost::urls::pchars + '/');
}

// --- conversions ---------------------------------------------------------------------------

namespace {

json::value optional_value(const std::optional<std::string>& value) {
  return value ? json::value(*value) : json::value(nullptr);
}

json::object string_object(const std::map<std::string, std::string>& map) {
  json::object object;
  for (const auto& [name, value] : map) object[name] = value;
  return object;
}

json::array string_array(const std::vector<std::string>& strings) {
  json::array array;
  for (const auto& item : strings) array.emplace_back(item);
  return array;
}

constexpr std::pair<EnvPolicy::Inherit, std::string_view> kInheritNames[] = {
    {EnvPolicy::Inherit::all, "all"},
    {EnvPolicy::Inherit::core, "core"},
    {EnvPolicy::Inherit::none, "none"}};

constexpr std::pair<WriteStatus, std::string_view> kWriteStatusNames[] = {
    {WriteStatus::accepted, "accepted"},
    {WriteStatus::unknown_process, "unknownProcess"},
    {WriteStatus::starting, "starting"},
    {WriteStatus::stdin_closed, "stdinClosed"}};

}  // namespace

std::string_view to_string(WriteStatus status) {
  for (const auto& [value, name] : kWriteStatusNames)
    if (value == status) return name;
  return "accepted";
}

json::value to_json(const Empty&) {
  return json::object{};
}
Expected<void> from_json(const json::value&, Empty&) {
  return {};
}

json::value to_json(const json::object& value) {
  return value;
}
Expected<void> from_json(const json::value& json, json::object& out) {
  if (!json.is_object()) return invalid_params("expected an object");
  out = json.get_object();
  return {};
}

json::value to_json(const InitializeParams& value) {
  return json::object{{"clientName", value.client_name},
                      {"resumeSessionId", optional_value(value.resume_session_id)}};
}
Expected<void> from_json(const json::value& json, InitializeParams& out) {
  Fields f(json);
  out.client_name = f.string("clientName");
  out.resume_session_id = f.optional_string("resumeSessionId");
  return f.result();
}

json::value to_json(const InitializeResult& value) {
  return json::object{{"sessionId", value.session_id}, {"environmentInfo", value.environment_info}};
}
Expected<void> from_json(const json::value& json, InitializeResult& out) {
  Fields f(json);
  out.session_id = f.optional_string("sessionId").value_or("");
  if (const auto* info = f.find("environmentInfo"); info && info->is_object())
    out.environment_info = info->get_object();
  return f.result();
}

json::value to_json(const EnvironmentStatus& value) {
  return json::object{{"status", value.status}};
}
Expected<void> from_json(const json::value& json, EnvironmentStatus& out) {
  Fields f(json);
  out.status = f.string("status");
  return f.result();
}

json::value to_json(const EnvPolicy& value) {
  std::string_view inherit;
  for (const auto& [mode, name] : kInheritNames)
    if (mode == value.inherit) inherit = name;
  return json::object{{"inherit", inherit},
                      {"ignoreDefaultExcludes", value.ignore_default_excludes},
                      {"exclude", string_array(value.exclude)},
                      {"set", string_object(value.set)},
                      {"includeOnly", string_array(value.include_only)}};
}
Expected<void> from_json(const json::value& json, EnvPolicy& out) {
  Fields f(json, "envPolicy");
  const auto inherit = f.string("inherit");
  if (f.failed()) return f.result();
  const auto* mode = std::find_if(std::begin(kInheritNames), std::end(kInheritNames),
                                  [&](const auto& entry) { return entry.second == inherit; });
  if (mode == std::end(kInheritNames))
    return invalid_params(
        fmt::format("unknown variant `{}`, expected one of `core`, `all`, `none`", inherit));
  out.inherit = mode->first;
  out.ignore_default_excludes = f.boolean("ignoreDefaultExcludes");
  out.exclude = f.strings("exclude");
  out.include_only = f.strings("includeOnly");
  if (!f.failed() && !f.find("set")) f.fail(invalid_params("missing field `set` in envPolicy"));
  out.set = f.string_map("set");
  return f.result();
}

json::value to_json(const StartParams& value) {
  json::object object{{"processId", value.process_id},
                      {"argv", string_array(value.argv)},
                      {"cwd", nullptr},
                      {"env", string_object(value.env)},
                      {"tty", value.tty},
                      {"pipeStdin", value.pipe_stdin},
                      {"arg0", optional_value(value.arg0)},
                      {"envPolicy", nullptr}};
  if (value.cwd) object["cwd"] = to_file_uri(*value.cwd);
  if (value.env_policy) object["envPolicy"] = to_json(*value.env_policy);
  return object;
}
Expected<void> from_json(const json::value& json, StartParams& out) {
  Fields f(json);
  out.process_id = f.string("processId");
  out.argv = f.strings("argv");
  out.cwd = f.optional_path("cwd");
  // Codex features that need a sandbox or a managed network: refused, never half-done.
  for (auto field : {"sandbox", "managedNetwork", "networkProxy", "shellSnapshot"}) f.refuse(field);
  if (f.optional_bool("enforceManagedNetwork").value_or(false))
    f.fail(invalid_params("enforceManagedNetwork is not supported by this executor"));
  out.tty = f.optional_bool("tty").value_or(false);
  out.pipe_stdin = f.optional_bool("pipeStdin").value_or(false);
  out.arg0 = f.optional_string("arg0");
  if (f.failed()) return f.result();
  if (const auto* policy = f.find("envPolicy")) {
    auto decoded = decode<EnvPolicy>(*policy);
    if (!decoded) return decoded.error();
    out.env_policy = std::move(*decoded);
  }
  out.env = f.string_map("env");
  return f.result();
}

json::value to_json(const StartResult& value) {
  return json::object{{"processId", value.process_id}, {"sandboxType", value.sandbox_type}};
}
Expected<void> from_json(const json::value& json, StartResult& out) {
  Fields f(json);
  out.process_id = f.optional_string("processId").value_or("");
  out.sandbox_type = f.optional_string("sandboxType").value_or("none");
  return f.result();
}

json::value to_json(const ReadParams& value) {
  return json::object{{"processId", value.process_id},
                      {"afterSeq", value.after_seq},
                      {"maxBytes", value.max_bytes ? json::value(*value.max_bytes) : nullptr},
                      {"waitMs", value.wait_ms}};
}
Expected<void> from_json(const json::value& json, ReadParams& out) {
  Fields f(json);
  out.process_id = f.string("processId");
  const auto after = f.optional_int("afterSeq");
  const auto max_bytes = f.optional_int("maxBytes");
  const auto wait_ms = f.optional_int("waitMs");
  if (f.failed()) return f.result();
  if (after.value_or(0) < 0 || max_bytes.value_or(0) < 0 || wait_ms.value_or(0) < 0)
    return invalid_params("afterSeq, maxBytes and waitMs must not be negative");
  out.after_seq = static_cast<std::uint64_t>(after.value_or(0));
  if (max_bytes) out.max_bytes = static_cast<std::uint64_t>(*max_bytes);
  out.wait_ms = static_cast<std::uint64_t>(wait_ms.value_or(0));
  return {};
}

json::value to_json(const ReadResult& value) {
  json::array chunks;
  chunks.reserve(value.chunks.size());
  for (const auto& chunk : value.chunks) {
    chunks.push_back(json::object{{"seq", chunk.seq},
                                  {"stream", chunk.stream},
                                  {"chunk", jsonrpc::base64_encode(chunk.bytes)}});
  }
  return json::object{{"chunks", std::move(chunks)},
                      {"nextSeq", value.next_seq},
                      {"exited", value.exited},
                      {"exitCode", value.exit_code ? json::value(*value.exit_code) : nullptr},
                      {"closed", value.closed},
                      {"failure", optional_value(value.failure)},
                      {"sandboxDenied", false}};
}
Expected<void> from_json(const json::value& json, ReadResult& out) {
  Fields f(json);
  const auto* chunks = f.find("chunks");
  if (!chunks || !chunks->is_array()) return invalid_params("missing field `chunks`");
  for (const auto& item : chunks->get_array()) {
    Fields chunk(item, "a chunk");
    OutputEvent event;
    event.seq = chunk.uint("seq");
    event.stream = chunk.string("stream");
    event.bytes = chunk.base64("chunk");
    if (chunk.failed()) return chunk.result();
    out.chunks.push_back(std::move(event));
  }
  out.next_seq = f.optional_uint("nextSeq").value_or(1);
  out.exited = f.optional_bool("exited").value_or(false);
  if (auto code = f.optional_int("exitCode")) out.exit_code = static_cast<int>(*code);
  out.closed = f.optional_bool("closed").value_or(false);
  out.failure = f.optional_string("failure");
  return f.result();
}

json::value to_json(const WriteParams& value) {
  return json::object{{"processId", value.process_id},
                      {"chunk", jsonrpc::base64_encode(value.bytes)},
                      {"writeId", optional_value(value.write_id)}};
}
Expected<void> from_json(const json::value& json, WriteParams& out) {
  Fields f(json);
  out.process_id = f.string("processId");
  out.bytes = f.base64("chunk");
  out.write_id = f.optional_string("writeId");
  if (out.write_id && out.write_id->empty()) f.fail(invalid_params("writeId must not be empty"));
  return f.result();
}

json::value to_json(const WriteResult& value) {
  return json::object{{"status", to_string(value.status)}};
}
Expected<void> from_json(const json::value& json, WriteResult& out) {
  Fields f(json);
  const auto status = f.string("status");
  if (f.failed()) return f.result();
  for (const auto& [value, name] : kWriteStatusNames) {
    if (name == status) {
      out.status = value;
      return {};
    }
  }
  return invalid_params(fmt::format("unknown write status `{}`", status));
}

json::value to_json(const ProcessRef& value) {
  return json::object{{"processId", value.process_id}};
}
Expected<void> from_json(const json::value& json, ProcessRef& out) {
  Fields f(json);
  out.process_id = f.string("processId");
  return f.result();
}

json::value to_json(const TerminateResult& value) {
  return json::object{{"running", value.running}};
}
Expected<void> from_json(const json::value& json, TerminateResult& out) {
  Fields f(json);
  out.running = f.optional_bool("running").value_or(false);
  return f.result();
}

json::value to_json(const SignalParams& value) {
  return json::object{{"processId", value.process_id}, {"signal", "interrupt"}};
}
Expected<void> from_json(const json::value& json, SignalParams& out) {
  Fields f(json);
  out.process_id = f.string("processId");
  const auto signal = f.string("signal");
  if (!f.failed() && signal != "interrupt")
    f.fail(invalid_params(fmt::format("unknown variant `{}`, expected `interrupt`", signal)));
  return f.result();
}

std::string output_notification(std::string_view process_id_json, std::uint64_t seq,
                                std::string_view stream, std::string_view bytes) {
  std::string message;
  message.reserve(bytes.size() / 3 * 4 + 128 + process_id_json.size());
  message += R"({"jsonrpc":"2.0","method":"process/output","params":{"processId":)";
  message += process_id_json;
  message += R"(,"seq":)";
  message += std::to_string(seq);
  message += R"(,"stream":")";
  message += stream;
  message += R"(","chunk":")";
  jsonrpc::base64_encode_append(message, bytes);
  message += R"("}})";
  return message;
}

Expected<void> from_json(const json::value& json, OutputNotice& out) {
  Fields f(json);
  out.process_id = f.string("processId");
  out.output.seq = f.uint("seq");
  out.output.stream = f.string("stream");
  out.output.bytes = f.base64("chunk");
  return f.result();
}

json::value to_json(const ExitedNotice& value) {
  json::object object{{"processId", value.process_id},
                      {"seq", value.seq},
                      {"exitCode", value.exit_code},
                      {"sandboxDenied", false}};
  if (value.signal) object["signal"] = *value.signal;
  return object;
}
Expected<void> from_json(const json::value& json, ExitedNotice& out) {
  Fields f(json);
  out.process_id = f.string("processId");
  out.seq = f.uint("seq");
  out.exit_code = static_cast<int>(f.optional_int("exitCode").value_or(-1));
  if (auto signal = f.optional_int("signal")) out.signal = static_cast<int>(*signal);
  return f.result();
}

json::value to_json(const ClosedNotice& value) {
  return json::object{{"processId", value.process_id}, {"seq", value.seq}};
}
Expected<void> from_json(const json::value& json, ClosedNotice& out) {
  Fields f(json);
  out.process_id = f.string("processId");
  out.seq = f.uint("seq");
  return f.result();
}

json::value to_json(const PathParams& value) {
  return json::object{{"path", to_file_uri(value.path)}};
}
Expected<void> from_json(const json::value& json, PathParams& out) {
  Fields f(json);
  f.refuse("sandbox");
  out.path = f.path("path");
  return f.result();
}

json::value to_json(const ReadFileParams& value) {
  json::object object{{"path", to_file_uri(value.path)}};
  if (value.follow_symlinks) object["followSymlinks"] = *value.follow_symlinks;
  return object;
}
Expected<void> from_json(const json::value& json, ReadFileParams& out) {
  Fields f(json);
  f.refuse("sandbox");
  out.path = f.path("path");
  out.follow_symlinks = f.optional_bool("followSymlinks");
  return f.result();
}

json::value to_json(const FileContents& value) {
  return json::object{{"dataBase64", jsonrpc::base64_encode(value.bytes)}};
}
Expected<void> from_json(const json::value& json, FileContents& out) {
  Fields f(json);
  out.bytes = f.base64("dataBase64");
  return f.result();
}

json::value to_json(const WriteFileParams& value) {
  return json::object{{"path", to_file_uri(value.path)},
                      {"dataBase64", jsonrpc::base64_encode(value.bytes)}};
}
Expected<void> from_json(const json::value& json, WriteFileParams& out) {
  Fields f(json);
  f.refuse("sandbox");
  out.path = f.path("path");
  out.bytes = f.base64("dataBase64");
  return f.result();
}

json::value to_json(const CreateDirectoryParams& value) {
  return json::object{{"path", to_file_uri(value.path)}, {"recursive", value.recursive}};
}
Expected<void> from_json(const json::value& json, CreateDirectoryParams& out) {
  Fields f(json);
  f.refuse("sandbox");
  out.path = f.path("path");
  out.recursive = f.optional_bool("recursive").value_or(true);
  return f.result();
}

json::value to_json(const FileMetadata& value) {
  return json::object{{"isDirectory", value.is_directory},    {"isFile", value.is_file},
                      {"isSymlink", value.is_symlink},        {"createdAtMs", value.created_at_ms},
                      {"modifiedAtMs", value.modified_at_ms}, {"size", value.size}};
}
Expected<void> from_json(const json::value& json, FileMetadata& out) {
  Fields f(json);
  out.is_directory = f.optional_bool("isDirectory").value_or(false);
  out.is_file = f.optional_bool("isFile").value_or(false);
  out.is_symlink = f.optional_bool("isSymlink").value_or(false);
  out.created_at_ms = f.optional_int("createdAtMs").value_or(0);
  out.modified_at_ms = f.optional_int("modifiedAtMs").value_or(0);
  out.size = f.optional_uint("size").value_or(0);
  return f.result();
}

json::value to_json(const DirectoryListing& value) {
  json::array entries;
  entries.reserve(value.entries.size());
  for (const auto& entry : value.entries) {
    entries.push_back(json::object{{"fileName", entry.file_name},
                                   {"isDirectory", entry.is_directory},
                                   {"isFile", entry.is_file}});
  }
  return json::object{{"entries", std::move(entries)}};
}
Expected<void> from_json(const json::value& json, DirectoryListing& out) {
  Fields f(json);
  const auto* entries = f.find("entries");
  if (!entries || !entries->is_array()) return invalid_params("missing field `entries`");
  for (const auto& item : entries->get_array()) {
    Fields entry(item, "an entry");
    DirectoryEntry parsed;
    parsed.file_name = entry.string("fileName");
    parsed.is_directory = entry.optional_bool("isDirectory").value_or(false);
    parsed.is_file = entry.optional_bool("isFile").value_or(false);
    if (entry.failed()) return entry.result();
    out.entries.push_back(std::move(parsed));
  }
  return f.result();
}

json::value to_json(const RemoveParams& value) {
  return json::object{
      {"path", to_file_uri(value.path)}, {"recursive", value.recursive}, {"force", value.force}};
}
Expected<void> from_json(const json::value& json, RemoveParams& out) {
  Fields f(json);
  f.refuse("sandbox");
  out.path = f.path("path");
  out.recursive = f.optional_bool("recursive").value_or(true);
  out.force = f.optional_bool("force").value_or(true);
  return f.result();
}

json::value to_json(const CopyParams& value) {
  return json::object{{"sourcePath", to_file_uri(value.source_path)},
                      {"destinationPath", to_file_uri(value.destination_path)},
                      {"recursive", value.recursive}};
}
Expected<void> from_json(const json::value& json, CopyParams& out) {
  Fields f(json);
  f.refuse("sandbox");
  out.source_path = f.path("sourcePath");
  out.destination_path = f.path("destinationPath");
  out.recursive = f.optional_bool("recursive").value_or(false);
  return f.result();
}

namespace {

json::array headers_json(const fetch::Headers& headers) {
  json::array out;
  out.reserve(headers.size());
  for (const auto& header : headers)
    out.push_back(json::object{{"name", header.name}, {"value", header.value}});
  return out;
}

fetch::Headers headers_from(Fields& f) {
  fetch::Headers out;
  const auto* headers = f.find("headers");
  if (!headers || f.failed()) return out;
  if (!headers->is_array()) {
    f.fail(invalid_params("headers must be an array of {name, value} objects"));
    return out;
  }
  for (const auto& item : headers->get_array()) {
    Fields header(item, "a header");
    fetch::Header parsed{header.string("name"), header.string("value")};
    if (header.failed()) {
      f.fail(header.result().error());
      return out;
    }
    out.push_back(std::move(parsed));
  }
  return out;
}

}  // namespace

json::value to_json(const HttpRequestParams& value) {
  json::object out{
      {"method", value.method},
      {"url", value.url},
      {"headers", headers_json(value.headers)},
      {"streamResponse", value.stream_response},
      {"redirectPolicy", value.redirect_policy == fetch::Redirects::stop ? "stop" : "follow"}};
  // Absent rather than null, as codex's own client sends them (codex refuses a null requestId).
  if (value.request_id) out["requestId"] = *value.request_id;
  if (value.body) out["bodyBase64"] = jsonrpc::base64_encode(*value.body);
  if (value.timeout_ms) out["timeoutMs"] = *value.timeout_ms;
  return out;
}
Expected<void> from_json(const json::value& json, HttpRequestParams& out) {
  Fields f(json);
  out.method = f.string("method");
  out.url = f.string("url");
  out.headers = headers_from(f);
  if (f.find("bodyBase64")) out.body = f.base64("bodyBase64");
  const auto timeout = f.optional_int("timeoutMs");
  out.request_id = f.optional_string("requestId");
  out.stream_response = f.optional_bool("streamResponse").value_or(false);
  const auto policy = f.optional_string("redirectPolicy");
  if (f.failed()) return f.result();
  if (timeout && *timeout < 0) return invalid_params("timeoutMs must not be negative");
  if (timeout) out.timeout_ms = static_cast<std::uint64_t>(*timeout);
  if (policy && *policy == "stop") {
    out.redirect_policy = fetch::Redirects::stop;
  } else if (policy && *policy != "follow") {
    return invalid_params(
        fmt::format("unknown variant `{}`, expected `follow` or `stop`", *policy));
  }
  if (out.stream_response && (!out.request_id || out.request_id->empty()))
    return invalid_params("http/request streamResponse requires requestId");
  return {};
}

json::value to_json(const HttpResponse& value) {
  return json::object{{"status", value.status},
                      {"headers", headers_json(value.headers)},
                      {"bodyBase64", jsonrpc::base64_encode(value.body)}};
}
Expected<void> from_json(const json::value& json, HttpResponse& out) {
  Fields f(json);
  const auto status = f.uint("status");
  out.headers = headers_from(f);
  if (f.find("bodyBase64")) out.body = f.base64("bodyBase64");
  if (f.failed()) return f.result();
  if (status < 100 || status > 999) return invalid_params(fmt::format("invalid status {}", status));
  out.status = static_cast<unsigned>(status);
  return {};
}

json::value to_json(const HttpBodyDelta& value) {
  return json::object{{"requestId", value.request_id},
                      {"seq", value.seq},
                      {"deltaBase64", jsonrpc::base64_encode(value.bytes)},
                      {"done", value.done},
                      {"error", optional_value(value.error)}};
}
Expected<void> from_json(const json::value& json, HttpBodyDelta& out) {
  Fields f(json);
  out.request_id = f.string("requestId");
  out.seq = f.uint("seq");
  if (f.find("deltaBase64")) out.bytes = f.base64("deltaBase64");
  out.done = f.optional_bool("done").value_or(false);
  out.error = f.optional_string("error");
  return f.result();
}

json::value to_json(const HttpCancelParams& value) {
  return json::object{{"requestId", value.request_id}};
}
Expected<void> from_json(const json::value& json, HttpCancelParams& out) {
  Fields f(json);
  out.request_id = f.string("requestId");
  return f.result();
}

}  // namespace tether::exec
