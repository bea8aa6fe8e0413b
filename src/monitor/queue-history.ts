/**
 * The queue's recent past for a dashboard that just opened: its waiting
 * postbacks, lag and dead letters are read from Redis only now and then
 * (once a second while a dashboard listens, and at each Prometheus scrape
 * of the monitor), never stored there, so without this a new page's queue
 * charts would start empty. Holds the readings the monitor makes anyway,
 * at most one a second, for the last QUEUE_HISTORY_S seconds: bounded by
 * that constant, whatever the run time.
 */
import type { QueueState } from '../queue/state.js';

/**
 * Seconds of queue readings kept (and so at most this many readings, one
 * per second): the dashboard's window (WINDOW_S in dashboard/dashboard.js).
 */
export const QUEUE_HISTORY_S = 300;

/** One reading, in the shape of the dashboard's queue and dead-letter charts. */
export interface QueueSample {
  /** Second (epoch seconds) it was read. */
  t: number;
  postbacks: number;
  lagSeconds: number;
  deadLetters: number;
}

export class QueueHistory {
  private readonly samples: QueueSample[] = [];

  /** Keeps a reading made at `now` (ms); a later one in the same second replaces it, an older one is dropped. */
  record(state: QueueState, now: number): void {
    const t = Math.floor(now / 1000);
    const sample: QueueSample = { t, postbacks: state.postbacks, lagSeconds: state.lagSeconds, deadLetters: state.deadLetters };
    const last = this.samples.at(-1);
    if (last !== undefined && t < last.t) return;
    if (last !== undefined && t === last.t) this.samples[this.samples.length - 1] = sample;
    else this.samples.push(sample);
    while (this.samples.length > QUEUE_HISTORY_S || (this.samples[0] as QueueSample).t <= t - QUEUE_HISTORY_S) this.samples.shift();
  }

  /** The readings of the last `seconds` before `now` (ms), oldest first. */
  since(seconds: number, now: number): QueueSample[] {
    const from = Math.floor(now / 1000) - Math.min(seconds, QUEUE_HISTORY_S);
    return this.samples.filter((s) => s.t > from);
  }

  get size(): number {
    return this.samples.length;
  }
}
