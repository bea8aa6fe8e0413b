/**
 * Cluster-wide statistics as per-second buckets in Redis (one hash per shard
 * and second, kept STATS_RETENTION_S): any monitor on any machine sums the
 * buckets of every process. Ingest (`accepted`, `requests`) and delivery
 * (its outcomes) add theirs through {@link StatsRecorder}, buffered in
 * memory and written once a second per process in one script call, not per
 * request or batch: a second of counts is lost if a process dies, and no
 * postback depends on them.
 *
 * Fields: accepted, requests, attempts, delivered, retried, dead, expired,
 * parked, `l:<bucket>` (attempt latency histogram, see latency-buckets.ts),
 * `fo:<origin>` (failed attempts per origin, at most MAX_ORIGINS a flush).
 */
import type { RedisClient } from '../queue/redis.js';
import { statsKey, type ShardKeys } from '../queue/keys.js';
import { BOUNDS_MS, bucketOf } from './latency-buckets.js';

/** `l:<bucket>` field names, built once. */
const LATENCY_FIELDS = BOUNDS_MS.map((_, i) => `l:${i}`);

const MAX_ORIGINS = 50;

export type StatsOutcome = 'delivered' | 'retry' | 'dead' | 'expired';

const FIELD: Record<StatsOutcome, string> = { delivered: 'delivered', retry: 'retried', dead: 'dead', expired: 'expired' };

export class StatsRecorder {
  private buckets = new Map<number, Map<string, number>>();
  /** The bucket being filled (nearly every attempt lands in the current second). */
  private second = -1;
  private current: Map<string, number> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: ShardKeys,
    private readonly retentionS: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.writing = this.writing.then(() => this.flush());
    }, 1_000);
    this.timer.unref();
  }

  private add(second: number, field: string, n: number): void {
    let b = second === this.second ? this.current : this.buckets.get(second);
    if (b === undefined || b === null) {
      b = new Map();
      this.buckets.set(second, b);
    }
    this.second = second;
    this.current = b;
    b.set(field, (b.get(field) ?? 0) + n);
  }

  /** One attempt (latencyMs null: no attempt was made, e.g. expired on read). */
  attempt(outcome: StatsOutcome, latencyMs: number | null, origin: string, now: number): void {
    const second = Math.floor(now / 1000);
    this.add(second, FIELD[outcome], 1);
    if (latencyMs !== null) {
      this.add(second, 'attempts', 1);
      this.add(second, LATENCY_FIELDS[bucketOf(latencyMs)] as string, 1);
    }
    // Failed attempts only: a postback that expired before any attempt says nothing of its partner.
    if (outcome !== 'delivered' && latencyMs !== null) this.add(second, `fo:${origin}`, 1);
  }

  /** One request accepted by ingest with its postbacks. */
  ingested(postbacks: number, now: number): void {
    const second = Math.floor(now / 1000);
    this.add(second, 'accepted', postbacks);
    this.add(second, 'requests', 1);
  }

  parked(n: number, now: number): void {
    this.add(Math.floor(now / 1000), 'parked', n);
  }

  /** Writes what was gathered; a failed write is dropped (statistics are not postbacks). */
  private async flush(): Promise<void> {
    if (this.buckets.size === 0) return;
    const buckets = this.buckets;
    this.buckets = new Map();
    this.second = -1;
    this.current = null;
    for (const [second, fields] of buckets) {
      const args: (string | number)[] = [statsKey(this.keys, second), this.retentionS];
      let origins = 0;
      let other = 0;
      for (const [field, n] of fields) {
        if (field.startsWith('fo:') && ++origins > MAX_ORIGINS) {
          other += n;
          continue;
        }
        args.push(field, n);
      }
      if (other > 0) args.push('fo:other', other);
      await this.redis.pbStats(...args).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.writing;
    await this.flush();
  }
}
