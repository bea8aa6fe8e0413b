/**
 * The HTTP side of a delivery worker: one undici Pool per origin
 * (keep-alive, bounded connections, no redirects followed), idle pools
 * closed after a minute, and `send()` that turns any request into an
 * {@link AttemptResult}: status, the first RESPONSE_BODY_MAX bytes of the
 * body, timing, or a coded error. It uses undici's dispatch API, the
 * parser's callbacks without a stream or an abort listener per response.
 * Measured on 2 cores, a Pool per origin fed a path reached about 12k
 * requests/s to a local sink, an Agent fed string URLs 0.62x of that.
 */
import { Pool, type Dispatcher } from 'undici';
import type { ErrorCode } from '../errors.js';
import type { AttemptResult, WorkerSettings } from './attempt.js';
import { createConnectGuard, type ConnectGuard } from './connect-guard.js';

const IDLE_POOL_MS = 60_000;
const MAX_POOLS = 10_000;
/** Bytes read past the logged excerpt so the connection stays reusable. */
const DRAIN_MAX = 64 * 1024;

interface PoolEntry {
  pool: Pool;
  lastUsed: number;
  /** Set when the origin is an IP literal the address policy refuses. */
  blocked: string | null;
}

export interface SendRequest {
  origin: string;
  path: string;
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body: string | null;
}

/** Maps an error thrown by undici (or the deadline) to a PB_ERR_* code. */
export function errorCodeOf(err: unknown, aborted: boolean): { code: ErrorCode; message: string } {
  const e = err as { code?: string; name?: string; message?: string };
  const message = e?.message ?? String(err);
  if (aborted || e?.name === 'AbortError') return { code: 'PB_ERR_DELIVERY_TIMEOUT', message: 'attempt timed out' };
  switch (e?.code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return { code: 'PB_ERR_DELIVERY_TIMEOUT', message };
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return { code: 'PB_ERR_CONNECT', message: `${e.code}: ${message}` };
    case 'UND_ERR_SOCKET':
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_CLOSED':
      return { code: 'PB_ERR_SOCKET', message };
    case 'PB_ERR_BLOCKED_ADDRESS':
      return { code: 'PB_ERR_BLOCKED_ADDRESS', message };
    default:
      if (typeof e?.code === 'string' && e.code.startsWith('HPE_')) return { code: 'PB_ERR_PROTOCOL', message };
      if (e?.code === 'UND_ERR_INVALID_ARG' || e?.code === 'ERR_INVALID_URL') return { code: 'PB_ERR_BAD_URL', message };
      return { code: 'PB_ERR_PROTOCOL', message };
  }
}

export class HttpClient {
  private readonly pools = new Map<string, PoolEntry>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });
  private readonly guard: ConnectGuard;

  constructor(private readonly settings: WorkerSettings) {
    this.guard = createConnectGuard({ allowPrivate: settings.allowPrivate, allowedCidrs: settings.allowedCidrs });
    this.sweeper = setInterval(() => this.sweep(Date.now()), IDLE_POOL_MS / 2);
    this.sweeper.unref();
  }

  private pool(origin: string, now: number): PoolEntry {
    let entry = this.pools.get(origin);
    if (entry === undefined) {
      if (this.pools.size >= MAX_POOLS) this.sweep(now + IDLE_POOL_MS);
      const lookup = this.guard.lookup;
      entry = {
        blocked: this.guard.refusal(origin),
        pool: new Pool(origin, {
          connections: this.settings.connectionsPerOrigin,
          pipelining: 1,
          headersTimeout: this.settings.timeoutMs,
          bodyTimeout: this.settings.timeoutMs,
          connectTimeout: Math.min(this.settings.timeoutMs, 10_000),
          keepAliveTimeout: 4_000,
          ...(lookup ? { connect: { lookup } } : {}),
        }),
        lastUsed: now,
      };
      this.pools.set(origin, entry);
    }
    entry.lastUsed = now;
    return entry;
  }

  private sweep(now: number): void {
    for (const [origin, entry] of this.pools) {
      if (now - entry.lastUsed >= IDLE_POOL_MS) {
        this.pools.delete(origin);
        entry.pool.close().catch(() => entry.pool.destroy());
      }
    }
  }

  /** The deadline of a batch: every attempt still running then ends as a timeout. */
  deadline(): { signal: Deadline; done: () => void } {
    const d = new Deadline(this.settings.timeoutMs);
    return { signal: d, done: () => d.done() };
  }

  /**
   * One attempt through undici's dispatch API (no stream or promise per
   * response: callbacks straight from the HTTP parser). Resolves with the
   * result; never rejects.
   */
  send(req: SendRequest, deadline: Deadline): Promise<AttemptResult> {
    const deliveryTime = Date.now();
    const result: AttemptResult = {
      url: req.url,
      deliveryTime,
      responseTime: null,
      latencyMs: 0,
      status: null,
      body: null,
      errorCode: null,
      error: null,
      retryAfter: null,
    };
    const entry = this.pool(req.origin, deliveryTime);
    if (entry.blocked !== null) {
      result.errorCode = 'PB_ERR_BLOCKED_ADDRESS';
      result.error = entry.blocked;
      return Promise.resolve(result);
    }
    if (deadline.expired) {
      result.errorCode = 'PB_ERR_DELIVERY_TIMEOUT';
      result.error = 'attempt timed out';
      return Promise.resolve(result);
    }
    return new Promise<AttemptResult>((resolve) => {
      const handler = new AttemptHandler(result, this.settings.responseBodyMax, this.decoder, deadline, resolve);
      try {
        entry.pool.dispatch(
          { path: req.path, method: req.method, headers: req.headers, body: req.body },
          handler as unknown as Dispatcher.DispatchHandler,
        );
      } catch (err) {
        handler.onError(err as Error);
      }
    });
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.pool.close().catch(() => p.pool.destroy())));
  }
}


