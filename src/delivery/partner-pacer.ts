/**
 * A delivery process's side of partner control: everything that makes a
 * partner set the pace, kept apart from the read/schedule/record loops of
 * service.ts, which asks it:
 *
 * - policyFor: PARTNERS_FILE's policy with the operator's limit over it
 *   (cached per origin; the cache follows reloads and control changes);
 * - blockedBy: whether an origin's postbacks wait in Redis now (paused, or
 *   its breaker open);
 * - gate: how many postbacks to an origin may start now (its share of a
 *   cluster-wide concurrency, tokens leased from its rate budget);
 * - parkForRate / rateSlots: a rate-limited origin's backlog beyond what
 *   memory holds, parked in Redis at its turn;
 * - observe: what one attempt says (partner statistics, the breaker's
 *   tally, a probe's outcome, a Retry-After pause);
 * - release: the promoter's pass over held postbacks (probe an open
 *   breaker, disable one open too long, let a free partner's backlog go at
 *   its rate or ramping up, let what expired go to be logged).
 *
 * When the control plane changes for an origin it is told `onBlocked` if
 * the origin must now wait (the service moves its waiting jobs to Redis).
 */
import type { Config } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import { BreakerReporter } from '../partners/breaker.js';
import { PartnerControl } from '../partners/control.js';
import type { BreakerRecord } from '../partners/control-state.js';
import { concurrencyShare, parkForRate, rateSlot, releaseBudget } from '../partners/pace.js';
import { PartnerStats } from '../partners/partner-stats.js';
import type { PolicySource } from '../partners/policy-file.js';
import { withOverride, type PartnerPolicy } from '../partners/policy.js';
import { RateLeases } from '../partners/rate-leases.js';
import { controlKeys, heldKey, type ShardKeys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis.js';
import type { AttemptResult } from './attempt.js';
import type { DeliveryMetrics } from './metrics.js';
import { classify, health } from './outcome.js';
import { RELEASE_MS } from './promoter.js';
import { parseRetryAfter } from './retry-policy.js';

const POLICY_CACHE_MAX = 10_000;
/** Origins whose release (after a pause or an open breaker) is ramping up, and rate cursors kept, at most. */
const ORIGINS_MAX = 10_000;
/** Held origins looked at per shard and release pass (HSCAN COUNT), and expired entries released per origin. */
const RELEASE_SCAN = 200;
/** The longest pause a partner's Retry-After gets (a partner asking for a day gets an hour, then is asked again). */
const MAX_RETRY_AFTER_PAUSE_MS = 3_600_000;
/** A Retry-After pause is not extended for less than this (64 answers at once make one write). */
const RETRY_AFTER_SLACK_MS = 250;

export type BlockedBy = 'pause' | 'breaker' | null;

export interface PacerDeps {
  config: Config;
  logger: Logger;
  redis: RedisClient;
  consumer: string;
  metrics: DeliveryMetrics;
  policies: PolicySource;
  /** What the process holds per origin: [origin, in flight, waiting]. */
  load: () => Iterable<[string, number, number]>;
  /** Postbacks of an origin waiting in the process. */
  waitingFor: (origin: string) => number;
  /** Tokens arrived or a wait ended: try to start batches again. */
  pump: () => void;
  /** An origin must wait in Redis from now (paused, breaker open): take its waiting jobs out. */
  onBlocked: (origin: string, by: 'pause' | 'breaker') => void;
  /** After a control change was applied. */
  onChanged: () => void;
}

export class PartnerPacer {
  /** Pauses, limits and breakers of the whole cluster. */
  readonly control: PartnerControl;
  private readonly leases: RateLeases;
  private readonly breakers: BreakerReporter;
  private readonly stats: PartnerStats;
  private readonly policies = new Map<string, PartnerPolicy>();
  private policiesVersion = -1;
  /** When the release of an origin's held postbacks began (its ramp). */
  private readonly ramps = new Map<string, number>();
  /** HSCAN cursor of each shard's held index. */
  private readonly heldCursors = new Map<number, string>();
  /** Next free slot (ms) of rate-limited origins parked on this process's own cursor (Redis unreachable). */
  private readonly rateCursors = new Map<string, number>();

  constructor(private readonly deps: PacerDeps) {
    const keys = controlKeys(deps.config.redis.prefix);
    this.leases = new RateLeases(deps.redis, keys, deps.pump);
    this.breakers = new BreakerReporter(
      deps.redis,
      keys,
      deps.logger,
      (origin, record) => this.breakerOpened(origin, record),
      (origin, record) => this.control.setBreaker(origin, record),
    );
    this.stats = new PartnerStats(deps.redis, keys, deps.consumer, deps.load);
    this.control = new PartnerControl(deps.redis, keys, deps.consumer, deps.logger, (origins) => this.changed(origins));
  }

  async start(): Promise<void> {
    await this.control.start();
    this.breakers.start();
    this.stats.start();
  }

  async stop(): Promise<void> {
    this.control.stop();
    this.leases.close();
    this.breakers.stop();
    await this.stats.stop();
  }

  /** The policy of an origin: PARTNERS_FILE's, with the operator's limits over it. */
  policyFor(origin: string): PartnerPolicy {
    const source = this.deps.policies;
    if (source.version !== this.policiesVersion) {
      this.policies.clear();
      this.policiesVersion = source.version;
    }
    let policy = this.policies.get(origin);
    if (policy === undefined) {
      policy = withOverride(source.table.resolve(origin), this.control.limitOf(origin));
      if (this.policies.size >= POLICY_CACHE_MAX) this.policies.clear();
      this.policies.set(origin, policy);
    }
    return policy;
  }

  /** Why an origin's postbacks wait in Redis now: it is paused, or its breaker is open; null: they go. */
  blockedBy(origin: string, now: number): BlockedBy {
    if (this.control.pauseOf(origin, now) !== null) return 'pause';
    return this.control.breakerOf(origin) !== null ? 'breaker' : null;
  }

  /**
   * The scheduler's gate: how many of `n` postbacks to an origin may start
   * now under its partner's cluster-wide limits (its share of the
   * concurrency, tokens from its rate budget).
   */
  gate(origin: string, n: number, inFlight: number): number {
    const policy = this.policyFor(origin);
    if (policy.concurrency !== null) n = Math.min(n, concurrencyShare(policy.concurrency, this.control.live) - inFlight);
    if (n > 0 && policy.rate !== null) n = this.leases.take(origin, policy.rate, policy.burst, this.control.live, n);
    return n;
  }

  /** Whether an entry for a rate-limited origin with `waiting` postbacks in memory should be parked at its rate. */
  parkForRate(origin: string, waiting: number): boolean {
    const rate = this.policyFor(origin).rate;
    return rate !== null && parkForRate(rate, this.control.live, waiting);
  }

  /**
   * Due times for entries of a rate-limited origin (their postback counts),
   * one after another at its rate on the cluster's cursor, or, when Redis
   * cannot be asked, on this process's own at its share.
   */
  async rateSlots(origin: string, sizes: readonly number[], now: number): Promise<number[]> {
    const policy = this.policyFor(origin);
    const rate = policy.rate as number;
    const slots = await this.leases.parkSlots(origin, rate, policy.burst, sizes);
    if (slots !== null && slots.length === sizes.length) return slots;
    let cursor = this.rateCursors.get(origin) ?? 0;
    const out = sizes.map((n) => {
      const slot = rateSlot(cursor, now, this.deps.waitingFor(origin), n, rate, this.control.live);
      cursor = slot.cursor;
      return slot.due;
    });
    if (this.rateCursors.size >= ORIGINS_MAX) this.rateCursors.clear();
    this.rateCursors.set(origin, cursor);
    return out;
  }

  /**
   * What one attempt says about its partner: the partner statistics, the
   * breaker's tally (or, for a probe, the breaker's fate), and a
   * Retry-After pause. Returns false for a failed probe, which the caller
   * records without spending the postback's attempt.
   */
  observe(origin: string, probe: boolean, r: AttemptResult, now: number): boolean {
    const policy = this.policyFor(origin);
    const h = health(r.status, r.errorCode, policy);
    this.stats.attempt(origin, classify(r.status, r.errorCode, policy) === 'success', r.latencyMs, r.status, r.errorCode, r.error, now);
    if (probe && h !== 'none') {
      void this.probeDone(origin, h === 'ok').catch((err: unknown) => this.deps.logger.warn({ err: (err as Error).message, origin }, 'could not record the probe\'s outcome'));
      if (h !== 'ok') return false;
    } else if (this.control.breakerOf(origin) === null) {
      this.breakers.record(origin, h, policy.breaker, now);
    }
    this.retryAfter(origin, r, now);
    return true;
  }

  /**
   * One release pass over a shard's held postbacks (the promoter calls it
   * while any are held): an origin free again gets its postbacks back to
   * the retry stream at its rate, or ramping up; one with an open breaker
   * gets the interval's probe; one still held gets only those whose TTL
   * ran out back (to be logged as expired).
   */
  async release(keys: ShardKeys): Promise<void> {
    const { redis } = this.deps;
    const [cursor, flat] = await redis.hscan(keys.heldIndex, this.heldCursors.get(keys.shard) ?? '0', 'COUNT', RELEASE_SCAN);
    this.heldCursors.set(keys.shard, cursor);
    const now = Date.now();
    // One origin's failure (a full Redis refusing a write, say) must not
    // hold back the others in the pass: the first error is rethrown (and
    // logged by the caller) after every origin had its turn.
    let failed: unknown = null;
    for (let i = 0; i < flat.length; i += 2) {
      const origin = flat[i] as string;
      try {
        await this.releaseOrigin(keys, origin, now);
      } catch (err) {
        failed ??= err;
      }
    }
    if (failed !== null) throw failed;
  }

  private async releaseOrigin(keys: ShardKeys, origin: string, now: number): Promise<void> {
    const { redis } = this.deps;
    const by = this.blockedBy(origin, now);
    if (by === 'breaker') await this.probe(keys, origin, now);
    if (by !== null) {
      await redis.pbRelease(keys.heldIndex, keys.retry, heldKey(keys, origin), origin, RELEASE_SCAN, '', now);
      return;
    }
    let since = this.ramps.get(origin);
    if (since === undefined) {
      if (this.ramps.size >= ORIGINS_MAX) this.ramps.clear();
      since = now;
      this.ramps.set(origin, now);
    }
    const budget = releaseBudget(this.policyFor(origin).rate, this.control.live, RELEASE_MS, now - since);
    const [, , left] = await redis.pbRelease(keys.heldIndex, keys.retry, heldKey(keys, origin), origin, budget, '', '+inf');
    if (left === 0) this.ramps.delete(origin);
  }

  /** The control plane changed for `origins`: policies looked up again; an origin that must wait is handed to onBlocked. */
  private changed(origins: Set<string>): void {
    const now = Date.now();
    for (const origin of origins) {
      this.policies.delete(origin);
      const by = this.blockedBy(origin, now);
      if (by === null) continue;
      this.ramps.delete(origin);
      this.deps.onBlocked(origin, by);
    }
    this.deps.onChanged();
  }

  private breakerOpened(origin: string, record: BreakerRecord): void {
    this.deps.metrics.breakerTransitions.inc({ to: 'open' });
    this.deps.logger.warn({ origin, reason: record.reason, probeEveryMs: this.policyFor(origin).breaker.probeIntervalMs }, 'circuit breaker opened: the partner\'s postbacks wait in Redis, one probe per interval');
    this.control.setBreaker(origin, record);
  }

  /** While an origin's breaker is open: disable it if open too long, else claim and send the interval's probe. */
  private async probe(keys: ShardKeys, origin: string, now: number): Promise<void> {
    const b = this.control.breakerOf(origin) as BreakerRecord;
    const disableAfter = this.deps.config.partners.disableAfterMs;
    if (disableAfter > 0 && now - b.since >= disableAfter) return this.disable(origin, b, now);
    if (now < b.probeAt) return;
    const settings = this.policyFor(origin).breaker;
    if (!(await this.breakers.claimProbe(origin, settings))) return;
    this.control.setBreaker(origin, { ...b, state: 'half-open', probeAt: now + settings.probeIntervalMs });
    const [moved] = await this.deps.redis.pbRelease(keys.heldIndex, keys.retry, heldKey(keys, origin), origin, 1, 'p', '+inf');
    this.deps.metrics.breakerTransitions.inc({ to: 'half-open' });
    this.deps.logger.info({ origin, probe: moved === 1 }, 'circuit breaker half-open: one postback probes the partner');
  }

  /** A probe's outcome: the breaker closes (its backlog ramps up) or stays open. */
  private async probeDone(origin: string, ok: boolean): Promise<void> {
    const result = await this.breakers.probeResult(origin, ok, this.policyFor(origin).breaker);
    if (result === 'closed') {
      this.deps.metrics.breakerTransitions.inc({ to: 'closed' });
      this.deps.logger.info({ origin }, 'circuit breaker closed: the probe succeeded; waiting postbacks go out at the partner\'s rate, or ramping up');
      this.ramps.delete(origin);
      this.control.setBreaker(origin, null);
    } else if (result === 'open') {
      this.deps.metrics.breakerTransitions.inc({ to: 'open' });
      this.deps.logger.info({ origin }, 'circuit breaker stays open: the probe failed');
    }
  }

  /** A 429 or 503 with Retry-After pauses the whole origin until then, for every process. */
  private retryAfter(origin: string, r: AttemptResult, now: number): void {
    if ((r.status !== 429 && r.status !== 503) || r.retryAfter === null) return;
    const ms = parseRetryAfter(r.retryAfter, now);
    if (ms === null || ms <= 0) return;
    const until = now + Math.min(ms, MAX_RETRY_AFTER_PAUSE_MS);
    const current = this.control.pauseOf(origin, now);
    if (current !== null && (current.until === null || current.by === 'operator' || current.until >= until - RETRY_AFTER_SLACK_MS)) return;
    this.control
      .pause(origin, until, 'retry-after', `HTTP ${r.status} Retry-After: ${r.retryAfter.slice(0, 64)}`, 'extend')
      .catch((err: unknown) => this.deps.logger.warn({ err: (err as Error).message, origin }, 'could not pause for Retry-After'));
  }

  /** An origin open longer than PARTNER_DISABLE_AFTER_MS is paused (until an operator resumes it) and reported. */
  private async disable(origin: string, b: BreakerRecord, now: number): Promise<void> {
    const reason = `circuit open since ${new Date(b.since).toISOString()} (${b.reason})`;
    await this.control.pause(origin, null, 'breaker', reason, 'extend');
    this.deps.logger.error({ origin, openForMs: now - b.since, errorCode: 'PB_ERR_PARTNER_DISABLED' }, 'partner disabled: its breaker stayed open past PARTNER_DISABLE_AFTER_MS; paused until an operator resumes it (partners resume)');
  }
}
