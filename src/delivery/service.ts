/**
 * The delivery main thread. It alone talks to Redis: it reads entries with
 * XREADGROUP on a blocking connection (no polling when idle), resolves
 * their templates, queues their postbacks in the scheduler, hands batches to
 * the Piscina workers, writes one attempt line per result, and once every
 * postback of an entry has its outcome, acknowledges and deletes the entry
 * (batched: one round trip for everything finished in the same tick).
 * At-least-once: an entry leaves Redis only after its outcomes are recorded.
 */
import type { Redis } from 'ioredis';
import type { Piscina } from 'piscina';
import type { Config } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import { decodeEntry, type Entry } from '../queue/codec.js';
import { postbackId } from '../queue/ids.js';
import { GROUP, type ShardKeys } from '../queue/keys.js';
import type { AttemptResult, BatchItem, BatchTask, BatchTemplate } from './attempt.js';
import { classify } from './outcome.js';
import { Scheduler, type Batch } from './scheduler.js';
import { TemplateStore, type KnownTemplate } from './templates.js';

export interface DeliveryDeps {
  config: Config;
  logger: Logger;
  attemptLog: Logger;
  /** Auto-pipelined connection for everything but the blocking read. */
  redis: Redis;
  /** Dedicated connection for XREADGROUP BLOCK. */
  blocking: Redis;
  pool: Piscina<BatchTask, AttemptResult[]>;
  keys: ShardKeys;
  consumer: string;
}

interface EntryState {
  streamId: string;
  entry: Entry;
  template: KnownTemplate | undefined;
  remaining: number;
}

interface Job {
  entry: EntryState;
  /** Item index within the entry. */
  k: number;
}

type StreamReply = [Buffer, [Buffer, Buffer[] | null][]][] | null;

const BLOCK_MS = 2_000;
const MAX_READ_COUNT = 512;

export class DeliveryService {
  private readonly scheduler: Scheduler<Job>;
  private readonly templates: TemplateStore;
  private readonly finished: string[] = [];
  private flushScheduled = false;
  private flushing: Promise<void> = Promise.resolve();
  private stopping = false;
  private wake: (() => void) | null = null;
  /** Running mean of items per entry, to size reads to free capacity. */
  private itemsPerEntry = 1;
  private readLoop: Promise<void> | undefined;
  private closed: Promise<void> | undefined;
  private batchesRunning = 0;

  constructor(private readonly deps: DeliveryDeps) {
    const { concurrency, connectionsPerOrigin, batchSize } = deps.config.delivery;
    this.scheduler = new Scheduler<Job>({
      concurrency,
      perOrigin: Math.min(concurrency, connectionsPerOrigin * 4),
      batchSize,
    });
    this.templates = new TemplateStore(deps.redis);
  }

  /** Postbacks read and not yet finished (waiting + in flight). */
  get load(): number {
    const { waiting, inFlight } = this.scheduler.size;
    return waiting + inFlight;
  }

  /** Resolves once the consumer group exists (waiting out a Redis that is down). */
  async start(): Promise<void> {
    for (let attempt = 1; !this.stopping; attempt++) {
      try {
        await this.ensureGroup();
        break;
      } catch (err) {
        if (attempt === 1) this.deps.logger.warn({ err: (err as Error).message }, 'Redis not reachable yet: waiting');
        await sleep(Math.min(1_000, 100 * attempt));
      }
    }
    this.readLoop = this.runReadLoop();
  }

  private async ensureGroup(): Promise<void> {
    try {
      // From id 0, not $: entries ingested before any delivery process existed count.
      await this.deps.redis.xgroup('CREATE', this.deps.keys.stream, GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!(err as Error).message.includes('BUSYGROUP')) throw err;
    }
  }

  private capacityFree(): boolean {
    return this.load < this.deps.config.delivery.concurrency;
  }

