/**
 * The HTTP side of a delivery worker: one undici Pool per origin
 * (keep-alive, at most DELIVERY_CONNECTIONS_PER_ORIGIN connections, no
 * redirects followed), and `send()` that turns any request into an
 * {@link AttemptResult}. It uses undici's dispatch API, the parser's
 * callbacks without a stream or an abort listener per response. Measured
 * on 2 cores, a Pool per origin fed a path reached about 12k requests/s to
 * a local sink, an Agent fed string URLs 0.62x of that.
 *
 * No attempt ever waits inside undici for a connection: an origin gets at
 * most as many attempts at once as it has connections, the rest wait here,
 * in order, and an attempt's deadline starts only when it is dispatched.
 * (The main thread already sends an origin no more than that; this holds
 * even for templates whose host is a placeholder, whose origins it cannot
 * know.) So a slow partner's attempts are charged for their own time,
 * never for the queue in front of them.
 *
 * Per-origin state is bounded: a pool idle for IDLE_POOL_MS is closed (a
 * sweep every half of it), and at most IDLE_POOLS_MAX idle pools are kept,
 * the one idle longest closed first, so with thousands of partners the
 * process keeps neither thousands of pools nor their sockets (busy pools
 * are bounded by DELIVERY_CONCURRENCY). A pool is not free: undici gives
 * each a 2,048-slot queue (16 KB) besides its connections, which is what
 * 10,000 partners measured (bench many-origins). The pools map is in order
 * of when each pool last went idle.
 *
 * https: undici's connector sends the partner's host name as SNI
 * (servername; none for an IP literal, as TLS wants) and Node checks the
 * certificate against it. Verification is always on: `rejectUnauthorized`
 * is given explicitly, so even NODE_TLS_REJECT_UNAUTHORIZED=0 in the
 * environment cannot turn it off for deliveries. With DELIVERY_CA_FILE,
 * every https pool of the thread shares one SecureContext that trusts
 * Node's roots plus those CAs (a CA list given to TLS replaces Node's own,
 * so the roots are listed too); made once, not per connection. Keep-alive
 * keeps handshakes to about one per connection, and undici resumes TLS
 * sessions per host name when a connection is replaced.
 */
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import Denque from 'denque';
import { Pool, type Dispatcher } from 'undici';
import type { AttemptResult, WorkerSettings } from './attempt.js';
import { AttemptHandler } from './attempt-handler.js';
import { createConnectGuard, type ConnectGuard } from './connect-guard.js';
import { Deadlines } from './deadlines.js';
import { createNameResolver, type NameResolver } from './resolver.js';

export { errorCodeOf } from './attempt-handler.js';

const IDLE_POOL_MS = 60_000;
const IDLE_POOLS_MAX = 256;
/** What an idle pool is destroyed with (see drop()): made once. */
const POOL_RETIRED = new Error('idle pool closed by delivery');

interface PoolEntry {
  pool: Pool;
  lastUsed: number;
  /** Set when the origin is an IP literal the address policy refuses. */
  blocked: string | null;
  /** Attempts dispatched and not finished. */
  inFlight: number;
  /** Attempts waiting for one of the origin's connections, in order. */
  waiting: Denque<() => void>;
}

export interface SendRequest {
  origin: string;
  path: string;
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body: string | null;
}

function emptyResult(url: string, deliveryTime: number): AttemptResult {
  return { url, deliveryTime, responseTime: null, latencyMs: 0, status: null, body: null, errorCode: null, error: null, retryAfter: null };
}

