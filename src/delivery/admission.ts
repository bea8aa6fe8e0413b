/**
 * Pure: what the delivery process lets in, and how much, as functions over
 * plain numbers (piscina keeps its balancer this way, tested without
 * threads). No Redis, no clock, no randomness of its own: the service
 * passes in what it holds, `now` and a random number.
 *
 * - Read room: postbacks in flight plus those that could start now stay
 *   within DELIVERY_CONCURRENCY, and everything held (waiting or in
 *   flight) within HOLD_FACTOR times it.
 * - Read threshold and size: an idle process reads at once; a busy one
 *   waits for a worthwhile amount of room, and sizes each XREADGROUP from
 *   the room and the average entry size.
 * - Parking: an origin with PARK_FACTOR times its in-flight limit (and at
 *   least half the concurrency) already waiting gets further entries put
 *   back in Redis, due when it should have room (what it has waiting, at
 *   the pace it has been draining), as far as the parking budget goes
 *   (below).
 * - Parking budget: parking is how a saturated partner's backlog is read
 *   past to reach the other partners' postbacks behind it in the stream,
 *   but each parked postback is written back, moved again and read again.
 *   So it is spent from a budget: at least PARK_BUDGET_MIN postbacks a
 *   second (or DELIVERY_CONCURRENCY, if more), plus PARK_EARN for every
 *   postback read that could start. What the budget does not cover waits
 *   in memory, within the hold cap; with the hold cap full of saturated
 *   partners' postbacks, a read still goes ahead when the budget covers it
 *   ("read past"). One saturated partner alone then costs at most the
 *   minimum budget a second, instead of several parks per postback.
 * - Hand-back at shutdown: per entry, the first item not yet started.
 * - Per-origin drain paces, bounded.
 */

/** Postbacks held (waiting or in flight) may reach this many times DELIVERY_CONCURRENCY. */
export const HOLD_FACTOR = 4;
/** An origin with this many times its in-flight limit waiting gets new arrivals parked in Redis. */
export const PARK_FACTOR = 2;
/** Entries asked for per stream in one XREADGROUP. */
export const MAX_READ_COUNT = 256;
/** Postbacks a second a process may always park (and the most it saves up), unless DELIVERY_CONCURRENCY is more. */
export const PARK_BUDGET_MIN = 1_000;
/** Postbacks of parking earned by each postback read that could start (its origin below the park threshold). */
export const PARK_EARN = 2;
/**
 * Park delay bounds: long enough to be worth a round trip, short enough to
 * notice recovery (an entry back too early costs at most another park,
 * within the budget; one back too late leaves the partner idle).
 */
export const PARK_MIN_MS = 100;
export const PARK_MAX_MS = 60_000;

export interface AdmissionLimits {
  /** DELIVERY_CONCURRENCY. */
  concurrency: number;
  /** DELIVERY_BATCH_SIZE. */
  batchSize: number;
  /** Queue shards read side by side (each read loop asks for its part of the room). */
  shards: number;
}

/** What the process holds now, as the scheduler counts it. */
export interface Held {
  /** In flight, plus waiting postbacks of origins below their limit (could start now). */
  readyLoad: number;
  /** Everything read and not finished: waiting and in flight. */
  load: number;
}

/** Postbacks that may still be read: room for work that could start, within the hold cap. */
export function readRoom(limits: AdmissionLimits, held: Held): number {
  return Math.min(limits.concurrency - held.readyLoad, HOLD_FACTOR * limits.concurrency - held.load);
}

/**
 * Room a read loop waits for before reading. With nothing held it reads at
 * once (latency); under load it waits for a batch or an eighth of the
 * concurrency, so each XREADGROUP brings many entries instead of one per
 * finished batch: fewer round trips and system calls per postback.
 */
export function readThreshold(limits: AdmissionLimits, held: Held): number {
  if (held.load === 0) return 1;
  return Math.min(limits.concurrency, Math.max(limits.batchSize, Math.floor(limits.concurrency / 8)));
}

/** What a read loop may read now. */
export interface Allowance {
  /** Postbacks (0: wait). */
  postbacks: number;
  /**
   * A read past a saturated backlog: every entry it brings for a saturated
   * origin is parked, whatever is left of the budget (the read was sized
   * to it), so that reading past never grows what is held.
   */
  past: boolean;
}

