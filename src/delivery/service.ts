/**
 * The delivery main thread. It alone talks to Redis and writes the attempt
 * log; workers only make HTTP requests. The flow of one entry:
 *
 *   read / reclaim -> accept (decode, expiry, templates, park or queue)
 *   -> scheduler (per-origin FIFO, shares) -> worker batch -> record each
 *   result (retry policy, one log line) -> entry complete -> finalizer
 *   (ack + retries + dead letters, atomically).
 *
 * At-least-once: an entry leaves Redis only when every postback in it has a
 * recorded outcome. Held entries are heartbeated so a slow batch is not
 * reclaimed; at shutdown, postbacks not yet started are handed back to the
 * stream rather than waited for.
 */
import type { RedisClient } from '../queue/redis.js';
import type { Piscina } from 'piscina';
import type { Config } from '../config/index.js';
import type { AttemptLog, Logger } from '../observability/logger.js';
import type { StatsRecorder } from '../observability/stats.js';
import type { DataObject } from '../postback/data.js';
import { decodeEntry, type Entry } from '../queue/codec.js';
import { postbackId } from '../postback/ids.js';
import type { ShardKeys } from '../queue/keys.js';
import { encodeDefault, render } from '../postback/template.js';
import { noResponse, type AttemptResult, type BatchItem, type BatchTask, type BatchTemplate } from './attempt.js';
import type { BatchRunner } from './batch-runner.js';
import { attemptLine, expiryLine, type LoggedOutcome } from './attempt-log.js';
import { deadLetter, handBackEntry, retryEntry } from './outcome-records.js';
import { Finalizer, type EntryOutcome } from './finalizer.js';
import type { DeliveryMetrics } from './metrics.js';
import { classify } from './outcome.js';
import { Promoter } from './promoter.js';
import { StreamReader, type RawEntry } from './reader.js';
import { decide, type RetrySettings } from './retry-policy.js';
import { Scheduler, type Batch } from './scheduler.js';
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
}

/** One queue shard's readers and writers. */
interface Shard {
  keys: ShardKeys;
  reader: StreamReader;
  finalizer: Finalizer;
  promoter: Promoter;
}

interface EntryState extends EntryOutcome {
  shard: Shard;
  entry: Entry;
  blob: Buffer;
  template: KnownTemplate | undefined;
  /** Items without an outcome yet. */
  remaining: number;
  /** Last time Redis was told we hold it (read, reclaim or heartbeat). */
  touchedAt: number;
}

interface Job {
  state: EntryState;
  /** Item index within the entry. */
  k: number;
  /** The postback id, set when the job is sent (built once per postback). */
  id?: string;
}

