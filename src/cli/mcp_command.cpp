// `tether mcp ...`: the configured MCP servers from the command line.
//
// Owns: the subcommands (list, tools, call, resources, read, prompts, prompt, add, remove), their
// options, which servers each one starts, what each asks the servers or the config file, and its
// exit code: 0 ok, 1 the tool returned isError, 2 usage or config error, 3 a server failed,
// 4 stdout or stderr could not be written, 130 interrupted, 141 the reader of stdout or stderr
// went away (EPIPE).
// Does not own: config, placement and server life cycles (host::Manager), config editing
// (host/config_edit.hpp), or how answers and failures look, human or --json (output.hpp).
// Data flows: options -> load_config -> Manager::start(the servers needed) -> one operation ->
// output.hpp -> stdout; status and errors -> stderr; SIGINT/SIGTERM or a failed write cancel
// startup or the operation, then every server is shut down before the process exits.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>
#include <thread>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <fmt/format.h>

#include "commands.hpp"
#include "output.hpp"
#include <tether/host/config_edit.hpp>
#include <tether/host/manager.hpp>

namespace tether::cli {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using host::ServerState;

enum Exit : int {
  kOk = 0,
  kToolError = 1,
  kUsage = 2,
  kServerFailed = 3,
  kOutputFailed = 4,
  kInterrupted = 130,
  kBrokenPipe = 141,  // 128 + SIGPIPE, what a shell reports for a writer its reader left
};

// What went wrong, as --json names it.
enum class Kind { usage, config, server, interrupted, output };

struct McpArgs {
  std::string command;  // the subcommand chosen
  std::string config_path;
  bool json = false;
  std::string server;
  std::string tool;
  std::string args_json;
  std::vector<std::string> args;  // --arg k=v
  std::string uri;
  std::string prompt;
  std::string name;
  std::vector<std::string> env;  // --env K=V
  std::string environment;
  std::vector<std::string> argv;  // add: -- CMD ARGS
};

// Failures as the user sees them: `error: <message>` on stderr and, with --json, one error object
// on stdout unless an answer is there already (list and tools answer when a server failed).
// Each returns the exit code.
class Errors {
 public:
  explicit Errors(bool json) : json_(json) {}
  int fail(Kind kind, std::string_view message) const {
    return report(kind, message, code_of(kind), true);
  }
  // A failure stderr has shown already (the startup view) or that needs no words there (Ctrl-C).
  int shown(Kind kind, std::string_view message) const {
    return report(kind, message, code_of(kind), false);
  }
  // A reader that went away is not told why; other write failures are, where they still can be.
  int output_failed(const WriteFailure& failure) const {
    const auto message =
        fmt::format("cannot write to {}: {}", failure.stream == Stream::out ? "stdout" : "stderr",
                    std::strerror(failure.error));
    const bool broken_pipe = failure.error == EPIPE;
    return report(Kind::output, message, broken_pipe ? kBrokenPipe : kOutputFailed, !broken_pipe);
  }