/**
 * The read room when it is worth a read; otherwise, when only the hold cap
 * is short (what is held is mostly saturated partners' backlog) and there
 * is room for work that could start, as much as the parking budget covers,
 * so that the reading goes on past that backlog at the budget's pace.
 */
export function readAllowance(limits: AdmissionLimits, held: Held, parkable: number): Allowance {
  const threshold = readThreshold(limits, held);
  const room = readRoom(limits, held);
  if (room >= threshold) return { postbacks: room, past: false };
  const past = Math.min(readyRoom(limits, held), Math.floor(parkable));
  return past >= threshold ? { postbacks: past, past: true } : { postbacks: 0, past: false };
}

/** Room for work that could start: DELIVERY_CONCURRENCY less the ready load. */
export function readyRoom(limits: AdmissionLimits, held: Held): number {
  return limits.concurrency - held.readyLoad;
}

/** Entries one read loop asks for: its shard's part of the room, in entries of the average size. */
export function readCount(limits: AdmissionLimits, room: number, itemsPerEntry: number): number {
  const share = room / limits.shards;
  return Math.max(1, Math.min(MAX_READ_COUNT, Math.ceil(share / Math.max(1, itemsPerEntry))));
}

/**
 * Whether a newly read entry for an origin with `waiting` postbacks queued
 * goes back to Redis: when PARK_FACTOR times its in-flight limit wait, and
 * at least half of DELIVERY_CONCURRENCY (so an origin with few connections
 * keeps a modest backlog in memory, in order, rather than parking at once).
 */
export function shouldPark(limits: AdmissionLimits, waiting: number, perOrigin: number): boolean {
  return waiting >= Math.max(PARK_FACTOR * perOrigin, Math.floor(limits.concurrency / 2));
}

/**
 * When a parked entry should come back: once what its origin has waiting
 * has drained, at the pace it has drained so far (`msPerPostback`; before
 * that is measured, PARK_MIN_MS: back soon rather than late), but never
 * later than the origin has been busy in this process (`busyMs`): a pace
 * seen for half a second is not trusted for ten. Those first finishes are
 * a cold process's (new connections, code not yet optimised, a loaded
 * machine), and the process up first against a backlog may be the only
 * one reading yet: a long park then kept a healthy partner's postbacks
 * in Redis while the processes that came up after had nothing to do.
 * Parked for at most as long as the pace has been watched, an entry comes
 * back within about twice that, to whichever process has room; as the
 * busy stretch lengthens, the drain estimate takes over. Within
 * [PARK_MIN_MS, PARK_MAX_MS], jittered to 0.75 to 1.25 of it so that
 * parked entries do not all return together. `random` in [0, 1).
 */
export function parkDelay(waiting: number, msPerPostback: number | undefined, busyMs: number, random: number): number {
  const drain = msPerPostback === undefined ? 0 : Math.min(waiting * msPerPostback, busyMs);
  const base = Math.min(PARK_MAX_MS, Math.max(PARK_MIN_MS, drain));
  return Math.round(base * (0.75 + random / 2));
}

/** Postbacks a second of the parking budget (see above). */
export function parkBudgetPerSecond(limits: AdmissionLimits): number {
  return Math.max(PARK_BUDGET_MIN, limits.concurrency);
}

/**
 * The parking budget: a token bucket of postbacks, empty at first (a
 * process that starts against a backlog does not know its partners' pace
 * yet), refilled at `perSecond` and by {@link ParkBudget.earn}, holding at
 * most `perSecond`. The clock is the caller's.
 */
export class ParkBudget {
  private tokens: number;
  private at: number;

  constructor(
    readonly perSecond: number,
    now: number,
  ) {
    this.tokens = 0;
    this.at = now;
  }

  /** Postbacks that may be parked now. */
  available(now: number): number {
    this.refill(now);
    return this.tokens;
  }

  /** `n` postbacks read could start: PARK_EARN each. */
  earn(n: number): void {
    this.tokens = Math.min(this.perSecond, this.tokens + PARK_EARN * n);
  }

  /**
   * Spends `n` if anything is left, or whatever is left when `force` (a
   * read past a backlog, sized to the budget): the budget may end in debt,
   * which delays what follows, so the rate holds on average.
   */
  take(n: number, now: number, force = false): boolean {
    this.refill(now);
    if (this.tokens <= 0 && !force) return false;
    this.tokens -= n;
    return true;
  }

