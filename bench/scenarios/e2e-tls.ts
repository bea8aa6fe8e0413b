/**
 * `e2e-tls`: what https partners cost. The e2e max phase (--n postbacks,
 * --e2e-items a request, 16 requests at a time into ingest while delivery
 * drains) twice in the same run, each on a fresh stack: first to an http
 * sink origin, then to an https one (node:https in the sink's worker
 * thread, ECDSA P-256 certificate from a throwaway CA made by openssl,
 * trusted through DELIVERY_CA_FILE). Both phases reach the sink by the
 * same host name (sink.pb.test, through a DNS server the harness runs), so
 * the https phase has SNI and the host name check of production, and both
 * stacks run with the same environment (DELIVERY_CA_FILE set for both).
 * Measured per phase: delivered/s, latency, duplicates, losses, CPU per
 * postback; and the sink's TCP connections and TLS handshakes (resumed
 * ones apart), as handshakes per 10,000 postbacks: keep-alive should hold
 * them to about one per connection, not one per postback.
 * Then, the service stopped, the bare undici Pool loop of `e2e` (64
 * connections, 128 in flight, the same requests) sends --n requests over
 * http and over https (by IP literal, the CA through NODE_EXTRA_CA_CERTS):
 * what TLS costs undici and Node themselves on this machine, the ceiling
 * for the service's ratio.
 * Target: https delivered/s >= 0.8x the http phase's.
 */
import { createTestCa, opensslMissing } from '../lib/certs.js';
import { deliverBulk, originMetrics } from '../lib/deliver.js';
import { startDnsServer } from '../lib/dns-server.js';
import { cpuOf, harnessCpu } from '../lib/procs.js';
import { get, ratio, type Metrics, type RunContext, type RunResult, type Scenario, type Table } from '../lib/scenario.js';
import { Sink } from '../lib/sink.js';
import { startStack } from '../lib/stack.js';
import { cpuMetrics, runUndiciLoop } from './e2e.js';

const SEND_CONCURRENCY = 16;
const HOST = 'sink.pb.test';
const PHASES = ['http', 'https'] as const;

