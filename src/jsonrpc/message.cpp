// Parsing and serializing JSON-RPC messages. Parsing is strict about ids (integers that fit in
// 64 bits, or strings) and lenient about the "jsonrpc" member, which codex 0.169 clients omit.
#include <boost/json.hpp>

#include <tether/jsonrpc/message.hpp>

namespace tether::jsonrpc {
namespace {

Invalid invalid(std::string message, std::optional<Id> id = std::nullopt) {
  return Invalid{make_error(code::kInvalidRequest, std::move(message)), std::move(id)};
}

// Ids: 64-bit signed integers or strings. Boost.JSON stores integers beyond INT64_MAX as uint64
// and fractions or larger values as double; both are out of range here.
std::optional<Id> to_id(const json::value& v) {
  if (v.is_int64()) return Id{v.get_int64()};
  if (v.is_string()) return Id{std::string(v.get_string())};
  return std::nullopt;
}

std::optional<Error> parse_error_object(const json::value& v) {
  const auto* obj = v.if_object();
  if (!obj) return std::nullopt;
  const auto* c = obj->if_contains("code");
  const auto* m = obj->if_contains("message");
  if (!c || !c->is_int64() || !m || !m->is_string()) return std::nullopt;
  Error e{static_cast<int>(c->get_int64()), std::string(m->get_string()), {}};
  if (const auto* d = obj->if_contains("data")) e.data = *d;
  return e;
}

void append_envelope_start(json::object& o) {
  o["jsonrpc"] = "2.0";
}

}  // namespace

json::value to_json(const Id& id) {
  return std::visit([](const auto& v) { return json::value(v); }, id);
}

std::string to_string(const Id& id) {
  if (const auto* i = std::get_if<std::int64_t>(&id)) return std::to_string(*i);
  return std::get<std::string>(id);
}

boost::system::result<Message, Invalid> parse(std::string_view text) {
  boost::system::error_code ec;
  json::value root = json::parse(text, ec);
  if (ec) return Invalid{make_error(code::kParseError, "parse error: " + ec.message()), {}};
  auto* obj = root.if_object();
  if (!obj) return invalid("a message must be a JSON object");

  std::optional<Id> id;
  const json::value* raw_id = obj->if_contains("id");
  if (raw_id && !raw_id->is_null()) {
    id = to_id(*raw_id);
    if (!id) return invalid("id must be a string or a 64-bit integer");
  }
  if (const auto* version = obj->if_contains("jsonrpc")) {
    if (!version->is_string() || version->get_string() != "2.0")
      return invalid("jsonrpc must be \"2.0\"", id);
  }

  json::value params;
  if (const auto* p = obj->if_contains("params")) params = *p;

  if (const auto* method = obj->if_contains("method")) {
    if (!method->is_string()) return invalid("method must be a string", id);
    std::string name(method->get_string());
    if (!raw_id) return Message{Notification{std::move(name), std::move(params)}};
    if (!id) return invalid("id must be a string or a 64-bit integer");
    return Message{Request{std::move(*id), std::move(name), std::move(params)}};
  }

  const auto* result = obj->if_contains("result");
  const auto* error = obj->if_contains("error");
  if (!raw_id) return invalid("a message needs a method or an id");
  if ((result != nullptr) == (error != nullptr))
    return invalid("a response carries exactly one of result and error", id);
  if (result) return Message{Response{std::move(id), Reply{*result}}};
  auto parsed = parse_error_object(*error);
  if (!parsed)
    return invalid("error must be an object with an integer code and a string message", id);
  return Message{Response{std::move(id), Reply{boost::system::in_place_error, std::move(*parsed)}}};
}

std::string serialize(const Request& request) {
  json::object o;
  append_envelope_start(o);
  o["id"] = to_json(request.id);
  o["method"] = request.method;
  if (!request.params.is_null()) o["params"] = request.params;
  return json::serialize(o);
}

std::string serialize(const Notification& notification) {
  json::object o;
  append_envelope_start(o);
  o["method"] = notification.method;
  if (!notification.params.is_null()) o["params"] = notification.params;
  return json::serialize(o);
}

std::string serialize(const Response& response) {
  json::object o;
  append_envelope_start(o);
  o["id"] = response.id ? to_json(*response.id) : json::value(nullptr);
  if (response.reply) {
    o["result"] = *response.reply;
  } else {
    const Error& e = response.reply.error();
    json::object err{{"code", e.code}, {"message", e.message}};
    if (e.data) err["data"] = *e.data;
    o["error"] = std::move(err);
  }
  return json::serialize(o);
}

std::string serialize(const Message& message) {
  return std::visit([](const auto& m) { return serialize(m); }, message);
}

}  // namespace tether::jsonrpc
