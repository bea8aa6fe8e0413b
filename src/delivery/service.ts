/**
 * The delivery main thread's loops, timers and wiring. It alone talks to
 * Redis and writes the attempt log; workers only make HTTP requests. The
 * flow of one entry:
 *
 *   read / reclaim -> accept (decode, templates; expire, hold for a paused
 *   or open partner, park or queue: admission.ts, partner-pacer.ts) ->
 *   scheduler (per-origin FIFO, limits, the partner's rate and concurrency)
 *   -> worker batch -> recorder (retry policy, log line, stats; recorder.ts)
 *   -> entry complete -> finalizer (ack + retries + dead letters + held,
 *   atomically).
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
import type { PolicySource } from '../partners/policy-file.js';
import { decodeEntry, MAX_ITEMS_PER_ENTRY, type Entry } from '../queue/codec.js';
import type { ShardKeys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis.js';
import {
  handBackPlan,
  DrainPace,
  MAX_READ_COUNT,
  parkBudgetPerSecond,
  ParkBudget,
  parkDelay,
  readAllowance,
  readCount,
  readRoom,
  readThreshold,
  readyRoom,
  shouldPark,
  type AdmissionLimits,
  type Allowance,
  type Held,
} from './admission.js';
import { noResponse, type AttemptResult, type BatchTask } from './attempt.js';
import type { BatchRunner } from './batch-runner.js';
import { Finalizer } from './finalizer.js';
import { heldKey, holdEntry, toBatchTask, type HeldEntry, type Job, type Shard } from './held-entry.js';
import type { DeliveryMetrics } from './metrics.js';
import { handBackEntry } from './outcome-records.js';
import { PartnerPacer } from './partner-pacer.js';
import { Promoter } from './promoter.js';
import { StreamReader, type RawEntry } from './reader.js';
import { OutcomeRecorder } from './recorder.js';
import { Scheduler, type Batch } from './scheduler.js';
import { DLQ_TRIM_MS, perShardMax, trimDeadLetters } from '../queue/retention.js';
import { TemplateStore, type KnownTemplate } from './templates.js';

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
/**
 * How far apart processes may reconnect after Redis comes back (ioredis
 * retries every second at most; a Cluster every 2 s): part of the wait
 * before reclaiming after an outage.
 */
