/**
 * Dead letters are bounded by DLQ_MAX (all shards together, the oldest
 * trimmed first) and DLQ_RETENTION_MS (by age: a dead letter's stream id
 * is the ms it died). Delivery processes trim every DLQ_TRIM_MS and at
 * start; each trim is counted (pb_dead_letters_trimmed_total{reason}) and
 * logged, never silent. Trimming is exact (XTRIM without ~), and since it
 * runs often, each run removes little.
 */
import type { ShardKeys } from './keys.js';
import type { RedisClient } from './redis.js';

export const DLQ_TRIM_MS = 10_000;

export interface TrimResult {
  /** Removed for being older than DLQ_RETENTION_MS. */
  byAge: number;
  /** Removed beyond the shard's part of DLQ_MAX. */
  byCount: number;
}

/** A shard's part of DLQ_MAX: dead letters spread evenly over the shards. */
export function perShardMax(max: number, shards: number): number {
  return Math.max(1, Math.ceil(max / Math.max(1, shards)));
}

export async function trimDeadLetters(redis: RedisClient, keys: ShardKeys, maxPerShard: number, retentionMs: number, now: number): Promise<TrimResult> {
  const byAge = await redis.xtrim(keys.dead, 'MINID', `${Math.max(0, now - retentionMs)}-0`);
  const byCount = await redis.xtrim(keys.dead, 'MAXLEN', maxPerShard);
  return { byAge, byCount };
}
