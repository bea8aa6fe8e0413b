/**
 * Pure: how fast a partner's postbacks may go, as functions over plain
 * numbers. Cluster-wide limits (a policy's `rate` and `concurrency`, an
 * operator's `partners limit`) are shared by the live delivery processes:
 *
 * - Rate: each process takes small leases from the origin's budget in
 *   Redis (GCRA), LEASE_MS worth of its share at a time, so the Redis cost
 *   per postback stays small and no process sits on tokens it cannot spend.
 * - Concurrency: each process keeps its even share in flight.
 * - A rate-limited origin's backlog beyond RATE_HOLD_S seconds of its share
 *   is parked in Redis, each entry due when its turn comes at that rate.
 * - Held postbacks (paused, breaker open) come back at the origin's rate,
 *   or, without one, ramping up from RAMP_START entries per pass, doubling
 *   every second: a partner that recovers is not hit with its backlog at once.
 */

/** Each rate lease is this much of the process's share of the rate. */
export const LEASE_MS = 100;
/**
 * Allowance for the time between a grant in Redis and the request reaching
 * the partner (event loop, dispatch, network): unspent lease tokens are
 * dropped after it, and the budget is kept this much tighter (see
 * {@link gcraParams}), so the partner itself never counts more than
 * rate + burst in a second.
 */
export const JITTER_MS = 60;
/** The most of the rate given up for it when the burst cannot absorb it (5%). */
export const JITTER_RATE_MS = 50;
export const LEASE_TTL_MS = 20;
/** A rate-limited origin keeps this many seconds of its share waiting in memory; the rest is parked. */
export const RATE_HOLD_S = 2;
/** Held entries released per pass after a recovery, doubling each second, at most RAMP_MAX. */
export const RAMP_START = 8;
export const RAMP_MAX = 1_000;

/**
 * The GCRA parameters for a rate and burst: the interval between requests
 * and the tolerance (burst - 1 intervals), less JITTER_MS so that requests
 * granted a little apart and delivered closer together still fit. When the
 * burst cannot absorb it, the rate gives up the rest (at most
 * JITTER_RATE_MS of every second: 5%).
 */
export function gcraParams(rate: number, burst: number): { intervalMs: number; toleranceMs: number } {
  const interval = 1000 / rate;
  const tolerance = (burst - 1) * interval;
  if (tolerance >= JITTER_MS) return { intervalMs: interval, toleranceMs: tolerance - JITTER_MS };
  const short = Math.min(JITTER_MS - tolerance, JITTER_RATE_MS);
  return { intervalMs: interval / (1 - short / 1000), toleranceMs: 0 };
}

/** A process's share of a cluster-wide limit: divided evenly among the live processes. */
export function processShare(limit: number, live: number): number {
  return limit / Math.max(1, live);
}

/** In flight a process may have for an origin with a cluster-wide concurrency limit: its share, at least 1. */
export function concurrencyShare(concurrency: number, live: number): number {
  return Math.max(1, Math.floor(processShare(concurrency, live)));
}

/** Tokens one lease asks for: LEASE_MS of the process's share of `rate`, at least 1, at most `wanted`. */
export function leaseSize(rate: number, live: number, wanted: number): number {
  return Math.max(1, Math.min(wanted, Math.ceil((processShare(rate, live) * LEASE_MS) / 1000)));
}

/** Whether a rate-limited origin with `waiting` postbacks in memory should park new arrivals. */
export function parkForRate(rate: number, live: number, waiting: number): boolean {
  return waiting >= Math.max(1, Math.ceil(processShare(rate, live) * RATE_HOLD_S));
}

/**
 * When a parked entry of `postbacks` for a rate-limited origin comes due,
 * and the origin's next free slot after it. `cursor` is the previous
 * entry's slot (0 at first): entries parked one after another are spread
 * at the process's share of the rate, so each one is parked once.
 */
export function rateSlot(cursor: number, now: number, waiting: number, postbacks: number, rate: number, live: number): { due: number; cursor: number } {
  const perMs = processShare(rate, live) / 1000;
  const due = Math.max(cursor, now + waiting / perMs);
  return { due: Math.round(due), cursor: due + postbacks / perMs };
}

/**
 * Held entries one process releases for an origin in one pass of `passMs`:
 * at its rate when it has one (its share), else ramping from RAMP_START,
 * doubling every second since the release began.
 */
export function releaseBudget(rate: number | null, live: number, passMs: number, sinceMs: number): number {
  if (rate !== null) return Math.max(1, Math.ceil((processShare(rate, live) * passMs) / 1000));
  const ramp = RAMP_START * 2 ** Math.min(10, Math.floor(Math.max(0, sinceMs) / 1000));
  return Math.max(1, Math.ceil(Math.min(RAMP_MAX, ramp) / Math.max(1, live)));
}
