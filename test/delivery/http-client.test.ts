/**
 * HttpClient (src/delivery/http-client.ts) in-process against real partners
 * on 127.0.0.1 that misbehave in every way a partner can: refuse, hang, cut
 * the headers, answer garbage, cut the body, answer 10 MB, redirect,
 * throttle. Every case asserts the whole AttemptResult.
 */
import t from 'tap';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { HttpClient, errorCodeOf, type SendRequest } from '../../src/delivery/http-client.js';
import type { AttemptResult, WorkerSettings } from '../../src/delivery/attempt.js';
import { classify, health } from '../../src/delivery/outcome.js';
import type { ErrorCode } from '../../src/errors.js';
import { freePort } from '../../bench/lib/ports.js';

const SETTINGS: WorkerSettings = {
  timeoutMs: 1000,
  responseBodyMax: 64,
  connectionsPerOrigin: 4,
  encodedDefault: '',
  userAgent: 'test',
  allowPrivate: true,
  allowedCidrs: [],
  allowedOrigins: [],
  dnsServers: [],
  signingSecrets: [],
  signingScheme: 'postback',
  caCerts: [],
};

interface Partner {
  port: number;
  origin: string;
  /** TCP connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

/** Destroys every socket of a server, then waits for it to close. */
function closer(server: Server | NetServer, sockets: Set<Socket>): () => Promise<void> {
  let closed: Promise<void> | undefined;
  return () => {
    closed ??= new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
    return closed;
  };
}

async function listen(server: Server | NetServer): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : 0;
}

