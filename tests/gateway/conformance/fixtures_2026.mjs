// fixtures_2026.mjs — the fixtures the official conformance tool (@modelcontextprotocol/conformance
// 0.2.0-alpha.12, npm alias conformance-2026) calls at --spec-version 2026-07-28 that tether's
// 2025 test server (tether-test-mcp-server --conformance-fixtures) does not offer. A stdio MCP
// server on the official TypeScript SDK v2; run-server-scenario starts it as the gateway's second
// upstream, beside the test server, so every name here is distinct from the test server's.
//
// Run (Node 22):
//   TETHER_NPM_ROOT=<npm root> node tests/gateway/conformance/fixtures_2026.mjs
// <npm root> is the directory holding node_modules/ (scripts/install-test-packages --print-root).
// Without TETHER_NPM_ROOT, NODE_PATH=<npm root>/node_modules is used. Serves stdio with
// serveStdio: a first message carrying the 2026-07-28 _meta envelope pins that revision (the
// gateway relays the downstream client's clientCapabilities in each request's _meta); an
// `initialize` pins the 2025 era instead, where the SDK's legacy shim fulfils input_required
// with real server->client requests. Exits when stdin closes; SIGTERM ends open
// subscriptions/listen with their result first. Diagnostics go to stderr, prefixed `fixtures_2026:`.
// Packages: @modelcontextprotocol/server 2.4.0, zod 4.
//
// Offers (capabilities: tools/prompts listChanged, logging; tools/list in registration order):
//   server-stateless (SEP-2575):
//     test_missing_capability   asks for sampling; without the sampling capability in the
//                               request's clientCapabilities the SDK answers -32021 with
//                               data.requiredCapabilities {"sampling":{}}
//     test_streaming_elicitation  returns an input_required elicitation (never a request on the stream)
//     test_logging_tool         one notifications/message, only when _meta carries
//                               io.modelcontextprotocol/logLevel (the SDK's rule), then text
//     test_trigger_tool_change / test_trigger_prompt_change
//                               register a new tool test_added_tool_<n> / prompt
//                               test_added_prompt_<n>, which sends tools / prompts list_changed
//                               onto the open subscriptions/listen streams
//   input-required-result-* (SEP-2322, multi round-trip):
//     test_input_required_result_elicitation  key user_name (elicitation {name}) -> "Hello, <name>!"
//     test_input_required_result_sampling     key capital_question (sampling, maxTokens 100)
//     test_input_required_result_list_roots   key client_roots (roots/list)
//     test_input_required_result_request_state  key confirm (elicitation {ok}) + requestState -> "state-ok"
//     test_input_required_result_multiple_inputs  user_name + greeting (sampling, maxTokens 50)
//                                             + client_roots, with requestState
//     test_input_required_result_multi_round  step1 {name}, then step2 {color} under a new
//                                             requestState, then complete
//     test_input_required_result_tampered_state  key confirm + requestState
//     test_input_required_result_capabilities  asks only for what the request's clientCapabilities
//                                             declare (sample_input, user_input, client_roots)
//     prompt test_input_required_result_prompt  key user_context (elicitation {context})
//
// Retry checks, made before the SDK dispatches the request (a tool handler's throw would become an
// isError result, and the spec wants JSON-RPC errors here), both answered -32602:
//   - inputResponses that is not an object (e.g. null), or whose entry for a key this fixture
//     asked for is not a response of the kind asked (e.g. user_name: 12345);
//   - a requestState this process did not issue for this fixture. States are
//     b64url(JSON payload) "." b64url(HMAC-SHA256) under a per-process random key, bound to the
//     fixture's name ("requestState integrity check failed").
// Keys a fixture did not ask for are ignored; a retry missing a key it asked for gets
// input_required again.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { loadPackage, modulesFromEnvironment } from '../../support/npm_package.mjs';

const modules = modulesFromEnvironment();
const load = (spec) => loadPackage(modules, spec);
const { McpServer, CLIENT_CAPABILITIES_META_KEY, inputRequired, inputResponse } = await load('@modelcontextprotocol/server');
const { serveStdio } = await load('@modelcontextprotocol/server/stdio');
const { z } = await load('zod');

const say = (message) => process.stderr.write(`fixtures_2026: ${message}\n`);
const text = (t) => ({ content: [{ type: 'text', text: t }] });
const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const INVALID_PARAMS = -32602;

