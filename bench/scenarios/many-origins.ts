/**
 * `many-origins`: real traffic spreads over thousands of partner hosts with
 * a few postbacks each. The same --many-n postbacks (30,000), 10 a request,
 * in four phases, each on a fresh stack:
 * 1. one: all to one origin (an IP literal);
 * 2. literals: --origins origins (3,000) x 10, each an IP literal (the sink
 *    listens on that many ports);
 * 3. names: the same count of host names (o<i>.pb.test) resolving to the
 *    sink through a DNS server the harness runs (DELIVERY_DNS_SERVERS);
 * 4. slow-dns: the same names behind a resolver answering after 50 ms.
 * Measured per phase: delivered/s, latency, and the delivery process's RSS
 * (peak during the phase, at its end, and after --many-idle seconds idle,
 * default 0) and open files (peak), and the DNS queries made.
 * Then the floor: a bare undici loop (bench/baselines/undici-loop.ts)
 * making the same requests to the one origin and to the many, whose ratio
 * is what a plain client gets when each origin costs a pool and its
 * connections.
 * Targets: literals / one >= 0.7; slow-dns / literals >= 0.5.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { deliverBulk, originMetrics } from '../lib/deliver.js';
import { startDnsServer, type DnsServer } from '../lib/dns-server.js';
import { fmt } from '../lib/report.js';
import { get, ratio, sleep, type Metrics, type RunContext, type RunResult, type Scenario, type Table } from '../lib/scenario.js';
import { Sink } from '../lib/sink.js';
import { startStack } from '../lib/stack.js';
import { runUndiciLoop } from './e2e.js';

const ITEMS = 10;
const SEND_CONCURRENCY = 16;
const ZONE = 'pb.test';
const PHASES = ['one', 'literals', 'names', 'slow-dns'] as const;
type Phase = (typeof PHASES)[number];

/** RSS (bytes) and open files of a process, from /proc. */
function usage(pid: number): { rss: number; fds: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
    return { rss, fds: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return { rss: 0, fds: 0 };
  }
}

/** Samples a process every 100 ms until stopped; returns the peaks. */
function sampler(pid: number): { stop(): { rssPeak: number; fdsPeak: number } } {
  let rssPeak = 0;
  let fdsPeak = 0;
  const take = () => {
    const u = usage(pid);
    rssPeak = Math.max(rssPeak, u.rss);
    fdsPeak = Math.max(fdsPeak, u.fds);
  };
  take();
  const timer = setInterval(take, 100);
  return {
    stop() {
      clearInterval(timer);
      take();
      return { rssPeak, fdsPeak };
    },
  };
}

const MB = 1024 * 1024;