 private:
  static int code_of(Kind kind) {
    switch (kind) {
      case Kind::usage:
      case Kind::config:
        return kUsage;
      case Kind::interrupted:
        return kInterrupted;
      case Kind::server:
      case Kind::output:
        break;
    }
    return kServerFailed;
  }
  static std::string_view name_of(Kind kind) {
    constexpr std::string_view kNames[] = {"usage", "config", "server", "interrupted", "output"};
    return kNames[static_cast<std::size_t>(kind)];
  }
  int report(Kind kind, std::string_view message, int code, bool on_stderr) const {
    if (on_stderr) print_error(message);
    if (json_ && !wrote_stdout()) print_json_error(name_of(kind), message, code);
    return code;
  }
  bool json_;
};

std::string config_path(const McpArgs& args) {
  if (!args.config_path.empty()) return args.config_path;
  return host::tether_home(host::process_env) + "/config.toml";
}

// `k=v` pairs; values as JSON when they parse as JSON (numbers, true, {...}), else as text.
jsonrpc::Expected<json::object> key_values(const std::vector<std::string>& pairs, bool typed) {
  json::object out;
  for (const auto& pair : pairs) {
    auto equals = pair.find('=');
    if (equals == std::string::npos || equals == 0)
      return exec::invalid_params(fmt::format("--arg '{}' is not key=value", pair));
    auto key = pair.substr(0, equals);
    auto text = pair.substr(equals + 1);
    boost::system::error_code ec;
    auto parsed = typed ? json::parse(text, ec) : json::value{};
    out[key] = typed && !ec ? parsed : json::value(json::string(text));
  }
  return out;
}

jsonrpc::Expected<json::value> tool_arguments(const McpArgs& args) {
  json::object arguments;
  if (!args.args_json.empty()) {
    boost::system::error_code ec;
    auto parsed = json::parse(args.args_json, ec);
    if (ec) return exec::invalid_params(fmt::format("--args is not valid JSON: {}", ec.message()));
    if (!parsed.is_object())
      return exec::invalid_params(fmt::format("MCP tool arguments must be a JSON object, got {}",
                                              parsed.is_array()    ? "an array"
                                              : parsed.is_string() ? "a string"
                                                                   : "a scalar"));
    arguments = std::move(parsed.as_object());
  }
  auto pairs = key_values(args.args, true);
  if (!pairs) return pairs.error();
  for (auto& [key, value] : *pairs) arguments[key] = std::move(value);
  return json::value(std::move(arguments));
}

Kind kind_of(const jsonrpc::Error& error) {
  return error.code == jsonrpc::code::kInvalidParams || error.code == jsonrpc::code::kMethodNotFound
             ? Kind::usage
             : Kind::server;
}

// One `tether mcp` run that needs servers: start them, run the operation, shut down.
class Session {
 public:
  Session(McpArgs args, std::shared_ptr<host::Manager> manager, StartupView& view)
      : args_(std::move(args)), errors_(args_.json), manager_(std::move(manager)), view_(view) {}

  // The servers this command needs started (empty: every enabled server).
  std::vector<std::string> needed() const {
    const auto& c = args_.command;
    if (c == "call" ||
        ((c == "tools" || c == "resources" || c == "prompts" || c == "read" || c == "prompt") &&
         !args_.server.empty()))
      return {args_.server};
    return {};
  }

  asio::awaitable<int> run() {
    // Arguments are checked before anything starts.
    if (args_.command == "call") {
      auto arguments = tool_arguments(args_);
      if (!arguments) {
        view_.finish();
        co_return errors_.fail(Kind::usage, arguments.error().message);
      }
      arguments_ = std::move(*arguments);
    }
    auto summary = co_await manager_->start(needed());
    view_.finish();
    if (!summary) {
      // A status listing still shows every server, the required one's failure included.
      if (args_.command == "list") list();
      co_return errors_.fail(kind_of(summary.error()), summary.error().message);
    }
    failed_ = !summary->failed.empty() || !summary->cancelled.empty();
    // A command about one server stops when that server did not start (the view said why; an
    // interruption is reported by whoever interrupted).
    if (!needed().empty() && failed_)
      co_return summary->failed.empty()
          ? kInterrupted
          : errors_.shown(Kind::server, summary->failed.front().error);
    const auto& c = args_.command;
    if (c == "list") co_return list();
    if (c == "tools") co_return co_await tools();
    if (c == "call") co_return co_await call();
    if (c == "resources") co_return co_await resources();
    if (c == "read") co_return co_await read();
    if (c == "prompts") co_return co_await prompts();
    if (c == "prompt") co_return co_await prompt();
    co_return kUsage;
  }

 private:
  int partial() const { return failed_ ? kServerFailed : kOk; }

  std::vector<std::string> ready_servers() const {
    std::vector<std::string> out;
    for (const auto& info : manager_->servers())
      if (info.state == ServerState::ready) out.push_back(info.name);
    return out;
  }

  int list() const {
    print_servers(manager_->servers(), args_.json);
    return partial();
  }