// ---- requestState: HMAC-sealed, bound to the fixture that issued it ----
const stateKey = randomBytes(32);
const mac = (body) => createHmac('sha256', stateKey).update(body).digest('base64url');
function mintState(target, payload) {
    const body = Buffer.from(JSON.stringify({ t: target, n: randomBytes(8).toString('base64url'), p: payload })).toString('base64url');
    return `${body}.${mac(body)}`;
}
// The payload of a state this process minted for `target`, else undefined.
function openState(target, state) {
    if (typeof state !== 'string') return undefined;
    const [body, tag, extra] = state.split('.');
    if (!body || !tag || extra !== undefined) return undefined;
    const want = Buffer.from(mac(body));
    const got = Buffer.from(tag);
    if (want.length !== got.length || !timingSafeEqual(want, got)) return undefined;
    try {
        const decoded = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
        return decoded.t === target ? decoded.p ?? {} : undefined;
    } catch {
        return undefined;
    }
}

// ---- the embedded requests each fixture may ask for: key -> kind ----
const nameSchema = { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] };
const asks = {
    askName: () => inputRequired.elicit({ message: 'What is your name?', requestedSchema: nameSchema }),
    askOk: (message) => inputRequired.elicit({ message, requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] } }),
    askColor: () => inputRequired.elicit({ message: 'What is your favourite color?', requestedSchema: { type: 'object', properties: { color: { type: 'string' } }, required: ['color'] } }),
    askContext: () => inputRequired.elicit({ message: 'What context should the prompt use?', requestedSchema: { type: 'object', properties: { context: { type: 'string' } }, required: ['context'] } }),
    sample: (question, maxTokens) => inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: question } }], maxTokens }),
    roots: () => inputRequired.listRoots()
};
// Per fixture (tools/call or prompts/get name): the inputResponses keys it reads and their kind.
const expected = {
    test_missing_capability: { sample: 'sampling' },
    test_streaming_elicitation: { confirm: 'elicit' },
    test_input_required_result_elicitation: { user_name: 'elicit' },
    test_input_required_result_sampling: { capital_question: 'sampling' },
    test_input_required_result_list_roots: { client_roots: 'roots' },
    test_input_required_result_request_state: { confirm: 'elicit' },
    test_input_required_result_multiple_inputs: { user_name: 'elicit', greeting: 'sampling', client_roots: 'roots' },
    test_input_required_result_multi_round: { step1: 'elicit', step2: 'elicit' },
    test_input_required_result_tampered_state: { confirm: 'elicit' },
    test_input_required_result_capabilities: { sample_input: 'sampling', user_input: 'elicit', client_roots: 'roots' },
    test_input_required_result_prompt: { user_context: 'elicit' }
};
const kindOk = {
    elicit: (v) => isObject(v) && ['accept', 'decline', 'cancel'].includes(v.action) && (v.content === undefined || isObject(v.content)),
    sampling: (v) => isObject(v) && typeof v.role === 'string' && (isObject(v.content) || Array.isArray(v.content)),
    roots: (v) => isObject(v) && Array.isArray(v.roots)
};
const kindName = { elicit: 'elicitation result', sampling: 'sampling result', roots: 'roots/list result' };

// The JSON-RPC error a retry earns before dispatch, or undefined to dispatch it.
function retryError(message) {
    if (message.method !== 'tools/call' && message.method !== 'prompts/get') return undefined;
    const params = isObject(message.params) ? message.params : {};
    const target = typeof params.name === 'string' ? params.name : '';
    if ('inputResponses' in params) {
        const responses = params.inputResponses;
        if (!isObject(responses)) return { code: INVALID_PARAMS, message: 'inputResponses must be an object mapping keys to responses' };
        for (const [key, kind] of Object.entries(expected[target] ?? {})) {
            if (key in responses && !kindOk[kind](responses[key])) {
                return { code: INVALID_PARAMS, message: `inputResponses.${key} is not a valid ${kindName[kind]}`, data: { key } };
            }
        }
    }
    if ('requestState' in params && openState(target, params.requestState) === undefined) {
        return { code: INVALID_PARAMS, message: 'requestState integrity check failed' };
    }
    return undefined;
}

// ---- the fixtures ----
const noArgs = z.object({});
let added = 0; // test_added_tool_<n> / test_added_prompt_<n>, unique per process