const RECONNECT_SPREAD_MS = 3_000;
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
  /**
   * Entries read and not yet recorded in Redis by the finalizer, by
   * {@link heldKey}: heartbeated, and never reclaimed by this process,
   * until their outcomes are written (an entry finished while Redis was
   * away waits in the finalizer, still ours).
   */
  private readonly held = new Map<string, HeldEntry>();
  /**
   * When the connection to Redis last came back after being lost (0:
   * never lost). For a while after it, reclaim waits: every process's
   * entries looked idle for the whole outage, and each must first have
   * its heartbeat in (sent at once on reconnecting) before one takes
   * another's.
   */
  private redisBackAt = 0;
  private redisLost = false;
  /** Times the connection came back: a reclaim that spans one is not trusted. */
  private reconnects = 0;
  private readonly drainPace = new DrainPace();
  private readonly encodedDefault: string;
  private stopping = false;
  /** Read loops waiting for room (one per shard). */
  private waiters: (() => void)[] = [];
  /**
   * Average items per entry read, for read sizing: the largest entry at
   * first, so that the first read against a backlog of full entries stays
   * within the hold cap.
   */
  private itemsPerEntry = MAX_ITEMS_PER_ENTRY;
  private readLoops: Promise<void>[] = [];
  private closed: Promise<void> | undefined;
  private batchesRunning = 0;
  private timers: NodeJS.Timeout[] = [];
  private groupsReady = false;
  /** How long reclaim waits after the connection came back (set at start). */
  private reclaimGraceMs = 0;
  private readFailing = false;
  /** Partner control: policies, pauses, limits, breakers (partner-pacer.ts). */
  private readonly pacer: PartnerPacer;
  /** What may be parked back in Redis, and when a read past a saturated backlog may go (admission.ts). */
  private readonly parkBudget: ParkBudget;
  /** Wakes the read loops when the parking budget covers a read again. */
  private budgetTimer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: DeliveryDeps) {
    const d = deps.config.delivery;
    this.encodedDefault = encodeDefault(d.unmatchedDefault);
    // No more in flight to an origin than its connections carry: more would
    // wait for a connection inside the process, behind the partner's pace.
    this.perOrigin = Math.max(1, Math.min(Math.floor(d.concurrency * d.originShare), d.connectionsPerOrigin));
    this.limits = { concurrency: d.concurrency, batchSize: d.batchSize, shards: deps.shards.length };
    this.parkBudget = new ParkBudget(parkBudgetPerSecond(this.limits), Date.now());
    this.scheduler = new Scheduler<Job>({
      concurrency: d.concurrency,
      perOrigin: this.perOrigin,
      batchSize: d.batchSize,
      gate: (origin, n, inFlight) => this.pacer.gate(origin, n, inFlight),
    });
    this.templates = new TemplateStore(deps.redis);
    this.shards = deps.shards.map(({ keys, blocking }) => ({
      keys,
      reader: new StreamReader(deps.redis, blocking, keys, deps.consumer, deps.logger),
      finalizer: new Finalizer(deps.redis, keys, deps.logger, (outcomes) => {
        for (const o of outcomes) this.held.delete(heldKey(o.stream, o.id));
      }),
      promoter: new Promoter(deps.redis, keys, deps.logger, (k) => this.pacer.release(k)),
    }));
    this.pacer = new PartnerPacer({
      config: deps.config,
      logger: deps.logger,
      redis: deps.redis,
      consumer: deps.consumer,
      metrics: deps.metrics,
      policies: deps.policies,
      load: () => this.scheduler.origins(),
      waitingFor: (origin) => this.scheduler.waitingFor(origin),
      pump: () => this.pump(),
      onBlocked: (origin, by) => this.holdWaiting(origin, by),
      onChanged: () => {
        this.pump();
        this.notify();
      },
    });
    this.recorder = new OutcomeRecorder({
      policyOf: (origin) => this.pacer.policyFor(origin),
      ttlMs: d.ttlMs,
      encodedDefault: this.encodedDefault,
      attemptLog: deps.attemptLog,
      stats: deps.stats,
      metrics: deps.metrics,
      complete: (held) => this.complete(held),
    });
    deps.attemptLog.onChange(() => this.attemptLogChanged());
    deps.redis.on('close', () => {
      this.redisLost = true;
    });
    deps.redis.on('ready', () => {
      if (!this.redisLost) return;
      this.redisLost = false;
      this.redisBackAt = Date.now();
      this.reconnects++;
      if (this.stopping) return;
      // Every entry held looked idle for the whole outage: tell Redis at once.
      void this.heartbeat().catch((err: unknown) => deps.logger.warn({ err: (err as Error).message }, 'heartbeat after reconnecting failed'));
    });
  }

  /**
   * Ready: the consumer groups exist, the connection to Redis is up, and the
   * last read worked. (A blocking read never fails while Redis is gone: it
   * waits on the reconnecting client, so the connection is asked directly.)
   */
  get ready(): boolean {
    return this.groupsReady && !this.readFailing && !this.stopping && this.deps.redis.status === 'ready' && this.deps.attemptLog.failure === null;
  }

  /**
   * postback.log refuses writes (its disk full, a file size limit): no
   * attempt starts until it takes them again, so that every attempt keeps
   * its line. Those in flight finish; their lines wait in memory. What was
   * read waits in the scheduler, its entries heartbeated; a shutdown hands
   * it back as usual.
   */
  private attemptLogChanged(): void {
    const failure = this.deps.attemptLog.failure;
    this.deps.metrics.attemptLogWritable.set(failure === null ? 1 : 0);
    if (failure !== null) {
      this.deps.logger.error({ code: failure }, 'cannot write the attempt log (postback.log): no attempt starts until it can be written');
      return;
    }
    this.deps.logger.info('the attempt log is written again: delivery resumes');
    this.pump();
    this.notify();
  }

  get sizes(): { waiting: number; inFlight: number } {
    return this.scheduler.size;
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
    await this.pacer.start();
    const v = this.deps.config.delivery.visibilityMs;
    const heartbeatMs = Math.max(250, Math.floor(v / 4));
    this.reclaimGraceMs = heartbeatMs + RECONNECT_SPREAD_MS;
    this.every(heartbeatMs, () => this.heartbeat());
    this.every(Math.max(500, Math.min(30_000, Math.floor(v / 2))), () => this.reclaim());
    this.every(DLQ_TRIM_MS, () => this.trimDeadLetters());
    void this.trimDeadLetters().catch(() => undefined);
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

  /** Waits until a read is worth it; what it may bring (admission.ts), 0 postbacks when stopping. */
  private async waitForRoom(): Promise<Allowance> {
    for (;;) {
      if (this.stopping) return { postbacks: 0, past: false };
      const held = this.heldNow();
      const now = Date.now();
      const allowance = readAllowance(this.limits, held, this.parkBudget.available(now));
      if (allowance.postbacks > 0) return allowance;
      // When only the parking budget is short, it is what wakes the loop.
      const threshold = readThreshold(this.limits, held);
      if (readyRoom(this.limits, held) >= threshold) this.wakeAfter(this.parkBudget.msUntil(threshold, now));
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
      });
    }
  }

  private wakeAfter(ms: number): void {
    if (this.budgetTimer !== undefined) return;
    this.budgetTimer = setTimeout(() => {
      this.budgetTimer = undefined;
      this.notify();
    }, Math.max(1, ms));
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
      const allowance = await this.waitForRoom();
      if (this.stopping) break;
      const count = readCount(this.limits, allowance.postbacks, this.itemsPerEntry);
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
      if (entries.length > 0) await this.accept(shard, entries, allowance.past);
    }
  }

  private async reclaim(): Promise<void> {
    for (const shard of this.shards) {
      if (this.redisLost || (this.redisBackAt > 0 && Date.now() - this.redisBackAt < this.reclaimGraceMs)) return;
      const room = readRoom(this.limits, this.heldNow());
      if (room <= 0 || this.stopping) return;
      const reconnects = this.reconnects;
      const entries = await shard.reader.reclaim(this.deps.config.delivery.visibilityMs, Math.min(room, MAX_READ_COUNT));
      if (reconnects !== this.reconnects || this.redisLost) {
        // The call went out (or was sent again) across an outage, before
        // their holder's heartbeat: not taken up. If it lives, its next
        // heartbeat claims them back; if not, a later reclaim finds them.
        this.deps.logger.info({ entries: entries.length, shard: shard.keys.shard }, 'reclaim ran across a Redis outage: its entries left to their holder');
        return;
      }
      const fresh = entries.filter((e) => !this.held.has(heldKey(e.stream, e.id)));
      if (fresh.length === 0) continue;
      this.deps.metrics.reclaimed.inc(fresh.length);
      this.deps.logger.info({ entries: fresh.length, shard: shard.keys.shard }, 'reclaimed entries a stopped consumer left pending');
      await this.accept(shard, fresh);
    }
  }

  /** Dead letters beyond DLQ_MAX or older than DLQ_RETENTION_MS go, counted and logged (retention.ts). */
  private async trimDeadLetters(): Promise<void> {
    const { dlq } = this.deps.config;
    const max = perShardMax(dlq.max, this.shards.length);
    for (const shard of this.shards) {
      const r = await trimDeadLetters(this.deps.redis, shard.keys, max, dlq.retentionMs, Date.now());
      if (r.byAge + r.byCount === 0) continue;
      if (r.byAge > 0) this.deps.metrics.deadTrimmed.inc({ reason: 'age' }, r.byAge);
      if (r.byCount > 0) this.deps.metrics.deadTrimmed.inc({ reason: 'count' }, r.byCount);
      this.deps.logger.warn(
        { shard: shard.keys.shard, olderThanRetention: r.byAge, beyondMax: r.byCount, keptAtMost: max, retentionMs: dlq.retentionMs },
        'dead letters trimmed (DLQ_MAX, DLQ_RETENTION_MS): the oldest are gone for good; replay or export them sooner, or raise the limits',
      );
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

  /**
   * Decodes what was read and gives each entry its way: expire, fail, park,
   * or queue. `past`: read past a saturated backlog (admission.ts).
   */
  private async accept(shard: Shard, raw: RawEntry[], past = false): Promise<void> {
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
    let templates: Map<string, KnownTemplate>;
    try {
      templates = await this.templates.load(
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
      const template = templates.get(held.entry.templateId);
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
          if (!shouldPark(this.limits, this.scheduler.waitingFor(origin), this.perOrigin)) this.parkBudget.earn(1);
          if (this.pacer.blockedBy(origin, now) !== null) {
            holds ??= new Map();
            const ks = holds.get(origin);
            if (ks) ks.push(k);
            else holds.set(origin, [k]);
          } else {
            this.scheduler.push(origin, { held, k, origin });
          }
        }
        if (holds) for (const [origin, ks] of holds) this.recorder.hold(held, origin, ks);
      } else if (this.pacer.blockedBy(template.origin, now) !== null) {
        // Paused, or its breaker open: the postbacks wait in Redis, no attempt
        // spent. A probe's first postback goes out to test the partner
        // (while its breaker is open, not while it is paused).
        const origin = template.origin;
        const n = held.entry.items.length;
        const probe = probes.has(heldKey(held.stream, held.id)) && this.pacer.blockedBy(origin, now) === 'breaker';
        if (probe) this.scheduler.push(origin, { held, k: 0, origin, probe: true });
        if (n > (probe ? 1 : 0)) this.recorder.hold(held, origin, range(probe ? 1 : 0, n));
      } else {
        const origin = template.origin;
        const waiting = this.scheduler.waitingFor(origin);
        if (this.pacer.parkForRate(origin, waiting + (ratePark?.get(origin)?.length ?? 0))) {
          // Over what its rate sends in a couple of seconds: back to Redis,
          // due when its turn comes at its rate (below).
          ratePark ??= new Map();
          const list = ratePark.get(origin);
          if (list) list.push(held);
          else ratePark.set(origin, [held]);
        } else {
          const n = held.entry.items.length;
          const saturated = shouldPark(this.limits, waiting, this.perOrigin);
          if (saturated && this.parkBudget.take(n, now, past)) {
            const delay = parkDelay(waiting, this.drainPace.msPerPostback(origin), this.drainPace.busyMs(origin, now), Math.random());
            this.recorder.park(held, now + delay, now);
          } else {
            // Past the budget, a saturated origin's entry waits in memory (within the hold cap).
            if (!saturated) this.parkBudget.earn(n);
            for (let k = 0; k < n; k++) this.scheduler.push(origin, { held, k, origin });
          }
        }
      }
    }
    this.pump();
    if (ratePark) for (const [origin, list] of ratePark) await this.parkAtRate(origin, list, now);
  }

  /** Parks entries of a rate-limited origin, each due at its turn at the origin's rate. */
  private async parkAtRate(origin: string, list: HeldEntry[], now: number): Promise<void> {
    const due = await this.pacer.rateSlots(
      origin,
      list.map((held) => held.entry.items.length),
      now,
    );
    list.forEach((held, i) => this.recorder.park(held, due[i] as number, now));
  }

  /**
   * An origin must wait in Redis from now (paused, or its breaker open):
   * its jobs not yet started are held there (a probe stays, while the
   * breaker is what holds it).
   */
  private holdWaiting(origin: string, by: 'pause' | 'breaker'): void {
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

  private pump(): void {
    if (this.stopping || this.deps.attemptLog.failure !== null) return;
    for (const batch of this.scheduler.take()) this.run(batch);
  }

  /** Hands a batch (one origin) to a worker thread, or runs it here without threads. */
  private run(batch: Batch<Job>): void {
    const policy = this.pacer.policyFor(batch.origin);
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
    for (let i = 0; i < batch.jobs.length; i++) {
      const r = results[i] as AttemptResult;
      const job = batch.jobs[i] as Job;
      if (this.pacer.observe(batch.origin, job.probe === true, r, now)) this.recorder.attempt(job, r, now);
      else this.recorder.probeFailed(job, r, now);
    }
    this.scheduler.done(batch.origin, batch.jobs.length);
    this.drainPace.done(batch.origin, batch.jobs.length, now, this.scheduler.busy(batch.origin));
    this.pump();
    this.notify();
  }

  /** Every postback of the entry has its outcome: to the finalizer (which lets go of it once written). */
  private complete(held: HeldEntry): void {
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
      // Nothing new starts from here (pump() does nothing while stopping):
      // what is queued goes back to the stream at once, not after the
      // read loops end (up to BLOCK_MS later), during which it would have
      // kept starting attempts.
      this.handBack();
      for (const t of this.timers) clearInterval(t);
      clearTimeout(this.budgetTimer);
      for (const shard of this.shards) shard.promoter.stop();
      await bounded(this.pacer.stop(), 1_000);
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
    for (const [held, runs] of plan) {
      let rest = 0;
      for (const [from, to] of runs) {
        held.handBack.push(handBackEntry(held.entry, from, to));
        rest += to - from;
      }
      handed += rest;
      this.deps.metrics.handedBack.inc(rest);
      held.remaining -= rest;
      if (held.remaining === 0) this.complete(held);
    }
    if (plan.size > 0) this.deps.logger.info({ postbacks: handed }, 'handed back postbacks not yet started');
  }
}
