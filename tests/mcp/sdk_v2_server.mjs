// sdk_v2_server.mjs — a real MCP server built on the official TypeScript SDK v2, used by tether's
// C++ tests as a peer that speaks MCP 2026-07-28 (stateless, server/discover, MRTR,
// subscriptions/listen) and, on the same factory, the 2025 era (initialize handshake).
//
// Run (Node 22):
//   TETHER_NPM_ROOT=<npm root> node tests/mcp/sdk_v2_server.mjs stdio
//   TETHER_NPM_ROOT=<npm root> node tests/mcp/sdk_v2_server.mjs http --port 0
// <npm root> is the directory holding node_modules/ (scripts/install-test-packages --print-root,
// npm_root() in tests/support). Without TETHER_NPM_ROOT, NODE_PATH=<npm root>/node_modules is used
// (ESM ignores NODE_PATH, so the script resolves packages itself from that directory).
// stdio: serveStdio — the first message (initialize vs a 2026 request) decides the era.
//        Exits when stdin closes; SIGTERM first ends open subscriptions/listen with their result.
// http:  createMcpHandler on 127.0.0.1 only; prints exactly one stdout line
//        `http://127.0.0.1:<port>/mcp` once listening; exits on SIGTERM or when stdin closes
//        (so run it with stdin as an open pipe, not /dev/null). 2025-era POSTs are served by
//        the SDK's stateless legacy fallback.
// Diagnostics (rejections, `slow aborted at step i/4`) go to stderr, prefixed `sdk_v2_server:`.
// Packages: @modelcontextprotocol/server 2.4.0, @modelcontextprotocol/node 2.1.2, zod 4 (4.6.7).
//
// Offers: tools requests {method} (how many of them arrived), echo, confirm (elicitation: input_required in 2026, server->client
// elicitation/create via the SDK's legacy shim in 2025), add_tool (tools list_changed), slow
// (progress + cancellation), header_echo (x-mcp-header Region -> Mcp-Param-Region); resource
// test://static, template test://item/{id} (its listing cacheable for 10 minutes); prompt greet;
// logging.
import { createServer } from 'node:http';
import { loadPackage, modulesFromEnvironment } from '../support/npm_package.mjs';

const modules = modulesFromEnvironment();
const load = (spec) => loadPackage(modules, spec);
const { McpServer, ResourceTemplate, createMcpHandler, inputRequired, inputResponse } = await load('@modelcontextprotocol/server');
const { serveStdio } = await load('@modelcontextprotocol/server/stdio');
const { toNodeHandler } = await load('@modelcontextprotocol/node');
const { z } = await load('zod');

const mode = process.argv[2];
const text = (t) => ({ content: [{ type: 'text', text: t }] });
const addedTools = new Set(); // shared by every instance (HTTP builds one per request)
let notifyToolsChanged = () => {}; // HTTP: publish onto the subscriptions/listen bus

function registerEcho(server, name) {
    server.registerTool(name, { description: `echoes (added by add_tool)`, inputSchema: z.object({ text: z.string().optional() }) },
        async ({ text: t }) => text(t ?? name));
}

const requests = new Map(); // method -> how many requests of it arrived (tool `requests`)

