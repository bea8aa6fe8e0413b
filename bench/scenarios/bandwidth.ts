/**
 * `bandwidth`: bytes between the service and Redis per postback, in (to
 * Redis) and out (from Redis), from INFO stats total_net_input_bytes /
 * total_net_output_bytes deltas (less the harness's own INFO/GET traffic)
 * over an ingest + deliver run of --bandwidth-n postbacks of the v1 sample
 * (its 2 items a request, URL pointed at the sink), sent at a fixed rate
 * (--bandwidth-rate postbacks/s, well within what the service delivers, so
 * no backlog builds up and nothing is parked), counted until every postback
 * is delivered and acknowledged. Next to it, on the same Redis, a
 * naive encoding: one JSON document per postback holding method, URL
 * template and data, LPUSHed to a list by a producer and BRPOPped by a
 * consumer (ioredis).
 */
import { Redis } from 'ioredis';
import { openLoop, sendBulk } from '../lib/load.js';
import { SAMPLE_ITEMS, plainSinkBody } from '../lib/payload.js';
import { commandCalls, counterDelta, snapshot, type BenchRedis } from '../lib/redis.js';
import { get, ratio, sleep, type Metrics, type RunContext, type RunResult, type Scenario, type Table } from '../lib/scenario.js';
import { Sink } from '../lib/sink.js';
import { startStack, type Stack } from '../lib/stack.js';

const SEND_CONNECTIONS = 16;
const ACK_SETTLE_MS = 500;

/** Waits until every shard's documented count key (README: `<prefix>:{<shard>}:count`) reads 0. */
async function waitAcknowledged(stack: Stack, timeoutMs = 30_000): Promise<boolean> {
  const shards = Number(stack.env.QUEUE_SHARDS ?? 1) || 1;
  const keys = Array.from({ length: shards }, (_, i) => `${stack.env.REDIS_PREFIX}:{${i}}:count`);
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    let pending = 0;
    let known = false;
    for (const key of keys) {
      // A shard nothing was written to has no count key yet: 0.
      const v = await stack.redis.client.command('GET', key);
      if (v !== null) {
        known = true;
        pending += Number(v);
      }
    }
    if (known && pending === 0) return true;
    if (!known && pending === 0) break;
    await sleep(100);
  }
  // Unknown key layout (or timed out): give the finalizer a fixed while.
  await sleep(2_000);
  return false;
}

async function naive(redis: BenchRedis, template: string, n: number): Promise<{ netIn: number; netOut: number; commands: number }> {
  const producer = new Redis(redis.port, '127.0.0.1', { lazyConnect: true });
  const consumer = new Redis(redis.port, '127.0.0.1', { lazyConnect: true });
  await Promise.all([producer.connect(), consumer.connect()]);
  try {
    const key = 'naive:postbacks';
    const s0 = await snapshot(redis);
    const consumed = (async () => {
      let got = 0;
      while (got < n) {
        const r = await consumer.brpop(key, 5);
        if (r === null) throw new Error(`naive consumer: list empty after ${got} of ${n}`);
        got++;
      }
    })();
    for (let i = 0; i < n; i += 1000) {
      const p = producer.pipeline();
      for (let k = i; k < Math.min(n, i + 1000); k++) {
        const data = SAMPLE_ITEMS[k % SAMPLE_ITEMS.length] as { key: string; value: string };
        p.lpush(key, JSON.stringify({ method: 'GET', url: template, data }));
      }
      await p.exec();
    }
    await consumed;
    const s1 = await snapshot(redis);
    return counterDelta(s0, s1);
  } finally {
    producer.disconnect();
    consumer.disconnect();
  }
}

