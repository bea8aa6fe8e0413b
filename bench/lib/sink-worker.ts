/**
 * The sink, inside a worker thread of the harness so its event loop is not
 * the load generator's. One keep-alive node:http server per origin, each
 * answering 200 "ok" at once or after its delay. Per origin it records,
 * for the current tag (the first path segment, set by `reset`): requests
 * received, distinct X-Postback-Id values (the rest are duplicates), first
 * and last receipt times, and an HDR histogram of ingest-to-receipt latency
 * from the `ts` query parameter (µs of `nowUs()`, put in the data by the
 * sender), and receipts per 10 ms (for the most in any 1-second window: a
 * partner's rate limit as the partner counts). Requests of another tag
 * (left over from an earlier phase) count as `stray`. An origin can be
 * taken down (its ports refuse connections) and brought back on the same
 * ports. An origin given a key and certificate serves https (node:https)
 * and counts, per phase, its TLS handshakes (resumed ones apart) beside the
 * TCP connections every origin counts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { once } from 'node:events';
import { parentPort, workerData } from 'node:worker_threads';
import { createHistogram, nowUs, recordUs, summarize, type Histogram } from './histogram.js';
import type { OriginSpec, OriginStats, SinkReply, SinkRequest } from './sink.js';

interface OriginState {
  name: string;
  delayMs: number;
  servers: Server[];
  /** Its ports: one, or several for an origin spread over many ports (many-origins). */
  ports: number[];
  received: number;
  stray: number;
  noId: number;
  ids: Set<string>;
  firstUs: number;
  lastUs: number;
  lastNewUs: number;
  hist: Histogram;
  /** Receipts per 10 ms slot (µs / 10,000), this phase. */
  slots: Map<number, number>;
  connections: number;
  handshakes: number;
  resumed: number;
  tlsErrors: number;
}

const SLOT_US = 10_000;

/** The most receipts in any window of 1 s (100 slots), sliding by 10 ms. */
function peak1s(slots: Map<number, number>): number {
  const keys = [...slots.keys()].sort((a, b) => a - b);
  let best = 0;
  let sum = 0;
  for (let i = 0, j = 0; j < keys.length; j++) {
    sum += slots.get(keys[j] as number) as number;
    while ((keys[j] as number) - (keys[i] as number) >= 100) sum -= slots.get(keys[i++] as number) as number;
    best = Math.max(best, sum);
  }
  return best;
}

const port = parentPort;
if (port === null) throw new Error('sink-worker must run in a worker thread');

const origins = new Map<string, OriginState>();
let prefix = '/none/';
const HEADERS = { 'content-type': 'text/plain', 'content-length': '2' };

function tsOf(url: string): number | null {
  const i = url.indexOf('&ts=');
  if (i === -1) return null;
  const end = url.indexOf('&', i + 4);
  const ts = Number(url.slice(i + 4, end === -1 ? undefined : end));
  return Number.isFinite(ts) ? ts : null;
}

function handler(o: OriginState) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const at = nowUs();
    const url = req.url ?? '';
    if (!url.startsWith(prefix)) {
      o.stray++;
    } else {
      o.received++;
      if (o.firstUs === 0) o.firstUs = at;
      o.lastUs = at;
      const slot = Math.floor(at / SLOT_US);
      o.slots.set(slot, (o.slots.get(slot) ?? 0) + 1);
      const id = req.headers['x-postback-id'];
      if (typeof id !== 'string') {
        o.noId++;
      } else if (!o.ids.has(id)) {
        o.ids.add(id);
        o.lastNewUs = at;
      }
      const ts = tsOf(url);
      if (ts !== null) recordUs(o.hist, at - ts);
    }
    const delay = o.delayMs;
    req.on('end', () => {
      if (delay > 0) {
        setTimeout(() => {
          if (!res.destroyed) res.writeHead(200, HEADERS).end('ok');
        }, delay);
      } else {
        res.writeHead(200, HEADERS).end('ok');
      }
    });
    req.resume();
  };
}

