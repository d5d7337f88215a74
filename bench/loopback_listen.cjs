// Preloaded into supergateway by tether-gateway-bench (`node --require <this> <supergateway>`).
// supergateway has no option for the listening address (express's app.listen(port) binds every
// interface), and it prints nothing useful with --logLevel none. This makes a TCP listen bind
// 127.0.0.1 only, so the benchmark peer is never reachable from the network, and prints the
// bound address as the first stdout line (`http://127.0.0.1:<port>`), so --port 0 can be used
// without a race for a free port. Nothing else in supergateway changes.
'use strict';
const net = require('node:net');

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const callback = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
  let port;
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    port = Number(args[0]);
  } else if (args[0] && typeof args[0] === 'object' && args[0].port !== undefined && !args[0].path) {
    port = Number(args[0].port);
  } else {
    // Not a TCP port (a pipe path, a handle): left alone.
    return listen.apply(this, callback ? [...args, callback] : args);
  }
  this.once('listening', () => {
    process.stdout.write(`http://127.0.0.1:${this.address().port}\n`);
  });
  return listen.call(this, { port, host: '127.0.0.1' }, callback);
};
