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
  /** Prefix of the per-origin sorted sets of postbacks held while their partner is paused or its breaker open (score: due ms). */
  readonly heldPrefix: string;
  /** Hash: origin -> postbacks held for it in this shard. */
  readonly heldIndex: string;
  /** Prefix of the idempotency records of requests written to this shard (`<prefix><sha256>`). */
  readonly idemPrefix: string;
}

/**
 * The control plane, shared by every process: partner overrides (pauses,
 * limits), circuit breakers, rate budgets, live delivery processes. One
 * hash tag, so its scripts stay legal on a Cluster (one slot: its traffic
 * is small).
 */
export interface ControlKeys {
  /** Hash: origin -> JSON of operator and automatic overrides (pause, limit). */
  readonly partners: string;
  /** Hash: origin -> JSON of a breaker that is not closed. */
  readonly breakers: string;
  /** Counter bumped on every change of the two above: processes poll it. */
  readonly version: string;
  /** Sorted set: delivery consumer -> last heartbeat ms. */
  readonly members: string;
  /** Prefix of per-origin keys: rate budget (GCRA), park cursor, breaker window. */
  readonly originPrefix: string;
  /** Prefix of the 10-second partner statistics hashes (`<origin>|<field>`), kept 2 minutes. */
  readonly statsPrefix: string;
  /** Prefix of each delivery process's in-flight and waiting snapshot (hash origin -> "inFlight,waiting"). */
  readonly loadPrefix: string;
}

export function controlKeys(prefix: string): ControlKeys {
  const base = `${prefix}:{ctl}:`;
  return {
    partners: `${base}partners`,
    breakers: `${base}breakers`,
    version: `${base}version`,
    members: `${base}members`,
    originPrefix: `${base}o:`,
    statsPrefix: `${base}ps:`,
    loadPrefix: `${base}load:`,
  };
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
    heldPrefix: `${base}held:`,
    heldIndex: `${base}held`,
    idemPrefix: `${base}idem:`,
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

/** The sorted set of postbacks held for an origin in a shard. */
export function heldKey(keys: ShardKeys, origin: string): string {
  return keys.heldPrefix + origin;
}
