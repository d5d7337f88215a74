// JSON shapes of process API values. Output chunks are base64 on the wire, bytes in memory.
#include "wire.hpp"

#include <boost/json.hpp>

#include <tether/exec/base64.hpp>

namespace tether::exec {
namespace json = boost::json;

std::string_view to_string(WriteStatus status) {
  switch (status) {
    case WriteStatus::accepted:
      return "accepted";
    case WriteStatus::unknown_process:
      return "unknownProcess";
    case WriteStatus::starting:
      return "starting";
    case WriteStatus::stdin_closed:
      return "stdinClosed";
  }
  return "accepted";
}

std::optional<WriteStatus> parse_write_status(std::string_view name) {
  for (auto status : {WriteStatus::accepted, WriteStatus::unknown_process, WriteStatus::starting,
                      WriteStatus::stdin_closed}) {
    if (to_string(status) == name) return status;
  }
  return std::nullopt;
}

json::value to_json(const ReadResult& result) {
  json::array chunks;
  chunks.reserve(result.chunks.size());
  for (const auto& chunk : result.chunks) {
    chunks.push_back(json::object{
        {"seq", chunk.seq}, {"stream", chunk.stream}, {"chunk", base64_encode(chunk.bytes)}});
  }
  json::object object{{"chunks", std::move(chunks)}, {"nextSeq", result.next_seq},
                      {"exited", result.exited},     {"exitCode", nullptr},
                      {"closed", result.closed},     {"failure", nullptr},
                      {"sandboxDenied", false}};
  if (result.exit_code) object["exitCode"] = *result.exit_code;
  if (result.failure) object["failure"] = *result.failure;
  return object;
}

namespace {

Error malformed(std::string_view what) {
  return jsonrpc::make_error(jsonrpc::code::kInternalError,
                             "malformed process/read result: " + std::string(what));
}

std::optional<std::uint64_t> as_seq(const json::value* value) {
  if (!value) return std::nullopt;
  if (value->is_uint64()) return value->as_uint64();
  if (value->is_int64() && value->as_int64() >= 0)
    return static_cast<std::uint64_t>(value->as_int64());
  return std::nullopt;
}

}  // namespace

Expected<ReadResult> read_result_from_json(const json::value& value) {
  const auto* object = value.if_object();
  if (!object) return malformed("not an object");
  ReadResult result;
  const auto* chunks = object->if_contains("chunks");
  if (!chunks || !chunks->is_array()) return malformed("chunks");
  for (const auto& item : chunks->get_array()) {
    const auto* chunk = item.if_object();
    if (!chunk) return malformed("chunk");
    const auto seq = as_seq(chunk->if_contains("seq"));
    const auto* stream = chunk->if_contains("stream");
    const auto* data = chunk->if_contains("chunk");
    if (!seq || !stream || !stream->is_string() || !data || !data->is_string())
      return malformed("chunk fields");
    auto bytes = base64_decode(data->get_string());
    if (!bytes) return malformed("chunk base64");
    result.chunks.push_back(
        OutputEvent{*seq, std::string(stream->get_string()), std::move(*bytes)});
  }
  if (auto next = as_seq(object->if_contains("nextSeq"))) result.next_seq = *next;
  if (const auto* exited = object->if_contains("exited"); exited && exited->is_bool())
    result.exited = exited->get_bool();
  if (const auto* code = object->if_contains("exitCode"); code && code->is_int64())
    result.exit_code = static_cast<int>(code->get_int64());
  if (const auto* closed = object->if_contains("closed"); closed && closed->is_bool())
    result.closed = closed->get_bool();
  if (const auto* failure = object->if_contains("failure"); failure && failure->is_string())
    result.failure = std::string(failure->get_string());
  return result;
}

}  // namespace tether::exec
