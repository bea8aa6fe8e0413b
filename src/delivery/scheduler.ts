/**
 * Pure: which postbacks go out next, in which batches. Ready postbacks wait
 * in one FIFO per origin; `take()` walks the origins round-robin and builds
 * batches of one origin each (so a slow partner's batch never holds a
 * healthy partner's results), keeping the total in flight within
 * DELIVERY_CONCURRENCY and each origin within its limit. No I/O and no
 * clock: the caller reports completions with `done()`.
 *
 * An origin's limit follows its work, counted as the most postbacks it
 * has had (waiting and in flight) since its queue last emptied: one in
 * flight for up to SMALL_PARTNER_POSTBACKS, and one more for every
 * REQUESTS_PER_CONNECTION beyond, within its fair share of the
 * concurrency (divided among the origins with work) and `perOrigin`. A
 * busy partner gets `perOrigin` at once and keeps it while its backlog
 * drains (no slow tail); a partner with ten postbacks gets one
 * connection, which carries them in turn, instead of a connection per
 * postback. Among thousands of partners that is both faster (fewer
 * connects: the concurrency is spent on requests) and what keeps the
 * process's sockets near DELIVERY_CONCURRENCY; the price is latency for a
 * small partner while the process is loaded (its postbacks go one partner
 * round trip after another). One connection for up to 16 rather than 8
 * (bench many-origins, 3,000 origins x 10, alternated runs, medians of 3):
 * 8% more delivered a second and 30% fewer sockets at the peak; a partner
 * with more than 16 gets one connection fewer than with one per 8, and
 * the e2e phases (one origin) did not change measurably.
 *
 * That economy is for load. While the process holds little (at most
 * `lightLoad` postbacks waiting and in flight, by default
 * DELIVERY_CONCURRENCY / REQUESTS_PER_CONNECTION), nothing waits for a
 * connection: every postback may start at once, within the fair share and
 * `perOrigin`. A trickle then never queues behind the one request in
 * flight, and a request of ten items goes out as ten requests at once
 * rather than ten rounds on one connection (each round a partner round
 * trip: the latency at low load). The connections this opens are at most
 * `lightLoad` at a time, and are reused while the trickle lasts.
 *
 * Memory: a job leaves its FIFO (denque, a ring buffer that clears each
 * slot it shifts) when its batch is taken, so what the scheduler holds is
 * what waits, bounded by the caller's read cap, however long an origin's
 * queue stays non-empty. An origin with nothing waiting or in flight is
 * forgotten.
 */
import Denque from 'denque';

/** Postbacks an origin's connections carry in turn before it gets another one in flight. */
export const REQUESTS_PER_CONNECTION = 8;
/** Postbacks a partner's first connection carries before the one-per-REQUESTS_PER_CONNECTION rule. */
export const SMALL_PARTNER_POSTBACKS = 16;

export interface SchedulerLimits {
  /** Postbacks in flight in all. */
  concurrency: number;
  /** Postbacks in flight per origin. */
  perOrigin: number;
  /** Largest batch handed to a worker. */
  batchSize: number;
  /**
   * Postbacks an origin's connections carry in turn per one in flight
   * (default REQUESTS_PER_CONNECTION, with the first connection carrying
   * SMALL_PARTNER_POSTBACKS; when given, the first carries as many as the
   * others).
   */
  requestsPerConnection?: number;
  /**
   * Postbacks held (waiting and in flight) at or under which the process
   * counts as lightly loaded: every postback may start at once, within the
   * share (default `concurrency / requestsPerConnection`; 0: never).
   */
  lightLoad?: number;
  /**
   * How many of `n` jobs of an origin (with `inFlight` already) may start
   * now, by its partner's limits (rate, cluster-wide concurrency); 0 makes
   * take() pass it by this round. Default: all.
   */
  gate?: (origin: string, n: number, inFlight: number) => number;
}

export interface Batch<J> {
  origin: string;
  jobs: J[];
}

interface OriginQueue<J> {
  jobs: Denque<J>;
  inFlight: number;
  /** In flight allowed by its work at its most since the queue last emptied (grantFor). */
  grant: number;
}

export class Scheduler<J> {
  private readonly queues = new Map<string, OriginQueue<J>>();
  /** Origins with jobs waiting, in round-robin order. */
  private ring: string[] = [];
  private cursor = 0;
  private waiting = 0;
  private inFlight = 0;

  private readonly perConnection: number;
  private readonly smallPartner: number;
  private readonly lightLoad: number;

  constructor(private readonly limits: SchedulerLimits) {
    this.perConnection = limits.requestsPerConnection ?? REQUESTS_PER_CONNECTION;
    this.smallPartner = limits.requestsPerConnection ?? SMALL_PARTNER_POSTBACKS;
    this.lightLoad = limits.lightLoad ?? Math.floor(limits.concurrency / this.perConnection);
  }

  get size(): { waiting: number; inFlight: number } {
    return { waiting: this.waiting, inFlight: this.inFlight };
  }

