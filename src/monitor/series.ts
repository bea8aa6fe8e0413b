/**
 * The dashboard's numbers: per-second points merged from every shard's
 * statistics bucket (written by every ingest and delivery process), plus
 * the queue state at the time of reading. `pointFrom` is pure.
 */
import type { RedisClient } from '../queue/redis.js';
import { quantile } from '../observability/latency-buckets.js';
import { statsKey, type ShardKeys } from '../queue/keys.js';

export interface Point {
  /** Second (epoch seconds) the counts belong to. */
  t: number;
  accepted: number;
  requests: number;
  attempts: number;
  delivered: number;
  retried: number;
  dead: number;
  expired: number;
  parked: number;
  /** Attempt latency quantiles (ms), null without attempts. */
  p50: number | null;
  p99: number | null;
  /** Failed attempts per origin in this second. */
  failures: Record<string, number>;
}

const COUNTERS = ['accepted', 'requests', 'attempts', 'delivered', 'retried', 'dead', 'expired', 'parked'] as const;

/** Merges the bucket hashes of one second (one per shard) into a point. */
export function pointFrom(t: number, hashes: readonly Record<string, string>[]): Point {
  const p: Point = {
    t,
    accepted: 0,
    requests: 0,
    attempts: 0,
    delivered: 0,
    retried: 0,
    dead: 0,
    expired: 0,
    parked: 0,
    p50: null,
    p99: null,
    failures: {},
  };
  const latency = new Map<number, number>();
  for (const h of hashes) {
    for (const [field, raw] of Object.entries(h)) {
      const n = Number(raw);
      if (!Number.isFinite(n)) continue;
      if (field.startsWith('l:')) {
        const i = Number(field.slice(2));
        latency.set(i, (latency.get(i) ?? 0) + n);
      } else if (field.startsWith('fo:')) {
        const origin = field.slice(3);
        p.failures[origin] = (p.failures[origin] ?? 0) + n;
      } else if ((COUNTERS as readonly string[]).includes(field)) {
        p[field as (typeof COUNTERS)[number]] += n;
      }
    }
  }
  p.p50 = quantile(latency, 0.5);
  p.p99 = quantile(latency, 0.99);
  return p;
}

/**
 * Points for the seconds from `from` to `to` inclusive: one pipeline per
 * shard (a shard's keys share a Cluster slot), shards read in parallel.
 */
export async function readPoints(redis: RedisClient, shards: readonly ShardKeys[], from: number, to: number): Promise<Point[]> {
  if (to < from) return [];
  const perShard = await Promise.all(
    shards.map(async (k) => {
      const pipe = redis.pipeline();
      for (let t = from; t <= to; t++) pipe.hgetall(statsKey(k, t));
      const res = (await pipe.exec()) ?? [];
      return res.map(([err, h]) => {
        if (err) throw err;
        return (h ?? {}) as Record<string, string>;
      });
    }),
  );
  const points: Point[] = [];
  for (let t = from, i = 0; t <= to; t++, i++) points.push(pointFrom(t, perShard.map((hashes) => hashes[i] ?? {})));
  return points;
}

/** The origins failing most over the given points, most failures first. */
export function topFailing(points: readonly Point[], n: number): [string, number][] {
  const sum = new Map<string, number>();
  for (const p of points) for (const [o, c] of Object.entries(p.failures)) sum.set(o, (sum.get(o) ?? 0) + c);
  return [...sum.entries()].sort((a, b) => b[1] - a[1]).slice(0, n);
}