export const e2eTlsScenario: Scenario = {
  name: 'e2e-tls',
  summary: 'the e2e max phase to an http sink, then to an https one (same run, same n): delivered/s ratio, TLS handshakes per 10k postbacks',
  async run(ctx: RunContext): Promise<RunResult> {
    const o = ctx.opts;
    const missing = opensslMissing();
    if (missing !== null) throw new Error(`e2e-tls: ${missing}`);
    const ca = createTestCa('postback-delivery bench CA');
    // The IP too: the bare undici loop reaches the sink by address.
    const cert = ca.issue({ names: [HOST], ips: ['127.0.0.1'] });
    const dns = await startDnsServer({ zone: 'pb.test', ttl: 300 });
    const m: Metrics = {};
    const knobs: Record<string, unknown> = {};
    const sink = await Sink.start([
      { name: 'http', delayMs: 0 },
      { name: 'https', delayMs: 0, tls: cert },
    ]);
    try {
      for (const phase of PHASES) {
        const stack = await startStack(ctx, { ingest: true, delivery: true }, { DELIVERY_CA_FILE: ca.certFile, DELIVERY_DNS_SERVERS: dns.server });
        try {
          ctx.progress(`${phase}: ${o.n} postbacks, ${o.e2eItems} a request, to ${sink.origin(phase, 0, HOST)}`);
          const pids = stack.pids();
          const cpu0 = { ...cpuOf(pids), harness: harnessCpu() };
          const run = await deliverBulk({
            sink,
            ingestOrigin: stack.ingestOrigin,
            tag: phase,
            n: o.n,
            items: o.e2eItems,
            concurrency: SEND_CONCURRENCY,
            route: () => phase,
            originOf: () => sink.origin(phase, 0, HOST),
            progress: ctx.progress,
          });
          const cpu1 = { ...cpuOf(pids), harness: harnessCpu() };
          const s = run.stats[phase];
          originMetrics(m, phase, run, phase);
          m[`${phase}.ingest_s`] = (run.send.accepted * 1e6) / Math.max(1, run.send.lastUs - run.send.firstUs);
          m[`${phase}.non2xx`] = run.send.non2xx;
          m[`${phase}.errors`] = run.send.errors;
          cpuMetrics(m, phase, cpu0, cpu1, s?.distinct ?? 0);
          m[`${phase}.connections`] = s?.connections ?? null;
          if (phase === 'https') {
            const delivered = Math.max(1, s?.distinct ?? 0);
            m['https.handshakes'] = s?.handshakes ?? null;
            m['https.resumed'] = s?.resumed ?? null;
            m['https.tls_errors'] = s?.tlsErrors ?? null;
            m['https.handshakes_per_10k'] = s ? (s.handshakes * 10_000) / delivered : null;
            m['https.connections_per_10k'] = s ? (s.connections * 10_000) / delivered : null;
          }
          knobs[phase] = stack.knobs();
        } finally {
          await stack.stop();
        }
      }
      // The bare undici loop, the service stopped: what TLS costs undici and Node alone.
      for (const phase of PHASES) {
        ctx.progress(`undici Pool loop over ${phase}: ${o.n} requests`);
        const u = await runUndiciLoop(sink, `undici-${phase}`, o.n, { name: phase, env: { NODE_EXTRA_CA_CERTS: ca.certFile } });
        m[`undici.${phase}.req_s`] = u.reqPerSec;
        m[`undici.${phase}.errors`] = u.errors;
      }
    } finally {
      await sink.close();
      await dns.close();
    }
    m['ratio.https_vs_http'] = ratio(get(m, 'https.delivered_s'), get(m, 'http.delivered_s'));
    m['ratio.undici_https_vs_http'] = ratio(get(m, 'undici.https.req_s'), get(m, 'undici.http.req_s'));
    return {
      metrics: m,
      knobs: {
        ...knobs,
        n: o.n,
        itemsPerRequest: o.e2eItems,
        sendConcurrency: SEND_CONCURRENCY,
        host: `${HOST} (harness DNS server, DELIVERY_DNS_SERVERS)`,
        certificate: 'ECDSA P-256, signed by a throwaway CA (openssl), trusted through DELIVERY_CA_FILE; both phases run with it set',
        sink: 'in-harness worker thread, node:http / node:https keep-alive, 200 "ok" at once',
      },
    };
  },
  tables(m: Metrics): Table[] {
    const row = (phase: (typeof PHASES)[number]) => [
      phase,
      get(m, `${phase}.postbacks`),
      get(m, `${phase}.delivered_s`),
      get(m, `${phase}.p50_ms`),
      get(m, `${phase}.p99_ms`),
      get(m, `${phase}.max_ms`),
      get(m, `${phase}.duplicates`),
      get(m, `${phase}.losses`),
      get(m, `${phase}.cpu_us_per_pb.delivery`),
      get(m, `${phase}.connections`),
      phase === 'https' ? get(m, 'https.handshakes') : null,
      phase === 'https' ? get(m, 'https.handshakes_per_10k') : null,
      phase === 'https' ? get(m, 'ratio.https_vs_http') : null,
    ];
    return [
      {
        title: 'e2e-tls: the e2e max phase to an http sink, then to an https one (same run; latency = ingest request sent -> sink receipt)',
        columns: ['phase', 'postbacks', 'delivered/s', 'p50 ms', 'p99 ms', 'max ms', 'dups', 'losses', 'delivery us/pb', 'connections', 'TLS handshakes', 'handshakes /10k', 'x http'],
        rows: [
          row('http'),
          row('https'),
          ...PHASES.map((p) => [
            `undici Pool loop, ${p}`,
            null,
            get(m, `undici.${p}.req_s`),
            null, null, null, null, null, null, null, null, null,
            p === 'https' ? get(m, 'ratio.undici_https_vs_http') : null,
          ]),
        ],
        notes: [
          `https: ${fmt(get(m, 'https.handshakes'))} handshakes (${fmt(get(m, 'https.resumed'))} resumed) over ${fmt(get(m, 'https.connections'))} connections, ${fmt(get(m, 'https.handshakes_per_10k'))} per 10,000 postbacks; failed handshakes ${fmt(get(m, 'https.tls_errors'))}`,
          `CPU per delivered postback, us (delivery / ingest / redis / harness): http ${cpuRow(m, 'http')}; https ${cpuRow(m, 'https')}`,
          'The sink decrypts on the same 2 cores (the harness column): the https phase pays for both ends of TLS.',
          `The bare undici loop (no service, 64 connections) over https makes ${fmt(get(m, 'ratio.undici_https_vs_http'))}x its http rate: what TLS costs undici and Node themselves here.`,
        ],
      },
    ];
  },
};

function cpuRow(m: Metrics, phase: string): string {
  return ['delivery', 'ingest', 'redis', 'harness'].map((n) => fmt(get(m, `${phase}.cpu_us_per_pb.${n}`))).join(' / ');
}

function fmt(v: number | null): string {
  if (v === null) return 'n/a';
  return Math.abs(v) >= 100 ? String(Math.round(v)) : v.toFixed(2);
}
