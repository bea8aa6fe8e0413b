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
 *   back in Redis, due when it should have room (its backlog in rounds,
 *   times its latency).
 * - Hand-back at shutdown: per entry, the first item not yet started.
 * - Per-origin latency averages, bounded.
 */

/** Postbacks held (waiting or in flight) may reach this many times DELIVERY_CONCURRENCY. */
export const HOLD_FACTOR = 4;
/** An origin with this many times its in-flight limit waiting gets new arrivals parked in Redis. */
export const PARK_FACTOR = 2;
/** Entries asked for per stream in one XREADGROUP. */
export const MAX_READ_COUNT = 256;
/** Park delay bounds: long enough to be worth a round trip, short enough to notice recovery. */
export const PARK_MIN_MS = 500;
export const PARK_MAX_MS = 60_000;
/** Latency assumed for an origin not yet measured. */
export const UNKNOWN_LATENCY_MS = 250;

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
 * When a parked entry should come back: the rounds of the origin's backlog
 * (waiting over its in-flight limit) times its mean latency, within
 * [PARK_MIN_MS, PARK_MAX_MS], jittered to 0.75 to 1.25 of it so that parked
 * entries do not all return together. `random` in [0, 1).
 */
export function parkDelay(waiting: number, perOrigin: number, latencyMs: number | undefined, random: number): number {
  const rounds = waiting / perOrigin;
  const base = Math.min(PARK_MAX_MS, Math.max(PARK_MIN_MS, rounds * (latencyMs ?? UNKNOWN_LATENCY_MS)));
  return Math.round(base * (0.75 + random / 2));
}

/**
 * For hand-back at shutdown: of the jobs not yet started, the first item
 * index per entry (an entry's items start in order, so everything from
 * there on is unstarted).
 */
export function handBackPlan<E>(unstarted: Iterable<{ held: E; k: number }>): Map<E, number> {
  const first = new Map<E, number>();
  for (const { held, k } of unstarted) {
    const prev = first.get(held);
    if (prev === undefined || k < prev) first.set(held, k);
  }
  return first;
}

/** Exponentially weighted moving average: the first sample is taken as is. */
export function ewma(prev: number | undefined, sample: number, weight = 0.2): number {
  return prev === undefined ? sample : prev * (1 - weight) + sample * weight;
}

/**
 * Mean attempt latency per origin (for park delays), at most `max` origins:
 * the one updated longest ago is dropped first, so the bound holds however
 * many partners pass through.
 */
export class LatencyAverages {
  private readonly means = new Map<string, number>();

  constructor(private readonly max = 10_000) {}

  get size(): number {
    return this.means.size;
  }

  get(origin: string): number | undefined {
    return this.means.get(origin);
  }

  add(origin: string, latencyMs: number): void {
    const prev = this.means.get(origin);
    // Re-inserted at the end: Map order is then least recently updated first.
    this.means.delete(origin);
    this.means.set(origin, ewma(prev, latencyMs));
    if (this.means.size > this.max) this.means.delete(this.means.keys().next().value as string);
  }
}
