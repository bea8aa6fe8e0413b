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
  /** Stream of postback entries waiting for (or in) delivery. */
  readonly stream: string;
  /** Sorted set of entries due later (retries, delays), score = due ms. */
  readonly delayed: string;
  /** Stream of dead letters (failed or expired postbacks). */
  readonly dead: string;
  /** Prefix of the content-addressed template keys of this shard. */
  readonly templatePrefix: string;
}

export function shardKeys(prefix: string, shard: number): ShardKeys {
  const base = `${prefix}:{${shard}}:`;
  return {
    shard,
    stream: `${base}stream`,
    delayed: `${base}delayed`,
    dead: `${base}dead`,
    templatePrefix: `${base}tpl:`,
  };
}

export function templateKey(keys: ShardKeys, templateId: string): string {
  return keys.templatePrefix + templateId;
}
