// sdk_client.mjs: drives an MCP server with the official TypeScript SDK client, so the gateway
// tests (`tether mcp serve`) check tether against a peer tether did not write.
//
//   node sdk_client.mjs <node_modules dir> <scenario> [--prefix P]... (--url URL [--token T] | -- COMMAND ARGS...)
//
// Scenarios: list, tour, resume (HTTP only), session_end (HTTP only). Each --prefix names one
// upstream server behind the gateway (tool and prompt names are `${prefix}echo` and so on);
// echo runs on every prefix, everything else on the first; the default is one empty prefix.
// `-- COMMAND...` speaks stdio to a child (its stderr goes to ours); --url speaks streamable HTTP.
//
// Stdout gets exactly one JSON object, {"ok", "steps": {name: value}, "error"?}, printed last;
// the exit code is 0 when every step passed and 1 otherwise (the failure is also on stderr).
// Steps run in order and stop at the first failure; each is bounded by STEP_MS, so a stuck
// server fails a step instead of hanging the test.
//
// The SDK is loaded from the node_modules directory given on the command line: it lives
// outside the repository, where bare specifiers do not resolve.
import { randomBytes } from 'node:crypto';
import process from 'node:process';
import { Report, bounded, check, closeQuietly, loadLegacySdk, usage } from './peer_report.mjs';

const STEP_MS = 20000;
const SCENARIOS = { list, tour, resume, session_end: sessionEnd };
const HTTP_ONLY = new Set(['resume', 'session_end']);

const report = new Report('sdk_client', STEP_MS);
const { steps, clients } = report;
const log = text => report.log(text);
const step = (name, fn) => report.step(name, fn);
let sdk;

function parseArgs(argv) {
  const [modules, scenario, ...rest] = argv;
  const opts = { modules, scenario, prefixes: [] };
  for (let i = 0; i < rest.length; ++i) {
    const arg = rest[i];
    if (arg === '--') {
      opts.command = rest.slice(i + 1);
      break;
    }
    const value = () => {
      if (i + 1 >= rest.length) throw usage(`${arg} needs a value`);
      return rest[++i];
    };
    if (arg === '--prefix') opts.prefixes.push(value());
    else if (arg === '--url') opts.url = value();
    else if (arg === '--token') opts.token = value();
    else throw usage(`unknown argument ${arg}`);
  }
  if (!modules || !scenario) throw usage('needs <node_modules dir> <scenario>');
  if (!(scenario in SCENARIOS)) throw usage(`unknown scenario ${scenario}`);
  if ((opts.url === undefined) === (opts.command === undefined)) {
    throw usage('needs exactly one of --url URL and -- COMMAND ARGS...');
  }
  if (opts.command?.length === 0) throw usage('-- needs a command');
  if (opts.token !== undefined && opts.url === undefined) throw usage('--token needs --url');
  if (HTTP_ONLY.has(scenario) && opts.url === undefined) throw usage(`${scenario} needs --url`);
  if (opts.prefixes.length === 0) opts.prefixes.push('');
  return opts;
}

// --- helpers ----------------------------------------------------------------------------------

const random = () => randomBytes(4).toString('hex');

function textOf(result) {
  return (result.content ?? [])
    .filter(item => item.type === 'text')
    .map(item => item.text)
    .join('\n');
}

// A tool result's text; a result with isError fails the step.
async function callText(client, name, args, options) {
  const result = await client.callTool({ name, arguments: args }, undefined, options);
  const text = textOf(result);
  check(!result.isError, `${name} returned isError: ${text}`);
  return text;
}

function errorInfo(error) {
  return { name: error?.name, code: error?.code, message: error?.message ?? String(error) };
}

// Resolves with the first notification of `schema` that `match` accepts.
function nextNotification(client, schema, match) {
  const { promise, resolve } = Promise.withResolvers();
  client.setNotificationHandler(schema, notification => {
    if (match(notification)) resolve(notification);
  });
  return promise;
}

// --- connection -------------------------------------------------------------------------------

