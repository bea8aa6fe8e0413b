/**
 * Per-partner statistics for the partners table (dashboard, GET /partners),
 * cluster-wide through Redis. Each delivery process adds its attempts per
 * origin into a 10-second hash (`<origin>|a` attempts, `|d` delivered,
 * `|l<i>` latency buckets, `|e` the last error as JSON) every FLUSH_MS, and
 * replaces its own snapshot of what it has in flight and waiting per
 * origin; any monitor merges the last minute of every process.
 *
 * Bounds: per flush, the MAX_PER_FLUSH origins with the most attempts (the
 * rest are left out of the table, never out of delivery); in memory, at
 * most MAX_TRACKED origins between flushes; in Redis, hashes expire after
 * KEEP_MS and snapshots after SNAPSHOT_TTL_MS.
 */
import { bucketOf } from '../observability/latency-buckets.js';
import type { ControlKeys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis.js';

export const STATS_BUCKET_MS = 10_000;
export const STATS_WINDOW_MS = 60_000;
const FLUSH_MS = 2_000;
const KEEP_MS = 120_000;
const SNAPSHOT_TTL_MS = 3 * FLUSH_MS;
export const MAX_PER_FLUSH = 200;
const MAX_TRACKED = 10_000;
const ERROR_MAX = 200;

interface Acc {
  attempts: number;
  delivered: number;
  latency: Map<number, number>;
  lastError: { at: number; status: number | null; code: string | null; error: string | null } | null;
}

export class PartnerStats {
  private acc = new Map<string, Acc>();
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  /** The last snapshot written was empty (an idle process writes nothing). */
  private idle = true;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: ControlKeys,
    private readonly consumer: string,
    /** What the process holds per origin now: [origin, in flight, waiting]. */
    private readonly load: () => Iterable<[string, number, number]>,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush().catch(() => undefined), FLUSH_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.redis.del(`${this.keys.loadPrefix}${this.consumer}`).catch(() => undefined);
  }

  attempt(origin: string, delivered: boolean, latencyMs: number, status: number | null, code: string | null, error: string | null, now: number): void {
    let a = this.acc.get(origin);
    if (a === undefined) {
      if (this.acc.size >= MAX_TRACKED) return;
      a = { attempts: 0, delivered: 0, latency: new Map(), lastError: null };
      this.acc.set(origin, a);
    }
    a.attempts++;
    const b = bucketOf(latencyMs);
    a.latency.set(b, (a.latency.get(b) ?? 0) + 1);
    if (delivered) a.delivered++;
    else a.lastError = { at: now, status, code, error: error === null ? null : error.slice(0, ERROR_MAX) };
  }

  /** Writes what was gathered (statistics are not postbacks: a failed write is dropped). */
  async flush(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const now = Date.now();
      const acc = this.acc;
      this.acc = new Map();
      const loadKey = `${this.keys.loadPrefix}${this.consumer}`;
      const load = [...this.load()].filter(([, f, w]) => f + w > 0).sort((x, y) => y[1] + y[2] - (x[1] + x[2])).slice(0, MAX_PER_FLUSH);
      if (acc.size === 0 && load.length === 0 && this.idle) return;
      this.idle = load.length === 0;
      const tx = this.redis.multi();
      if (acc.size > 0) {
        const key = `${this.keys.statsPrefix}${Math.floor(now / STATS_BUCKET_MS)}`;
        const top = [...acc].sort((x, y) => y[1].attempts - x[1].attempts).slice(0, MAX_PER_FLUSH);
        for (const [origin, a] of top) {
          tx.hincrby(key, `${origin}|a`, a.attempts);
          if (a.delivered > 0) tx.hincrby(key, `${origin}|d`, a.delivered);
          for (const [b, n] of a.latency) tx.hincrby(key, `${origin}|l${b}`, n);
          if (a.lastError) tx.hset(key, `${origin}|e`, JSON.stringify(a.lastError));
        }
        tx.pexpire(key, KEEP_MS);
      }
      tx.del(loadKey);
      if (load.length > 0) {
        tx.hset(loadKey, ...load.flatMap(([origin, f, w]) => [origin, `${f},${w}`]));
        tx.pexpire(loadKey, SNAPSHOT_TTL_MS);
      }
      await tx.exec();
    } finally {
      this.busy = false;
    }
  }
}
