/**
 * The delivery main thread's loops, timers and wiring. It alone talks to
 * Redis and writes the attempt log; workers only make HTTP requests. The
 * flow of one entry:
 *
 *   read / reclaim -> accept (decode, templates; expire, park or queue:
 *   admission.ts) -> scheduler (per-origin FIFO, limits) -> worker batch
 *   -> recorder (retry policy, log line, stats; recorder.ts) -> entry
 *   complete -> finalizer (ack + retries + dead letters, atomically).
 *
 * At-least-once: an entry leaves Redis only when every postback in it has a
 * recorded outcome. Held entries are heartbeated so a slow batch is not
 * reclaimed; at shutdown, postbacks not yet started are handed back to the
 * stream rather than waited for.
 */
import type { Piscina } from 'piscina';
import type { Config } from '../config/index.js';
import type { AttemptLog, Logger } from '../observability/logger.js';
import type { StatsRecorder } from '../observability/stats.js';
import type { DataObject } from '../postback/data.js';
import { encodeDefault, renderedOrigin } from '../postback/template.js';
import { withOverride, type PartnerPolicy } from '../partners/policy.js';
import type { PolicySource } from '../partners/policy-file.js';
import { PartnerControl } from '../partners/control.js';
import { concurrencyShare, parkForRate, rateSlot, releaseBudget } from '../partners/pace.js';
import { RateLeases } from '../partners/rate-leases.js';
import { BreakerReporter } from '../partners/breaker.js';
import type { BreakerRecord } from '../partners/control-state.js';
import { decodeEntry, type Entry } from '../queue/codec.js';
import { controlKeys, type ShardKeys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis.js';
import {
  handBackPlan,
  LatencyAverages,
  MAX_READ_COUNT,
  parkDelay,
  readCount,
  readRoom,
  readThreshold,
  shouldPark,
  type AdmissionLimits,
  type Held,
} from './admission.js';
import { noResponse, type AttemptResult, type BatchTask } from './attempt.js';
import type { BatchRunner } from './batch-runner.js';
import { Finalizer } from './finalizer.js';
import { heldKey, holdEntry, toBatchTask, type HeldEntry, type Job, type Shard } from './held-entry.js';
import type { DeliveryMetrics } from './metrics.js';
import { handBackEntry } from './outcome-records.js';
import { Promoter, RELEASE_MS } from './promoter.js';
import { classify, health } from './outcome.js';
import { PartnerStats } from '../partners/partner-stats.js';
import { parseRetryAfter } from './retry-policy.js';
import { StreamReader, type RawEntry } from './reader.js';
import { OutcomeRecorder } from './recorder.js';
import { Scheduler, type Batch } from './scheduler.js';
import { TemplateStore } from './templates.js';

export interface DeliveryDeps {
  config: Config;
  logger: Logger;
  attemptLog: AttemptLog;
  /** Auto-pipelined connection for everything but the blocking reads. */
  redis: RedisClient;
  /** Every queue shard, each with a dedicated connection for XREADGROUP BLOCK. */
  shards: { keys: ShardKeys; blocking: RedisClient }[];
  /** Worker threads; null when DELIVERY_WORKERS is 0 (batches run on the main thread). */
  pool: Piscina<BatchTask, AttemptResult[]> | null;
  /** The main thread's runner when there is no pool. */
  inline: BatchRunner | null;
  consumer: string;
  stats: StatsRecorder;
  metrics: DeliveryMetrics;
  /** PARTNERS_FILE, kept current. */
  policies: PolicySource;
}

const BLOCK_MS = 1_000;
const POLICY_CACHE_MAX = 10_000;
/** Origins whose release (after a pause or an open breaker) is ramping up, at most. */
const RAMPS_MAX = 10_000;
/** Held origins looked at per shard and release pass (HSCAN COUNT). */
const RELEASE_SCAN = 200;
/** The longest pause a partner's Retry-After gets (a partner asking for a day gets an hour, then is asked again). */
const MAX_RETRY_AFTER_PAUSE_MS = 3_600_000;
/** A Retry-After pause is not extended for less than this (64 answers at once make one write). */
const RETRY_AFTER_SLACK_MS = 250;
const PRUNE_EVERY_MS = 10 * 60_000;
const PRUNE_IDLE_MS = 60 * 60_000;

/** [from, to). */
function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits for `p` at most `ms` (shutdown steps must not hang on a Redis that is gone). */
function bounded(p: Promise<unknown>, ms: number): Promise<void> {
  return Promise.race([p.then(() => undefined, () => undefined), sleep(ms)]);
}

export class DeliveryService {
  private readonly scheduler: Scheduler<Job>;
  private readonly templates: TemplateStore;
  private readonly shards: Shard[];
  private readonly recorder: OutcomeRecorder;
  private readonly limits: AdmissionLimits;
  /** In flight per origin: its share of the concurrency, at most its connections. */
  private readonly perOrigin: number;
  /** Entries read and not yet handed to the finalizer, by {@link heldKey}. */
  private readonly held = new Map<string, HeldEntry>();
  private readonly latency = new LatencyAverages();
  private readonly encodedDefault: string;
  /** Resolved partner policies by origin, for the policy file's current version. */
  private readonly policies = new Map<string, PartnerPolicy>();
  private policiesVersion = -1;
  private stopping = false;
  /** Read loops waiting for room (one per shard). */
  private waiters: (() => void)[] = [];
  /** Average items per entry read, for read sizing. */
  private itemsPerEntry = 1;
  private readLoops: Promise<void>[] = [];
  private closed: Promise<void> | undefined;
  private batchesRunning = 0;
  private timers: NodeJS.Timeout[] = [];
  private groupsReady = false;
  private readFailing = false;
  /** Pauses, limits and breakers of the whole cluster. */
  readonly control: PartnerControl;
  /** When the release of an origin's held postbacks began (its ramp), by origin. */
  private readonly ramps = new Map<string, number>();
  /** HSCAN cursor of each shard's held index. */
  private readonly heldCursors = new Map<number, string>();
  /** Cluster-wide rate budgets, leased. */
  private readonly leases: RateLeases;
  /** Next free slot (ms) of each rate-limited origin parking its backlog here. */
  private readonly rateCursors = new Map<string, number>();
  /** Circuit breakers: this process's reports and probes. */
  private readonly breakers: BreakerReporter;
  /** Per-partner statistics for the cluster's partners table. */
  private readonly partnerStats: PartnerStats;

  constructor(private readonly deps: DeliveryDeps) {
    const d = deps.config.delivery;
    this.encodedDefault = encodeDefault(d.unmatchedDefault);
    // No more in flight to an origin than its connections carry: more would
    // wait for a connection inside the process, behind the partner's pace.
    this.perOrigin = Math.max(1, Math.min(Math.floor(d.concurrency * d.originShare), d.connectionsPerOrigin));
    this.limits = { concurrency: d.concurrency, batchSize: d.batchSize, shards: deps.shards.length };
    this.scheduler = new Scheduler<Job>({
      concurrency: d.concurrency,
      perOrigin: this.perOrigin,
      batchSize: d.batchSize,
      gate: (origin, n, inFlight) => this.gate(origin, n, inFlight),
    });
    this.templates = new TemplateStore(deps.redis);
    this.shards = deps.shards.map(({ keys, blocking }) => ({
      keys,
      reader: new StreamReader(deps.redis, blocking, keys, deps.consumer, deps.logger),
      finalizer: new Finalizer(deps.redis, keys, deps.logger),
      promoter: new Promoter(deps.redis, keys, deps.logger, (k) => this.release(k)),
    }));
    this.leases = new RateLeases(deps.redis, controlKeys(deps.config.redis.prefix), () => this.pump());
    this.breakers = new BreakerReporter(
      deps.redis,
      controlKeys(deps.config.redis.prefix),
      deps.logger,
      (origin, record) => this.breakerOpened(origin, record),
      (origin, record) => this.control.setBreaker(origin, record),
    );
    this.partnerStats = new PartnerStats(deps.redis, controlKeys(deps.config.redis.prefix), deps.consumer, () => this.scheduler.origins());
    this.control = new PartnerControl(deps.redis, controlKeys(deps.config.redis.prefix), deps.consumer, deps.logger, (origins) => this.onControlChange(origins));
    this.recorder = new OutcomeRecorder({
      policyOf: (origin) => this.policyFor(origin),
      ttlMs: d.ttlMs,
      encodedDefault: this.encodedDefault,
      attemptLog: deps.attemptLog,
      stats: deps.stats,
      metrics: deps.metrics,
      complete: (held) => this.complete(held),
    });
  }

  /**
   * Ready: the consumer groups exist, the connection to Redis is up, and the
   * last read worked. (A blocking read never fails while Redis is gone: it
   * waits on the reconnecting client, so the connection is asked directly.)
   */
  get ready(): boolean {
    return this.groupsReady && !this.readFailing && !this.stopping && this.deps.redis.status === 'ready';
  }

  get sizes(): { waiting: number; inFlight: number } {
    return this.scheduler.size;
  }

  /**
   * The partner policy of an origin: PARTNERS_FILE's, with the operator's
   * limits over it (cached; the cache follows reloads and control changes).
   */
  private policyFor(origin: string): PartnerPolicy {
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

  private heldNow(): Held {
    const { waiting, inFlight } = this.scheduler.size;
    return { readyLoad: this.scheduler.readyLoad(), load: waiting + inFlight };
  }

  /** Resolves once the consumer groups exist (waiting out a Redis that is down). */
  async start(): Promise<void> {
    for (let attempt = 1; !this.stopping; attempt++) {
      try {
        for (const shard of this.shards) await shard.reader.ensureGroups();
        this.groupsReady = true;
        break;
      } catch (err) {
        if (attempt === 1) this.deps.logger.warn({ err: (err as Error).message }, 'cannot make sure the consumer groups exist yet (is Redis reachable?): waiting');
        await sleep(Math.min(1_000, 100 * attempt));
      }
    }
    await this.control.start();
    this.breakers.start();
    this.partnerStats.start();
    const v = this.deps.config.delivery.visibilityMs;
    this.every(Math.max(250, Math.floor(v / 4)), () => this.heartbeat());
    this.every(Math.max(500, Math.min(30_000, Math.floor(v / 2))), () => this.reclaim());
    this.every(PRUNE_EVERY_MS, async () => {
      for (const shard of this.shards) await shard.reader.pruneConsumers(PRUNE_IDLE_MS);
    });
    for (const shard of this.shards) shard.promoter.start();
    void this.reclaim();
    this.readLoops = this.shards.map((shard) => this.runReadLoop(shard));
  }

  private every(ms: number, task: () => Promise<void>): void {
    let busy = false;
    const timer = setInterval(() => {
      if (busy || this.stopping) return;
      busy = true;
      task()
        .catch((err: unknown) => this.deps.logger.warn({ err: (err as Error).message }, 'background task failed'))
        .finally(() => {
          busy = false;
        });
    }, ms);
    this.timers.push(timer);
  }

  /** Waits until there is room worth a read (see admission.ts). */
  private async waitForRoom(): Promise<void> {
    for (;;) {
      const held = this.heldNow();
      if (this.stopping || readRoom(this.limits, held) >= readThreshold(this.limits, held)) return;
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
      });
    }
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private async runReadLoop(shard: Shard): Promise<void> {
    const { logger } = this.deps;
    let failures = 0;
    while (!this.stopping) {
      await this.waitForRoom();
      if (this.stopping) break;
      const count = readCount(this.limits, readRoom(this.limits, this.heldNow()), this.itemsPerEntry);
      let entries: RawEntry[];
      try {
        entries = await shard.reader.read(count, BLOCK_MS);
        if (failures > 0) logger.info('reading from Redis again');
        failures = 0;
        this.readFailing = false;
      } catch (err) {
        if (this.stopping) break;
        this.readFailing = true;
        if (failures++ === 0) logger.warn({ err: (err as Error).message }, 'reading from Redis failed: retrying');
        await sleep(Math.min(1_000, 100 * failures));
        continue;
      }
      if (entries.length > 0) await this.accept(shard, entries);
    }
  }

  private async reclaim(): Promise<void> {
    for (const shard of this.shards) {
      const room = readRoom(this.limits, this.heldNow());
      if (room <= 0 || this.stopping) return;
      const entries = await shard.reader.reclaim(this.deps.config.delivery.visibilityMs, Math.min(room, MAX_READ_COUNT));
      const fresh = entries.filter((e) => !this.held.has(heldKey(e.stream, e.id)));
      if (fresh.length === 0) continue;
      this.deps.metrics.reclaimed.inc(fresh.length);
      this.deps.logger.info({ entries: fresh.length, shard: shard.keys.shard }, 'reclaimed entries a stopped consumer left pending');
      await this.accept(shard, fresh);
    }
  }

  private async heartbeat(): Promise<void> {
    const now = Date.now();
    const stale = now - Math.floor(this.deps.config.delivery.visibilityMs / 4);
    const byStream = new Map<string, HeldEntry[]>();
    for (const held of this.held.values()) {
      if (held.touchedAt > stale) continue;
      const list = byStream.get(held.stream);
      if (list) list.push(held);
      else byStream.set(held.stream, [held]);
    }
    for (const [stream, entries] of byStream) {
      await (entries[0] as HeldEntry).shard.reader.heartbeat(
        stream,
        entries.map((held) => held.id),
      );
      for (const held of entries) held.touchedAt = now;
    }
  }

  /** Decodes what was read and gives each entry its way: expire, fail, park, or queue. */
  private async accept(shard: Shard, raw: RawEntry[]): Promise<void> {
    const now = Date.now();
    const accepted: HeldEntry[] = [];
    const probes = new Set<string>();
    for (const { stream, id, blob, probe } of raw) {
      if (blob === null) continue;
      if (probe === true) probes.add(heldKey(stream, id));
      let entry: Entry;
      try {
        entry = decodeEntry(blob);
      } catch (err) {
        // Not ours to read (corrupt or foreign): keep it whole as a dead letter.
        this.deps.logger.error({ stream, streamId: id, errorCode: 'PB_ERR_CODEC', err: (err as Error).message }, 'undecodable entry: dead-lettered');
        shard.finalizer.add({ stream, id, finished: 0, retries: [], deadLetters: [blob], handBack: [], held: [] });
        continue;
      }
      const held = holdEntry(shard, stream, id, blob, entry, now);
      this.held.set(heldKey(stream, id), held);
      accepted.push(held);
      this.itemsPerEntry = this.itemsPerEntry * 0.9 + entry.items.length * 0.1;
    }
    if (accepted.length === 0) return;
    try {
      await this.templates.load(
        shard.keys,
        accepted.map((held) => held.entry.templateId),
      );
    } catch (err) {
      // Redis went away between the read and the lookup: the entries stay
      // pending (ours), and come back through reclaim once it is back.
      for (const held of accepted) this.held.delete(heldKey(held.stream, held.id));
      this.deps.logger.warn({ err: (err as Error).message }, 'template lookup failed: entries left pending for reclaim');
      return;
    }
    const ttl = this.deps.config.delivery.ttlMs;
    let ratePark: Map<string, HeldEntry[]> | undefined;
    for (const held of accepted) {
      const template = this.templates.get(held.entry.templateId);
      held.template = template;
      if (now > held.entry.dueTime + ttl) {
        this.recorder.expireAll(held, now);
      } else if (template === undefined) {
        this.recorder.templateMissing(held, now);
      } else if (template.compiled !== null && template.compiled.origin === null) {
        // A placeholder in the host: each postback goes to, and is scheduled by, its own origin.
        const items = held.entry.items;
        let holds: Map<string, number[]> | undefined;
        for (let k = 0; k < items.length; k++) {
          const origin = renderedOrigin(template.compiled, items[k] as DataObject, this.encodedDefault) ?? template.origin;
          if (this.blockedBy(origin, now) !== null) {
            holds ??= new Map();
            const ks = holds.get(origin);
            if (ks) ks.push(k);
            else holds.set(origin, [k]);
          } else {
            this.scheduler.push(origin, { held, k, origin });
          }
        }
        if (holds) for (const [origin, ks] of holds) this.recorder.hold(held, origin, ks);
      } else if (this.blockedBy(template.origin, now) !== null) {
        // Paused, or its breaker open: the postbacks wait in Redis, no attempt
        // spent. A probe's first postback goes out to test the partner
        // (while its breaker is open, not while it is paused).
        const origin = template.origin;
        const n = held.entry.items.length;
        const probe = probes.has(heldKey(held.stream, held.id)) && this.blockedBy(origin, now) === 'breaker';
        if (probe) this.scheduler.push(origin, { held, k: 0, origin, probe: true });
        if (n > (probe ? 1 : 0)) this.recorder.hold(held, origin, range(probe ? 1 : 0, n));
      } else {
        const origin = template.origin;
        const waiting = this.scheduler.waitingFor(origin);
        const rate = this.policyFor(origin).rate;
        if (rate !== null && parkForRate(rate, this.control.live, waiting + (ratePark?.get(origin)?.length ?? 0))) {
          // Over what its rate sends in a couple of seconds: back to Redis,
          // due when its turn comes at its rate (below).
          ratePark ??= new Map();
          const list = ratePark.get(origin);
          if (list) list.push(held);
          else ratePark.set(origin, [held]);
        } else if (shouldPark(this.limits, waiting, this.perOrigin)) {
          this.recorder.park(held, now + parkDelay(waiting, this.perOrigin, this.latency.get(origin), Math.random()), now);
        } else {
          for (let k = 0; k < held.entry.items.length; k++) this.scheduler.push(origin, { held, k, origin });
        }
      }
    }
    this.pump();
    if (ratePark) for (const [origin, list] of ratePark) await this.parkForRate(origin, list, now);
  }

  /** Parks entries of a rate-limited origin, each due at its turn at the origin's rate. */
  private async parkForRate(origin: string, list: HeldEntry[], now: number): Promise<void> {
    const policy = this.policyFor(origin);
    const rate = policy.rate as number;
    const sizes = list.map((held) => held.entry.items.length);
    const slots = await this.leases.parkSlots(origin, rate, policy.burst, sizes);
    let cursor = this.rateCursors.get(origin) ?? 0;
    for (let i = 0; i < list.length; i++) {
      let due = slots?.[i];
      if (due === undefined) {
        // Redis could not be asked: this process's share of the rate, on its own cursor.
        const slot = rateSlot(cursor, now, this.scheduler.waitingFor(origin), sizes[i] as number, rate, this.control.live);
        cursor = slot.cursor;
        due = slot.due;
      }
      this.recorder.park(list[i] as HeldEntry, due, now);
    }
    if (slots === null) {
      if (this.rateCursors.size >= RAMPS_MAX) this.rateCursors.clear();
      this.rateCursors.set(origin, cursor);
    }
  }

  /**
   * The scheduler's gate: how many of `n` postbacks to an origin may start
   * now under its partner's cluster-wide limits (its share of the
   * concurrency, tokens from its rate budget).
   */
  private gate(origin: string, n: number, inFlight: number): number {
    const policy = this.policyFor(origin);
    if (policy.concurrency !== null) n = Math.min(n, concurrencyShare(policy.concurrency, this.control.live) - inFlight);
    if (n > 0 && policy.rate !== null) n = this.leases.take(origin, policy.rate, policy.burst, this.control.live, n);
    return n;
  }

  /** Why an origin's postbacks wait in Redis now: it is paused, or its breaker is open; null: they go. */
  private blockedBy(origin: string, now: number): 'pause' | 'breaker' | null {
    if (this.control.pauseOf(origin, now) !== null) return 'pause';
    return this.control.breakerOf(origin) !== null ? 'breaker' : null;
  }

  private breakerOpened(origin: string, record: BreakerRecord): void {
    this.deps.metrics.breakerTransitions.inc({ to: 'open' });
    this.deps.logger.warn({ origin, reason: record.reason, probeEveryMs: this.policyFor(origin).breaker.probeIntervalMs }, 'circuit breaker opened: the partner\'s postbacks wait in Redis, one probe per interval');
    this.control.setBreaker(origin, record);
  }

  /** A probe's outcome: the breaker closes (its backlog ramps up) or stays open. */
  private async probeDone(origin: string, ok: boolean): Promise<void> {
    const policy = this.policyFor(origin);
    const result = await this.breakers.probeResult(origin, ok, policy.breaker);
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

  /**
   * The control plane changed for `origins` (read from Redis, or set here):
   * their policies are looked up again, and a paused one's postbacks not
   * yet started go to Redis to wait.
   */
  private onControlChange(origins: Set<string>): void {
    const now = Date.now();
    for (const origin of origins) {
      this.policies.delete(origin);
      const by = this.blockedBy(origin, now);
      if (by === null) continue;
      this.ramps.delete(origin);
      const byEntry = new Map<HeldEntry, number[]>();
      for (const job of this.scheduler.drainOrigin(origin)) {
        if (job.probe === true && by === 'breaker') {
          this.scheduler.push(origin, job);
          continue;
        }
        const ks = byEntry.get(job.held);
        if (ks) ks.push(job.k);
        else byEntry.set(job.held, [job.k]);
      }
      for (const [held, ks] of byEntry) this.recorder.hold(held, origin, ks.sort((a, b) => a - b));
    }
    this.pump();
    this.notify();
  }

  /**
   * One release pass over a shard's held postbacks (the promoter calls it
   * while any are held): an origin free again gets its postbacks back to
   * the retry stream at its rate, or ramping up; one still held gets only
   * those whose TTL ran out back (to be logged as expired).
   */
  private async release(keys: ShardKeys): Promise<void> {
    const { redis } = this.deps;
    const [cursor, flat] = await redis.hscan(keys.heldIndex, this.heldCursors.get(keys.shard) ?? '0', 'COUNT', RELEASE_SCAN);
    this.heldCursors.set(keys.shard, cursor);
    const now = Date.now();
    for (let i = 0; i < flat.length; i += 2) {
      const origin = flat[i] as string;
      const by = this.blockedBy(origin, now);
      if (by === 'breaker') await this.probe(keys, origin, now);
      if (by !== null) {
        await redis.pbRelease(keys.heldIndex, keys.retry, keys.heldPrefix, origin, RELEASE_SCAN, '', now);
        continue;
      }
      let since = this.ramps.get(origin);
      if (since === undefined) {
        if (this.ramps.size >= RAMPS_MAX) this.ramps.clear();
        since = now;
        this.ramps.set(origin, now);
      }
      const budget = releaseBudget(this.policyFor(origin).rate, this.control.live, RELEASE_MS, now - since);
      const [, , left] = await redis.pbRelease(keys.heldIndex, keys.retry, keys.heldPrefix, origin, budget, '', '+inf');
      if (left === 0) this.ramps.delete(origin);
    }
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
    const [moved] = await this.deps.redis.pbRelease(keys.heldIndex, keys.retry, keys.heldPrefix, origin, 1, 'p', '+inf');
    this.deps.metrics.breakerTransitions.inc({ to: 'half-open' });
    this.deps.logger.info({ origin, probe: moved === 1 }, 'circuit breaker half-open: one postback probes the partner');
  }

  private pump(): void {
    for (const batch of this.scheduler.take()) this.run(batch);
  }

  /** Hands a batch (one origin) to a worker thread, or runs it here without threads. */
  private run(batch: Batch<Job>): void {
    const policy = this.policyFor(batch.origin);
    const task = toBatchTask(batch.jobs, { timeoutMs: policy.timeoutMs, headers: { ...policy.headers }, sign: policy.signing });
    this.batchesRunning++;
    const running = this.deps.pool ? this.deps.pool.run(task) : (this.deps.inline as BatchRunner).run(task);
    running.then(
      (results) => this.onResults(batch, results),
      (err: unknown) => {
        // A worker died mid-batch: whether the requests went out is unknown.
        this.deps.logger.error({ err, origin: batch.origin, size: batch.jobs.length }, 'worker failed a batch');
        const now = Date.now();
        this.onResults(
          batch,
          batch.jobs.map(() => noResponse('', 'PB_ERR_INTERNAL', 'delivery worker failed', now)),
        );
      },
    );
  }

  private onResults(batch: Batch<Job>, results: AttemptResult[]): void {
    this.batchesRunning--;
    const now = Date.now();
    let latency = 0;
    const origin = batch.origin;
    const policy = this.policyFor(origin);
    const watched = this.control.breakerOf(origin) === null;
    for (let i = 0; i < batch.jobs.length; i++) {
      const r = results[i] as AttemptResult;
      const job = batch.jobs[i] as Job;
      latency += r.latencyMs;
      const h = health(r.status, r.errorCode, policy);
      this.partnerStats.attempt(origin, classify(r.status, r.errorCode, policy) === 'success', r.latencyMs, r.status, r.errorCode, r.error, now);
      if (job.probe === true && h !== 'none') {
        void this.probeDone(origin, h === 'ok').catch((err: unknown) => this.deps.logger.warn({ err: (err as Error).message, origin }, 'could not record the probe\'s outcome'));
        if (h !== 'ok') {
          this.recorder.probeFailed(job, r, now);
          continue;
        }
      } else if (watched) {
        this.breakers.record(origin, h, policy.breaker, now);
      }
      this.retryAfter(origin, r, now);
      this.recorder.attempt(job, r, now);
    }
    this.latency.add(batch.origin, latency / Math.max(1, batch.jobs.length));
    this.scheduler.done(batch.origin, batch.jobs.length);
    this.pump();
    this.notify();
  }

  private complete(held: HeldEntry): void {
    this.held.delete(heldKey(held.stream, held.id));
    held.shard.finalizer.add(held);
  }

  /**
   * Stops reading; hands back every postback not yet started (to the stream
   * it came from, for any consumer); waits for the batches in flight, which
   * end within DELIVERY_TIMEOUT_MS; records every outcome. Idempotent.
   */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.stopping = true;
      for (const t of this.timers) clearInterval(t);
      for (const shard of this.shards) shard.promoter.stop();
      this.control.stop();
      this.leases.close();
      this.breakers.stop();
      await bounded(this.partnerStats.stop(), 1_000);
      this.notify();
      // A blocked read returns within BLOCK_MS; with Redis gone it may not.
      await Promise.race([Promise.all(this.readLoops), sleep(BLOCK_MS + 500)]);
      this.handBack();
      while (this.batchesRunning > 0) await sleep(10);
      await Promise.all(this.shards.map((shard) => shard.finalizer.drain()));
      await bounded(this.deps.stats.close(), 1_000);
      await bounded(Promise.all(this.shards.map((shard) => shard.reader.pruneConsumers(PRUNE_IDLE_MS, true))), 1_000);
    })();
    return this.closed;
  }

  private handBack(): void {
    let handed = 0;
    const plan = handBackPlan(this.scheduler.drain());
    for (const [held, k] of plan) {
      const rest = held.entry.items.length - k;
      held.handBack.push(handBackEntry(held.entry, k));
      handed += rest;
      this.deps.metrics.handedBack.inc(rest);
      held.remaining -= rest;
      if (held.remaining === 0) this.complete(held);
    }
    if (plan.size > 0) this.deps.logger.info({ postbacks: handed }, 'handed back postbacks not yet started');
  }
}
