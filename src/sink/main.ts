/**
 * `node dist/cli.js sink`: a local endpoint for demos, tests and benchmarks.
 * It prints `METHOD URL [body]` per request (unless --quiet) and answers
 * with a fixed status after an optional delay, on keep-alive connections.
 *
 *   --port N      (default 9999)   --host H (default 127.0.0.1)
 *   --status N    (default 200)    --delay MS (default 0)
 *   --quiet       print nothing per request
 */
import { createServer } from 'node:http';
import { once } from 'node:events';
import { parseArgs } from 'node:util';

export async function runSink(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '9999' },
      host: { type: 'string', default: '127.0.0.1' },
      status: { type: 'string', default: '200' },
      delay: { type: 'string', default: '0' },
      quiet: { type: 'boolean', default: false },
    },
  });
  const status = Number(values.status);
  const delay = Number(values.delay);
  const port = Number(values.port);
  if (!Number.isInteger(status) || status < 100 || status > 599) throw new Error('--status must be 100 to 599');
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error('--port must be 0 to 65535');
  if (!Number.isFinite(delay) || delay < 0) throw new Error('--delay must be a number of ms');

  const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (!values.quiet) {
        const body = Buffer.concat(chunks).toString();
        process.stdout.write(`${req.method} ${req.headers.host ? `http://${req.headers.host}` : ''}${req.url}${body ? ` ${body}` : ''}\n`);
      }
      const reply = () => res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'error');
      if (delay > 0) setTimeout(reply, delay);
      else reply();
    });
  });
  server.listen(port, values.host);
  await once(server, 'listening');
  const addr = server.address();
  process.stderr.write(`sink listening on http://${values.host}:${typeof addr === 'object' && addr ? addr.port : port}\n`);
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.send?.('ready');
}
