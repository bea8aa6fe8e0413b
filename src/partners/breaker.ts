/**
 * Circuit breakers, one per origin, shared by every delivery process
 * through Redis (breaker-3.lua): each process tallies what its attempts say
 * about a partner's health and reports the tally every REPORT_MS, but only
 * for origins that failed within their window: a healthy partner costs no
 * Redis call at all. The script keeps the cluster's sliding window and the
 * failures in a row, and opens the breaker when the policy's thresholds
 * are crossed; while open, one process per probe interval claims the probe
 * (half-open), and the probe's result closes it or keeps it open.
 *
 * Memory: one tally per origin attempted within its window (ten counters
 * at most), at most MAX_ORIGINS; the oldest goes first.
 */
import type { Logger } from '../observability/logger.js';
import type { ControlKeys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis.js';
import type { Health } from '../delivery/outcome.js';
import { parseBreaker, type BreakerRecord } from './control-state.js';
import type { BreakerSettings } from './policy.js';

const REPORT_MS = 250;
const MAX_ORIGINS = 10_000;

interface Tally {
  /** Successes not yet reported, per tenth of the window (bucket -> count). */
  ok: Map<number, number>;
  failed: number;
  /** Connection failures or timeouts since the last response. */
  down: number;
  /** A response came since the last report (the run of failures restarts). */
  responded: boolean;
  lastFailAt: number;
  lastSeen: number;
  settings: BreakerSettings;
}

export class BreakerReporter {
  private readonly tallies = new Map<string, Tally>();
  private timer: NodeJS.Timeout | null = null;
  private started = false;
  private flushing = false;
  private soon = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: ControlKeys,
    private readonly logger: Logger,
    /** A report of this process opened an origin's breaker. */
    private readonly onOpen: (origin: string, record: BreakerRecord) => void,
    /** A report found the breaker open already (another process opened it). */
    private readonly onSeen: (origin: string, record: BreakerRecord) => void = () => undefined,
  ) {}

  /** Reports run every REPORT_MS while any origin is tallied, and not at all while none is (an idle process does not wake for them). */
  start(): void {
    this.started = true;
    if (this.tallies.size > 0) this.arm();
  }

  stop(): void {
    this.started = false;
    this.disarm();
  }

  private arm(): void {
    if (this.timer !== null || !this.started) return;
    this.timer = setInterval(() => void this.flush(), REPORT_MS);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private windowKey(origin: string): string {
    return `${this.keys.originPrefix}${origin}:breaker`;
  }

  /**
   * One attempt's verdict on the partner's health. Successes are kept here
   * per tenth of the window, so that when the partner starts failing the
   * first report carries the successes of the window too (the ratio is
   * over all attempts, not only those since the first failure).
   */
  record(origin: string, h: Health, settings: BreakerSettings, now: number): void {
    if (h === 'none') return;
    let t = this.tallies.get(origin);
    if (t === undefined) {
      if (this.tallies.size >= MAX_ORIGINS) this.tallies.delete(this.tallies.keys().next().value as string);
      t = { ok: new Map(), failed: 0, down: 0, responded: false, lastFailAt: -Infinity, lastSeen: now, settings };
      this.tallies.set(origin, t);
      this.arm();
    }
    t.settings = settings;
    t.lastSeen = now;
    if (h === 'ok') {
      const bucket = Math.floor(now / Math.max(100, settings.windowMs / 10));
      t.ok.set(bucket, (t.ok.get(bucket) ?? 0) + 1);
      t.down = 0;
      t.responded = true;
      return;
    }
    t.failed++;
    t.lastFailAt = now;
    if (h === 'down') {
      t.down++;
    } else {
      t.down = 0;
      t.responded = true;
    }
    // Enough here alone to open it: report now rather than at the next tick.
    if ((t.down >= settings.consecutiveFailures || t.failed >= settings.minAttempts) && !this.soon) {
      this.soon = true;
      setImmediate(() => {
        this.soon = false;
        void this.flush();
      });
    }
  }

  /** Sends the tally of every origin that failed within its window; forgets origins gone quiet. */
  async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      const now = Date.now();
      const reports: Promise<void>[] = [];
      for (const [origin, t] of this.tallies) {
        const s = t.settings;
        if (now - t.lastSeen > s.windowMs) {
          this.tallies.delete(origin);
          continue;
        }
        const oldest = Math.floor((now - s.windowMs) / Math.max(100, s.windowMs / 10));
        let ok = 0;
        for (const [bucket, n] of t.ok) {
          if (bucket <= oldest) t.ok.delete(bucket);
          else ok += n;
        }
        // A partner that has not failed lately costs no Redis call.
        if (now - t.lastFailAt > s.windowMs || ok + t.failed === 0) continue;
        const args = [ok, t.failed, t.down, t.responded ? 1 : 0, s.failureRatio, s.windowMs, s.minAttempts, s.consecutiveFailures, s.probeIntervalMs];
        t.ok.clear();
        t.failed = 0;
        t.down = 0;
        t.responded = false;
        reports.push(
          this.redis.pbBreaker(this.windowKey(origin), this.keys.breakers, this.keys.version, 'report', origin, ...args).then(
            (r) => {
              const [opened, detail] = r as [number, string];
              if (opened === 1) {
                this.tallies.delete(origin);
                this.onOpen(origin, { state: 'open', since: now, probeAt: now + s.probeIntervalMs, reason: detail });
              } else if (opened === 2) {
                // Another process opened it: obey now, not at the next poll.
                this.tallies.delete(origin);
                const record = parseBreaker(detail);
                if (record !== null) this.onSeen(origin, record);
              }
            },
            (err: unknown) => this.logger.debug({ err: (err as Error).message, origin }, 'breaker report failed'),
          ),
        );
      }
      await Promise.all(reports);
    } finally {
      this.flushing = false;
      if (this.tallies.size === 0) this.disarm();
    }
  }

  /** Claims the probe of this interval for the whole cluster (half-open). */
  async claimProbe(origin: string, settings: BreakerSettings): Promise<boolean> {
    return (await this.redis.pbBreaker(this.windowKey(origin), this.keys.breakers, this.keys.version, 'probe', origin, settings.probeIntervalMs)) === 1;
  }

  /** Records a probe's outcome: 'closed', 'open' (still), or null (it was closed already). */
  async probeResult(origin: string, ok: boolean, settings: BreakerSettings): Promise<'closed' | 'open' | null> {
    const r = await this.redis.pbBreaker(this.windowKey(origin), this.keys.breakers, this.keys.version, 'result', origin, ok ? 1 : 0, settings.probeIntervalMs);
    return r === 1 ? 'closed' : r === 2 ? 'open' : null;
  }
}