export const manyOriginsScenario: Scenario = {
  name: 'many-origins',
  summary: '30,000 postbacks over 3,000 origins (IP literals, host names, a 50 ms resolver) against one origin: rate, delivery RSS and open files',
  async run(ctx: RunContext): Promise<RunResult> {
    const o = ctx.opts;
    const origins = o.origins;
    const n = o.manyN;
    const m: Metrics = {};
    const knobs: Record<string, unknown> = {};
    const sink = await Sink.start([
      { name: 'one', delayMs: 0 },
      { name: 'many', delayMs: 0, ports: origins },
    ]);
    let dns: DnsServer | null = null;
    try {
      dns = await startDnsServer({ zone: ZONE, ttl: 300 });
      const onePort = new URL(sink.origin('one')).port;
      for (const phase of PHASES) {
        dns.delayMs = phase === 'slow-dns' ? 50 : 0;
        const queriesBefore = dns.total;
        const env: Record<string, string> = phase === 'names' || phase === 'slow-dns' ? { DELIVERY_DNS_SERVERS: dns.server } : {};
        const stack = await startStack(ctx, { ingest: true, delivery: true }, env);
        try {
          ctx.progress(`${phase}: ${n} postbacks, ${phase === 'one' ? 1 : origins} origin(s), ${ITEMS} a request`);
          const pid = stack.delivery?.pid as number;
          const samples = sampler(pid);
          const route = (_i: number): string => (phase === 'literals' ? 'many' : 'one');
          const originOf =
            phase === 'one'
              ? undefined
              : phase === 'literals'
                ? (i: number) => sink.origin('many', i % origins)
                : (i: number) => `http://o${i % origins}.${ZONE}:${onePort}`;
          const result = await deliverBulk({
            sink,
            ingestOrigin: stack.ingestOrigin,
            tag: phase,
            n,
            items: ITEMS,
            concurrency: SEND_CONCURRENCY,
            route,
            ...(originOf ? { originOf } : {}),
            progress: ctx.progress,
          });
          const peaks = samples.stop();
          originMetrics(m, phase, result, route(0));
          m[`${phase}.rss_peak_mb`] = peaks.rssPeak / MB;
          m[`${phase}.rss_end_mb`] = usage(pid).rss / MB;
          m[`${phase}.fds_peak`] = peaks.fdsPeak;
          m[`${phase}.dns_queries`] = dns.total - queriesBefore;
          if (o.manyIdleS > 0) {
            await sleep(o.manyIdleS * 1000);
            const after = usage(pid);
            m[`${phase}.rss_idle_mb`] = after.rss / MB;
            m[`${phase}.fds_idle`] = after.fds;
          }
          knobs[phase] = stack.knobs();
        } finally {
          await stack.stop();
        }
      }
      // The floor: a bare undici loop (no Redis, no queue) making the same
      // requests, to one origin and to the many origins (a pool of two
      // connections per origin, closed after its ten), in the same run.
      ctx.progress(`bare undici: ${n} requests to one origin, then ${origins} origins x ${ITEMS}`);
      const bareOne = await runUndiciLoop(sink, 'bare-one', n, { name: 'one' });
      const many = Array.from({ length: origins }, (_, i) => sink.origin('many', i));
      const bareMany = await runUndiciLoop(sink, 'bare-many', n, { name: 'many', many: { origins: many, each: ITEMS } });
      m['bare.one_req_s'] = bareOne.reqPerSec;
      m['bare.literals_req_s'] = bareMany.reqPerSec;
      m['bare.errors'] = bareOne.errors + bareMany.errors;
    } finally {
      await dns?.close();
      await sink.close();
    }
    m['ratio.bare_literals_vs_one'] = ratio(get(m, 'bare.literals_req_s'), get(m, 'bare.one_req_s'));
    m['ratio.literals_vs_one'] = ratio(get(m, 'literals.delivered_s'), get(m, 'one.delivered_s'));
    m['ratio.names_vs_literals'] = ratio(get(m, 'names.delivered_s'), get(m, 'literals.delivered_s'));
    m['ratio.slow_dns_vs_literals'] = ratio(get(m, 'slow-dns.delivered_s'), get(m, 'literals.delivered_s'));
    return { metrics: m, knobs: { ...knobs, n, origins, itemsPerRequest: ITEMS, sendConcurrency: SEND_CONCURRENCY, slowDnsMs: 50, idleS: o.manyIdleS } };
  },
  tables(m: Metrics): Table[] {
    return [
      {
        title: 'many-origins: the same postbacks to one origin, or spread over many (10 each)',
        columns: ['phase', 'postbacks', 'delivered/s', 'p50 ms', 'p99 ms', 'dups', 'losses', 'RSS peak MB', 'RSS end MB', 'RSS idle MB', 'open files peak', 'DNS queries', 'ratio'],
        rows: PHASES.map((p: Phase) => [
          p,
          get(m, `${p}.delivered`),
          get(m, `${p}.delivered_s`),
          get(m, `${p}.p50_ms`),
          get(m, `${p}.p99_ms`),
          get(m, `${p}.duplicates`),
          get(m, `${p}.losses`),
          get(m, `${p}.rss_peak_mb`),
          get(m, `${p}.rss_end_mb`),
          get(m, `${p}.rss_idle_mb`),
          get(m, `${p}.fds_peak`),
          get(m, `${p}.dns_queries`),
          p === 'literals' ? get(m, 'ratio.literals_vs_one') : p === 'names' ? get(m, 'ratio.names_vs_literals') : p === 'slow-dns' ? get(m, 'ratio.slow_dns_vs_literals') : null,
        ]),
        notes: [
          'ratio: literals x one (goal >= 0.7), names x literals, slow-dns x literals (goal >= 0.5)',
          `floor, a bare undici loop making the same requests (128 at a time, no Redis): one origin ${fmt(get(m, 'bare.one_req_s'))}/s, ${fmt(get(m, 'bare.literals_req_s'))}/s over the many (a pool of 2 connections each, closed after its 10): ${fmt(get(m, 'ratio.bare_literals_vs_one'))}x; errors ${fmt(get(m, 'bare.errors'))}`,
          'RSS idle: after --many-idle seconds with nothing to do (0: not measured)',
        ],
      },
    ];
  },
};