  private async waitForCapacity(): Promise<void> {
    while (!this.stopping && !this.capacityFree()) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private async runReadLoop(): Promise<void> {
    const { blocking, keys, consumer, logger } = this.deps;
    let failures = 0;
    while (!this.stopping) {
      await this.waitForCapacity();
      if (this.stopping) break;
      const free = this.deps.config.delivery.concurrency - this.load;
      const count = Math.max(1, Math.min(MAX_READ_COUNT, Math.ceil(free / this.itemsPerEntry)));
      let reply: StreamReply;
      try {
        reply = (await blocking.callBuffer(
          'XREADGROUP',
          'GROUP',
          GROUP,
          consumer,
          'COUNT',
          count,
          'BLOCK',
          BLOCK_MS,
          'STREAMS',
          keys.stream,
          '>',
        )) as StreamReply;
        if (failures > 0) logger.info('reading from Redis again');
        failures = 0;
      } catch (err) {
        if (this.stopping) break;
        const message = (err as Error).message;
        if (message.includes('NOGROUP')) {
          logger.warn('consumer group missing (Redis lost its data?): creating it again');
          await this.ensureGroup().catch(() => undefined);
        } else if (failures++ === 0) {
          logger.warn({ err: message }, 'reading from Redis failed: retrying');
        }
        await sleep(Math.min(1_000, 100 * failures));
        continue;
      }
      if (reply === null) continue;
      for (const [, entries] of reply) await this.accept(entries);
    }
  }

  private async accept(entries: [Buffer, Buffer[] | null][]): Promise<void> {
    const states: EntryState[] = [];
    const ids: string[] = [];
    for (const [idBuf, fields] of entries) {
      const streamId = idBuf.toString();
      const blob = fields?.[1];
      if (!blob) {
        this.finish(streamId);
        continue;
      }
      let entry: Entry;
      try {
        entry = decodeEntry(blob);
      } catch (err) {
        this.deps.logger.error({ streamId, err: (err as Error).message }, 'undecodable entry: dropped');
        this.finish(streamId);
        continue;
      }
      states.push({ streamId, entry, template: undefined, remaining: entry.items.length });
      ids.push(entry.templateId);
      this.itemsPerEntry = this.itemsPerEntry * 0.9 + entry.items.length * 0.1;
    }
    if (states.length === 0) return;
    try {
      await this.templates.load(this.deps.keys, ids);
    } catch (err) {
      // Redis went away between the read and the lookup: the entries stay
      // pending and come back through reclaim; nothing is acknowledged.
      this.deps.logger.warn({ err: (err as Error).message }, 'template lookup failed: entries left pending');
      return;
    }
    for (const s of states) {
      s.template = this.templates.get(s.entry.templateId);
      if (s.template === undefined) {
        for (let k = 0; k < s.entry.items.length; k++) this.recordMissingTemplate(s, k);
        continue;
      }
      for (let k = 0; k < s.entry.items.length; k++) this.scheduler.push(s.template.origin, { entry: s, k });
    }
    this.pump();
  }

  private pump(): void {
    for (const batch of this.scheduler.take()) this.run(batch);
  }

  private run(batch: Batch<Job>): void {
    const templates: BatchTemplate[] = [];
    const index = new Map<string, number>();
    const items: BatchItem[] = batch.jobs.map(({ entry: s, k }) => {
      let ti = index.get(s.entry.templateId);
      if (ti === undefined) {
        const t = s.template as KnownTemplate;
        ti = templates.push([s.entry.templateId, t.stored.method, t.stored.url]) - 1;
        index.set(s.entry.templateId, ti);
      }
      return [ti, postbackId(s.entry.requestId, s.entry.firstIndex + k), s.entry.items[k] as BatchItem[2]];
    });
    this.batchesRunning++;
    this.deps.pool.run({ templates, items }).then(
      (results) => this.onResults(batch, results),
      (err: unknown) => {
        // A worker died mid-batch: no attempt is known to have been made.
        this.deps.logger.error({ err, origin: batch.origin, size: batch.jobs.length }, 'worker failed a batch');
        this.onResults(
          batch,
          batch.jobs.map(() => ({
            url: '',
            deliveryTime: Date.now(),
            responseTime: null,
            latencyMs: 0,
            status: null,
            body: null,
            errorCode: 'PB_ERR_INTERNAL',
            error: 'delivery worker failed',
            retryAfter: null,
          })),
        );
      },
    );
  }

  private onResults(batch: Batch<Job>, results: AttemptResult[]): void {
    this.batchesRunning--;
    for (let i = 0; i < batch.jobs.length; i++) {
      this.record(batch.jobs[i] as Job, results[i] as AttemptResult);
    }
    this.scheduler.done(batch.origin, batch.jobs.length);
    this.pump();
    this.notify();
  }

  private record(job: Job, r: AttemptResult): void {
    const { entry: s, k } = job;
    const e = s.entry;
    const verdict = classify(r.status, r.errorCode);
    const outcome = verdict === 'success' ? 'delivered' : 'dead';
    this.deps.attemptLog.info(
      {
        id: postbackId(e.requestId, e.firstIndex + k),
        method: s.template?.stored.method ?? null,
        url: r.url,
        attempt: e.attempts + 1,
        requestTime: e.requestTime,
        deliveryTime: r.deliveryTime,
        responseTime: r.responseTime,
        latencyMs: r.latencyMs,
        status: r.status,
        body: r.body,
        outcome,
        error: r.error,
        errorCode: r.errorCode,
      },
      'attempt',
    );
    if (--s.remaining === 0) this.finish(s.streamId);
  }

  private recordMissingTemplate(s: EntryState, k: number): void {
    const now = Date.now();
    this.record(
      { entry: s, k },
      {
        url: '',
        deliveryTime: now,
        responseTime: null,
        latencyMs: 0,
        status: null,
        body: null,
        errorCode: 'PB_ERR_TEMPLATE_MISSING',
        error: `template ${s.entry.templateId} is not in Redis`,
        retryAfter: null,
      },
    );
  }

  /** Queues an entry for acknowledgement; one flush per tick. */
  private finish(streamId: string): void {
    this.finished.push(streamId);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flushing = this.flushing.then(() => this.flush());
      });
    }
  }

  private async flush(): Promise<void> {
    const ids = this.finished.splice(0);
    if (ids.length === 0) return;
    const { redis, keys, logger } = this.deps;
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await redis.multi().xack(keys.stream, GROUP, ...ids).xdel(keys.stream, ...ids).exec();
        const failed = res?.find(([err]) => err !== null);
        if (res === null || failed) throw failed?.[0] ?? new Error('transaction aborted');
        return;
      } catch (err) {
        if (attempt === 1) logger.warn({ err: (err as Error).message, entries: ids.length }, 'acknowledging failed: retrying');
        if (this.stopping && attempt >= 5) {
          // Left pending: another consumer reclaims them (delivered again, never lost).
          logger.error({ entries: ids.length }, 'could not acknowledge before exit: entries stay pending');
          return;
        }
        await sleep(Math.min(2_000, 100 * attempt));
      }
    }
  }

  /** Stops reading, lets every postback already read finish, acknowledges. Idempotent. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.stopping = true;
      this.notify();
      await this.readLoop;
      while (this.load > 0 || this.batchesRunning > 0) await sleep(20);
      await new Promise((resolve) => setImmediate(resolve));
      await this.flushing;
      await this.flush();
    })();
    return this.closed;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
