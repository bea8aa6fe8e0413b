/**
 * The cluster's view of its partners, read from Redis for the CLI, the
 * monitor API and the dashboard: every origin that is paused, limited, has
 * a breaker that is not closed, or has postbacks held, with its policy.
 * Bounded by what the control plane and the held indexes hold (origins an
 * operator or a breaker acted on), never by traffic.
 */
import type { ControlKeys, ShardKeys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis.js';
import { readBreakers, readControls } from './control.js';
import { activePause, partnerState, type BreakerRecord, type Pause, type PartnerState } from './control-state.js';
import { withOverride, type LimitOverride, type PolicyTable } from './policy.js';

export interface PartnerStatus {
  origin: string;
  state: PartnerState;
  pause: Pause | null;
  breaker: BreakerRecord | null;
  /** The operator's override (partners limit), if any. */
  limit: LimitOverride | null;
  /** The policy pattern that matched (null: the defaults), with the effective limits. */
  pattern: string | null;
  rate: number | null;
  burst: number;
  concurrency: number | null;
  /** Postbacks held in Redis for it (paused or open), all shards. */
  held: number;
}

/** Postbacks held per origin, summed over the shards. */
export async function heldCounts(redis: RedisClient, shards: readonly ShardKeys[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const keys of shards) {
    for (const [origin, n] of Object.entries(await redis.hgetall(keys.heldIndex))) out.set(origin, (out.get(origin) ?? 0) + Number(n));
  }
  return out;
}

export async function readPartnerStatuses(redis: RedisClient, keys: ControlKeys, shards: readonly ShardKeys[], table: PolicyTable | null, now: number): Promise<PartnerStatus[]> {
  const [controls, breakers, held] = await Promise.all([readControls(redis, keys), readBreakers(redis, keys), heldCounts(redis, shards)]);
  const origins = [...new Set([...controls.keys(), ...breakers.keys(), ...held.keys()])].sort();
  return origins.map((origin) => statusOf(origin, controls.get(origin), breakers.get(origin) ?? null, held.get(origin) ?? 0, table, now));
}

export async function readPartnerStatus(redis: RedisClient, keys: ControlKeys, shards: readonly ShardKeys[], table: PolicyTable | null, origin: string, now: number): Promise<PartnerStatus> {
  const [controls, breakers, held] = await Promise.all([readControls(redis, keys), readBreakers(redis, keys), heldCounts(redis, shards)]);
  return statusOf(origin, controls.get(origin), breakers.get(origin) ?? null, held.get(origin) ?? 0, table, now);
}

function statusOf(
  origin: string,
  control: Parameters<typeof activePause>[0],
  breaker: BreakerRecord | null,
  held: number,
  table: PolicyTable | null,
  now: number,
): PartnerStatus {
  const pause = activePause(control, now);
  const limit = control?.limit;
  const base = table?.resolve(origin);
  const policy = base ? withOverride(base, limit) : undefined;
  return {
    origin,
    state: partnerState(pause, breaker),
    pause,
    breaker,
    limit: limit ? { rate: limit.rate, concurrency: limit.concurrency } : null,
    pattern: base?.pattern ?? null,
    rate: policy?.rate ?? limit?.rate ?? null,
    burst: policy?.burst ?? 1,
    concurrency: policy?.concurrency ?? limit?.concurrency ?? null,
    held,
  };
}
