// `tether mcp ...`: the configured MCP servers from the command line (docs/cli.md).
//
// Owns: the subcommands (list, tools, tool, call, resources, read, prompts, prompt, get, add,
// remove) as one table, which both builds the command line and runs the subcommand chosen: each
// one's help, its arguments, which servers it starts and its handler; what each handler asks the
// servers or the config file, and its exit code: 0 ok, 1 the tool returned isError, 2 usage or
// config error, 3 a server failed or answered with an error, 4 stdout or stderr could not be
// written, 130 interrupted, 141 the reader of stdout or stderr went away (EPIPE).
// Does not own: config, placement and server life cycles (host::Manager), config editing
// (host/config_edit.hpp), tool arguments (tool_arguments.hpp), or how answers and failures look,
// human or --json (output.hpp).
// Data flows: options -> the subcommand's entry -> load_config -> Manager::start(the servers it
// needs) -> its handler -> output.hpp -> stdout; status and errors -> stderr; SIGINT/SIGTERM or a
// failed write cancel startup or the handler, then every server is shut down before the process
// exits. get, add, remove and environments: options -> the config file -> output.hpp.
// import: import_command.cpp.
#include <cerrno>
#include <csignal>
#include <cstring>
#include <functional>
#include <map>
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
#include <fmt/format.h>

#include "commands.hpp"
#include "output.hpp"
#include "server_source.hpp"
#include "tool_arguments.hpp"
#include <tether/host/config_edit.hpp>
#include <tether/host/did_you_mean.hpp>
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

// Every subcommand's arguments; each binds the ones it takes.
struct McpArgs {
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
  std::string gateway;            // --gateway URL
  bool long_form = false;         // tools --long
  // environments: the action (empty: list) and how add reaches the executor.
  std::string environment_action;
  std::string url;  // environments add --url, add --url
  std::string token_env_var;
  std::string token_file;
  bool spawn = false;
  std::string bearer_token_env_var;  // add
  std::vector<std::string> headers;  // add --header K=V
  ImportArgs import;
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

std::string config_path(const std::string& config_option) {
  if (!config_option.empty()) return config_option;
  return host::tether_home(host::process_env) + "/config.toml";
}

// codex's environments.toml, read beside the config.
std::string environments_path() {
  return host::tether_home(host::process_env) + "/environments.toml";
}

jsonrpc::Error usage_error(std::string message) {
  return jsonrpc::make_error(jsonrpc::code::kInvalidParams, std::move(message));
}

// `k=v` pairs as text (prompt arguments, --env).
jsonrpc::Expected<std::map<std::string, std::string>> text_pairs(
    const std::vector<std::string>& pairs, std::string_view option) {
  std::map<std::string, std::string> out;
  for (const auto& pair : pairs) {
    auto split = key_value(pair, option);
    if (!split) return split.error();
    out[split->first] = std::move(split->second);
  }
  return out;
}

// What a failure of tether's own (a start, a lookup) says about the command line. The server's
// answers are Kind::server whatever their code: an unknown tool or URI is the server's to say.
Kind kind_of(const jsonrpc::Error& error) {
  return error.code == jsonrpc::code::kInvalidParams || error.code == jsonrpc::code::kMethodNotFound
             ? Kind::usage
             : Kind::server;
}

class Session;

// Which servers a subcommand needs started before its handler runs.
enum class Servers {
  none,   // it reads or edits the config file; nothing starts
  every,  // every enabled server
  named,  // the one SERVER (or --server) names; every enabled one when it names none
};

// One `tether mcp` subcommand, as the command line offers it and as it runs.
struct Subcommand {
  std::string_view name;
  std::string_view help;
  // Declares its positional arguments and options on its CLI11 subcommand (null: none).
  void (*arguments)(CLI::App& command, McpArgs& args) = nullptr;
  Servers servers = Servers::every;
  // Its answer shows every server's status, failures included: the startup view does not print
  // them again, and a startup that failed (a required server) still gets the answer.
  bool shows_failures = false;
  // It takes the words after `--` (add: the server's command line; environments add: the
  // executor's) and checks them itself; without it, any are a usage error.
  bool takes_command = false;
  // With servers: checks its arguments before any server starts (null: nothing to check) ...
  jsonrpc::Expected<void> (Session::*check)() = nullptr;
  // ... and answers once they are started.
  asio::awaitable<int> (Session::*run)() = nullptr;
  // Servers::none: the whole subcommand (it reads or edits the config file).
  int (*edit)(const McpArgs& args, const Errors& errors) = nullptr;
};

// One `tether mcp` run that needs servers: start them, run the subcommand's handler, shut down.
class Session {
 public:
  Session(const Subcommand& subcommand, McpArgs args, ServerSource& servers, StartupView& view)
      : subcommand_(subcommand),
        args_(std::move(args)),
        errors_(args_.json),
        servers_(servers),
        view_(view) {}