function makeServer() {
    // resources/templates/list may be cached for 10 minutes (the others: ttlMs 0).
    const server = new McpServer({ name: 'tether-sdk-v2-peer', version: '1.0.0' },
        { capabilities: { logging: {}, tools: { listChanged: true }, resources: { subscribe: true, listChanged: true }, prompts: { listChanged: true } },
          cacheHints: { 'resources/templates/list': { ttlMs: 600000, cacheScope: 'private' } } });
    const connect = server.connect.bind(server);
    server.connect = async (transport) => {
        await connect(transport);
        const deliver = transport.onmessage;
        transport.onmessage = (message, extra) => {
            if (message?.method) requests.set(message.method, (requests.get(message.method) ?? 0) + 1);
            return deliver?.(message, extra);
        };
    };
    server.registerTool('requests', { description: 'How many requests of a method arrived', inputSchema: z.object({ method: z.string() }) },
        async ({ method }) => text(String(requests.get(method) ?? 0)));
    server.registerTool('echo', { description: 'Echoes text', inputSchema: z.object({ text: z.string() }) }, async ({ text: t }) => text(t));

    const answer = z.object({ confirmed: z.boolean() });
    server.registerTool('confirm', { description: 'Asks the client to confirm', inputSchema: z.object({ question: z.string() }) },
        async ({ question }, ctx) => {
            const reply = inputResponse(ctx.mcpReq.inputResponses, 'confirm');
            if (reply.kind === 'elicit') return text(reply.action === 'accept' ? `confirmed: ${reply.content?.confirmed === true}` : 'declined');
            return inputRequired({ inputRequests: { confirm: inputRequired.elicit({ message: question, requestedSchema: answer }) }, requestState: 'confirm-1' });
        });

    server.registerTool('add_tool', { description: 'Registers a new echo tool', inputSchema: z.object({ name: z.string() }) }, async ({ name }) => {
        if (!addedTools.has(name)) {
            addedTools.add(name);
            if (mode === 'http') notifyToolsChanged();
            else registerEcho(server, name); // registering on the connected instance sends list_changed
        }
        return text(`added ${name}`);
    });

    server.registerTool('slow', { description: 'Waits ms, reporting progress', inputSchema: z.object({ ms: z.number().int() }) }, async ({ ms }, ctx) => {
        const token = ctx.mcpReq._meta?.progressToken;
        const signal = ctx.mcpReq.signal;
        const steps = 4;
        for (let i = 1; i <= steps; i++) {
            await new Promise((resolve, reject) => {
                const onAbort = () => {
                    clearTimeout(timer);
                    process.stderr.write(`sdk_v2_server: slow aborted at step ${i}/${steps}\n`);
                    reject(new Error('cancelled'));
                };
                const timer = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(); }, ms / steps);
                if (signal.aborted) onAbort(); else signal.addEventListener('abort', onAbort, { once: true });
            });
            if (token !== undefined) await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: steps } });
            await ctx.mcpReq.log('info', `slow: step ${i}/${steps}`, 'slow'); // 2026: only if _meta carries a logLevel
        }
        return text('done');
    });

    server.registerTool('header_echo', {
        description: 'Returns the Mcp-Param-Region header it saw (HTTP), else the region argument',
        inputSchema: z.object({ region: z.string().meta({ 'x-mcp-header': 'Region' }) })
    }, async ({ region }, ctx) => text(ctx.http?.req?.headers.get('mcp-param-region') ?? region));

    server.registerResource('static', 'test://static', { mimeType: 'text/plain' },
        async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'static text' }] }));
    server.registerResource('item', new ResourceTemplate('test://item/{id}', { list: undefined }), { mimeType: 'text/plain' },
        async (uri, { id }) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: `item ${id}` }] }));
    server.registerPrompt('greet', { description: 'Greets someone', argsSchema: z.object({ name: z.string() }) },
        ({ name }) => ({ messages: [{ role: 'user', content: { type: 'text', text: `Hello, ${name}!` } }] }));

    // 2025 era: resources/subscribe is a request (no updates are ever sent); 2026 uses subscriptions/listen.
    server.server.setRequestHandler('resources/subscribe', async () => ({}));
    server.server.setRequestHandler('resources/unsubscribe', async () => ({}));
    for (const name of addedTools) registerEcho(server, name);
    return server;
}

if (mode === 'stdio') {
    const handle = serveStdio(makeServer, { onerror: (e) => process.stderr.write(`sdk_v2_server: ${e.message}\n`) });
    process.on('SIGTERM', () => handle.close().finally(() => process.exit(0))); // ends open listens gracefully
} else if (mode === 'http') {
    const portArg = process.argv.indexOf('--port');
    const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 0;
    const handler = createMcpHandler(makeServer, { onerror: (e) => process.stderr.write(`sdk_v2_server: ${e.message}\n`) });
    notifyToolsChanged = () => handler.notify.toolsChanged();
    const node = toNodeHandler(handler);
    const http = createServer((req, res) => {
        if (new URL(req.url, 'http://x').pathname !== '/mcp') { res.writeHead(404).end(); return; }
        node(req, res);
    });
    http.listen(port, '127.0.0.1', () => process.stdout.write(`http://127.0.0.1:${http.address().port}/mcp\n`));
    let stopping = false;
    const stop = async () => {
        if (stopping) return;
        stopping = true;
        await handler.close().catch(() => {}); // ends open listen streams with their result
        await new Promise((resolve) => setTimeout(resolve, 100)); // let the final SSE frames flush
        http.closeAllConnections();
        process.exit(0);
    };
    process.on('SIGTERM', stop);
    process.stdin.on('end', stop).on('close', stop).resume();
} else {
    process.stderr.write('usage: node sdk_v2_server.mjs stdio | http [--port N]\n');
    process.exit(2);
}
