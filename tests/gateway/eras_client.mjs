// eras_client.mjs: drives the gateway (`tether mcp serve`) as a host of either MCP era with the
// official TypeScript SDK clients, so eras_test.cpp checks the translation between the eras
// against peers tether did not write.
//
//   node eras_client.mjs <node_modules dir> <scenario> (--url URL | -- COMMAND ARGS...)
//
// The gateway is expected to offer two servers: `legacy` (tether's 2025-11-25 test server with
// --conformance-fixtures) and `modern` (tests/mcp/sdk_v2_server.mjs, 2026-07-28). Scenarios:
//   modern_to_legacy  SDK v2 client (@modelcontextprotocol/client) pinned to 2026-07-28 calls
//                     legacy__test_elicitation: the server's elicitation/create must come back
//                     as input_required, be answered by this host's handler, and the retry's
//                     answer must reach the server (its text names ada).
//   modern_to_modern  the same host calls modern__confirm (input_required relayed as is, answered
//                     {confirmed: true}), then opens subscriptions/listen, calls
//                     modern__add_tool and waits for tools list_changed and a tools/list with
//                     modern__late_tool.
//   legacy_to_modern  SDK 1.32 client (@modelcontextprotocol/sdk, 2025-11-25) with the
//                     elicitation capability calls modern__confirm: the server's input_required
//                     must come to it as an elicitation/create request on its session.
// `-- COMMAND...` speaks stdio to a child (its stderr goes to ours); --url speaks streamable HTTP.
//
// Stdout gets exactly one JSON object, {"ok", "steps": {name: value}, "error"?}, printed last;
// the exit code is 0 when every step passed and 1 otherwise (the failure is also on stderr).
// Steps run in order and stop at the first failure; each is bounded by STEP_MS, so a stuck
// gateway fails a step instead of hanging the test.
//
// The SDKs are loaded from the node_modules directory given on the command line: it lives
// outside the repository, where bare specifiers do not resolve.
import process from 'node:process';

import { loadPackage } from '../support/npm_package.mjs';
import { Report, bounded, check, loadLegacySdk, usage } from './peer_report.mjs';

const STEP_MS = 30000;
const MODERN_VERSION = '2026-07-28';
const LEGACY_VERSION = '2025-11-25';
const SCENARIOS = {
  modern_to_legacy: modernToLegacy,
  modern_to_modern: modernToModern,
  legacy_to_modern: legacyToModern,
};

const report = new Report('eras_client', STEP_MS);
const { steps, clients } = report;
const log = text => report.log(text);
const step = (name, fn) => report.step(name, fn);

function parseArgs(argv) {
  const [modules, scenario, ...rest] = argv;
  const opts = { modules, scenario };
  for (let i = 0; i < rest.length; ++i) {
    const arg = rest[i];
    if (arg === '--') {
      opts.command = rest.slice(i + 1);
      break;
    }
    if (arg === '--url') {
      if (i + 1 >= rest.length) throw usage('--url needs a value');
      opts.url = rest[++i];
    } else {
      throw usage(`unknown argument ${arg}`);
    }
  }
  if (!modules || !scenario) throw usage('needs <node_modules dir> <scenario>');
  if (!(scenario in SCENARIOS)) throw usage(`unknown scenario ${scenario}`);
  if ((opts.url === undefined) === (opts.command === undefined)) {
    throw usage('needs exactly one of --url URL and -- COMMAND ARGS...');
  }
  if (opts.command?.length === 0) throw usage('-- needs a command');
  return opts;
}

// SDK v2: the 2026-capable client.
async function loadModernSdk(modules) {
  const [client, stdio] = await Promise.all([
    loadPackage(modules, '@modelcontextprotocol/client'),
    loadPackage(modules, '@modelcontextprotocol/client/stdio'),
  ]);
  return { ...client, ...stdio };
}

// --- helpers ----------------------------------------------------------------------------------

function textOf(result) {
  return (result.content ?? [])
    .filter(item => item.type === 'text')
    .map(item => item.text)
    .join('\n');
}

// A tool result's text; a result with isError fails the step.
async function callText(client, name, args) {
  const result = await client.callTool({ name, arguments: args });
  const text = textOf(result);
  check(!result.isError, `${name} returned isError: ${text}`);
  return text;
}

// Closing aborts the HTTP transport's fetches, which the SDK reports as errors; expected here,
// so not logged.
// The whole environment, not the SDK's short default list: the test configures the gateway
// through it.
function stdioParams(opts) {
  const [command, ...args] = opts.command;
  return { command, args, env: process.env, stderr: 'inherit' };
}

// What the elicitation handlers saw, and what they answer: the form's fields decide (the legacy
// test server asks for {username, email}, the modern server for {confirmed}).
const elicitations = [];

function elicitationAnswer(params) {
  elicitations.push({ message: params?.message, mode: params?.mode, requestedSchema: params?.requestedSchema });
  const fields = Object.keys(params?.requestedSchema?.properties ?? {});
  if (fields.includes('confirmed')) return { action: 'accept', content: { confirmed: true } };
  if (fields.includes('username')) {
    return { action: 'accept', content: { username: 'ada', email: 'ada@example.com' } };
  }
  log(`elicitation with an unexpected form: ${JSON.stringify(params)}`);
  return { action: 'decline' };
}