  asio::awaitable<int> run() {
    // Arguments are checked before anything starts.
    if (subcommand_.check) {
      auto checked = (this->*subcommand_.check)();
      if (!checked) {
        view_.finish();
        co_return errors_.fail(Kind::usage, checked.error().message);
      }
    }
    auto summary = co_await servers_.start(needed());
    view_.finish();
    if (!summary) {
      // A status listing still shows every server, the required one's failure included.
      if (subcommand_.shows_failures && !servers_.servers().empty())
        co_await (this->*subcommand_.run)();
      co_return errors_.fail(kind_of(summary.error()), summary.error().message);
    }
    failed_ = !summary->failed.empty() || !summary->cancelled.empty();
    // A command about one server stops when that server did not start (the view said why; an
    // interruption is reported by whoever interrupted).
    if (!needed().empty() && failed_)
      co_return summary->failed.empty()
          ? kInterrupted
          : errors_.shown(Kind::server, summary->failed.front().error);
    co_return co_await (this->*subcommand_.run)();
  }

  // The handlers the subcommand table names.

  jsonrpc::Expected<void> check_call() {
    auto arguments = read_tool_arguments(args_.args_json, args_.args);
    if (!arguments) return arguments.error();
    arguments_ = std::move(*arguments);
    return {};
  }

  asio::awaitable<int> list() {
    auto servers = servers_.servers();
    print_servers(servers, args_.json);
    // An empty table says nothing about what to do next.
    if (servers.empty() && !args_.json)
      write_err(
          "no MCP servers configured; add one with `tether mcp add NAME -- COMMAND [ARGS...]`, "
          "or a [mcp_servers.NAME] table with `command` (stdio) or `url` (streamable HTTP) in "
          "the config file\n");
    co_return partial();
  }

  asio::awaitable<int> tools() {
    std::vector<host::OfferedTool> offered;
    for (auto& tool : servers_.tools())
      if (args_.server.empty() || tool.server == args_.server) offered.push_back(std::move(tool));
    std::vector<host::ServerInfo> failed;
    for (auto& info : servers_.servers())
      if (info.state == ServerState::failed) failed.push_back(std::move(info));
    print_tools(offered, args_.json, args_.long_form, failed);
    co_return partial();
  }

  asio::awaitable<int> tool() {
    auto tool = named_tool();
    if (!tool) {
      std::vector<std::string> names;
      for (const auto& offered : servers_.tools())
        if (offered.server == args_.server) names.push_back(text_of(offered.tool, "name"));
      co_return errors_.fail(Kind::server,
                             fmt::format("MCP server '{}' offers no tool '{}'{}", args_.server,
                                         args_.tool, host::did_you_mean(args_.tool, names)));
    }
    print_tools({std::move(*tool)}, args_.json, true);
    co_return kOk;
  }

  // The tool TOOL names on SERVER: by the server's own name, or by the qualified name `tools`
  // shows. Empty when SERVER does not offer it (the call then says so).
  std::optional<host::OfferedTool> named_tool() {
    for (auto& offered : servers_.tools())
      if (offered.server == args_.server &&
          (offered.name == args_.tool || text_of(offered.tool, "name") == args_.tool))
        return std::move(offered);
    return std::nullopt;
  }