  asio::awaitable<int> tools() {
    std::vector<host::OfferedTool> offered;
    for (auto& tool : manager_->tools())
      if (args_.server.empty() || tool.server == args_.server) offered.push_back(std::move(tool));
    print_tools(offered, args_.json);
    co_return partial();
  }

  asio::awaitable<int> call() {
    auto result = co_await manager_->call_tool(args_.server, args_.tool, std::move(arguments_));
    if (!result) co_return errors_.fail(kind_of(result.error()), result.error().message);
    const auto* is_error = result->if_contains("isError");
    const bool tool_error = is_error && is_error->is_bool() && is_error->get_bool();
    print_tool_result(*result, args_.json);
    co_return tool_error ? kToolError : kOk;
  }

  enum class Listing { resources, templates, prompts };

  // One listing of every ready server (or only SERVER / --server) whose capabilities include
  // it, each item tagged with its server.
  asio::awaitable<jsonrpc::Expected<json::array>> gather(Listing listing) {
    const std::string_view capability = listing == Listing::prompts ? "prompts" : "resources";
    json::array out;
    for (const auto& name : ready_servers()) {
      if (!args_.server.empty() && name != args_.server) continue;
      auto client = co_await manager_->use(name);
      if (!client) co_return client.error();
      if (!(*client)->server_capabilities().contains(capability)) continue;
      jsonrpc::Expected<json::array> items;
      if (listing == Listing::resources) {
        items = co_await (*client)->list_resources();
      } else if (listing == Listing::templates) {
        items = co_await (*client)->list_resource_templates();
      } else {
        items = co_await (*client)->list_prompts();
      }
      if (!items) co_return items.error();
      for (auto& item : *items) {
        if (!item.is_object()) continue;
        item.as_object()["server"] = name;
        out.push_back(std::move(item));
      }
    }
    co_return out;
  }

  asio::awaitable<int> resources() {
    auto resources = co_await gather(Listing::resources);
    if (!resources) co_return errors_.fail(Kind::server, resources.error().message);
    auto templates = co_await gather(Listing::templates);
    if (!templates) co_return errors_.fail(Kind::server, templates.error().message);
    print_resources(std::move(*resources), std::move(*templates), args_.json);
    co_return partial();
  }

  // The server to ask for `uri` or prompt `name`: --server, else the one listing it.
  asio::awaitable<jsonrpc::Expected<std::string>> owner(std::string what, std::string key,
                                                        std::string wanted) {
    if (!args_.server.empty()) co_return args_.server;
    auto items = co_await gather(what == "prompt" ? Listing::prompts : Listing::resources);
    if (!items) co_return items.error();
    std::vector<std::string> owners;
    for (const auto& item : *items)
      if (text_of(item.get_object(), key) == wanted)
        owners.push_back(text_of(item.get_object(), "server"));
    if (owners.size() == 1) co_return owners[0];
    if (owners.empty() && ready_servers().size() == 1) co_return ready_servers()[0];
    if (owners.empty())
      co_return exec::invalid_params(
          fmt::format("no MCP server lists {} '{}': name one with --server", what, wanted));
    co_return exec::invalid_params(fmt::format("{} '{}' is offered by {}: choose with --server",
                                               what, wanted, fmt::join(owners, ", ")));
  }

  // The session of owner(); null after printing why there is none (`code` says how to exit).
  asio::awaitable<std::shared_ptr<mcp::Client>> owner_session(std::string what, std::string key,
                                                              std::string wanted, int& code) {
    auto server = co_await owner(std::move(what), std::move(key), std::move(wanted));
    if (!server) {
      code = errors_.fail(kind_of(server.error()), server.error().message);
      co_return nullptr;
    }
    auto client = co_await manager_->use(*server);
    if (!client) {
      code = errors_.fail(Kind::server, client.error().message);
      co_return nullptr;
    }
    co_return *client;
  }

  asio::awaitable<int> read() {
    int code = kOk;
    auto client = co_await owner_session("resource", "uri", args_.uri, code);
    if (!client) co_return code;
    auto result = co_await client->read_resource(args_.uri);
    if (!result) co_return errors_.fail(kind_of(result.error()), result.error().message);
    print_resource(*result, args_.json);
    co_return kOk;
  }