function clear(o: OriginState): void {
  o.received = 0;
  o.stray = 0;
  o.noId = 0;
  o.ids = new Set();
  o.firstUs = 0;
  o.lastUs = 0;
  o.lastNewUs = 0;
  o.hist.reset();
  o.slots = new Map();
  o.connections = 0;
  o.handshakes = 0;
  o.resumed = 0;
  o.tlsErrors = 0;
}

function stats(o: OriginState, latency: boolean): OriginStats {
  return {
    received: o.received,
    distinct: o.ids.size,
    duplicates: o.received - o.noId - o.ids.size,
    noId: o.noId,
    stray: o.stray,
    firstUs: o.firstUs,
    lastUs: o.lastUs,
    lastNewUs: o.lastNewUs,
    latency: latency ? summarize(o.hist) : null,
    peak1s: peak1s(o.slots),
    connections: o.connections,
    handshakes: o.handshakes,
    resumed: o.resumed,
    tlsErrors: o.tlsErrors,
  };
}

async function start(list: OriginSpec[]): Promise<void> {
  for (const { name, delayMs, ports: count, tls } of list) {
    const o: OriginState = {
      name,
      delayMs,
      servers: [],
      ports: [],
      received: 0,
      stray: 0,
      noId: 0,
      ids: new Set(),
      firstUs: 0,
      lastUs: 0,
      lastNewUs: 0,
      hist: createHistogram(),
      slots: new Map(),
      connections: 0,
      handshakes: 0,
      resumed: 0,
      tlsErrors: 0,
    };
    for (let k = 0; k < (count ?? 1); k++) {
      const options = { keepAliveTimeout: 60_000, requestTimeout: 0 };
      const server = tls ? createHttpsServer({ ...options, key: tls.key, cert: tls.cert }, handler(o)) : createServer(options, handler(o));
      server.on('connection', () => o.connections++);
      if (tls) {
        server.on('secureConnection', (socket: TLSSocket) => {
          o.handshakes++;
          if (socket.isSessionReused()) o.resumed++;
        });
        server.on('tlsClientError', () => o.tlsErrors++);
      }
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const addr = server.address();
      o.servers.push(server);
      o.ports.push(typeof addr === 'object' && addr ? addr.port : 0);
    }
    origins.set(name, o);
  }
  const ports: Record<string, number[]> = {};
  for (const o of origins.values()) ports[o.name] = o.ports;
  (port as NonNullable<typeof port>).postMessage({ type: 'listening', ports });
}

port.on('message', (m: SinkRequest) => {
  let reply: SinkReply;
  if (m.type === 'reset') {
    prefix = `/${m.tag}/`;
    for (const o of origins.values()) {
      clear(o);
      const d = m.delays?.[o.name];
      if (d !== undefined) o.delayMs = d;
    }
    reply = { id: m.id, stats: {} };
  } else if (m.type === 'down' || m.type === 'up') {
    void (async () => {
      const o = origins.get(m.name);
      if (o !== undefined) {
        if (m.type === 'down') {
          for (const server of o.servers) {
            server.closeAllConnections();
            await new Promise((r) => server.close(r));
          }
        } else {
          for (let k = 0; k < o.servers.length; k++) {
            const server = o.servers[k] as Server;
            server.listen(o.ports[k], '127.0.0.1');
            await once(server, 'listening');
          }
        }
      }
      (port as NonNullable<typeof port>).postMessage({ id: m.id, stats: {} });
    })();
    return;
  } else {
    const out: Record<string, OriginStats> = {};
    for (const o of origins.values()) out[o.name] = stats(o, (m as { latency: boolean }).latency);
    reply = { id: m.id, stats: out };
  }
  (port as NonNullable<typeof port>).postMessage(reply);
});

void start(workerData as OriginSpec[]);
