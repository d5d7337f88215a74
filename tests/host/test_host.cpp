// tether-test-host: a host process the environment tests can SIGKILL. Usage:
//   tether-test-host spawned <tether binary> <marker>   (a spawned loopback executor)
//   tether-test-host command <tether binary> <marker>   (`tether exec-server --listen stdio`)
// It starts `sleep <marker>` in that environment, prints "ready" once it runs, then waits until
// it is killed.
#include <cstdio>
#include <iostream>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <tether/host/environment.hpp>

namespace asio = boost::asio;
using namespace tether;

namespace {

asio::awaitable<void> run(std::shared_ptr<host::Environment> environment, std::string marker,
                          std::shared_ptr<exec::Process>& keep) {
  auto starter = co_await environment->starter();
  if (!starter) {
    std::cerr << "tether-test-host: " << starter.error().message << std::endl;
    std::exit(1);
  }
  exec::StartParams params;
  params.process_id = "sleeper";
  params.argv = {"sleep", marker};
  params.env = {{"PATH", "/usr/bin:/bin"}};
  auto process = co_await (*starter)->start(std::move(params));
  if (!process) {
    std::cerr << "tether-test-host: " << process.error().message << std::endl;
    std::exit(1);
  }
  keep = *process;
  std::cout << "ready" << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: tether-test-host spawned|command <tether binary> <marker>\n";
    return 2;
  }
  const std::string mode = argv[1];
  const std::string tether = argv[2];
  host::Placement placement = host::SpawnedExecutor{tether, {}};
  if (mode == "command")
    placement = host::CommandExecutor{{tether, "exec-server", "--listen", "stdio"}, {}, {}};
  asio::io_context io;
  auto environment = host::Environment::create(io.get_executor(), mode, placement);
  std::shared_ptr<exec::Process> keep;
  asio::co_spawn(io, run(environment, argv[3], keep), asio::detached);
  auto guard = asio::make_work_guard(io);
  io.run();
}
