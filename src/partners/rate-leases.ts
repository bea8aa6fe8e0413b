/**
 * Cluster-wide rate limits, taken in small leases: a process wanting to
 * send to a rate-limited origin takes tokens from the origin's budget in
 * Redis (rate-take-1.lua, GCRA on Redis's clock) LEASE_MS of its share at a
 * time, only as many as it has postbacks ready, and spends them at once.
 * When the budget is spent, Redis says how long until the next token and
 * the process asks again then: postbacks over the budget wait (in the
 * scheduler, and beyond RATE_HOLD_S parked in Redis, due one after another
 * at the rate on a cursor the cluster shares: rate-park-1.lua), never
 * blocking other origins. Unspent tokens are dropped after LEASE_TTL_MS so they cannot
 * bunch requests later.
 *
 * Memory: one small record per rate-limited origin with work, at most
 * MAX_ORIGINS (idle ones are dropped first).
 */
import type { ControlKeys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis.js';
import { gcraParams, LEASE_MS, LEASE_TTL_MS, leaseSize, RATE_HOLD_S } from './pace.js';

const MAX_ORIGINS = 10_000;
const RETRY_MS = 1_000;

interface Lease {
  tokens: number;
  at: number;
  fetching: boolean;
  timer: NodeJS.Timeout | null;
}

export class RateLeases {
  private readonly leases = new Map<string, Lease>();
  /** Lease requests made, for the metrics (Redis calls per postback). */
  requests = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: ControlKeys,
    /** Tokens arrived (or the wait is over): try to send again. */
    private readonly onTokens: () => void,
  ) {}

  /**
   * How many of `wanted` requests to `origin` may start now (0 to wanted).
   * Asks Redis for a new lease in the background when short.
   */
  take(origin: string, rate: number, burst: number, live: number, wanted: number): number {
    const now = Date.now();
    let lease = this.leases.get(origin);
    if (lease === undefined) {
      if (this.leases.size >= MAX_ORIGINS) this.prune();
      lease = { tokens: 0, at: now, fetching: false, timer: null };
      this.leases.set(origin, lease);
    }
    if (now - lease.at > LEASE_TTL_MS) lease.tokens = 0;
    const granted = Math.min(wanted, lease.tokens);
    lease.tokens -= granted;
    if (granted < wanted && !lease.fetching && lease.timer === null) this.fetch(origin, lease, rate, burst, leaseSize(rate, live, wanted - granted));
    return granted;
  }

  private fetch(origin: string, lease: Lease, rate: number, burst: number, size: number): void {
    lease.fetching = true;
    this.requests++;
    const { intervalMs, toleranceMs } = gcraParams(rate, burst);
    this.redis.pbRateTake(`${this.keys.originPrefix}${origin}:rate`, intervalMs, toleranceMs, size).then(
      ([granted, wait]) => {
        lease.fetching = false;
        lease.at = Date.now();
        lease.tokens += granted;
        // Short of the lease: ask again once half a lease has accrued
        // (others share the budget), not for every single token.
        if (granted < size) this.later(lease, Math.max(1, Math.min(LEASE_MS, wait + Math.max(0, Math.ceil(size / 2) - 1) * intervalMs)));
        if (granted > 0) this.onTokens();
      },
      () => {
        lease.fetching = false;
        this.later(lease, RETRY_MS);
      },
    );
  }

  /**
   * Due times for entries of `origin` (their postback counts) parked beyond
   * the memory backlog: after RATE_HOLD_S, one after another at its rate,
   * on a cursor shared by the cluster. Null when Redis cannot be asked.
   */
  async parkSlots(origin: string, rate: number, burst: number, postbacks: readonly number[]): Promise<number[] | null> {
    try {
      return await this.redis.pbRatePark(`${this.keys.originPrefix}${origin}:park`, gcraParams(rate, burst).intervalMs, RATE_HOLD_S * 1000, ...postbacks);
    } catch {
      return null;
    }
  }

  private later(lease: Lease, ms: number): void {
    lease.timer = setTimeout(() => {
      lease.timer = null;
      this.onTokens();
    }, ms);
    lease.timer.unref();
  }

  private prune(): void {
    for (const [origin, lease] of this.leases) {
      if (!lease.fetching && lease.timer === null) this.leases.delete(origin);
    }
  }

  close(): void {
    for (const lease of this.leases.values()) if (lease.timer) clearTimeout(lease.timer);
    this.leases.clear();
  }
}
