/**
 * The ingest baseline, run as its own process (`node dist/bench/lib/baseline.js`)
 * like ingest is: a node:http server that reads the request body, and
 * answers 202 with a body the size of ingest's. No parsing, no Redis: the
 * ceiling of an HTTP ingest on this machine. It listens on a free port,
 * sends `{ type: 'listening', port }` and then 'ready' over IPC.
 */
import { createServer } from 'node:http';
import { once } from 'node:events';

const BODY = '{"id":"bAsEl1nE0","accepted":1}';
const HEADERS = { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(BODY)) };

const server = createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
  req.on('data', () => undefined);
  req.on('end', () => {
    res.writeHead(202, HEADERS);
    res.end(BODY);
  });
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const addr = server.address();
process.send?.({ type: 'listening', port: typeof addr === 'object' && addr ? addr.port : 0 });
process.send?.('ready');
process.on('disconnect', () => process.exit(0));