  asio::awaitable<int> call() {
    auto tool = named_tool();
    auto arguments = typed_tool_arguments(std::move(arguments_), tool ? &tool->tool : nullptr);
    if (!arguments) co_return errors_.fail(Kind::usage, arguments.error().message);
    const auto name = tool ? text_of(tool->tool, "name") : args_.tool;
    auto result = co_await servers_.call_tool(args_.server, name, std::move(*arguments));
    if (!result) co_return errors_.fail(Kind::server, result.error().message);
    const auto* is_error = result->if_contains("isError");
    const bool tool_error = is_error && is_error->is_bool() && is_error->get_bool();
    print_tool_result(*result, args_.json);
    co_return tool_error ? kToolError : kOk;
  }

  asio::awaitable<int> resources() {
    auto resources = co_await gather(Listing::resources);
    if (!resources) co_return errors_.fail(Kind::server, resources.error().message);
    auto templates = co_await gather(Listing::templates);
    if (!templates) co_return errors_.fail(Kind::server, templates.error().message);
    print_resources(std::move(*resources), std::move(*templates), args_.json);
    co_return partial();
  }

  asio::awaitable<int> read() {
    auto server = co_await owner("resource", "uri", args_.uri);
    if (!server) co_return errors_.fail(kind_of(server.error()), server.error().message);
    auto result = co_await servers_.read(*server, args_.uri);
    if (!result) co_return errors_.fail(Kind::server, result.error().message);
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
    auto pairs = text_pairs(args_.args, "--arg");
    if (!pairs) co_return errors_.fail(Kind::usage, pairs.error().message);
    json::object arguments;
    for (auto& [key, value] : *pairs) arguments[key] = value;
    auto server = co_await owner("prompt", "name", args_.prompt);
    if (!server) co_return errors_.fail(kind_of(server.error()), server.error().message);
    auto result = co_await servers_.prompt(*server, args_.prompt, std::move(arguments));
    if (!result) co_return errors_.fail(Kind::server, result.error().message);
    print_prompt(*result, args_.json);
    co_return kOk;
  }

 private:
  // The servers this subcommand needs started (empty: every enabled server).
  std::vector<std::string> needed() const {
    if (subcommand_.servers == Servers::named && !args_.server.empty()) return {args_.server};
    return {};
  }

  int partial() const { return failed_ ? kServerFailed : kOk; }

  std::vector<std::string> ready_servers() const {
    std::vector<std::string> out;
    for (const auto& info : servers_.servers())
      if (info.state == ServerState::ready) out.push_back(info.name);
    return out;
  }

  // One listing of every ready server (or only SERVER / --server) whose capabilities include
  // it, each item tagged with its server.
  asio::awaitable<jsonrpc::Expected<json::array>> gather(Listing listing) {
    json::array out;
    for (const auto& name : ready_servers()) {
      if (!args_.server.empty() && name != args_.server) continue;
      auto items = co_await servers_.list(name, listing);
      if (!items) co_return items.error();
      for (auto& item : *items) {
        if (!item.is_object()) continue;
        item.as_object()["server"] = name;
        out.push_back(std::move(item));
      }
    }
    co_return out;
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
      co_return usage_error(
          fmt::format("no MCP server lists {} '{}': name one with --server", what, wanted));
    co_return usage_error(fmt::format("{} '{}' is offered by {}: choose with --server", what,
                                      wanted, fmt::join(owners, ", ")));
  }