// --- the 2026-07-28 host (SDK v2) -------------------------------------------------------------

function makeModernClient(sdk) {
  const client = new sdk.Client(
    { name: 'tether-eras-modern-host', version: '1.0.0' },
    {
      capabilities: { elicitation: { form: {} } },
      versionNegotiation: { mode: { pin: MODERN_VERSION } },
    },
  );
  client.setRequestHandler('elicitation/create', request => elicitationAnswer(request.params));
  client.onerror = error => log(`sdk error: ${error?.message ?? error}`);
  clients.push(client);
  return client;
}

function makeModernTransport(sdk, opts) {
  if (opts.url !== undefined) return new sdk.StreamableHTTPClientTransport(new URL(opts.url));
  return new sdk.StdioClientTransport(stdioParams(opts));
}

async function connectModern(sdk, opts) {
  const client = makeModernClient(sdk);
  await step('connect', async () => {
    await client.connect(makeModernTransport(sdk, opts));
    const protocolVersion = client.getNegotiatedProtocolVersion();
    const era = client.getProtocolEra();
    check(protocolVersion === MODERN_VERSION, `negotiated ${protocolVersion}, not ${MODERN_VERSION}`);
    check(era === 'modern', `the connection's era is ${era}`);
    return { protocolVersion, era, serverInfo: client.getServerVersion() };
  });
  return client;
}

async function modernToLegacy(opts) {
  const sdk = await loadModernSdk(opts.modules);
  const client = await connectModern(sdk, opts);
  await step('elicitation', async () => {
    const text = await callText(client, 'legacy__test_elicitation', { message: 'Who?' });
    check(text.includes('ada'), `legacy__test_elicitation answered ${JSON.stringify(text)}`);
    check(elicitations.length >= 1, 'the elicitation handler was never called');
    return { text, elicitations: elicitations.length, message: elicitations[0].message };
  });
}

async function modernToModern(opts) {
  const sdk = await loadModernSdk(opts.modules);
  const client = await connectModern(sdk, opts);
  await step('confirm', async () => {
    const text = await callText(client, 'modern__confirm', { question: 'Proceed?' });
    check(text.includes('confirmed: true'), `modern__confirm answered ${JSON.stringify(text)}`);
    check(elicitations.length >= 1, 'the elicitation handler was never called');
    return { text, elicitations: elicitations.length, message: elicitations[0].message };
  });

  const changed = Promise.withResolvers();
  let notifications = 0;
  client.setNotificationHandler('notifications/tools/list_changed', () => {
    ++notifications;
    changed.resolve();
  });
  let subscription;
  await step('listen', async () => {
    subscription = await client.listen({ toolsListChanged: true });
    const honored = subscription.honoredFilter;
    check(honored?.toolsListChanged === true, `the listen honoured ${JSON.stringify(honored)}`);
    return { honoredFilter: honored };
  });
  await step('list_changed', async () => {
    const text = await callText(client, 'modern__add_tool', { name: 'late_tool' });
    await changed.promise;
    const { tools } = await client.listTools(undefined, { cacheMode: 'refresh' });
    const names = tools.map(tool => tool.name);
    check(names.includes('modern__late_tool'), `tools/list lacks modern__late_tool: ${names}`);
    return { added: text, notifications, tool: 'modern__late_tool' };
  });
  await step('unlisten', async () => {
    await subscription.close();
    return await bounded(subscription.closed, 10000, 'the subscription end');
  });
}

// --- the 2025-11-25 host (SDK 1.32) -----------------------------------------------------------

async function legacyToModern(opts) {
  const sdk = await loadLegacySdk(opts.modules);
  const client = new sdk.Client(
    { name: 'tether-eras-legacy-host', version: '1.0.0' },
    { capabilities: { elicitation: { form: {} } } },
  );
  client.setRequestHandler(sdk.ElicitRequestSchema, request => elicitationAnswer(request.params));
  client.onerror = error => log(`sdk error: ${error?.message ?? error}`);
  clients.push(client);
  const transport = opts.url !== undefined
    ? new sdk.StreamableHTTPClientTransport(new URL(opts.url))
    : new sdk.StdioClientTransport(stdioParams(opts));

  await step('connect', async () => {
    let protocolVersion;
    // Client.connect chains an onmessage set beforehand; the initialize result is the only
    // place the negotiated version shows on stdio (the Client does not keep it).
    transport.onmessage = message => {
      protocolVersion ??= message.result?.protocolVersion;
    };
    await client.connect(transport);
    check(protocolVersion === LEGACY_VERSION, `negotiated ${protocolVersion}, not ${LEGACY_VERSION}`);
    return { protocolVersion, serverInfo: client.getServerVersion(), sessionId: transport.sessionId };
  });
  await step('confirm', async () => {
    const text = await callText(client, 'modern__confirm', { question: 'Proceed?' });
    check(text.includes('confirmed: true'), `modern__confirm answered ${JSON.stringify(text)}`);
    check(elicitations.length >= 1, 'no elicitation/create request came on the session');
    return { text, elicitations: elicitations.length, message: elicitations[0].message };
  });
}

// --- main -------------------------------------------------------------------------------------

await report.finish(async () => {
  const opts = parseArgs(process.argv.slice(2));
  await SCENARIOS[opts.scenario](opts);
});