  /** Milliseconds until `n` (at most the whole budget) are available. */
  msUntil(n: number, now: number): number {
    this.refill(now);
    const need = Math.min(n, this.perSecond) - this.tokens;
    return need <= 0 ? 0 : Math.ceil((need * 1000) / this.perSecond);
  }

  private refill(now: number): void {
    if (now <= this.at) return;
    this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.at) * this.perSecond) / 1000);
    this.at = now;
  }
}

/**
 * For hand-back at shutdown: the jobs not yet started, per entry, as runs
 * of consecutive item indexes [from, to). Not one run from the first
 * unstarted item to the end: an entry's items need not start in order
 * (a placeholder in the host sends each to its own origin, each with its
 * own queue), and a run over a started item would send it twice and
 * leave the entry's count of postbacks without an outcome short.
 */
export function handBackPlan<E>(unstarted: Iterable<{ held: E; k: number }>): Map<E, [number, number][]> {
  const ks = new Map<E, number[]>();
  for (const { held, k } of unstarted) {
    const list = ks.get(held);
    if (list) list.push(k);
    else ks.set(held, [k]);
  }
  const plan = new Map<E, [number, number][]>();
  for (const [held, list] of ks) {
    list.sort((a, b) => a - b);
    const runs: [number, number][] = [];
    for (const k of list) {
      const last = runs[runs.length - 1];
      if (last !== undefined && last[1] === k) last[1] = k + 1;
      else if (last === undefined || last[1] < k) runs.push([k, k + 1]);
    }
    plan.set(held, runs);
  }
  return plan;
}

/** Weight each earlier finish keeps at the next one, in {@link DrainPace}: about the last ten finishes count. */
export const PACE_DECAY = 0.9;

/**
 * How fast each origin's postbacks finish while it is busy, in ms per
 * postback (for park delays): the time between finishes of an origin that
 * still had work after the first, over the postbacks finished, both summed
 * with a decay of PACE_DECAY per finish. A ratio of sums, not a mean of
 * per-finish ratios: a batch of one after a pause and a batch of sixty-four
 * in the same millisecond average to the pace actually achieved (the mean
 * of ratios overstated it 2 to 15 times at one busy partner, and parked
 * entries came back seconds after the partner had run dry). This is the
 * pace the process achieves (its CPU, the partner, the connections), not
 * one request's latency. Also how long the origin has been busy without a
 * break (since the first finish after which it still had work), which
 * bounds how far that pace is trusted ({@link parkDelay}). At most `max`
 * origins: the one updated longest ago is dropped first, so the bound
 * holds however many partners pass through.
 */
export class DrainPace {
  private readonly paces = new Map<string, { at: number; busy: boolean; since: number; ms: number; n: number }>();

  constructor(private readonly max = 10_000) {}

  get size(): number {
    return this.paces.size;
  }

  msPerPostback(origin: string): number | undefined {
    const p = this.paces.get(origin);
    return p === undefined || p.n === 0 ? undefined : p.ms / p.n;
  }

  /** Ms the origin has had work without a break, as of `now` (0 if it had none at its last finish). */
  busyMs(origin: string, now: number): number {
    const p = this.paces.get(origin);
    return p === undefined || !p.busy ? 0 : Math.max(0, now - p.since);
  }

  /** `n` postbacks of `origin` finished at `now`; `busy`: it still has some waiting or in flight. */
  done(origin: string, n: number, now: number, busy: boolean): void {
    const prev = this.paces.get(origin);
    let ms = prev?.ms ?? 0;
    let count = prev?.n ?? 0;
    if (prev !== undefined && prev.busy && n > 0) {
      ms = ms * PACE_DECAY + Math.max(0, now - prev.at);
      count = count * PACE_DECAY + n;
    }
    const since = prev !== undefined && prev.busy ? prev.since : now;
    // Re-inserted at the end: Map order is then least recently updated first.
    this.paces.delete(origin);
    this.paces.set(origin, { at: now, busy, since, ms, n: count });
    if (this.paces.size > this.max) this.paces.delete(this.paces.keys().next().value as string);
  }
}