  const Subcommand& subcommand_;
  McpArgs args_;
  Errors errors_;
  ServerSource& servers_;
  StartupView& view_;
  ToolArguments arguments_;  // call's, read before startup
  bool failed_ = false;
};

// add and remove: the config file edited in place, checked as it will be loaded (with
// environments.toml beside it).
int edit_config(const McpArgs& args, const Errors& errors, ConfigEdit edit,
                const std::function<jsonrpc::Expected<std::string>(
                    std::string_view text, const std::string& path)>& change) {
  const auto path = config_path(args.config_path);
  auto edited = host::edit_config_file(
      path, [&](std::string_view text) { return change(text, path); }, environments_path());
  if (!edited) return errors.fail(Kind::config, edited.error().message);
  print_config_edit(edit, args.name, path, args.json);
  return kOk;
}

// add --environment E: `local`, `remote` or an environment the config (or environments.toml)
// defines, so that a typo is caught now rather than when the server first starts.
jsonrpc::Expected<void> check_environment(const McpArgs& args) {
  if (args.environment == "local" || args.environment == "remote") return {};
  // The file add is about to create may not exist yet.
  auto config = host::load_config(config_path(args.config_path), environments_path());
  if (!config) return config.error();
  std::vector<std::string> known = {"local", "remote"};
  for (const auto& environment : config->environments) known.push_back(environment.id);
  if (host::find_environment(*config, args.environment) != nullptr) return {};
  return usage_error(fmt::format(
      "unknown environment '{}': use local, remote, or an environment defined in {} or the "
      "environments.toml beside it{}",
      args.environment, config_path(args.config_path),
      host::did_you_mean(args.environment, known)));
}

// --header `Name=value`, or `Name: value` as curl and `claude mcp add --header` write it.
jsonrpc::Expected<std::pair<std::string, std::string>> header_pair(std::string_view header) {
  const auto colon = header.find(':');
  const auto equals = header.find('=');
  if (colon == std::string_view::npos || colon == 0 || equals < colon)
    return key_value(header, "--header");
  auto value = header.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  return std::pair{std::string(header.substr(0, colon)), std::string(value)};
}

int run_add(const McpArgs& args, const Errors& errors) {
  host::NewServer server;
  server.name = args.name;
  if (args.url.empty() == args.argv.empty())
    return errors.fail(Kind::usage,
                       "add needs the server's command after -- (tether mcp add NAME -- CMD "
                       "ARGS...) or the URL of a streamable HTTP server (tether mcp add NAME --url "
                       "URL), not both");
  const bool http = !args.url.empty();
  if (http && !args.env.empty())
    return errors.fail(Kind::usage, "--env is for a stdio server; an HTTP server takes --header");
  if (!http && (!args.headers.empty() || !args.bearer_token_env_var.empty()))
    return errors.fail(Kind::usage,
                       "--header and --bearer-token-env-var are for an HTTP server (--url)");
  if (http) {
    server.url = args.url;
    if (!args.bearer_token_env_var.empty()) server.bearer_token_env_var = args.bearer_token_env_var;
    for (const auto& header : args.headers) {
      auto split = header_pair(header);
      if (!split) return errors.fail(Kind::usage, split.error().message);
      server.http_headers[split->first] = std::move(split->second);
    }
  } else {
    server.command = args.argv.front();
    server.args.assign(args.argv.begin() + 1, args.argv.end());
    auto env = text_pairs(args.env, "--env");
    if (!env) return errors.fail(Kind::usage, env.error().message);
    server.env = std::move(*env);
  }
  if (!args.environment.empty()) {
    auto checked = check_environment(args);
    if (!checked) return errors.fail(Kind::config, checked.error().message);
    server.environment = args.environment;
  }
  return edit_config(args, errors, ConfigEdit::added,
                     [&](std::string_view text, const std::string& path) {
                       return host::add_server(text, path, server);
                     });
}

int run_get(const McpArgs& args, const Errors& errors) {
  auto config = load_mcp_config(args.config_path);
  if (!config) return errors.fail(Kind::config, config.error().message);
  std::vector<std::string> names;
  for (const auto& server : config->servers) names.push_back(server.name);
  const auto found = std::find(names.begin(), names.end(), args.name);
  if (found == names.end())
    return errors.fail(Kind::usage, host::unknown_server_error(args.name, names).message);
  const auto index = static_cast<std::size_t>(found - names.begin());
  // Where it would run, resolved as a start resolves it; nothing is started or connected.
  asio::io_context io(1);
  const auto info = host::Manager::create(io.get_executor(), *config)->servers().at(index);
  print_server_config(config->servers[index], info, args.json);
  return kOk;
}

int run_remove(const McpArgs& args, const Errors& errors) {
  return edit_config(args, errors, ConfigEdit::removed,
                     [&](std::string_view text, const std::string& path) {
                       return host::remove_server(text, path, args.name);
                     });
}

// environments [add ID ... | remove ID]: the config's executor environments.
int run_environments(const McpArgs& args, const Errors& errors) {
  if (args.environment_action.empty()) {
    auto config = load_mcp_config(args.config_path);
    if (!config) return errors.fail(Kind::config, config.error().message);
    print_environments(*config, host::resolve_remote(*config, host::process_env), args.json);
    return kOk;
  }
  if (args.environment_action == "remove") {
    // One defined in codex's environments.toml is codex's to remove.
    auto config = load_mcp_config(args.config_path);
    if (config) {
      const auto* found = host::find_environment(*config, args.name);
      if (found != nullptr && found->location.file == environments_path())
        return errors.fail(Kind::config,
                           fmt::format("environment '{}' is defined in {}, which tether reads but "
                                       "does not edit",
                                       args.name, environments_path()));
    }
    return edit_config(args, errors, ConfigEdit::environment_removed,
                       [&](std::string_view text, const std::string& path) {
                         return host::remove_environment(text, path, args.name);
                       });
  }
  host::EnvironmentConfig environment;
  environment.id = args.name;
  const int ways = int{!args.url.empty()} + int{args.spawn} + int{!args.argv.empty()};
  if (ways != 1)
    return errors.fail(Kind::usage,
                       "environments add needs one of --url URL (a running executor), --spawn (one "
                       "tether starts on loopback) or -- COMMAND ARGS... (one whose stdin and "
                       "stdout speak the protocol)");
  if (args.url.empty() && (!args.token_env_var.empty() || !args.token_file.empty()))
    return errors.fail(Kind::usage, "--token-env-var and --token-file go with --url");
  if (!args.url.empty()) {
    host::EnvironmentConfig::Url url{args.url, std::nullopt, std::nullopt, std::nullopt};
    if (!args.token_env_var.empty()) url.token_env_var = args.token_env_var;
    if (!args.token_file.empty()) url.token_file = args.token_file;
    environment.how = std::move(url);
  } else if (args.spawn) {
    environment.how = host::EnvironmentConfig::Spawn{};
  } else {
    environment.how = host::EnvironmentConfig::Command{args.argv, std::nullopt, std::nullopt};
  }
  return edit_config(args, errors, ConfigEdit::environment_added,
                     [&](std::string_view text, const std::string& path) {
                       return host::add_environment(text, path, environment);
                     });
}

// The arguments some subcommands share.
void only_server(CLI::App& command, McpArgs& args) {
  command.add_option("server", args.server, "only this server");
}

void server_name(CLI::App& command, McpArgs& args) {
  command.add_option("name", args.name)->required();
}

// Every subcommand, in the order `tether mcp --help` lists them.
constexpr Subcommand kSubcommands[] = {
    {.name = "list",
     .help = "servers: where each runs, status, tool count, the error of failed ones",
     .servers = Servers::every,
     .shows_failures = true,
     .run = &Session::list},
    {.name = "tools",
     .help = "tools with their qualified names",
     .arguments =
         [](CLI::App& command, McpArgs& args) {
           only_server(command, args);
           command.add_flag("--long,-l", args.long_form,
                            "each tool in full: description and arguments");
         },
     .servers = Servers::named,
     .run = &Session::tools},
    {.name = "tool",
     .help = "one tool in full: description and arguments",
     .arguments =
         [](CLI::App& command, McpArgs& args) {
           command.add_option("server", args.server)->required();
           command.add_option("tool", args.tool, "its name on that server, or the qualified name")
               ->required();
         },
     .servers = Servers::named,
     .run = &Session::tool},
    {.name = "call",
     .help = "call a tool",
     .arguments =
         [](CLI::App& command, McpArgs& args) {
           command.add_option("server", args.server)->required();
           command.add_option("tool", args.tool, "the tool's name on that server")->required();
           command.add_option("--args", args.args_json,
                              "arguments as a JSON object: inline, @FILE, or - for stdin");
           command
               .add_option("--arg", args.args,
                           "one argument, key=value (typed by the tool's input schema)")
               ->allow_extra_args(false);
         },
     .servers = Servers::named,
     .check = &Session::check_call,
     .run = &Session::call},
    {.name = "resources",
     .help = "resources and resource templates",
     .arguments = only_server,
     .servers = Servers::named,
     .run = &Session::resources},
    {.name = "read",
     .help = "read a resource",
     .arguments =
         [](CLI::App& command, McpArgs& args) {
           command.add_option("uri", args.uri)->required();
           command.add_option("--server", args.server, "the server to ask");
         },
     .servers = Servers::named,
     .run = &Session::read},
    {.name = "prompts",
     .help = "prompts",
     .arguments = only_server,
     .servers = Servers::named,
     .run = &Session::prompts},
    {.name = "prompt",
     .help = "get a prompt",
     .arguments =
         [](CLI::App& command, McpArgs& args) {
           command.add_option("name", args.prompt)->required();
           command.add_option("--server", args.server, "the server to ask");
           command.add_option("--arg", args.args, "one argument, key=value")
               ->allow_extra_args(false);
         },
     .servers = Servers::named,
     .run = &Session::prompt},
    {.name = "get",
     .help = "one server's settings (env and header values masked) and where it runs",
     .arguments = server_name,
     .servers = Servers::none,
     .edit = run_get},
    {.name = "add",
     .help = "add a server to the config file: add NAME [options] -- CMD ARGS (stdio), or add "
             "NAME --url URL (streamable HTTP)",
     .arguments =
         [](CLI::App& command, McpArgs& args) {
           server_name(command, args);
           command.add_option("--env", args.env, "K=V for a stdio server's environment")
               ->allow_extra_args(false);
           command.add_option("--url", args.url, "a streamable HTTP server's URL");
           command.add_option("--bearer-token-env-var", args.bearer_token_env_var,
                              "the variable holding an HTTP server's bearer token");
           command
               .add_option("--header", args.headers,
                           "a header for an HTTP server: Name=value or 'Name: value'")
               ->allow_extra_args(false);
           command.add_option("--environment", args.environment,
                              "where it runs: local, remote or an id");
         },
     .servers = Servers::none,
     .takes_command = true,
     .edit = run_add},
    {.name = "remove",
     .help = "remove a server from the config file",
     .arguments = server_name,
     .servers = Servers::none,
     .edit = run_remove},
    {.name = "environments",
     .help = "executor environments: list them, or add and remove one in the config file",
     .arguments =
         [](CLI::App& command, McpArgs& args) {
           command.require_subcommand(0, 1);
           auto* add = command.add_subcommand(
               "add",
               "add one: add ID (--url URL [--token-env-var V | --token-file F] | --spawn "
               "| -- COMMAND ARGS...)");
           add->fallthrough();
           add->add_option("id", args.name)->required();
           add->add_option("--url", args.url, "a running executor (ws:// or wss://)");
           add->add_option("--token-env-var", args.token_env_var, "the variable holding its token");
           add->add_option("--token-file", args.token_file, "the file holding its token");
           add->add_flag("--spawn", args.spawn, "an executor tether starts itself on loopback");
           add->callback([&args] { args.environment_action = "add"; });
           auto* remove = command.add_subcommand("remove", "remove one: remove ID");
           remove->fallthrough();
           remove->add_option("id", args.name)->required();
           remove->callback([&args] { args.environment_action = "remove"; });
         },
     .servers = Servers::none,
     .takes_command = true,
     .edit = run_environments},
    {.name = "import",
     .help = "import the servers of codex, Claude, Cursor or VS Code into the config file",
     .arguments = [](CLI::App& command,
                     McpArgs& args) { add_import_arguments(command, args.import); },
     .servers = Servers::none,
     .edit =
         [](const McpArgs& args, const Errors& errors) {
           return run_import(
               args.import, config_path(args.config_path), environments_path(), args.json,
               [&](std::string_view message) { return errors.fail(Kind::config, message); });
         }},
};

// --gateway, else TETHER_GATEWAY_URL (empty: the servers are started here).
std::string gateway_url(const McpArgs& args) {
  if (!args.gateway.empty()) return args.gateway;
  return host::process_env("TETHER_GATEWAY_URL").value_or("");
}

int run_with_servers(const Subcommand& subcommand, const McpArgs& args) {
  const Errors errors(args.json);
  asio::io_context io(1);
  StartupView view(!subcommand.shows_failures);
  std::unique_ptr<ServerSource> servers;
  if (const auto url = gateway_url(args); !url.empty()) {
    servers = gateway_servers(io.get_executor(), url, host::process_env("TETHER_GATEWAY_TOKEN"));
  } else {
    auto config = load_mcp_config(args.config_path);
    if (!config) return errors.fail(Kind::config, config.error().message);
    servers = local_servers(io.get_executor(), std::move(*config),
                            [&view](const host::ServerStatus& status) { view.update(status); });
  }

  int code = kOk;
  bool interrupted = false;
  bool stopped = false;
  asio::cancellation_signal cancel;
  // Ctrl-C, SIGTERM and a failed write (a reader that went away) end the run the same way:
  // startup and the operation cancelled, then every server shut down.
  auto stop = [&] {
    if (stopped) return;
    stopped = true;
    servers->cancel_startup();
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

  Session session(subcommand, args, *servers, view);
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
        co_await servers->shutdown();
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

// The entry of the subcommand the command line chose; null only if CLI11 parsed none, which
// require_subcommand(1) rules out.
const Subcommand* chosen(const CLI::App& mcp) {
  for (const auto& subcommand : kSubcommands)
    if (mcp.got_subcommand(std::string(subcommand.name))) return &subcommand;
  return nullptr;
}

}  // namespace

jsonrpc::Expected<host::Config> load_mcp_config(const std::string& config_option) {
  auto config =
      host::load_config(config_path(config_option), environments_path(), !config_option.empty());
  if (config)
    for (const auto& warning : config->warnings) print_warning(warning);
  return config;
}

Run add_mcp_command(CLI::App& app, std::vector<std::string> command) {
  auto* mcp = app.add_subcommand("mcp", "Use the configured MCP servers");
  mcp->fallthrough();  // --log-level after `mcp` or its subcommand
  mcp->require_subcommand(1);
  auto args = std::make_shared<McpArgs>();
  args->argv = std::move(command);
  mcp->add_option("--config", args->config_path,
                  "config file (default: $TETHER_HOME/config.toml, ~/.tether/config.toml); a "
                  ".json file is read as Claude's, Cursor's or VS Code's MCP config");
  mcp->add_flag("--json", args->json, "machine-readable output on stdout");
  mcp->add_option("--gateway", args->gateway,
                  "use the servers of a running `tether mcp serve` at this URL (or "
                  "TETHER_GATEWAY_URL; token from TETHER_GATEWAY_TOKEN) instead of starting them");
  for (const auto& subcommand : kSubcommands) {
    auto* sub = mcp->add_subcommand(std::string(subcommand.name), std::string(subcommand.help));
    sub->fallthrough();
    if (subcommand.arguments) subcommand.arguments(*sub, *args);
  }
  auto run_serve = add_serve_command(*mcp, args->config_path);

  return [args, mcp, run_serve] {
    if (mcp->got_subcommand("serve")) return run_serve();
    const auto* entry = chosen(*mcp);
    if (entry == nullptr) return static_cast<int>(kUsage);
    const auto& subcommand = *entry;
    const Errors errors(args->json);
    int code = kOk;
    if (!subcommand.takes_command && !args->argv.empty()) {
      code = errors.fail(Kind::usage, fmt::format("unexpected arguments after --: {}",
                                                  fmt::join(args->argv, " ")));
    } else if (subcommand.servers == Servers::none) {
      code = subcommand.edit(*args, errors);
    } else {
      code = run_with_servers(subcommand, *args);
    }
    // Output that did not reach its reader fails the command, whatever it did.
    if (auto failure = write_failure()) return errors.output_failed(*failure);
    return code;
  };
}

}  // namespace tether::cli