/** A real node:http partner answering with `handler`. */
async function httpPartner(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<Partner> {
  const sockets = new Set<Socket>();
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, res, Buffer.concat(chunks).toString()));
  });
  const partner: Partner = { port: 0, origin: '', connections: 0, close: closer(server, sockets) };
  server.on('connection', (s: Socket) => {
    partner.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  partner.port = await listen(server);
  partner.origin = `http://127.0.0.1:${partner.port}`;
  return partner;
}

/** A raw TCP partner: `onRequest` gets each socket once the request's header block has arrived. */
async function rawPartner(onRequest: (socket: Socket) => void): Promise<Partner> {
  const sockets = new Set<Socket>();
  const partner: Partner = { port: 0, origin: '', connections: 0, close: () => Promise.resolve() };
  const server = createNetServer((s) => {
    partner.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let seen = '';
    let answered = false;
    s.on('data', (d: Buffer) => {
      seen += d.toString('latin1');
      if (!answered && seen.includes('\r\n\r\n')) {
        answered = true;
        onRequest(s);
      }
    });
  });
  partner.close = closer(server, sockets);
  partner.port = await listen(server);
  partner.origin = `http://127.0.0.1:${partner.port}`;
  return partner;
}

/** The one part of a tap Test the helpers need. */
interface Teardowns {
  teardown(fn: () => unknown): void;
}

function get(origin: string, path = '/cb?x=1'): SendRequest {
  return { origin, path, url: origin + path, method: 'GET', headers: { 'user-agent': 'test', 'x-postback-id': 'r:0' }, body: null };
}

function attempt(client: HttpClient, req: SendRequest): Promise<AttemptResult> {
  return client.send(req);
}

/** A client closed at the end of the test. */
function newClient(t: Teardowns, settings: WorkerSettings = SETTINGS): HttpClient {
  const client = new HttpClient(settings);
  t.teardown(() => client.close());
  return client;
}

/** A partner closed (its sockets destroyed) at the end of the test. */
function closeAfter(t: Teardowns, p: Partner): Partner {
  t.teardown(() => p.close());
  return p;
}

t.test('a normal 200 with a short body', async (t) => {
  const p = closeAfter(t, await httpPartner((_req, res) => res.end('ok thanks')));
  const client = newClient(t);
  const before = Date.now();
  const r = await attempt(client, get(p.origin));
  t.equal(r.status, 200);
  t.equal(r.body, 'ok thanks');
  t.equal(r.errorCode, null);
  t.equal(r.error, null);
  t.equal(r.retryAfter, null);
  t.equal(r.url, `${p.origin}/cb?x=1`);
  t.ok(r.deliveryTime >= before && r.deliveryTime <= Date.now(), 'deliveryTime is the attempt start');
  t.not(r.responseTime, null);
  t.ok((r.responseTime as number) >= r.deliveryTime, 'responseTime >= deliveryTime');
  t.ok(r.latencyMs > 0 && r.latencyMs < 1000, `latency ${r.latencyMs} ms`);
  t.equal(classify(r.status, r.errorCode), 'success');
});

t.test('POST with a JSON body: the partner gets the body and content-type sent', async (t) => {
  const got: { method?: string; url?: string; type?: string; length?: string; id?: string; body?: string } = {};
  const p = closeAfter(
    t,
    await httpPartner((req, res, body) => {
      Object.assign(got, {
        method: req.method,
        url: req.url,
        type: req.headers['content-type'],
        length: req.headers['content-length'],
        id: req.headers['x-postback-id'],
        body,
      });
      res.writeHead(201, { 'content-type': 'text/plain' });
      res.end('created');
    }),
  );
  const client = newClient(t);
  const json = JSON.stringify({ click: 'abc', value: 1.5, ok: true, none: null, text: 'é ü 😀' });
  const r = await attempt(client, {
    origin: p.origin,
    path: '/post?k=v',
    url: `${p.origin}/post?k=v`,
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-postback-id': 'r:7' },
    body: json,
  });
  t.same(got, {
    method: 'POST',
    url: '/post?k=v',
    type: 'application/json',
    length: String(Buffer.byteLength(json)),
    id: 'r:7',
    body: json,
  });
  t.equal(r.status, 201);
  t.equal(r.body, 'created');
  t.equal(r.errorCode, null);
  t.equal(r.error, null);
  t.not(r.responseTime, null);
});

t.test('connection refused: PB_ERR_CONNECT, no response fields', async (t) => {
  const port = await freePort();
  const client = newClient(t);
  const origin = `http://127.0.0.1:${port}`;
  const r = await attempt(client, get(origin));
  t.equal(r.errorCode, 'PB_ERR_CONNECT');
  t.type(r.error, 'string');
  t.match(r.error, /ECONNREFUSED/);
  t.equal(r.status, null);
  t.equal(r.body, null);
  t.equal(r.responseTime, null);
  t.equal(r.retryAfter, null);
  t.ok(r.latencyMs >= 0 && r.latencyMs < 1000, `latency ${r.latencyMs} ms`);
  t.equal(classify(r.status, r.errorCode), 'retryable');
});

t.test('a partner that accepts and never answers: PB_ERR_DELIVERY_TIMEOUT at the deadline', async (t) => {
  const p = closeAfter(t, await rawPartner(() => undefined));
  const client = newClient(t);
  const r = await attempt(client, get(p.origin));
  t.equal(r.errorCode, 'PB_ERR_DELIVERY_TIMEOUT');
  t.type(r.error, 'string');
  t.equal(r.status, null);
  t.equal(r.body, null);
  t.equal(r.responseTime, null);
  t.ok(r.latencyMs >= SETTINGS.timeoutMs * 0.9, `latency ${r.latencyMs} ms >= 0.9 x timeout`);
  t.ok(r.latencyMs < SETTINGS.timeoutMs * 5, `latency ${r.latencyMs} ms < 5 x timeout`);
  t.equal(p.connections, 1);
  t.equal(classify(r.status, r.errorCode), 'retryable');
});

t.test('a partner that sends part of the headers then closes: PB_ERR_SOCKET, retryable', async (t) => {
  for (const how of ['end', 'reset'] as const) {
    const p = closeAfter(
      t,
      await rawPartner((s) => {
        s.write('HTTP/1.1 200 OK\r\nContent-Type: text/pl');
        setTimeout(() => (how === 'reset' ? s.resetAndDestroy() : s.destroy()), 20);
      }),
    );
    const client = newClient(t);
    const r = await attempt(client, get(p.origin));
    t.equal(r.errorCode, 'PB_ERR_SOCKET', how);
    t.type(r.error, 'string');
    t.equal(r.status, null);
    t.equal(r.body, null);
    t.equal(r.responseTime, null);
    t.ok(r.latencyMs < SETTINGS.timeoutMs, `${how}: failed fast (${r.latencyMs} ms), not at the deadline`);
    t.equal(classify(r.status, r.errorCode), 'retryable');
  }
});

t.test('a partner that closes as soon as the request arrives: PB_ERR_SOCKET', async (t) => {
  const p = closeAfter(t, await rawPartner((s) => s.destroy()));
  const client = newClient(t);
  const r = await attempt(client, get(p.origin));
  t.equal(r.errorCode, 'PB_ERR_SOCKET');
  t.equal(r.status, null);
  t.equal(r.body, null);
  t.equal(r.responseTime, null);
  t.equal(classify(r.status, r.errorCode), 'retryable');
});

t.test('a partner answering something that is not HTTP: PB_ERR_PROTOCOL', async (t) => {
  for (const garbage of ['HELLO\r\n\r\n', 'SSH-2.0-OpenSSH_9.6\r\n', 'HTTP/1.1 abc OK\r\n\r\n', '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03']) {
    const p = closeAfter(
      t,
      await rawPartner((s) => {
        s.write(garbage, 'latin1');
      }),
    );
    const client = newClient(t);
    const r = await attempt(client, get(p.origin));
    t.equal(r.errorCode, 'PB_ERR_PROTOCOL', JSON.stringify(garbage));
    t.type(r.error, 'string');
    t.equal(r.status, null);
    t.equal(r.body, null);
    t.equal(r.responseTime, null);
    t.ok(r.latencyMs < SETTINGS.timeoutMs, `failed fast (${r.latencyMs} ms)`);
    t.equal(classify(r.status, r.errorCode), 'retryable');
  }
});

t.test('200 with Content-Length 1000, reset mid-body: status kept, what arrived kept, error set', async (t) => {
  const p = closeAfter(
    t,
    await rawPartner((s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n' + 'b'.repeat(100));
      setTimeout(() => s.resetAndDestroy(), 50);
    }),
  );
  const client = newClient(t);
  const r = await attempt(client, get(p.origin));
  t.equal(r.status, 200);
  t.equal(r.body, 'b'.repeat(SETTINGS.responseBodyMax), 'the bytes that arrived, up to RESPONSE_BODY_MAX');
  t.equal(r.errorCode, null, 'a body cut short does not change the outcome');
  t.type(r.error, 'string');
  t.match(r.error, /^response body: /);
  t.not(r.responseTime, null);
  t.ok(r.latencyMs < SETTINGS.timeoutMs, `failed fast (${r.latencyMs} ms)`);
  t.equal(classify(r.status, r.errorCode), 'success');
});

t.test('200 headers, then the body stalls past the deadline: status kept, what arrived kept, a timeout error', async (t) => {
  const p = closeAfter(
    t,
    await rawPartner((s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nabc');
    }),
  );
  const client = newClient(t);
  const r = await attempt(client, get(p.origin));
  t.equal(r.status, 200);
  t.equal(r.body, 'abc', 'the bytes that arrived');
  t.equal(r.errorCode, null, 'the status arrived: the outcome follows it (see the report on DELIVERY_TIMEOUT_MS)');
  t.type(r.error, 'string');
  t.match(r.error, /^response body: .*timed out/);
  t.not(r.responseTime, null);
  t.ok(r.latencyMs >= SETTINGS.timeoutMs * 0.9, `latency ${r.latencyMs} ms >= 0.9 x timeout`);
  t.ok(r.latencyMs < SETTINGS.timeoutMs * 5, `latency ${r.latencyMs} ms < 5 x timeout`);
  t.comment(`stalled body: status ${r.status}, errorCode ${r.errorCode}, error ${JSON.stringify(r.error)}, verdict ${classify(r.status, r.errorCode)}`);
});

t.test('a 10 MB response: body is the first RESPONSE_BODY_MAX bytes, memory stays flat', async (t) => {
  const TOTAL = 10 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = 97 + (i % 26);
  let served = 0;
  let bytesWritten = 0;
  const p = closeAfter(
    t,
    await httpPartner((_req, res) => {
      served++;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': TOTAL });
      let sent = 0;
      res.on('error', () => undefined);
      const pump = (): void => {
        while (sent < TOTAL && !res.destroyed) {
          sent += chunk.length;
          bytesWritten += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        if (sent >= TOTAL) res.end();
      };
      pump();
    }),
  );
  const client = newClient(t);
  const expected = chunk.subarray(0, SETTINGS.responseBodyMax).toString('latin1');
  const gc = (globalThis as { gc?: () => void }).gc;
  // One warm-up request so the pool, parser and buffers exist before measuring.
  const first = await attempt(client, get(p.origin));
  t.equal(first.body, expected);
  gc?.();
  const rssBefore = process.memoryUsage().rss;
  let allExact = true;
  let fails = 0;
  for (let i = 0; i < 20; i++) {
    const r = await attempt(client, get(p.origin));
    if (r.body !== expected) allExact = false;
    if (r.status !== 200 || r.errorCode !== null || r.error !== 'response body longer than 64 KiB: not read past that (connection closed)' || r.responseTime === null) fails++;
  }
  gc?.();
  const grown = process.memoryUsage().rss - rssBefore;
  t.ok(allExact, `body is exactly the first ${SETTINGS.responseBodyMax} bytes, every time`);
  t.equal(fails, 0, 'every attempt: status 200, no error code, the cut said in error, responseTime set');
  t.equal(served, 21);
  t.ok(grown < 50 * 1024 * 1024, `RSS grew ${(grown / 1048576).toFixed(1)} MB over 20 x 10 MB (gc ${gc ? 'on' : 'off'})`);
  t.ok(bytesWritten < 21 * TOTAL, `the client cut the responses short (${(bytesWritten / 1048576).toFixed(1)} MB written of ${21 * 10} MB)`);
  t.comment(`10 MB x 21: RSS ${grown >= 0 ? '+' : ''}${(grown / 1048576).toFixed(1)} MB, partner wrote ${(bytesWritten / 1048576).toFixed(1)} MB, gc ${gc ? 'exposed' : 'not exposed'}`);
});

t.test('a 302 is not followed: PB_ERR_REDIRECT with its Location', async (t) => {
  const target = closeAfter(t, await httpPartner((_req, res) => res.end('target')));
  const location = `${target.origin}/landing?from=redirect`;
  const p = closeAfter(
    t,
    await httpPartner((_req, res) => {
      res.writeHead(302, { location, 'content-type': 'text/plain' });
      res.end('moved');
    }),
  );
  const client = newClient(t);
  const r = await attempt(client, get(p.origin));
  t.equal(r.status, 302);
  t.equal(r.errorCode, 'PB_ERR_REDIRECT');
  t.type(r.error, 'string');
  t.ok((r.error as string).includes(location), `error names the Location: ${r.error}`);
  t.equal(r.body, 'moved');
  t.not(r.responseTime, null);
  t.equal(classify(r.status, r.errorCode), 'permanent');
  // A client that followed redirects would have done so before answering.
  t.equal(target.connections, 0, 'the redirect target got nothing');
});

t.test('a 429 with Retry-After: 7 carries retryAfter "7"', async (t) => {
  const p = closeAfter(
    t,
    await httpPartner((_req, res) => {
      res.writeHead(429, { 'retry-after': '7', 'content-type': 'text/plain' });
      res.end('slow down');
    }),
  );
  const client = newClient(t);
  const r = await attempt(client, get(p.origin));
  t.equal(r.status, 429);
  t.equal(r.retryAfter, '7');
  t.equal(r.body, 'slow down');
  t.equal(r.errorCode, null);
  t.equal(r.error, null);
  t.not(r.responseTime, null);
  t.equal(classify(r.status, r.errorCode), 'retryable');
});

t.test('keep-alive: 50 sequential requests use at most connectionsPerOrigin sockets', async (t) => {
  let requests = 0;
  const p = closeAfter(
    t,
    await httpPartner((_req, res) => {
      requests++;
      res.end(`n${requests}`);
    }),
  );
  const client = newClient(t);
  let ok = 0;
  for (let i = 0; i < 50; i++) {
    const r = await attempt(client, get(p.origin, `/k?i=${i}`));
    if (r.status === 200 && r.body === `n${i + 1}` && r.errorCode === null) ok++;
  }
  t.equal(ok, 50, 'every request answered in order');
  t.equal(requests, 50);
  t.ok(p.connections >= 1 && p.connections <= SETTINGS.connectionsPerOrigin, `${p.connections} connection(s) for 50 requests`);
  t.comment(`keep-alive: 50 requests over ${p.connections} connection(s)`);
});

t.test('keep-alive: 40 concurrent requests use at most connectionsPerOrigin sockets', async (t) => {
  const p = closeAfter(
    t,
    await httpPartner((_req, res) => {
      setTimeout(() => res.end('ok'), 5);
    }),
  );
  const client = newClient(t);
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => client.send(get(p.origin, `/c?i=${i}`))));
  t.equal(results.filter((r) => r.status === 200 && r.body === 'ok').length, 40);
  t.ok(p.connections <= SETTINGS.connectionsPerOrigin, `${p.connections} connection(s) for 40 concurrent requests`);
});