  /** In flight allowed by `n` postbacks (see above): one up to the small-partner count, then one per `perConnection`. */
  private grantFor(n: number): number {
    return n <= this.smallPartner ? 1 : 1 + Math.ceil((n - this.smallPartner) / this.perConnection);
  }

  /** The most an origin may have in flight now: its fair share (see above). */
  share(): number {
    const active = Math.max(1, this.queues.size);
    return Math.max(1, Math.min(this.limits.perOrigin, Math.floor(this.limits.concurrency / active)));
  }

  private limitOf(q: OriginQueue<J>, share: number): number {
    // Lightly loaded: no postback waits for another's connection (see above).
    const want = this.waiting + this.inFlight <= this.lightLoad ? q.jobs.length + q.inFlight : q.grant;
    return Math.max(1, Math.min(share, want));
  }

  /** Whether an origin has jobs waiting or in flight. */
  busy(origin: string): boolean {
    return this.queues.has(origin);
  }

  /** Jobs of one origin waiting to start. */
  waitingFor(origin: string): number {
    return this.queues.get(origin)?.jobs.length ?? 0;
  }

  /**
   * In flight plus the waiting jobs that could start as soon as there is
   * room: an origin at its share adds nothing, so a saturated partner's
   * backlog never stops the reading for the others.
   */
  readyLoad(): number {
    let ready = this.inFlight;
    const share = this.share();
    for (const origin of this.ring) {
      const q = this.queues.get(origin) as OriginQueue<J>;
      ready += Math.max(0, Math.min(q.jobs.length, this.limitOf(q, share) - q.inFlight));
    }
    return ready;
  }

  push(origin: string, job: J): void {
    let q = this.queues.get(origin);
    if (q === undefined) {
      q = { jobs: new Denque<J>(), inFlight: 0, grant: 0 };
      this.queues.set(origin, q);
    }
    if (q.jobs.length === 0) this.ring.push(origin);
    q.jobs.push(job);
    q.grant = Math.max(q.grant, this.grantFor(q.jobs.length + q.inFlight));
    this.waiting++;
  }

  /** Batches that may start now; their jobs count as in flight. */
  take(): Batch<J>[] {
    const out: Batch<J>[] = [];
    const { concurrency, batchSize } = this.limits;
    const share = this.share();
    let idle = 0;
    while (this.ring.length > 0 && this.inFlight < concurrency && idle < this.ring.length) {
      if (this.cursor >= this.ring.length) this.cursor = 0;
      const origin = this.ring[this.cursor] as string;
      const q = this.queues.get(origin) as OriginQueue<J>;
      let n = Math.min(batchSize, q.jobs.length, this.limitOf(q, share) - q.inFlight, concurrency - this.inFlight);
      if (n > 0 && this.limits.gate !== undefined) n = this.limits.gate(origin, n, q.inFlight);
      if (n <= 0) {
        idle++;
        this.cursor++;
        continue;
      }
      idle = 0;
      const jobs: J[] = new Array(n);
      for (let i = 0; i < n; i++) jobs[i] = q.jobs.shift() as J;
      q.inFlight += n;
      this.inFlight += n;
      this.waiting -= n;
      out.push({ origin, jobs });
      if (q.jobs.length === 0) {
        this.ring.splice(this.cursor, 1);
      } else {
        this.cursor++;
      }
    }
    return out;
  }

  /** Reports `n` jobs of `origin` finished. */
  done(origin: string, n: number): void {
    const q = this.queues.get(origin);
    if (q === undefined) return;
    q.inFlight -= n;
    this.inFlight -= n;
    if (q.inFlight === 0 && q.jobs.length === 0) this.queues.delete(origin);
  }

  /** Each origin with work: [origin, in flight, waiting] (bounded by the origins held). */
  *origins(): IterableIterator<[string, number, number]> {
    for (const [origin, q] of this.queues) yield [origin, q.inFlight, q.jobs.length];
  }

  /** Removes and returns the jobs of one origin not yet started (its partner was paused). */
  drainOrigin(origin: string): J[] {
    const q = this.queues.get(origin);
    if (q === undefined || q.jobs.length === 0) return [];
    const out = q.jobs.toArray();
    q.jobs.clear();
    this.waiting -= out.length;
    const at = this.ring.indexOf(origin);
    if (at !== -1) {
      this.ring.splice(at, 1);
      if (at < this.cursor) this.cursor--;
    }
    if (q.inFlight === 0) this.queues.delete(origin);
    return out;
  }

  /** Removes and returns every job not yet started (for hand-back at shutdown). */
  drain(): J[] {
    const out: J[] = [];
    for (const q of this.queues.values()) {
      for (const job of q.jobs.toArray()) out.push(job);
      q.jobs.clear();
    }
    this.ring = [];
    this.waiting = 0;
    for (const [origin, q] of this.queues) if (q.inFlight === 0) this.queues.delete(origin);
    return out;
  }
}
