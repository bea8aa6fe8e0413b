/**
 * Every Redis key name, in one place. Keys live under a configurable prefix
 * and carry a `{hash tag}` per queue shard, so that a shard's stream, its
 * delayed set, its dead letters and its templates share one Redis Cluster
 * slot (Lua scripts and MULTI may only touch one slot) while different
 * shards spread over the cluster.
 */

/** Consumer group every delivery process joins. */
export const GROUP = 'delivery';

export interface ShardKeys {
  readonly shard: number;
  /** Stream of first attempts waiting for (or in) delivery. */
  readonly stream: string;
  /** Stream of retries that came due: read beside `stream`, never ahead of it. */
  readonly retry: string;
  /** Sorted set of first attempts with a delay, score = due ms; promoted to `stream`. */
  readonly delayed: string;
  /** Sorted set of retries (and parked postbacks), score = due ms; promoted to `retry`. */
  readonly retries: string;
  /** Stream of dead letters (failed or expired postbacks). */
  readonly dead: string;
  /** Postbacks in the shard not yet finished (waiting, delayed, in flight). */
  readonly count: string;
  /** Prefix of the content-addressed template keys of this shard. */
  readonly templatePrefix: string;
  /** Prefix of the per-second statistics buckets of this shard. */
  readonly statsPrefix: string;
}

export function shardKeys(prefix: string, shard: number): ShardKeys {
  const base = `${prefix}:{${shard}}:`;
  return {
    shard,
    stream: `${base}stream`,
    retry: `${base}retry`,
    delayed: `${base}delayed`,
    retries: `${base}retries`,
    dead: `${base}dead`,
    count: `${base}count`,
    templatePrefix: `${base}tpl:`,
    statsPrefix: `${base}stats:`,
  };
}

/** Per-second statistics bucket of a shard (a hash; see observability/stats.ts). */
export function statsKey(keys: ShardKeys, second: number): string {
  return keys.statsPrefix + second;
}

/** The keys of every shard, 0 to QUEUE_SHARDS - 1. */
export function allShards(prefix: string, shards: number): ShardKeys[] {
  return Array.from({ length: shards }, (_, i) => shardKeys(prefix, i));
}

export function templateKey(keys: ShardKeys, templateId: string): string {
  return keys.templatePrefix + templateId;
}