// Closing aborts the HTTP transport's fetches, which it reports as "SSE stream disconnected";
// expected here, so not logged.
function makeClient() {
  const client = new sdk.Client(
    { name: 'tether-sdk-test-client', version: '1.0.0' },
    { capabilities: { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } } },
  );
  client.setRequestHandler(sdk.CreateMessageRequestSchema, () => ({
    role: 'assistant',
    content: { type: 'text', text: 'sampled by sdk' },
    model: 'sdk-test-model',
  }));
  client.setRequestHandler(sdk.ElicitRequestSchema, () => ({
    action: 'accept',
    content: { name: 'Grace', count: 5, ok: true },
  }));
  client.setRequestHandler(sdk.ListRootsRequestSchema, () => ({
    roots: [{ uri: 'file:///tmp/sdk-root' }],
  }));
  client.onerror = error => log(`sdk error: ${error?.message ?? error}`);
  clients.push(client);
  return client;
}

function makeTransport(opts, httpOptions = {}) {
  if (opts.url !== undefined) {
    const requestInit = opts.token ? { headers: { Authorization: `Bearer ${opts.token}` } } : undefined;
    return new sdk.StreamableHTTPClientTransport(new URL(opts.url), { requestInit, ...httpOptions });
  }
  const [command, ...args] = opts.command;
  // The whole environment, not the SDK's short default list: the test configures the child
  // through it.
  return new sdk.StdioClientTransport({ command, args, env: process.env, stderr: 'inherit' });
}

// Connects and initializes; returns what the server said about itself.
async function connect(client, transport) {
  let protocolVersion;
  // Client.connect chains an onmessage set beforehand; the initialize result is the only place
  // the negotiated version shows on stdio (the Client does not keep it).
  transport.onmessage = message => {
    protocolVersion ??= message.result?.protocolVersion;
  };
  await client.connect(transport);
  return {
    serverInfo: client.getServerVersion(),
    protocolVersion,
    capabilities: client.getServerCapabilities(),
    sessionId: transport.sessionId,
  };
}

async function listAll(list, key) {
  const items = [];
  const seen = new Set();
  let cursor;
  do {
    const page = await list(cursor === undefined ? undefined : { cursor });
    items.push(...page[key]);
    cursor = page.nextCursor;
    check(cursor === undefined || !seen.has(cursor), `${key}: cursor ${cursor} repeats`);
    seen.add(cursor);
  } while (cursor !== undefined);
  return items;
}

// --- scenarios --------------------------------------------------------------------------------

async function list(opts) {
  const client = makeClient();
  await step('initialize', () => connect(client, makeTransport(opts)));
  const sorted = items => items.sort();
  await step('tools', async () =>
    sorted((await listAll(p => client.listTools(p), 'tools')).map(t => t.name)));
  await step('resources', async () =>
    sorted((await listAll(p => client.listResources(p), 'resources')).map(r => r.uri)));
  await step('resource_templates', async () =>
    sorted(
      (await listAll(p => client.listResourceTemplates(p), 'resourceTemplates')).map(
        t => t.uriTemplate,
      ),
    ));
  await step('prompts', async () =>
    sorted((await listAll(q => client.listPrompts(q), 'prompts')).map(prompt => prompt.name)));
}