export class HttpClient {
  private readonly pools = new Map<string, PoolEntry>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });
  private readonly guard: ConnectGuard;
  private readonly resolver: NameResolver;
  /** Pools with nothing in flight or waiting. */
  private idlePools = 0;
  /** One deadline queue per attempt timeout in use (the default, and partners' own). */
  private readonly deadlines = new Map<number, Deadlines>();
  /** TLS options of every https pool. */
  private readonly tls: { rejectUnauthorized: true; secureContext?: SecureContext };

  constructor(private readonly settings: WorkerSettings) {
    this.tls = { rejectUnauthorized: true };
    if (settings.caCerts.length > 0) this.tls.secureContext = createSecureContext({ ca: [...rootCertificates, ...settings.caCerts] });
    this.resolver = createNameResolver(settings.dnsServers);
    this.guard = createConnectGuard({ allowPrivate: settings.allowPrivate, allowedCidrs: settings.allowedCidrs }, this.resolver);
    this.sweeper = setInterval(() => this.sweep(Date.now()), IDLE_POOL_MS / 2);
    this.sweeper.unref();
  }

  /** Pools held now (idle ones included). */
  get poolCount(): number {
    return this.pools.size;
  }

  private pool(origin: string, now: number): PoolEntry {
    let entry = this.pools.get(origin);
    if (entry === undefined) {
      this.idlePools++; // new, and idle until an attempt starts
      entry = {
        blocked: this.guard.refusal(origin),
        pool: new Pool(origin, {
          connections: this.settings.connectionsPerOrigin,
          pipelining: 1,
          // Each attempt's own deadline (deadlines.ts) ends it: a partner's
          // timeout may differ from the default, and reloads change it.
          headersTimeout: 0,
          bodyTimeout: 0,
          connectTimeout: 10_000,
          keepAliveTimeout: 4_000,
          connect: origin.startsWith('https:') ? { lookup: this.guard.lookup, ...this.tls } : { lookup: this.guard.lookup },
        }),
        lastUsed: now,
        inFlight: 0,
        waiting: new Denque(),
      };
      this.pools.set(origin, entry);
    }
    entry.lastUsed = now;
    return entry;
  }

  /** Closes pools idle for IDLE_POOL_MS. */
  private sweep(now: number): void {
    for (const [origin, entry] of this.pools) {
      if (now - entry.lastUsed >= IDLE_POOL_MS && entry.inFlight === 0) this.drop(origin, entry);
    }
  }

  /** The pool's last attempt finished: it goes to the end of the idle order; past the bound, the longest idle closes. */
  private wentIdle(origin: string, entry: PoolEntry): void {
    this.idlePools++;
    this.pools.delete(origin);
    this.pools.set(origin, entry);
    if (this.idlePools <= IDLE_POOLS_MAX) return;
    for (const [o, e] of this.pools) {
      if (e.inFlight === 0) {
        this.drop(o, e);
        return;
      }
    }
  }

  /**
   * Closes a pool with nothing in flight or waiting (idle too long, or past
   * IDLE_POOLS_MAX). destroy(), not close(): with nothing pending the two
   * do the same, but close() ends in a destroy() that builds a
   * ClientDestroyedError, with its stack, for the pool and each of its
   * clients; among thousands of partners of a few postbacks each that was
   * about 4% of the delivery process (bench many-origins profile). The
   * error given instead is never seen: no request is left to fail with it.
   */
  private drop(origin: string, entry: PoolEntry): void {
    this.pools.delete(origin);
    if (entry.inFlight === 0) this.idlePools--;
    entry.pool.destroy(POOL_RETIRED).catch(() => undefined);
  }

  /**
   * One attempt through undici's dispatch API. Resolves with the result;
   * never rejects. Waits for a free connection of the origin first if all
   * are busy (its deadline starts when it is dispatched).
   */
  send(req: SendRequest, timeoutMs = this.settings.timeoutMs): Promise<AttemptResult> {
    let deadlines = this.deadlines.get(timeoutMs);
    if (deadlines === undefined) {
      deadlines = new Deadlines(timeoutMs);
      this.deadlines.set(timeoutMs, deadlines);
    }
    const entry = this.pool(req.origin, Date.now());
    if (entry.blocked !== null) {
      const r = emptyResult(req.url, Date.now());
      r.errorCode = 'PB_ERR_BLOCKED_ADDRESS';
      r.error = entry.blocked;
      return Promise.resolve(r);
    }
    return new Promise<AttemptResult>((resolve) => {
      const start = (): void => {
        if (entry.inFlight++ === 0) this.idlePools--;
        const result = emptyResult(req.url, Date.now());
        const handler = new AttemptHandler(result, this.settings.responseBodyMax, this.decoder, deadlines, (r) => {
          entry.inFlight--;
          entry.lastUsed = Date.now();
          const next = entry.waiting.shift();
          // Not from inside this attempt's callbacks: a run of synchronous failures must not nest.
          if (next !== undefined) queueMicrotask(next);
          else if (entry.inFlight === 0) this.wentIdle(req.origin, entry);
          resolve(r);
        });
        try {
          entry.pool.dispatch({ path: req.path, method: req.method, headers: req.headers, body: req.body }, handler as unknown as Dispatcher.DispatchHandler);
        } catch (err) {
          handler.onError(err as Error);
        }
      };
      if (entry.inFlight < this.settings.connectionsPerOrigin) start();
      else entry.waiting.push(start);
    });
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.pool.close().catch(() => p.pool.destroy())));
  }
}