t.test('attempts waiting for a connection are not charged for the wait', async (t) => {
  let inFlight = 0;
  let most = 0;
  const p = closeAfter(
    t,
    await httpPartner((_req, res) => {
      most = Math.max(most, ++inFlight);
      setTimeout(() => {
        inFlight--;
        res.end('ok');
      }, 200);
    }),
  );
  // 12 attempts, 2 connections, 200 ms each: the last starts 1 s after the first, past the 300 ms timeout.
  const client = newClient(t, { ...SETTINGS, connectionsPerOrigin: 2, timeoutMs: 300 });
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) => client.send(get(p.origin, `/w?i=${i}`))));
  t.same(results.map((r) => r.status), Array(12).fill(200), 'every one delivered: none timed out waiting');
  t.ok(results.every((r) => r.latencyMs < 300), `each timed on its own: at most ${Math.max(...results.map((r) => r.latencyMs))} ms`);
  t.equal(most, 2, 'never more at once than the connections');
});

t.test('errors are told apart by whose they are: the partner, the network, or this process', async (t) => {
  const err = (code: string, message = 'x') => Object.assign(new Error(message), { code });
  const cases: [string, Error, string, 'down' | 'fail' | 'none'][] = [
    ['a reset', err('ECONNRESET'), 'PB_ERR_SOCKET', 'down'],
    ['an aborted connection', err('ECONNABORTED'), 'PB_ERR_SOCKET', 'down'],
    ['undici: the socket closed', err('UND_ERR_SOCKET', 'other side closed'), 'PB_ERR_SOCKET', 'down'],
    ['undici: a response out of turn', err('UND_ERR_SOCKET', 'bad response'), 'PB_ERR_PROTOCOL', 'fail'],
    ['undici: an upgrade nobody asked for', err('UND_ERR_SOCKET', 'bad upgrade'), 'PB_ERR_PROTOCOL', 'fail'],
    ['the kernel gave up connecting', err('ETIMEDOUT'), 'PB_ERR_CONNECT', 'down'],
    ['the network is down', err('ENETDOWN'), 'PB_ERR_CONNECT', 'down'],
    ['the host is down', err('EHOSTDOWN'), 'PB_ERR_CONNECT', 'down'],
    ['out of file descriptors', err('EMFILE'), 'PB_ERR_INTERNAL', 'none'],
    ['the system out of file descriptors', err('ENFILE'), 'PB_ERR_INTERNAL', 'none'],
    ['out of socket buffers', err('ENOBUFS'), 'PB_ERR_INTERNAL', 'none'],
  ];
  for (const [name, e, code, h] of cases) {
    const r = errorCodeOf(e, false);
    t.equal(r.code, code, `${name}: ${code}`);
    t.equal(health(null, r.code as ErrorCode), h, `${name}: counts as ${h} for the breaker`);
    t.equal(classify(null, r.code as ErrorCode), 'retryable', `${name}: retried`);
  }
  t.match(errorCodeOf(err('EMFILE', 'connect EMFILE 127.0.0.1:80'), false).message, /out of file descriptors/);
});

t.test('an unsolicited 100 Continue before the answer: a protocol error, retried, not a reset', async (t) => {
  const p = closeAfter(
    t,
    await rawPartner((s) => {
      s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    }),
  );
  const client = newClient(t);
  const r = await attempt(client, get(p.origin));
  t.equal(r.errorCode, 'PB_ERR_PROTOCOL');
  t.match(r.error, /unsolicited 100 Continue/);
  t.equal(classify(r.status, r.errorCode), 'retryable');
});

t.test('a status outside 100 to 599: kept as sent, failed for good, and the log line says why', async (t) => {
  const p = closeAfter(
    t,
    await rawPartner((s) => {
      s.write('HTTP/1.1 999 Request Denied\r\nContent-Length: 2\r\n\r\nno');
    }),
  );
  const client = newClient(t);
  const r = await attempt(client, get(p.origin));
  t.equal(r.status, 999);
  t.equal(r.errorCode, null);
  t.match(r.error, /outside HTTP's 100 to 599/);
  t.equal(classify(r.status, r.errorCode), 'permanent');
});
