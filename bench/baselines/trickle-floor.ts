/**
 * Baseline for e2e-trickle: the same hops as the service, with nothing
 * else. Two processes, like ingest and delivery:
 *
 *   FLOOR_ROLE=front: a node:http server; POST /i reads the body, parses
 *     it (JSON, to count its items), XADDs it as is to FLOOR_STREAM through
 *     ioredis and answers 202 once Redis has it. No validation, no script,
 *     no group commit.
 *   FLOOR_ROLE=back: one XREAD BLOCK loop on FLOOR_STREAM (no consumer
 *     group, no acknowledgement); each entry's items are rendered into the
 *     URL template and sent at once through an undici Pool per origin,
 *     with X-Postback-Id and User-Agent, without waiting for the answers.
 *
 *   REDIS_URL=redis://127.0.0.1:PORT FLOOR_STREAM=key FLOOR_ROLE=front|back \
 *   node dist/bench/baselines/trickle-floor.js
 *
 * front sends `{ type: 'listening', port }`, both send 'ready'. What it
 * measures is what one ingest request, one Redis write, one blocked read's
 * wake-up and one HTTP request cost on this machine right now, in Node:
 * the floor under the service's latency at low load, measured beside it.
 */
import { createServer } from 'node:http';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { renderSample } from '../lib/payload.js';

const role = process.env.FLOOR_ROLE;
const stream = process.env.FLOOR_STREAM ?? 'floor';
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const userAgent = process.env.FLOOR_USER_AGENT ?? 'postback-delivery/bench';

interface FloorRequest {
  endpoint: { method: string; url: string };
  data: Record<string, string | number>[];
}

async function front(): Promise<void> {
  const redis = new Redis(url);
  let seq = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      const id = `f${++seq}`;
      let items: number;
      try {
        items = (JSON.parse(body.toString()) as FloorRequest).data.length;
      } catch {
        res.writeHead(400).end();
        return;
      }
      redis.xadd(stream, '*', 'r', id, 'b', body).then(
        () => {
          const reply = `{"id":"${id}","accepted":${items}}`;
          res.writeHead(202, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(reply) }).end(reply);
        },
        () => res.writeHead(503).end(),
      );
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const addr = server.address();
  process.send?.({ type: 'listening', port: typeof addr === 'object' && addr ? addr.port : 0 });
  process.send?.('ready');
}

async function back(): Promise<void> {
  const redis = new Redis(url);
  const pools = new Map<string, Pool>();
  const pool = (origin: string): Pool => {
    let p = pools.get(origin);
    if (p === undefined) {
      p = new Pool(origin, { connections: 64, pipelining: 1, keepAliveTimeout: 4_000 });
      pools.set(origin, p);
    }
    return p;
  };
  const send = (request: FloorRequest, id: string): void => {
    for (let k = 0; k < request.data.length; k++) {
      const target = new URL(renderSample(request.endpoint.url, request.data[k] as Record<string, string | number>));
      pool(target.origin)
        .request({ path: target.pathname + target.search, method: 'GET', headers: { 'user-agent': userAgent, 'x-postback-id': `${id}:${k}` } })
        .then(
          (res) => res.body.dump(),
          () => undefined,
        );
    }
  };
  let last = '$';
  process.send?.('ready');
  for (;;) {
    const reply = await redis.xreadBuffer('BLOCK', 0, 'STREAMS', stream, last);
    for (const [, entries] of reply ?? []) {
      for (const [entryId, fields] of entries) {
        last = entryId.toString();
        send(JSON.parse((fields[3] as Buffer).toString()) as FloorRequest, (fields[1] as Buffer).toString());
      }
    }
  }
}

process.on('disconnect', () => process.exit(0));
if (role === 'front') await front();
else if (role === 'back') await back();
else throw new Error('FLOOR_ROLE must be front or back');
