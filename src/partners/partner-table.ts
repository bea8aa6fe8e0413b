/**
 * The partners table of the whole cluster (dashboard, GET /partners,
 * Prometheus partner gauges): the control plane's view (state, pause,
 * breaker, limits, postbacks held) merged with the last minute of every
 * delivery process's statistics (partner-stats.ts). `mergePartnerRows` is
 * pure; `readPartnerTable` does the reads.
 */
import { quantile } from '../observability/latency-buckets.js';
import type { ControlKeys, ShardKeys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis.js';
import type { PartnerState } from './control-state.js';
import { liveMembers } from './control.js';
import { STATS_BUCKET_MS, STATS_WINDOW_MS } from './partner-stats.js';
import type { PolicyTable } from './policy.js';
import { readPartnerStatuses, type PartnerStatus } from './status.js';

/** Rows returned at most (the busiest first). */
export const MAX_ROWS = 500;

export interface PartnerRow {
  origin: string;
  state: PartnerState;
  /** Effective limits (policy and operator override); null: none. */
  rate: number | null;
  concurrency: number | null;
  inFlight: number;
  /** Waiting in processes' memory plus held in Redis (paused, open). */
  waiting: number;
  held: number;
  /** Last minute. */
  attempts: number;
  successPct: number | null;
  p99Ms: number | null;
  lastError: { at: number; status: number | null; code: string | null; error: string | null } | null;
  pause: PartnerStatus['pause'];
  breaker: PartnerStatus['breaker'];
}

interface Acc {
  attempts: number;
  delivered: number;
  latency: Map<number, number>;
  lastError: PartnerRow['lastError'];
  inFlight: number;
  waiting: number;
}

/** Merges statuses, statistics hashes (field `<origin>|<x>`) and per-process load snapshots (origin -> "inFlight,waiting"). */
export function mergePartnerRows(
  statuses: readonly PartnerStatus[],
  statsHashes: readonly Record<string, string>[],
  loads: readonly Record<string, string>[],
  /** A partner's limits from the policy file, for one with traffic but no status row (not paused, limited or open). */
  policyOf: (origin: string) => { rate: number | null; concurrency: number | null } | undefined = () => undefined,
): PartnerRow[] {
  const accs = new Map<string, Acc>();
  const acc = (origin: string): Acc => {
    let a = accs.get(origin);
    if (a === undefined) {
      a = { attempts: 0, delivered: 0, latency: new Map(), lastError: null, inFlight: 0, waiting: 0 };
      accs.set(origin, a);
    }
    return a;
  };
  for (const h of statsHashes) {
    for (const [field, value] of Object.entries(h)) {
      const bar = field.lastIndexOf('|');
      if (bar <= 0) continue;
      const a = acc(field.slice(0, bar));
      const kind = field.slice(bar + 1);
      if (kind === 'a') a.attempts += Number(value) || 0;
      else if (kind === 'd') a.delivered += Number(value) || 0;
      else if (kind === 'e') {
        try {
          const e = JSON.parse(value) as NonNullable<PartnerRow['lastError']>;
          if (a.lastError === null || e.at > a.lastError.at) a.lastError = e;
        } catch {
          // a torn or foreign field: skip it
        }
      } else if (kind.startsWith('l')) {
        const b = Number(kind.slice(1));
        if (Number.isInteger(b)) a.latency.set(b, (a.latency.get(b) ?? 0) + (Number(value) || 0));
      }
    }
  }
  for (const load of loads) {
    for (const [origin, value] of Object.entries(load)) {
      const [f, w] = value.split(',').map(Number);
      const a = acc(origin);
      a.inFlight += f || 0;
      a.waiting += w || 0;
    }
  }
  const byOrigin = new Map(statuses.map((s) => [s.origin, s]));
  const rows: PartnerRow[] = [];
  for (const origin of new Set([...byOrigin.keys(), ...accs.keys()])) {
    const s = byOrigin.get(origin);
    const a = accs.get(origin);
    const policy = s === undefined ? policyOf(origin) : undefined;
    rows.push({
      origin,
      state: s?.state ?? 'closed',
      rate: s?.rate ?? policy?.rate ?? null,
      concurrency: s?.concurrency ?? policy?.concurrency ?? null,
      inFlight: a?.inFlight ?? 0,
      waiting: (a?.waiting ?? 0) + (s?.held ?? 0),
      held: s?.held ?? 0,
      attempts: a?.attempts ?? 0,
      successPct: a && a.attempts > 0 ? Math.round((1000 * a.delivered) / a.attempts) / 10 : null,
      p99Ms: a ? quantile(a.latency, 0.99) : null,
      lastError: a?.lastError ?? null,
      pause: s?.pause ?? null,
      breaker: s?.breaker ?? null,
    });
  }
  // Trouble first (not closed), then the busiest.
  rows.sort((x, y) => Number(y.state !== 'closed') - Number(x.state !== 'closed') || y.attempts + y.waiting - (x.attempts + x.waiting) || (x.origin < y.origin ? -1 : 1));
  return rows.slice(0, MAX_ROWS);
}

export async function readPartnerTable(redis: RedisClient, keys: ControlKeys, shards: readonly ShardKeys[], table: PolicyTable | null, now: number): Promise<PartnerRow[]> {
  const statuses = await readPartnerStatuses(redis, keys, shards, table, now);
  const first = Math.floor((now - STATS_WINDOW_MS) / STATS_BUCKET_MS) + 1;
  const last = Math.floor(now / STATS_BUCKET_MS);
  const hashes: Promise<Record<string, string>>[] = [];
  for (let b = first; b <= last; b++) hashes.push(redis.hgetall(`${keys.statsPrefix}${b}`));
  const members = await liveMembers(redis, keys);
  const loads = await Promise.all(members.map((m) => redis.hgetall(`${keys.loadPrefix}${m}`)));
  return mergePartnerRows(statuses, await Promise.all(hashes), loads, (origin) => table?.resolve(origin));
}