/**
 * The deadline of one batch: a single timer for all its attempts (no
 * AbortSignal listener per request). Attempts register while running; at
 * expiry each is aborted, and one still waiting for a connection ends as a
 * timeout without ever being sent.
 */
export class Deadline {
  expired = false;
  private readonly active = new Set<AttemptHandler>();
  private readonly timer: NodeJS.Timeout;

  constructor(ms: number) {
    this.timer = setTimeout(() => this.expire(), ms);
  }

  add(h: AttemptHandler): void {
    this.active.add(h);
  }

  delete(h: AttemptHandler): void {
    this.active.delete(h);
  }

  private expire(): void {
    this.expired = true;
    for (const h of [...this.active]) h.timeout();
    this.active.clear();
  }

  done(): void {
    clearTimeout(this.timer);
  }
}

const RETRY_AFTER = 'retry-after';
const LOCATION = 'location';

class CutOff extends Error {}

/**
 * undici dispatch handler (the parser's own callback interface) for one
 * attempt: keeps the status, Retry-After and Location, the first
 * RESPONSE_BODY_MAX bytes of the body, and cuts off bodies past DRAIN_MAX.
 */
class AttemptHandler {
  private abort: ((err: Error) => void) | null = null;
  private finished = false;
  private timedOut = false;
  private cutOff = false;
  private readonly kept: Buffer[] = [];
  private keptBytes = 0;
  private seen = 0;
  private readonly start = performance.now();

  constructor(
    private readonly result: AttemptResult,
    private readonly max: number,
    private readonly decoder: { decode(input: Uint8Array): string },
    private readonly deadline: Deadline,
    private readonly resolve: (r: AttemptResult) => void,
  ) {
    deadline.add(this);
  }

  onConnect(abort: (err: Error) => void): void {
    if (this.finished) {
      abort(new Error('attempt timed out'));
      return;
    }
    this.abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[] | string[] | null): boolean {
    if (statusCode < 200) return true; // 1xx: informational, the real answer follows
    const r = this.result;
    r.status = statusCode;
    let location: string | null = null;
    if (rawHeaders) {
      for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
        const name = rawHeaders[i] as Buffer | string;
        if (name.length === RETRY_AFTER.length || name.length === LOCATION.length) {
          const n = name.toString().toLowerCase();
          if (n === RETRY_AFTER) r.retryAfter = (rawHeaders[i + 1] as Buffer | string).toString();
          else if (n === LOCATION) location = (rawHeaders[i + 1] as Buffer | string).toString();
        }
      }
    }
    if (statusCode >= 300 && statusCode < 400) {
      r.errorCode = 'PB_ERR_REDIRECT';
      r.error = `redirect not followed${location !== null ? `: Location ${location.slice(0, 512)}` : ''}`;
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.seen += chunk.length;
    if (this.keptBytes < this.max) {
      const take = chunk.length <= this.max - this.keptBytes ? chunk : chunk.subarray(0, this.max - this.keptBytes);
      this.kept.push(take);
      this.keptBytes += take.length;
    }
    if (this.seen > DRAIN_MAX && !this.cutOff) {
      // A huge answer: keep the excerpt, drop the connection, stay flat in memory.
      this.cutOff = true;
      this.abort?.(new CutOff('response body cut off'));
      return false;
    }
    return true;
  }

  onComplete(): void {
    this.finish(null);
  }

  onError(err: Error): void {
    if (this.cutOff && err instanceof CutOff) this.finish(null);
    else this.finish(err);
  }

  /** The batch deadline passed. */
  timeout(): void {
    if (this.finished) return;
    this.timedOut = true;
    if (this.abort) this.abort(new Error('attempt timed out'));
    else this.finish(new Error('attempt timed out'));
  }

  private finish(err: Error | null): void {
    if (this.finished) return;
    this.finished = true;
    this.deadline.delete(this);
    const r = this.result;
    r.latencyMs = Math.round((performance.now() - this.start) * 100) / 100;
    if (err === null || r.status !== null) {
      // A status arrived: a body cut short (reset, deadline) does not change the outcome.
      r.responseTime = r.deliveryTime + Math.round(r.latencyMs);
      r.body = this.keptBytes === 0 ? '' : this.decoder.decode(this.kept.length === 1 ? (this.kept[0] as Buffer) : Buffer.concat(this.kept, this.keptBytes));
      if (err !== null && r.error === null) r.error = `response body: ${errorCodeOf(err, this.timedOut).message}`;
      if (err !== null && r.status === null) r.body = null;
    } else {
      const { code, message } = errorCodeOf(err, this.timedOut);
      r.errorCode = code;
      r.error = message;
    }
    this.resolve(r);
  }
}
