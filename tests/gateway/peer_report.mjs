// peer_report.mjs: what the gateway tests' Node peers (sdk_client.mjs, eras_client.mjs) share:
// steps bounded in time and recorded in one JSON report, printed last on stdout ({"ok", "steps":
// {name: value}, "error"?}; exit code 0 when every step passed, else 1), the clients closed
// first; and the SDK 1.32 client (a 2025-11-25 host) loaded from a node_modules directory.
import process from 'node:process';
import { pathToFileURL } from 'node:url';

export function bounded(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

export function usage(message) {
  return new Error(`usage: ${message}`);
}

class StepError extends Error {
  constructor(step, cause) {
    super(`${step}: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

// Closes an SDK client, ignoring the errors closing causes.
export async function closeQuietly(client) {
  client.onerror = () => {};
  await client.close();
}

// One peer's report: `name` prefixes its stderr lines; each step may take `stepMs`.
export class Report {
  constructor(name, stepMs) {
    this.name = name;
    this.stepMs = stepMs;
    this.steps = {};
    this.clients = [];  // closed before the report is printed
  }

  log(text) {
    process.stderr.write(`${this.name}: ${text}\n`);
  }

  async step(name, fn) {
    try {
      this.steps[name] = await bounded(Promise.resolve().then(fn), this.stepMs, 'step');
    } catch (error) {
      throw new StepError(name, error);
    }
  }

  // Runs `body`, closes every client, prints the report and exits.
  async finish(body) {
    let error;
    try {
      await body();
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
      this.log(`failed: ${error}`);
    }
    for (const client of this.clients) {
      // Closing stdio ends the child's stdin; the SDKs escalate to SIGTERM/SIGKILL after 2 s each.
      await bounded(closeQuietly(client), 10000, 'close').catch(e => this.log(`close: ${e.message}`));
    }
    const report = { ok: error === undefined, steps: this.steps };
    if (error !== undefined) report.error = error;
    // process.exit: lingering keep-alive sockets or timers must not keep the process up.
    process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(report.ok ? 0 : 1));
  }
}

// SDK 1.32 (@modelcontextprotocol/sdk): its client, transports and types in one namespace.
export async function loadLegacySdk(modules) {
  const root = `${modules}/@modelcontextprotocol/sdk/dist/esm`;
  const load = file => import(pathToFileURL(`${root}/${file}`).href);
  const [client, stdio, http, types] = await Promise.all([
    load('client/index.js'),
    load('client/stdio.js'),
    load('client/streamableHttp.js'),
    load('types.js'),
  ]);
  return { ...types, ...client, ...stdio, ...http };
}
