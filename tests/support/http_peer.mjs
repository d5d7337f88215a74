// http_peer.mjs: the HTTP server the fetch and http/request tests talk to (plain Node, no npm
// packages). It listens on 127.0.0.1 port 0, and also with TLS when given `--cert F --key K`,
// then prints one line: {"port":N,"tlsPort":M|null}. tests/support/http_peer.hpp runs it.
//
// Routes (the same on both listeners):
//   /echo                  JSON {method, url, rawHeaders: [[name, value], ...] in order,
//   bodyBase64} /bytes?n=N             N bytes, byte i = (i*7)%251, with Content-Length
//   /slow?pieces=K&ms=M    chunked: `piece-0\n` .. `piece-(K-1)\n`, M ms apart
//   /forever               a chunk every 50 ms until the client goes away
//   /hang                  reads the request and never answers
//   /status?code=N         status N
//   /redirect?status=S&to=URL   status S (default 302) with Location: URL
//   /bad-header            X-Bad holds a byte that is not UTF-8; X-Good is plain
//   /big-stream?n=N        N bytes written as fast as the socket takes them (backpressure honoured)
//   /stats                 JSON {open, served, remotePorts, bytesWritten}: sockets open now and
//                          requests served so far (/stats calls not counted), the client ports of
//                          those requests, and the bytes /big-stream handed to its sockets.
import {readFileSync} from 'node:fs';
import http from 'node:http';
import https from 'node:https';

const args = process.argv.slice(2);
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

const sockets = new Set();
const statsSockets = new WeakSet();  // a /stats caller's socket is not "left open" by a test
let served = 0;
const remotePorts = [];
let bytesWritten = 0;

function pattern(n) {
  const bytes = Buffer.alloc(n);
  for (let i = 0; i < n; ++i) bytes[i] = (i * 7) % 251;
  return bytes;
}

// Writes `total` bytes of the pattern in 64 KiB writes, waiting for 'drain' whenever the socket
// is behind, so bytesWritten tracks what the client actually takes.
function bigStream(res, total) {
  const chunk = pattern(64 * 1024);
  let sent = 0;
  res.writeHead(200, {'content-type': 'application/octet-stream', 'content-length': total});
  const pump = () => {
    while (sent < total && !res.destroyed) {
      const piece = chunk.subarray(0, Math.min(chunk.length, total - sent));
      sent += piece.length;
      bytesWritten += piece.length;
      if (!res.write(piece)) return res.once('drain', pump);
    }
    if (sent >= total) res.end();
  };
  pump();
}

function handle(req, res, body) {
  const url = new URL(req.url, 'http://peer');
  const q = (name, fallback) => url.searchParams.get(name) ?? fallback;
  switch (url.pathname) {
    case '/echo': {
      const rawHeaders = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2)
        rawHeaders.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
      const answer =
          {method: req.method, url: req.url, rawHeaders, bodyBase64: body.toString('base64')};
      res.writeHead(200, {'content-type': 'application/json'});
      return res.end(JSON.stringify(answer));
    }
    case '/bytes': {
      const bytes = pattern(Number(q('n', '0')));
      res.writeHead(
          200, {'content-type': 'application/octet-stream', 'content-length': bytes.length});
      return res.end(bytes);
    }
    case '/slow': {
      const pieces = Number(q('pieces', '3'));
      const ms = Number(q('ms', '50'));
      res.writeHead(200, {'content-type': 'text/plain'});
      res.flushHeaders();
      let i = 0;
      const timer = setInterval(() => {
        if (i < pieces) res.write(`piece-${i++}\n`);
        if (i >= pieces) {
          clearInterval(timer);
          res.end();
        }
      }, ms);
      return res.on('close', () => clearInterval(timer));
    }
    case '/forever': {
      res.writeHead(200, {'content-type': 'text/plain'});
      res.flushHeaders();
      let i = 0;
      const timer = setInterval(() => res.write(`tick-${i++}\n`), 50);
      return res.on('close', () => clearInterval(timer));
    }
    case '/hang':
      return;
    case '/status': {
      const code = Number(q('code', '200'));
      res.writeHead(code, {'content-type': 'text/plain'});
      return res.end(code === 204 || code === 304 ? undefined : `status ${code}`);
    }
    case '/redirect':
      res.writeHead(Number(q('status', '302')), {location: q('to', '/echo')});
      return res.end();
    case '/bad-header':
      // Node writes header values as latin1: '\xe9' goes out as the single byte 0xE9.
      res.writeHead(200, {'x-bad': 'caf\xe9', 'x-good': 'fine', 'content-type': 'text/plain'});
      return res.end('bad header');
    case '/big-stream':
      return bigStream(res, Number(q('n', '0')));
    default:
      res.writeHead(404, {'content-type': 'text/plain'});
      return res.end('no such route');
  }
}

function onRequest(req, res) {
  if (req.url === '/stats') {
    statsSockets.add(req.socket);
    let open = 0;
    for (const socket of sockets)
      if (!statsSockets.has(socket)) ++open;
    res.writeHead(200, {'content-type': 'application/json', connection: 'close'});
    return res.end(JSON.stringify({open, served, remotePorts, bytesWritten}));
  }
  ++served;
  remotePorts.push(req.socket.remotePort);
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => handle(req, res, Buffer.concat(chunks)));
}

// Counted from accept to close, TLS handshakes that fail included. The https server's
// 'connection' socket is the TCP one; its requests see the TLS socket wrapped around it.
function track(server) {
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return server;
}

function listen(server) {
  return new Promise(
      (resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

const port = await listen(track(http.createServer(onRequest)));
let tlsPort = null;
if (option('--cert')) {
  const tls = {cert: readFileSync(option('--cert')), key: readFileSync(option('--key'))};
  tlsPort = await listen(track(https.createServer(tls, onRequest)));
}
process.stdout.write(JSON.stringify({port, tlsPort}) + '\n');
