/**
 * Records finished entries in Redis through `finalize-n.lua`: each entry's
 * acknowledgement goes together with its retries, dead letters, hand-backs
 * and entries held for paused partners, atomically. Entries finished within a few milliseconds
 * share one script call per stream. A failed call is retried with backoff until it
 * succeeds (at shutdown, a few times): until then the entries stay pending,
 * so the worst case is a second delivery after reclaim, never a loss.
 */
import type { RedisClient } from '../queue/redis.js';
import type { Logger } from '../observability/logger.js';
import { GROUP, heldKey, type ShardKeys } from '../queue/keys.js';

export interface EntryOutcome {
  stream: string;
  id: string;
  /** Postbacks that left the system: delivered, dead or expired. */
  finished: number;
  /** [due ms, encoded entry] for the retries set. */
  retries: [number, Buffer][];
  deadLetters: Buffer[];
  /** Encoded entries handed back to the same stream (shutdown). */
  handBack: Buffer[];
  /** Entries held for a paused partner (or one whose breaker is open): [origin, postbacks, due ms, encoded entry]. */
  held: [string, number, number, Buffer][];
}

/**
 * The keys finalize-n.lua touches for these outcomes, the stream first,
 * preceded by their number: declared so that Redis Cluster checks them all
 * while the shard's slot migrates (scripts.ts). The script names them from
 * the stream's, as keys.ts does; a key is declared only when the call
 * writes it, so a call that needs none of them is not sent to wait for them.
 */
function declaredKeys(shard: ShardKeys, stream: string, outcomes: EntryOutcome[]): string[] {
  const keys = new Set([stream]);
  for (const o of outcomes) {
    if (o.finished > 0) keys.add(shard.count);
    if (o.retries.length > 0) keys.add(shard.retries);
    if (o.deadLetters.length > 0) keys.add(shard.dead);
    for (const [origin] of o.held) keys.add(shard.heldIndex).add(heldKey(shard, origin));
  }
  return [String(keys.size), ...keys];
}

const MAX_PER_CALL = 500;
/**
 * Outcomes wait this long to share one script call. Acknowledging a few
 * milliseconds later costs nothing but a slightly wider window of repeats
 * after a kill -9; under load it turns hundreds of calls into a few.
 */
const COALESCE_MS = 5;
/** At shutdown, how long one call may wait for Redis. */
const STOP_WAIT_MS = 1_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from Redis in ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export class Finalizer {
  private queue: EntryOutcome[] = [];
  private scheduled = false;
  private chain: Promise<void> = Promise.resolve();
  private stopping = false;
  /**
   * Calls written before the shutdown began (so with no timeout of their
   * own), by the function that gives up on each: STOP_WAIT_MS after
   * drain() begins they must not hold the exit either, when Redis went
   * away with them (PM2's `stop all` stops Redis at the same time). One
   * entry per call in flight, removed when it settles: bounded by the
   * calls in flight (one promise shared by every call would collect a
   * reaction per call for the process's whole life).
   */
  private readonly inFlight = new Set<(err: Error) => void>();
  /** Entries acknowledged since start (for tests and metrics). */
  acknowledged = 0;

  /**
   * `written`: called with the outcomes of each call once Redis has them
   * (or, at shutdown, once it gave up on them): until then their entries
   * are still this process's to heartbeat and never to reclaim.
   */
  constructor(
    private readonly redis: RedisClient,
    private readonly shard: ShardKeys,
    private readonly logger: Logger,
    private readonly written: (outcomes: readonly EntryOutcome[]) => void = () => undefined,
  ) {}

  get pending(): number {
    return this.queue.length;
  }

  add(outcome: EntryOutcome): void {
    this.queue.push(outcome);
    if (this.scheduled) return;
    this.scheduled = true;
    setTimeout(() => {
      this.scheduled = false;
      this.chain = this.chain.then(() => this.flush());
    }, COALESCE_MS);
  }

  /** Writes everything queued so far; resolves when Redis has it (or gave up at shutdown). */
  drain(): Promise<void> {
    if (!this.stopping) {
      setTimeout(() => {
        for (const giveUp of this.inFlight) giveUp(new Error(`no answer from Redis in ${STOP_WAIT_MS} ms at shutdown`));
      }, STOP_WAIT_MS).unref();
    }
    this.stopping = true;
    this.chain = this.chain.then(() => this.flush());
    return this.chain;
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_PER_CALL);
      const byStream = new Map<string, EntryOutcome[]>();
      for (const o of batch) {
        const list = byStream.get(o.stream);
        if (list) list.push(o);
        else byStream.set(o.stream, [o]);
      }
      for (const [stream, outcomes] of byStream) await this.write(stream, outcomes);
    }
  }

  /** `call`, or a rejection STOP_WAIT_MS after drain() begins, whichever comes first. */
  private async untilShutdownGivesUp<T>(call: Promise<T>): Promise<T> {
    let giveUp: (err: Error) => void = () => undefined;
    const gaveUp = new Promise<never>((_, reject) => {
      giveUp = reject;
    });
    this.inFlight.add(giveUp);
    try {
      return await Promise.race([call, gaveUp]);
    } finally {
      this.inFlight.delete(giveUp);
    }
  }

  private async write(stream: string, outcomes: EntryOutcome[]): Promise<void> {
    const args: (string | number | Buffer)[] = [GROUP];
    for (const o of outcomes) {
      if (o.retries.length === 0 && o.deadLetters.length === 0 && o.handBack.length === 0 && o.held.length === 0) {
        args.push(`${o.id} ${o.finished}`);
        continue;
      }
      args.push(`${o.id} ${o.finished} ${o.retries.length} ${o.deadLetters.length} ${o.handBack.length} ${o.held.length}`);
      for (const [due, blob] of o.retries) args.push(due, blob);
      args.push(...o.deadLetters, ...o.handBack);
      for (const [origin, postbacks, due, blob] of o.held) args.push(origin, postbacks, due, blob);
    }
    args.unshift(...declaredKeys(this.shard, stream, outcomes));
    for (let attempt = 1; ; attempt++) {
      try {
        const call = this.redis.pbFinalize(...args);
        // At shutdown, a Redis that is gone must not hold the exit.
        this.acknowledged += this.stopping ? await withTimeout(call, STOP_WAIT_MS) : await this.untilShutdownGivesUp(call);
        if (attempt > 1) this.logger.info({ entries: outcomes.length }, 'outcomes recorded after retrying');
        this.written(outcomes);
        return;
      } catch (err) {
        if (attempt === 1) {
          this.logger.warn({ err: (err as Error).message, entries: outcomes.length }, 'recording outcomes failed: retrying');
        }
        if (this.stopping && attempt >= 5) {
          this.logger.error(
            { entries: outcomes.length },
            'could not record outcomes before exit: the entries stay pending and will be delivered again after reclaim',
          );
          this.written(outcomes);
          return;
        }
        await sleep(Math.min(2_000, 100 * attempt));
      }
    }
  }
}
