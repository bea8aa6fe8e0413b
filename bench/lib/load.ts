/**
 * Load generators, all in the harness process:
 * - `cannon()`: autocannon, driven programmatically, closed loop at a fixed
 *   number of connections. autocannon's own latency histogram has 1 ms
 *   resolution; every response time it reports is also recorded here in a
 *   µs histogram, so sub-millisecond p50s (`-c 1`) mean something.
 * - `sendBulk()`: a fixed number of requests, `concurrency` at a time
 *   (undici Pool), each body built at send time so its `ts` is the send time.
 * - `openLoop()`: requests on a fixed schedule, never waiting for responses;
 *   each body's `ts` is its scheduled time, so any queueing (in the harness,
 *   the network or the service) counts as latency: no coordinated omission.
 * - `sendSequential()`: one request at a time on one keep-alive connection,
 *   the next sent when the previous answer is in (or a fixed gap after it),
 *   for a fixed time or count; each body's `ts` is its send time. Records
 *   the response times.
 */
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { createHistogram, nowUs, recordUs, summarize, type Histogram, type LatencySummary } from './histogram.js';
import { harnessCpu } from './procs.js';

export interface CannonResult {
  durationS: number;
  /** Completed requests per second (any status). */
  reqPerSec: number;
  /** 2xx responses per second. */
  okPerSec: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  latency: LatencySummary;
  /** Share of a core the harness itself used while generating load. */
  harnessCpuPct: number;
}

export async function cannon(o: {
  url: string;
  body: string;
  connections: number;
  durationS: number;
  warmupS: number;
  /** Record response times into this histogram too (several runs in one summary); default a fresh one. */
  hist?: Histogram;
}): Promise<CannonResult> {
  const hist = o.hist ?? createHistogram();
  const opts: Parameters<typeof autocannon>[0] = {
    url: o.url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: o.body,
    connections: o.connections,
    duration: o.durationS,
    timeout: 10,
  };
  if (o.warmupS > 0) opts.warmup = { connections: o.connections, duration: o.warmupS };
  let cpuStart = harnessCpu();
  const instance = autocannon(opts);
  instance.on('start', () => {
    // The measured run (after any warmup) begins.
    cpuStart = harnessCpu();
  });
  instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => recordUs(hist, ms * 1000));
  const r = await instance;
  const cpu = harnessCpu() - cpuStart;
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(r.statusCodeStats ?? {})) statusCodes[code] = Number(count);
  const completed = r['2xx'] + r.non2xx;
  return {
    durationS: r.duration,
    reqPerSec: completed / r.duration,
    okPerSec: r['2xx'] / r.duration,
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    statusCodes,
    latency: summarize(hist),
    harnessCpuPct: (100 * cpu) / r.duration,
  };
}

export interface SendResult {
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  /** Postbacks ingest accepted (sum of `accepted` in 202 replies). */
  accepted: number;
  firstUs: number;
  lastUs: number;
  statusCodes: Record<string, number>;
}

/** POSTs one body; returns the postbacks accepted (0 unless 2xx). */
async function post(pool: Pool, path: string, body: string, r: SendResult): Promise<number> {
  try {
    const res = await pool.request({ path, method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const text = await res.body.text();
    r.statusCodes[res.statusCode] = (r.statusCodes[res.statusCode] ?? 0) + 1;
    if (res.statusCode >= 200 && res.statusCode < 300) {
      r.ok++;
      const accepted = (JSON.parse(text) as { accepted?: number }).accepted ?? 0;
      r.accepted += accepted;
      return accepted;
    }
    r.non2xx++;
  } catch {
    r.errors++;
  }
  return 0;
}

function emptyResult(): SendResult {
  return { requests: 0, ok: 0, non2xx: 0, errors: 0, accepted: 0, firstUs: 0, lastUs: 0, statusCodes: {} };
}

/** Sends `requests` requests, `concurrency` at a time; `body(i, nowUs)` builds each at send time. */
export async function sendBulk(o: {
  origin: string;
  path: string;
  requests: number;
  concurrency: number;
  body: (i: number, tsUs: number) => string;
  /** Called with each request's index and the postbacks ingest accepted from it. */
  onAccepted?: (i: number, accepted: number) => void;
}): Promise<SendResult> {
  const pool = new Pool(o.origin, { connections: o.concurrency, pipelining: 1 });
  const r = emptyResult();
  let next = 0;
  r.firstUs = nowUs();
  const lane = async () => {
    while (next < o.requests) {
      const i = next++;
      r.requests++;
      const accepted = await post(pool, o.path, o.body(i, nowUs()), r);
      o.onAccepted?.(i, accepted);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, o.requests) }, lane));
  r.lastUs = nowUs();
  await pool.close();
  return r;
}

