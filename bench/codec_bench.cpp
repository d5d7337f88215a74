// Micro-benchmarks of the per-chunk work on the relay path: base64 both ways and the JSON parse
// of one process/output message (what every client does per chunk).
#include <benchmark/benchmark.h>
#include <boost/json.hpp>

#include <tether/jsonrpc/base64.hpp>
#include <tether/jsonrpc/message.hpp>

namespace {

std::string payload(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 131 + 7);
  return s;
}

void Base64Encode(benchmark::State& state) {
  const auto data = payload(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(tether::jsonrpc::base64_encode(data));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(Base64Encode)->Arg(64 << 10)->Arg(256 << 10);

void Base64Decode(benchmark::State& state) {
  const auto text = tether::jsonrpc::base64_encode(payload(static_cast<std::size_t>(state.range(0))));
  for (auto _ : state) benchmark::DoNotOptimize(tether::jsonrpc::base64_decode(text));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(Base64Decode)->Arg(64 << 10)->Arg(256 << 10);

void ParseOutputMessage(benchmark::State& state) {
  const std::string message =
      R"({"jsonrpc":"2.0","method":"process/output","params":{"processId":"p","seq":1,"stream":"stdout","chunk":")" +
      tether::jsonrpc::base64_encode(payload(static_cast<std::size_t>(state.range(0)))) + R"("}})";
  for (auto _ : state) benchmark::DoNotOptimize(tether::jsonrpc::parse(message));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(ParseOutputMessage)->Arg(64 << 10)->Arg(256 << 10);

}  // namespace

BENCHMARK_MAIN();