async function tour(opts) {
  const client = makeClient();
  const p = opts.prefixes[0];
  await step('initialize', () => connect(client, makeTransport(opts)));

  for (const prefix of opts.prefixes) {
    await step(`echo:${prefix}`, async () => {
      const text = await callText(client, `${prefix}echo`, { message: 'hi' });
      check(text.includes('hi'), `echo answered ${JSON.stringify(text)}`);
      return text;
    });
  }

  await step('resource', async () => {
    const result = await client.readResource({ uri: 'test://resource/0' });
    const text = result.contents[0]?.text;
    check(text === 'content of resource 0', `read ${JSON.stringify(result.contents)}`);
    return text;
  });

  await step('prompt', async () => {
    const result = await client.getPrompt({ name: `${p}greet`, arguments: { name: 'Ada' } });
    const text = result.messages[0]?.content?.text;
    check(text === 'Hello, Ada!', `prompt gave ${JSON.stringify(result.messages)}`);
    return text;
  });

  await step('complete', async () => {
    const result = await client.complete({
      ref: { type: 'ref/prompt', name: `${p}greet` },
      argument: { name: 'name', value: 'a' },
    });
    const values = result.completion.values;
    check(values.includes('alpha'), `completion values ${JSON.stringify(values)}`);
    return values;
  });

  await step('progress', async () => {
    let notifications = 0;
    const text = await callText(client, `${p}sleep`, { ms: 300, progress_ms: 50 }, {
      onprogress: () => ++notifications,
    });
    check(text === 'slept 300', `sleep answered ${JSON.stringify(text)}`);
    check(notifications >= 2, `only ${notifications} progress notifications`);
    return { notifications, text };
  });

  await step('cancel', async () => {
    const controller = new AbortController();
    let abortedAt;
    const call = client.callTool(
      { name: `${p}sleep`, arguments: { ms: 60000, progress_ms: 50 } },
      undefined,
      {
        signal: controller.signal,
        onprogress: () => {
          if (abortedAt !== undefined) return;
          abortedAt = Date.now();
          controller.abort();
        },
      },
    );
    const error = await call.then(
      result => { throw new Error(`the aborted call answered ${JSON.stringify(result)}`); },
      e => e,
    );
    // Recorded, not checked: tests never assert on wall time (the step's bound is the limit).
    const rejectedAfterMs = Date.now() - abortedAt;
    const echo = await callText(client, `${p}echo`, { message: 'hi' });
    check(echo.includes('hi'), `echo after the cancel answered ${JSON.stringify(echo)}`);
    return { error: errorInfo(error), rejectedAfterMs, echo };
  });

  await step('elicitation', async () => {
    const text = await callText(client, `${p}ask_elicitation`, {});
    check(text.includes('Grace'), `ask_elicitation answered ${JSON.stringify(text)}`);
    return text;
  });

  await step('sampling', async () => {
    const text = await callText(client, `${p}ask_sampling`, { prompt: 'x' });
    check(text.includes('sampled by sdk'), `ask_sampling answered ${JSON.stringify(text)}`);
    return text;
  });

  await step('roots', async () => {
    const text = await callText(client, `${p}ask_roots`, {});
    check(text.includes('sdk-root'), `ask_roots answered ${JSON.stringify(text)}`);
    return text;
  });

  await step('list_changed', async () => {
    const name = `extra_${random()}`;
    const changed = nextNotification(client, sdk.ToolListChangedNotificationSchema, () => true);
    await callText(client, `${p}add_tool`, { name });
    await changed;
    const names = (await listAll(q => client.listTools(q), 'tools')).map(t => t.name);
    check(names.includes(`${p}${name}`), `tools/list lacks ${p}${name}`);
    return { tool: `${p}${name}` };
  });

  await step('logging', async () => {
    const message = `logged-${random()}`;
    await client.setLoggingLevel('debug');
    const logged = nextNotification(client, sdk.LoggingMessageNotificationSchema, n =>
      JSON.stringify(n.params.data).includes(message));
    await callText(client, `${p}log`, { level: 'warning', message });
    const { params } = await logged;
    return { level: params.level, logger: params.logger, data: params.data };
  });

  // The test server sends resources/updated for a URI as soon as it is subscribed: the gateway
  // must route the subscription to the owner and relay the update to this session.
  await step('subscribe', async () => {
    const uri = 'test://resource/1';
    const updated = nextNotification(client, sdk.ResourceUpdatedNotificationSchema, n =>
      n.params.uri === uri);
    await client.subscribeResource({ uri });
    const { params } = await updated;
    await client.unsubscribeResource({ uri });
    return params.uri;
  });

  await step('tool_error', async () => {
    const error = await client.callTool({ name: 'unknown__nothing', arguments: {} }).then(
      result => { throw new Error(`unknown__nothing answered ${JSON.stringify(result)}`); },
      e => e,
    );
    check(error instanceof sdk.McpError, `not an McpError: ${error}`);
    check(error.code === -32602, `error code ${error.code}: ${error.message}`);
    return { code: error.code, message: error.message };
  });
}