const BLOCK_MS = 1_000;
const MAX_READ_COUNT = 256;
const PRUNE_EVERY_MS = 10 * 60_000;
const PRUNE_IDLE_MS = 60 * 60_000;
/** An origin with this many times its share waiting gets new arrivals parked in Redis. */
const PARK_FACTOR = 2;

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
  private readonly retry: RetrySettings;
  private readonly perOrigin: number;
  private readonly encodedDefault: string;
  /** Entries read and not yet handed to the finalizer, by `stream id`. */
  private readonly held = new Map<string, EntryState>();
  /** Mean attempt latency per origin (ms), for park delays. */
  private readonly originLatency = new Map<string, number>();
  private stopping = false;
  /** Read loops waiting for room (one per shard). */
  private waiters: (() => void)[] = [];
  private itemsPerEntry = 1;
  private readLoops: Promise<void>[] = [];
  private closed: Promise<void> | undefined;
  private batchesRunning = 0;
  private timers: NodeJS.Timeout[] = [];
  private groupsReady = false;
  private readFailing = false;

  constructor(private readonly deps: DeliveryDeps) {
    const d = deps.config.delivery;
    this.perOrigin = Math.max(1, Math.floor(d.concurrency * d.originShare));
    this.scheduler = new Scheduler<Job>({ concurrency: d.concurrency, perOrigin: this.perOrigin, batchSize: d.batchSize });
    this.templates = new TemplateStore(deps.redis);
    this.shards = deps.shards.map(({ keys, blocking }) => ({
      keys,
      reader: new StreamReader(deps.redis, blocking, keys, deps.consumer, deps.logger),
      finalizer: new Finalizer(deps.redis, keys, deps.logger),
      promoter: new Promoter(deps.redis, keys, deps.logger),
    }));
    this.retry = { maxAttempts: d.maxAttempts, backoffBaseMs: d.backoffBaseMs, backoffMaxMs: d.backoffMaxMs };
    this.encodedDefault = encodeDefault(d.unmatchedDefault);
  }

  /** Ready: the consumer groups exist and the last read from Redis worked. */
  get ready(): boolean {
    return this.groupsReady && !this.readFailing && !this.stopping;
  }

  get sizes(): { waiting: number; inFlight: number } {
    return this.scheduler.size;
  }

  /** Postbacks read and not finished. */
  get load(): number {
    const { waiting, inFlight } = this.scheduler.size;
    return waiting + inFlight;
  }

  /** Resolves once the consumer groups exist (waiting out a Redis that is down). */
  async start(): Promise<void> {
    for (let attempt = 1; !this.stopping; attempt++) {
      try {
        for (const shard of this.shards) await shard.reader.ensureGroups();
        this.groupsReady = true;
        break;
      } catch (err) {
        if (attempt === 1) this.deps.logger.warn({ err: (err as Error).message }, 'Redis not reachable yet: waiting');
        await sleep(Math.min(1_000, 100 * attempt));
      }
    }
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

  /** Room to read: in flight plus what could start now, and a hard cap on everything held. */
  private capacityFree(): number {
    const c = this.deps.config.delivery.concurrency;
    return Math.min(c - this.scheduler.readyLoad(), 4 * c - this.load);
  }

  /**
   * Waits for room to read. Under load it waits for a worthwhile amount
   * (a batch, or an eighth of the concurrency), so each XREADGROUP brings
   * many entries instead of one per finished batch: fewer round trips and
   * system calls per postback. With little in flight it reads at once.
   */
  private async waitForCapacity(): Promise<void> {
    const c = this.deps.config.delivery.concurrency;
    const worthwhile = Math.min(c, Math.max(this.deps.config.delivery.batchSize, Math.floor(c / 8)));
    while (!this.stopping && this.capacityFree() < (this.load === 0 ? 1 : worthwhile)) {
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
      await this.waitForCapacity();
      if (this.stopping) break;
      const share = this.capacityFree() / this.shards.length;
      const count = Math.max(1, Math.min(MAX_READ_COUNT, Math.ceil(share / this.itemsPerEntry)));
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
      const free = this.capacityFree();
      if (free <= 0 || this.stopping) return;
      const entries = await shard.reader.reclaim(this.deps.config.delivery.visibilityMs, Math.min(free, MAX_READ_COUNT));
      const fresh = entries.filter((e) => !this.held.has(`${e.stream} ${e.id}`));
      if (fresh.length === 0) continue;
      this.deps.metrics.reclaimed.inc(fresh.length);
      this.deps.logger.info({ entries: fresh.length, shard: shard.keys.shard }, 'reclaimed entries a stopped consumer left pending');
      await this.accept(shard, fresh);
    }
  }

  private async heartbeat(): Promise<void> {
    const now = Date.now();
    const stale = now - Math.floor(this.deps.config.delivery.visibilityMs / 4);
    const byStream = new Map<string, EntryState[]>();
    for (const s of this.held.values()) {
      if (s.touchedAt > stale) continue;
      const list = byStream.get(s.stream);
      if (list) list.push(s);
      else byStream.set(s.stream, [s]);
    }
    for (const [stream, states] of byStream) {
      await (states[0] as EntryState).shard.reader.heartbeat(
        stream,
        states.map((s) => s.id),
      );
      for (const s of states) s.touchedAt = now;
    }
  }

  private async accept(shard: Shard, raw: RawEntry[]): Promise<void> {
    const now = Date.now();
    const states: EntryState[] = [];
    for (const { stream, id, blob } of raw) {
      if (blob === null) continue;
      let entry: Entry;
      try {
        entry = decodeEntry(blob);
      } catch (err) {
        // Not ours to read (corrupt or foreign): keep it whole as a dead letter.
        this.deps.logger.error({ stream, streamId: id, errorCode: 'PB_ERR_CODEC', err: (err as Error).message }, 'undecodable entry: dead-lettered');
        shard.finalizer.add({ stream, id, finished: 0, retries: [], deadLetters: [blob], handBack: [] });
        continue;
      }
      const s: EntryState = {
        shard,
        stream,
        id,
        finished: 0,
        retries: [],
        deadLetters: [],
        handBack: [],
        entry,
        blob,
        template: undefined,
        remaining: entry.items.length,
        touchedAt: now,
      };
      this.held.set(`${stream} ${id}`, s);
      states.push(s);
      this.itemsPerEntry = this.itemsPerEntry * 0.9 + entry.items.length * 0.1;
    }
    if (states.length === 0) return;
    try {
      await this.templates.load(
        shard.keys,
        states.map((s) => s.entry.templateId),
      );
    } catch (err) {
      // Redis went away between the read and the lookup: the entries stay
      // pending (ours), and come back through reclaim once it is back.
      for (const s of states) this.held.delete(`${s.stream} ${s.id}`);
      this.deps.logger.warn({ err: (err as Error).message }, 'template lookup failed: entries left pending for reclaim');
      return;
    }
    const ttl = this.deps.config.delivery.ttlMs;
    for (const s of states) {
      s.template = this.templates.get(s.entry.templateId);
      if (now > s.entry.dueTime + ttl) {
        this.expireAll(s, now);
      } else if (s.template === undefined) {
        for (let k = 0; k < s.entry.items.length; k++) this.templateMissing(s, k, now);
      } else if (this.scheduler.waitingFor(s.template.origin) >= PARK_FACTOR * this.perOrigin) {
        this.park(s, s.template.origin, now);
      } else {
        for (let k = 0; k < s.entry.items.length; k++) this.scheduler.push(s.template.origin, { state: s, k });
      }
    }
    this.pump();
  }

  /**
   * The origin is saturated: put the whole entry back in the retries set, due
   * when the origin should have room (its backlog over its share, times its
   * latency). No attempt is made or counted.
   */
  private park(s: EntryState, origin: string, now: number): void {
    const latency = this.originLatency.get(origin) ?? 1_000;
    const rounds = this.scheduler.waitingFor(origin) / this.perOrigin;
    const delay = Math.min(60_000, Math.max(500, rounds * latency)) * (0.75 + Math.random() / 2);
    s.retries.push([Math.round(now + delay), s.blob]);
    s.remaining = 0;
    this.deps.metrics.parked.inc(s.entry.items.length);
    this.deps.stats.parked(s.entry.items.length, now);
    this.complete(s);
    s.shard.promoter.kick(now + delay);
  }

  private pump(): void {
    for (const batch of this.scheduler.take()) this.run(batch);
  }

  private run(batch: Batch<Job>): void {
    const templates: BatchTemplate[] = [];
    const index = new Map<string, number>();
    const items: BatchItem[] = batch.jobs.map((job) => {
      const { state: s, k } = job;
      const e = s.entry;
      let ti = index.get(e.templateId);
      if (ti === undefined) {
        const t = s.template as KnownTemplate;
        ti = templates.push([e.templateId, t.stored.method, t.stored.url]) - 1;
        index.set(e.templateId, ti);
      }
      job.id = postbackId(e.requestId, e.firstIndex + k);
      return [ti, job.id, e.items[k] as DataObject];
    });
    this.batchesRunning++;
    const task: BatchTask = { templates, items };
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
    let latency = 0;
    for (let i = 0; i < batch.jobs.length; i++) {
      const r = results[i] as AttemptResult;
      latency += r.latencyMs;
      this.record(batch.jobs[i] as Job, r);
    }
    const mean = latency / Math.max(1, batch.jobs.length);
    const prev = this.originLatency.get(batch.origin);
    if (this.originLatency.size > 10_000) this.originLatency.clear();
    this.originLatency.set(batch.origin, prev === undefined ? mean : prev * 0.8 + mean * 0.2);
    this.scheduler.done(batch.origin, batch.jobs.length);
    this.pump();
    this.notify();
  }

  private record(job: Job, r: AttemptResult): void {
    const { state: s, k } = job;
    const e = s.entry;
    const id = job.id ?? postbackId(e.requestId, e.firstIndex + k);
    const attempt = e.attempts + 1;
    const now = Date.now();
    const decision = decide(
      classify(r.status, r.errorCode),
      attempt,
      r.retryAfter,
      e.dueTime + this.deps.config.delivery.ttlMs,
      now,
      this.retry,
      Math.random(),
    );
    const method = s.template?.stored.method ?? null;
    const logged: LoggedOutcome = decision.outcome;
    const origin = s.template?.origin ?? 'unknown';
    this.deps.stats.attempt(logged, r.latencyMs, origin, now);
    this.deps.metrics.attempt(logged, r.status, r.latencyMs, origin);
    this.deps.attemptLog.write(
      attemptLine(id, method, attempt, e.requestTime, r, logged, decision.outcome === 'retry' ? decision.dueAt : undefined),
    );
    switch (decision.outcome) {
      case 'delivered':
        s.finished++;
        break;
      case 'retry':
        s.retries.push([decision.dueAt, retryEntry(e, k, attempt, r)]);
        s.shard.promoter.kick(decision.dueAt);
        break;
      case 'dead':
      case 'expired':
        s.finished++;
        s.deadLetters.push(deadLetter(e, s.template, k, attempt, decision.outcome, r, now));
        break;
    }
    if (--s.remaining === 0) this.complete(s);
  }

  /** The entry is past its deadline before any attempt: every item expires. */
  private expireAll(s: EntryState, now: number): void {
    const e = s.entry;
    const method = s.template?.stored.method ?? null;
    for (let k = 0; k < e.items.length; k++) {
      const id = postbackId(e.requestId, e.firstIndex + k);
      const line = expiryLine(id, method, e.attempts, e.requestTime);
      if (s.template?.compiled) line.url = render(s.template.compiled, e.items[k] as DataObject, this.encodedDefault);
      this.deps.attemptLog.write(line);
      this.deps.stats.attempt('expired', null, s.template?.origin ?? 'unknown', now);
      this.deps.metrics.attempt('expired', null, null, s.template?.origin ?? 'unknown');
      const last = e.last;
      const result = noResponse(line.url, last?.errorCode ?? 'PB_ERR_EXPIRED', last?.error ?? line.error ?? '', now, last?.status ?? null);
      s.deadLetters.push(deadLetter(e, s.template, k, e.attempts, 'expired', result, now));
      s.finished++;
    }
    s.remaining = 0;
    this.complete(s);
  }

  private templateMissing(s: EntryState, k: number, now: number): void {
    this.record({ state: s, k }, noResponse('', 'PB_ERR_TEMPLATE_MISSING', `template ${s.entry.templateId} is not in Redis`, now));
  }

  private complete(s: EntryState): void {
    this.held.delete(`${s.stream} ${s.id}`);
    s.shard.finalizer.add(s);
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
    const firstWaiting = new Map<EntryState, number>();
    let handed = 0;
    for (const { state, k } of this.scheduler.drain()) {
      const prev = firstWaiting.get(state);
      if (prev === undefined || k < prev) firstWaiting.set(state, k);
    }
    for (const [s, k] of firstWaiting) {
      const e = s.entry;
      const rest = e.items.length - k;
      s.handBack.push(handBackEntry(e, k));
      handed += rest;
      this.deps.metrics.handedBack.inc(rest);
      s.remaining -= rest;
      if (s.remaining === 0) this.complete(s);
    }
    if (firstWaiting.size > 0) this.deps.logger.info({ postbacks: handed }, 'handed back postbacks not yet started');
  }
}
