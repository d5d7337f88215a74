// The JSON shapes of process API values, shared by the executor server and its client.
//
// Owns: ReadResult <-> `process/read` result, WriteStatus <-> its wire name. Does not own:
// params parsing (protocol.hpp) or method behaviour.
#pragma once

#include <optional>
#include <string_view>

#include <boost/json/value.hpp>

#include <tether/exec/process_api.hpp>
#include <tether/exec/protocol.hpp>

namespace tether::exec {

boost::json::value to_json(const ReadResult& result);
// Accepts what a tether or codex executor answers (unknown fields ignored).
Expected<ReadResult> read_result_from_json(const boost::json::value& value);

std::optional<WriteStatus> parse_write_status(std::string_view name);

}  // namespace tether::exec