// Resumption as SDK 1.32 does it: a new transport built with the old sessionId makes
// Client.connect skip initialize, and a request sent with `resumptionToken` is not POSTed; the
// transport GETs with Last-Event-ID instead and gives the replayed response this request's id.
async function resume(opts) {
  const tool = `${opts.prefixes[0]}sleep`;
  const args = { ms: 1500, progress_ms: 100 };
  // Our own progress token and handler instead of onprogress: the SDK keys onprogress by request
  // id, and the second client's ids would not match the ones in the replayed notifications.
  const progressToken = `resume-${random()}`;
  const watchProgress = (client, sink) =>
    client.setNotificationHandler(sdk.ProgressNotificationSchema, n => {
      if (n.params.progressToken === progressToken) sink(n.params.progress);
    });
  const before = [];
  const after = [];
  let token;
  let session;

  const first = makeClient();
  const firstProgress = Promise.withResolvers();
  watchProgress(first, progress => {
    before.push(progress);
    firstProgress.resolve();
  });
  const firstTransport = makeTransport(opts);
  await step('initialize', () => connect(first, firstTransport));

  await step('drop', async () => {
    const call = first
      .callTool({ name: tool, arguments: args, _meta: { progressToken } }, undefined, {
        onresumptiontoken: t => { token = t; },
      })
      .then(result => ({ result }), error => ({ error }));
    await firstProgress.promise;
    session = { id: firstTransport.sessionId, protocolVersion: firstTransport.protocolVersion };
    // close() aborts the in-flight fetches and sends no DELETE, so the session and its event
    // history stay on the server.
    await closeQuietly(first);
    const outcome = await call;
    check(outcome.error, `the call finished before the drop: ${JSON.stringify(outcome.result)}`);
    check(token !== undefined, 'no SSE event id (resumption token) arrived before the drop');
    return { token, progressBefore: before.length, callError: errorInfo(outcome.error) };
  });

  await step('resume', async () => {
    const second = makeClient();
    watchProgress(second, progress => after.push(progress));
    const failed = Promise.withResolvers();
    failed.promise.catch(() => {});
    second.onerror = error => {
      log(`sdk error: ${error?.message ?? error}`);
      failed.reject(error);
    };
    const transport = makeTransport(opts, { sessionId: session.id });
    transport.setProtocolVersion(session.protocolVersion);
    await second.connect(transport);
    const result = await Promise.race([
      second.request(
        { method: 'tools/call', params: { name: tool, arguments: args, _meta: { progressToken } } },
        sdk.CallToolResultSchema,
        { resumptionToken: token, onresumptiontoken: t => { token = t; } },
      ),
      failed.promise,
    ]);
    const text = textOf(result);
    check(text === 'slept 1500', `resumed call answered ${JSON.stringify(text)}`);
    check(after.length > 0, 'no progress notifications after resuming');
    check(Math.min(...after) > Math.max(...before),
      `replayed progress ${after} overlaps the ${before} seen before the drop`);
    const seen = [...before, ...after];
    check(seen.every((progress, i) => progress === i + 1), `progress has gaps: ${seen}`);
    return { progressAfter: after.length, text };
  });
}

async function sessionEnd(opts) {
  const statuses = {};
  const client = makeClient();
  // Only to see the DELETE's status, which terminateSession() does not return.
  const fetchLoggingDelete = async (url, init) => {
    const response = await fetch(url, init);
    if (init?.method === 'DELETE') statuses.delete = response.status;
    return response;
  };
  const transport = makeTransport(opts, { fetch: fetchLoggingDelete });
  await step('initialize', () => connect(client, transport));
  const sessionId = transport.sessionId;
  const protocolVersion = transport.protocolVersion;

  await step('terminate', async () => {
    check(sessionId, 'the server gave no Mcp-Session-Id');
    await transport.terminateSession();
    check(statuses.delete >= 200 && statuses.delete < 300, `DELETE answered ${statuses.delete}`);
    return { status: statuses.delete };
  });

  await step('stale_session', async () => {
    const headers = {
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      'Mcp-Session-Id': sessionId,
      'MCP-Protocol-Version': protocolVersion,
    };
    if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
    const response = await fetch(opts.url, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    await response.body?.cancel();
    check(response.status === 404, `POST with the ended session answered ${response.status}`);
    return { status: response.status };
  });
}

// --- main -------------------------------------------------------------------------------------

await report.finish(async () => {
  const opts = parseArgs(process.argv.slice(2));
  sdk = await loadLegacySdk(opts.modules);
  await SCENARIOS[opts.scenario](opts);
});