  asio::awaitable<int> prompts() {
    auto prompts = co_await gather(Listing::prompts);
    if (!prompts) co_return errors_.fail(Kind::server, prompts.error().message);
    print_prompts(std::move(*prompts), args_.json);
    co_return partial();
  }

  asio::awaitable<int> prompt() {
    auto arguments = key_values(args_.args, false);
    if (!arguments) co_return errors_.fail(Kind::usage, arguments.error().message);
    int code = kOk;
    auto client = co_await owner_session("prompt", "name", args_.prompt, code);
    if (!client) co_return code;
    auto result = co_await client->get_prompt(args_.prompt, std::move(*arguments));
    if (!result) co_return errors_.fail(kind_of(result.error()), result.error().message);
    print_prompt(*result, args_.json);
    co_return kOk;
  }

  McpArgs args_;
  Errors errors_;
  std::shared_ptr<host::Manager> manager_;
  StartupView& view_;
  json::value arguments_;  // call's, checked before startup
  bool failed_ = false;
};

int run_with_servers(const McpArgs& args) {
  const Errors errors(args.json);
  const auto home = host::tether_home(host::process_env);
  auto config =
      host::load_config(config_path(args), home + "/environments.toml", !args.config_path.empty());
  if (!config) return errors.fail(Kind::config, config.error().message);

  asio::io_context io(1);
  StartupView view(args.command != "list");
  host::ManagerOptions options;
  options.on_status = [&view](const host::ServerStatus& status) { view.update(status); };
  auto manager = host::Manager::create(io.get_executor(), std::move(*config), std::move(options));

  int code = kOk;
  bool interrupted = false;
  bool stopped = false;
  asio::cancellation_signal cancel;
  // Ctrl-C, SIGTERM and a failed write (a reader that went away) end the run the same way:
  // startup and the operation cancelled, then every server shut down.
  auto stop = [&] {
    if (stopped) return;
    stopped = true;
    manager->cancel_startup();
    cancel.emit(asio::cancellation_type::terminal);
  };
  // Signals are awaited on a thread of their own: this one may be stuck writing to a reader that
  // does not read, and must still be told to stop.
  asio::io_context signal_io;
  asio::signal_set signals(signal_io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    abandon_blocked_writes();
    asio::post(io, [&] {
      interrupted = true;
      stop();
    });
  });
  std::thread signal_thread([&signal_io] { signal_io.run(); });
  struct StopWatching {
    asio::io_context& io;
    std::thread& thread;
    ~StopWatching() {
      io.stop();
      thread.join();
    }
  } stop_watching{signal_io, signal_thread};
  // The failed write may be deep inside a manager callback: the run stops after it returns.
  on_write_failure([&](const WriteFailure&) { asio::post(io, stop); });
  struct Unhook {
    ~Unhook() { on_write_failure(nullptr); }
  } unhook;

  Session session(args, manager, view);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        try {
          code = co_await asio::co_spawn(
              io, session.run(), asio::bind_cancellation_slot(cancel.slot(), asio::use_awaitable));
        } catch (const std::exception& error) {
          if (!stopped)
            errors.fail(Kind::server, fmt::format("unexpected error: {}", error.what()));
          code = kServerFailed;
        }
        view.finish();
        co_await manager->shutdown();
        // Everything is gone; what is still queued (e.g. a SIGKILL timer for a group that
        // already ended) has nothing left to do.
        io.stop();
      },
      asio::detached);
  io.run();
  // A failed write is reported by the caller, which sees every command's.
  if (interrupted && !write_failure()) return errors.shown(Kind::interrupted, "interrupted");
  return code;
}