export const bandwidthScenario: Scenario = {
  name: 'bandwidth',
  summary: 'bytes between the service and Redis per postback (in/out), vs one JSON document per postback LPUSHed and BRPOPped',
  async run(ctx: RunContext): Promise<RunResult> {
    const o = ctx.opts;
    const items = o.bandwidthItems;
    const n = Math.ceil(o.bandwidthN / items) * items;
    const sink = await Sink.start([{ name: 'a', delayMs: 0 }]);
    const stack = await startStack(ctx, { ingest: true, delivery: true });
    const m: Metrics = {};
    let acknowledged = false;
    let template = '';
    try {
      const origin = sink.origin('a');
      // Warm-up: connections, scripts and consumer groups in place.
      await sink.reset('warm');
      await sendBulk({ origin: stack.ingestOrigin, path: '/i', requests: 1, concurrency: 1, body: () => plainSinkBody(origin, 'warm', items) });
      await sink.waitFor((s) => (s.a?.distinct ?? 0) >= items, { idleMs: 10_000, timeoutMs: 30_000 });
      await waitAcknowledged(stack);

      ctx.progress(`service: ${n} postbacks, ${items} a request, ${o.bandwidthRate}/s`);
      await sink.reset('bw');
      const c0 = commandCalls(await stack.redis.client.info('commandstats'));
      const s0 = await snapshot(stack.redis);
      const body = plainSinkBody(origin, 'bw', items);
      const send = await openLoop({
        origin: stack.ingestOrigin,
        path: '/i',
        ratePerSec: o.bandwidthRate / items,
        durationS: n / o.bandwidthRate,
        connections: SEND_CONNECTIONS,
        body: () => body,
      });
      const wait = await sink.waitFor((s) => (s.a?.distinct ?? 0) >= send.accepted, { idleMs: 15_000, timeoutMs: 300_000 });
      acknowledged = await waitAcknowledged(stack);
      await sleep(ACK_SETTLE_MS);
      const s1 = await snapshot(stack.redis);
      const c1 = commandCalls(await stack.redis.client.info('commandstats'));
      const d = counterDelta(s0, s1);
      const delivered = wait.stats.a?.distinct ?? 0;
      for (const [cmd, calls] of Object.entries(c1)) {
        const delta = calls - (c0[cmd] ?? 0);
        if (cmd !== 'info' && cmd !== 'get' && delta > 0) m[`service.cmd.${cmd}_per_pb`] = delta / Math.max(1, delivered);
      }
      m['service.postbacks'] = delivered;
      m['service.in_per_pb'] = d.netIn / Math.max(1, delivered);
      m['service.out_per_pb'] = d.netOut / Math.max(1, delivered);
      m['service.total_per_pb'] = (d.netIn + d.netOut) / Math.max(1, delivered);
      m['service.commands_per_pb'] = d.commands / Math.max(1, delivered);
      m['service.losses'] = Math.max(0, send.accepted - delivered);
      template = JSON.parse(plainSinkBody(origin, 'bw', 1)).endpoint.url as string;
    } finally {
      await stack.stop();
      await sink.close();
    }
    // The naive encoding, on a Redis of its own (nothing else connected).
    const naiveStack = await startStack(ctx, {});
    try {
      ctx.progress(`naive: ${n} JSON documents, LPUSH + BRPOP`);
      const d = await naive(naiveStack.redis, template, n);
      m['naive.postbacks'] = n;
      m['naive.in_per_pb'] = d.netIn / n;
      m['naive.out_per_pb'] = d.netOut / n;
      m['naive.total_per_pb'] = (d.netIn + d.netOut) / n;
      m['naive.commands_per_pb'] = d.commands / n;
    } finally {
      await naiveStack.stop();
    }
    m['ratio.in'] = ratio(get(m, 'service.in_per_pb'), get(m, 'naive.in_per_pb'));
    m['ratio.out'] = ratio(get(m, 'service.out_per_pb'), get(m, 'naive.out_per_pb'));
    m['ratio.total'] = ratio(get(m, 'service.total_per_pb'), get(m, 'naive.total_per_pb'));
    return {
      metrics: m,
      knobs: {
        ...stack.knobs(),
        postbacks: n,
        itemsPerRequest: items,
        rate: o.bandwidthRate,
        sendConnections: SEND_CONNECTIONS,
        sent: 'open loop at a fixed rate, so the figure is the steady state and not what a backlog (parking) adds',
        template,
        acknowledgedBeforeSnapshot: acknowledged,
        naive: 'ioredis: pipelined LPUSH of JSON {method, url, data} per postback; one consumer BRPOP per postback',
      },
    };
  },
  tables(m: Metrics): Table[] {
    const row = (label: string, k: string, r: boolean) => [
      label,
      get(m, `${k}.postbacks`),
      get(m, `${k}.in_per_pb`),
      get(m, `${k}.out_per_pb`),
      get(m, `${k}.total_per_pb`),
      get(m, `${k}.commands_per_pb`),
      r ? get(m, 'ratio.in') : null,
      r ? get(m, 'ratio.out') : null,
      r ? get(m, 'ratio.total') : null,
    ];
    return [
      {
        title: 'bandwidth: bytes between the service and Redis per postback (v1 sample)',
        columns: ['encoding', 'postbacks', 'in B/pb', 'out B/pb', 'total B/pb', 'cmds/pb', 'in x naive', 'out x naive', 'total x naive'],
        rows: [row('service (ingest + delivery)', 'service', true), row('naive JSON list', 'naive', false)],
        notes: [
          `service commands per postback: ${Object.keys(m)
            .filter((k) => k.startsWith('service.cmd.'))
            .map((k) => `${k.slice('service.cmd.'.length, -'_per_pb'.length)} ${(get(m, k) ?? 0).toFixed(3)}`)
            .join(', ')} (GET not counted: the harness polls the count key with it)`,
        ],
      },
    ];
  },
};