export interface OpenLoopResult extends SendResult {
  /** Requests per second asked for, and achieved over the schedule. */
  targetPerSec: number;
  achievedPerSec: number;
  /** How late the harness fired requests behind their schedule (ms). */
  sendLagMaxMs: number;
  sendLagP99Ms: number;
}

/**
 * Fires `ratePerSec` requests a second for `durationS`, on a fixed schedule,
 * whatever the responses do; `body(i, scheduledUs)` builds each. Resolves
 * once every response (or error) is in.
 */
export async function openLoop(o: {
  origin: string;
  path: string;
  ratePerSec: number;
  durationS: number;
  connections: number;
  body: (i: number, scheduledUs: number) => string;
}): Promise<OpenLoopResult> {
  const pool = new Pool(o.origin, { connections: o.connections, pipelining: 1 });
  const r = emptyResult();
  const lag = createHistogram();
  const total = Math.max(1, Math.round(o.ratePerSec * o.durationS));
  const intervalUs = 1e6 / o.ratePerSec;
  const startUs = nowUs() + 20_000;
  const inFlight = new Set<Promise<number>>();
  let i = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = nowUs();
      while (i < total) {
        const due = startUs + i * intervalUs;
        if (due > now) break;
        recordUs(lag, now - due);
        r.requests++;
        const p = post(pool, o.path, o.body(i, Math.round(due)), r);
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        i++;
      }
      if (i >= total) resolve();
      else setTimeout(tick, Math.max(0, Math.min(1, (startUs + i * intervalUs - nowUs()) / 1000)));
    };
    setTimeout(tick, 20);
  });
  const sentUs = nowUs();
  r.firstUs = startUs;
  await Promise.all([...inFlight]);
  r.lastUs = nowUs();
  await pool.close();
  const l = summarize(lag);
  return {
    ...r,
    targetPerSec: o.ratePerSec,
    achievedPerSec: (total * 1e6) / Math.max(1, sentUs - startUs),
    sendLagMaxMs: l.max,
    sendLagP99Ms: l.p99,
  };
}

export interface SequentialResult extends SendResult {
  /** Response time of each request (send to the whole answer read), µs HDR. */
  latency: LatencySummary;
}

/**
 * One request at a time: the next is built (its `ts` the send time) and
 * sent as soon as the previous answer is read, on one keep-alive
 * connection, until `durationS` passed or `count` requests were sent
 * (whichever comes first; either may be 0 for no limit, not both).
 */
export async function sendSequential(o: {
  origin: string;
  path: string;
  durationS: number;
  count: number;
  /** Wait this long after each answer before the next request (0: at once). */
  gapMs?: number;
  body: (i: number, tsUs: number) => string;
}): Promise<SequentialResult> {
  if (o.durationS <= 0 && o.count <= 0) throw new Error('sendSequential needs a duration or a count');
  const pool = new Pool(o.origin, { connections: 1, pipelining: 1 });
  const r = emptyResult();
  const hist = createHistogram();
  const until = o.durationS > 0 ? performance.now() + o.durationS * 1000 : Infinity;
  const count = o.count > 0 ? o.count : Infinity;
  r.firstUs = nowUs();
  for (let i = 0; i < count && performance.now() < until; i++) {
    r.requests++;
    const t0 = nowUs();
    await post(pool, o.path, o.body(i, t0), r);
    recordUs(hist, nowUs() - t0);
    if (o.gapMs !== undefined && o.gapMs > 0) await new Promise((resolve) => setTimeout(resolve, o.gapMs));
  }
  r.lastUs = nowUs();
  await pool.close();
  return { ...r, latency: summarize(hist) };
}

/**
 * Calls `fn` one call at a time (the next when the previous resolved) for
 * `warmupS` (not recorded) and then `durationS` seconds; the time of each
 * call, µs HDR. For bare round trips (a Redis PING from Node).
 */
export async function sequentialCalls(fn: () => Promise<unknown>, durationS: number, warmupS: number): Promise<LatencySummary> {
  const hist = createHistogram();
  const warmUntil = performance.now() + warmupS * 1000;
  while (performance.now() < warmUntil) await fn();
  const until = performance.now() + durationS * 1000;
  while (performance.now() < until) {
    const t0 = performance.now();
    await fn();
    recordUs(hist, (performance.now() - t0) * 1000);
  }
  return summarize(hist);
}