function makeServer() {
    const server = new McpServer({ name: 'tether-conformance-fixtures-2026', version: '1.0.0' },
        { capabilities: { logging: {}, tools: { listChanged: true }, prompts: { listChanged: true } } });
    const tool = (name, description, handler) => server.registerTool(name, { description, inputSchema: noArgs }, (_args, ctx) => handler(ctx));
    const state = (ctx, target) => openState(target, ctx.mcpReq.requestState()); // verified before dispatch
    const reply = (ctx, key) => inputResponse(ctx.mcpReq.inputResponses, key);
    const samplingText = (r) => [r.result.content].flat().find((c) => c?.type === 'text')?.text ?? '';

    // server-stateless
    tool('test_missing_capability', 'Requires the sampling client capability: asks the client for one sampling/createMessage', async (ctx) => {
        const r = reply(ctx, 'sample');
        if (r.kind === 'sampling') return text(`sampled: ${samplingText(r)}`);
        return inputRequired({ inputRequests: { sample: asks.sample('Say hello.', 20) } });
    });
    tool('test_streaming_elicitation', 'Requires the elicitation client capability: answers input_required with an elicitation', async (ctx) => {
        const r = reply(ctx, 'confirm');
        if (r.kind === 'elicit') return text(r.action === 'accept' ? `confirmed: ${r.content?.ok === true}` : r.action);
        return inputRequired({ inputRequests: { confirm: asks.askOk('Continue?') } });
    });
    tool('test_logging_tool', 'Logs one notifications/message (only when the request _meta sets a logLevel), then returns text', async (ctx) => {
        await ctx.mcpReq.log('info', 'test_logging_tool: a log message', 'test_logging_tool');
        return text('logged');
    });
    tool('test_trigger_tool_change', 'Registers a new tool, which sends notifications/tools/list_changed', async () => {
        const name = `test_added_tool_${++added}`;
        server.registerTool(name, { description: 'Added by test_trigger_tool_change', inputSchema: noArgs }, async () => text(name));
        return text(`added tool ${name}`);
    });
    tool('test_trigger_prompt_change', 'Registers a new prompt, which sends notifications/prompts/list_changed', async () => {
        const name = `test_added_prompt_${++added}`;
        server.registerPrompt(name, { description: 'Added by test_trigger_prompt_change' },
            () => ({ messages: [{ role: 'user', content: { type: 'text', text: name } }] }));
        return text(`added prompt ${name}`);
    });

    // input-required-result-*
    tool('test_input_required_result_elicitation', 'Asks for the user name (input_required, key user_name), then greets', async (ctx) => {
        const r = reply(ctx, 'user_name');
        if (r.kind === 'elicit' && r.action === 'accept' && typeof r.content?.name === 'string') return text(`Hello, ${r.content.name}!`);
        if (r.kind === 'elicit' && r.action !== 'accept') return text(`No name given (${r.action})`);
        return inputRequired({ inputRequests: { user_name: asks.askName() } });
    });
    tool('test_input_required_result_sampling', 'Asks the client for one sampling/createMessage (input_required, key capital_question)', async (ctx) => {
        const r = reply(ctx, 'capital_question');
        if (r.kind === 'sampling') return text(`The client answered: ${samplingText(r)}`);
        return inputRequired({ inputRequests: { capital_question: asks.sample('What is the capital of France?', 100) } });
    });
    tool('test_input_required_result_list_roots', 'Asks the client for roots/list (input_required, key client_roots)', async (ctx) => {
        const r = reply(ctx, 'client_roots');
        if (r.kind === 'roots') return text(`Client roots: ${r.roots.map((root) => root.uri).join(', ') || '(none)'}`);
        return inputRequired({ inputRequests: { client_roots: asks.roots() } });
    });
    tool('test_input_required_result_request_state', 'Asks for confirmation with a requestState the retry must echo; then "state-ok"', async (ctx) => {
        const target = 'test_input_required_result_request_state';
        const r = reply(ctx, 'confirm');
        if (state(ctx, target) !== undefined && r.kind === 'elicit') return text('state-ok');
        return inputRequired({ inputRequests: { confirm: asks.askOk('Confirm to continue?') }, requestState: mintState(target, {}) });
    });
    tool('test_input_required_result_multiple_inputs', 'Asks for an elicitation, a sampling and a roots/list at once, with requestState', async (ctx) => {
        const target = 'test_input_required_result_multiple_inputs';
        const all = { user_name: asks.askName, greeting: () => asks.sample('Write a short greeting.', 50), client_roots: asks.roots };
        const missing = Object.keys(all).filter((key) => reply(ctx, key).kind !== expected[target][key]);
        if (state(ctx, target) !== undefined && missing.length === 0) {
            const name = reply(ctx, 'user_name').content?.name ?? '(declined)';
            return text(`name: ${name}; greeting: ${samplingText(reply(ctx, 'greeting'))}; roots: ${reply(ctx, 'client_roots').roots.length}`);
        }
        const ask = state(ctx, target) === undefined ? Object.keys(all) : missing;
        return inputRequired({ inputRequests: Object.fromEntries(ask.map((key) => [key, all[key]()])), requestState: mintState(target, {}) });
    });
    tool('test_input_required_result_multi_round', 'Asks for a name, then (new requestState) a color, then completes', async (ctx) => {
        const target = 'test_input_required_result_multi_round';
        const prior = state(ctx, target);
        if (prior?.round === 2) {
            const r = reply(ctx, 'step2');
            if (r.kind === 'elicit' && r.action === 'accept' && typeof r.content?.color === 'string') return text(`${prior.name} likes ${r.content.color}`);
            return inputRequired({ inputRequests: { step2: asks.askColor() }, requestState: mintState(target, prior) });
        }
        const r = reply(ctx, 'step1');
        if (prior?.round === 1 && r.kind === 'elicit' && r.action === 'accept' && typeof r.content?.name === 'string') {
            return inputRequired({ inputRequests: { step2: asks.askColor() }, requestState: mintState(target, { round: 2, name: r.content.name }) });
        }
        return inputRequired({ inputRequests: { step1: asks.askName() }, requestState: mintState(target, { round: 1 }) });
    });
    tool('test_input_required_result_tampered_state', 'Issues a requestState; a retry with a state it did not issue is rejected (-32602)', async (ctx) => {
        const target = 'test_input_required_result_tampered_state';
        if (state(ctx, target) !== undefined && reply(ctx, 'confirm').kind === 'elicit') return text('state verified');
        return inputRequired({ inputRequests: { confirm: asks.askOk('Confirm to continue?') }, requestState: mintState(target, {}) });
    });
    tool('test_input_required_result_capabilities', 'Asks only for the inputs the request\'s clientCapabilities declare', async (ctx) => {
        const declared = ctx.mcpReq.envelope?.[CLIENT_CAPABILITIES_META_KEY] ?? {};
        const offer = {};
        if (isObject(declared.sampling)) offer.sample_input = () => asks.sample('Say something.', 50);
        if (isObject(declared.elicitation)) offer.user_input = asks.askName;
        if (isObject(declared.roots)) offer.client_roots = asks.roots;
        const missing = Object.keys(offer).filter((key) => reply(ctx, key).kind === 'missing');
        if (missing.length === 0) {
            return text(Object.keys(offer).length ? `received: ${Object.keys(offer).join(', ')}` : 'the client declared no capability to ask through');
        }
        return inputRequired({ inputRequests: Object.fromEntries(missing.map((key) => [key, offer[key]()])) });
    });

    server.registerPrompt('test_input_required_result_prompt', { description: 'Asks for context (input_required, key user_context), then returns it in a message' }, (ctx) => {
        const r = reply(ctx, 'user_context');
        if (r.kind === 'elicit' && r.action === 'accept' && typeof r.content?.context === 'string') {
            return { messages: [{ role: 'user', content: { type: 'text', text: `Context: ${r.content.context}` } }] };
        }
        return inputRequired({ inputRequests: { user_context: asks.askContext() } });
    });

    // The retry checks above, ahead of the SDK's dispatch: answered here with a JSON-RPC error.
    const connect = server.connect.bind(server);
    server.connect = async (transport) => {
        await connect(transport);
        const deliver = transport.onmessage;
        transport.onmessage = (message, extra) => {
            const error = message && 'id' in message && 'method' in message ? retryError(message) : undefined;
            if (error === undefined) return deliver?.(message, extra);
            say(`rejected ${message.method} ${message.params?.name}: ${error.message}`);
            transport.send({ jsonrpc: '2.0', id: message.id, error }).catch((e) => say(e.message));
        };
    };
    return server;
}

const handle = serveStdio(makeServer, { onerror: (e) => say(e.message) });
process.on('SIGTERM', () => handle.close().finally(() => process.exit(0))); // ends open listens gracefully
