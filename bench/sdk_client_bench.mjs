// The official TypeScript SDK client side of tether-mcp-bench (issue 5): the baseline tether's
// MCP client is compared with, calling the same server in the same run.
//
// Owns: one SDK session (Client + StdioClientTransport) with the server command it is given:
// connect (spawn + initialize), tools/list (as a host does before calling), `--warmup`
// untimed calls, then `--calls` sequential tools/call of `--tool` with {message}, each timed.
// Does not own: the comparison or the tables (bench/mcp_bench.cpp runs this and prints them).
// Data flows: argv -> StdioClientTransport(spawn) -> N x callTool -> one JSON line on stdout:
//   {"calls": N, "p50_us": .., "p99_us": .., "calls_per_s": .., "elapsed_s": .., "cpu_s": ..,
//    "us": [each call]}   (cpu_s: this process's user + system CPU over the timed calls)
// (mcp_bench pools "us" and "elapsed_s" over its rounds).
// The SDK is found through NODE_PATH (mcp_bench sets it to the npm test-peer root's
// node_modules, scripts/install-test-packages --print-root): nothing is copied into the repo.
//
// Usage: NODE_PATH=<root>/node_modules node sdk_client_bench.mjs
//          [--calls N] [--warmup N] [--tool NAME] [--message TEXT] -- <command> [args...]
import { createRequire } from 'node:module';

// require() honours NODE_PATH; ESM import does not.
const require = createRequire(import.meta.url);
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js');

function parseArgs(argv) {
  const options = { calls: 5000, warmup: 200, tool: 'echo', message: 'hello' };
  const dashes = argv.indexOf('--');
  if (dashes < 0 || dashes + 1 >= argv.length) throw new Error('usage: ... -- <command> [args...]');
  const flags = argv.slice(0, dashes);
  for (let i = 0; i + 1 < flags.length; i += 2) {
    const value = flags[i + 1];
    if (flags[i] === '--calls') options.calls = Number(value);
    else if (flags[i] === '--warmup') options.warmup = Number(value);
    else if (flags[i] === '--tool') options.tool = value;
    else if (flags[i] === '--message') options.message = value;
    else throw new Error(`unknown flag ${flags[i]}`);
  }
  options.command = argv[dashes + 1];
  options.args = argv.slice(dashes + 2);
  return options;
}

// Same rule as bench_util.hpp percentile(): the sorted value at floor(p * (n - 1)).
function percentile(sorted, p) {
  return sorted[Math.floor(p * (sorted.length - 1))];
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const transport = new StdioClientTransport({
    command: options.command,
    args: options.args,
    stderr: 'ignore',
  });
  const client = new Client({ name: 'sdk-bench', version: '1.0.0' });
  await client.connect(transport);
  await client.listTools();

  const params = { name: options.tool, arguments: { message: options.message } };
  const call = async () => {
    const result = await client.callTool(params);
    if (result.isError || !Array.isArray(result.content))
      throw new Error(`tools/call failed: ${JSON.stringify(result)}`);
  };
  for (let i = 0; i < options.warmup; ++i) await call();

  const us = new Float64Array(options.calls);
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < options.calls; ++i) {
    const t0 = process.hrtime.bigint();
    await call();
    us[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  const elapsedS = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  await client.close();

  const samples = Array.from(us);
  us.sort();
  process.stdout.write(
    JSON.stringify({
      calls: options.calls,
      p50_us: percentile(us, 0.5),
      p99_us: percentile(us, 0.99),
      calls_per_s: options.calls / elapsedS,
      elapsed_s: elapsedS,
      cpu_s: (cpu.user + cpu.system) / 1e6,
      us: samples,
    }) + '\n',
  );
}

main().catch((error) => {
  process.stderr.write(`sdk_client_bench: ${error?.stack ?? error}\n`);
  process.exit(1);
});