int run_edit(const McpArgs& args) {
  const Errors errors(args.json);
  const auto path = config_path(args);
  // The edited file is checked as it will be loaded: with environments.toml beside it.
  const auto environments = host::tether_home(host::process_env) + "/environments.toml";
  jsonrpc::Expected<void> edited;
  if (args.command == "add") {
    host::NewServer server;
    server.name = args.name;
    server.command = args.argv.front();
    server.args.assign(args.argv.begin() + 1, args.argv.end());
    auto env = key_values(args.env, false);
    if (!env) return errors.fail(Kind::usage, env.error().message);
    for (const auto& [key, value] : *env) server.env[key] = std::string(value.get_string());
    if (!args.environment.empty()) server.environment = args.environment;
    edited = host::edit_config_file(
        path, [&](std::string_view text) { return host::add_server(text, path, server); },
        environments);
  } else {
    edited = host::edit_config_file(
        path, [&](std::string_view text) { return host::remove_server(text, path, args.name); },
        environments);
  }
  if (!edited) return errors.fail(Kind::config, edited.error().message);
  print_config_edit(args.command == "add" ? ConfigEdit::added : ConfigEdit::removed, args.name,
                    path, args.json);
  return kOk;
}

}  // namespace

Run add_mcp_command(CLI::App& app, std::vector<std::string> command) {
  auto* mcp = app.add_subcommand("mcp", "Use the configured MCP servers");
  mcp->require_subcommand(1);
  auto args = std::make_shared<McpArgs>();
  args->argv = std::move(command);
  mcp->add_option("--config", args->config_path,
                  "config file (default: $TETHER_HOME/config.toml, ~/.tether/config.toml)");
  mcp->add_flag("--json", args->json, "machine-readable output on stdout");

  auto sub = [&](const char* name, const char* what) {
    auto* command = mcp->add_subcommand(name, what);
    command->fallthrough();
    return command;
  };
  sub("list", "servers: where each runs, status, tool count, the error of failed ones");
  sub("tools", "tools with their qualified names")
      ->add_option("server", args->server, "only this server");
  auto* call = sub("call", "call a tool");
  call->add_option("server", args->server)->required();
  call->add_option("tool", args->tool, "the tool's name on that server")->required();
  call->add_option("--args", args->args_json, "arguments as a JSON object");
  call->add_option("--arg", args->args, "one argument, key=value (value as JSON when it parses)")
      ->allow_extra_args(false);
  sub("resources", "resources and resource templates")
      ->add_option("server", args->server, "only this server");
  auto* read = sub("read", "read a resource");
  read->add_option("uri", args->uri)->required();
  read->add_option("--server", args->server, "the server to ask");
  sub("prompts", "prompts")->add_option("server", args->server, "only this server");
  auto* prompt = sub("prompt", "get a prompt");
  prompt->add_option("name", args->prompt)->required();
  prompt->add_option("--server", args->server, "the server to ask");
  prompt->add_option("--arg", args->args, "one argument, key=value")->allow_extra_args(false);
  auto* add = sub("add", "add a stdio server to the config file: add NAME [options] -- CMD ARGS");
  add->add_option("name", args->name)->required();
  add->add_option("--env", args->env, "K=V for the server's environment")->allow_extra_args(false);
  add->add_option("--environment", args->environment, "where it runs: local, remote or an id");
  sub("remove", "remove a server from the config file")->add_option("name", args->name)->required();

  return [args, mcp] {
    args->command = mcp->get_subcommands().front()->get_name();
    const Errors errors(args->json);
    int code = kOk;
    if (args->command == "add" && args->argv.empty()) {
      code = errors.fail(
          Kind::usage,
          "add needs the server's command after --: tether mcp add NAME -- CMD ARGS...");
    } else if (args->command != "add" && !args->argv.empty()) {
      code = errors.fail(Kind::usage, fmt::format("unexpected arguments after --: {}",
                                                  fmt::join(args->argv, " ")));
    } else if (args->command == "add" || args->command == "remove") {
      code = run_edit(*args);
    } else {
      code = run_with_servers(*args);
    }
    // Output that did not reach its reader fails the command, whatever it did.
    if (auto failure = write_failure()) return errors.output_failed(*failure);
    return code;
  };
}

}  // namespace tether::cli
