/**
 * Brings due postbacks back: runs `promote-5.lua` (delayed first attempts
 * to the stream, due retries to the retry stream) when the earliest due
 * time says so, and at least every second to see what other processes
 * scheduled. One Redis call per tick; none when nothing is due soon beyond
 * that one-second look. When the script reports postbacks held for paused
 * partners (or open breakers), the `release` callback gets a turn, at most
 * every RELEASE_MS and one at a time: it decides what may go back (see
 * service.ts). A release pass makes a round trip or more per held origin,
 * so it runs beside the ticks, never inside one: due postbacks keep being
 * promoted while it works (with Redis on another host, a pass over a
 * couple of hundred origins takes a good part of a second).
 */
import type { RedisClient } from '../queue/redis.js';
import type { Logger } from '../observability/logger.js';
import type { ShardKeys } from '../queue/keys.js';

const LOOK_MS = 1_000;
const BATCH = 1_000;
/** How often held postbacks are looked at while any exist. */
export const RELEASE_MS = 500;

export class Promoter {
  private timer: NodeJS.Timeout | null = null;
  private nextAt = Infinity;
  private running = false;
  private stopped = false;
  private failures = 0;
  private releasedAt = 0;
  /** A release pass is running. */
  private releasing = false;
  private releaseFailures = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: ShardKeys,
    private readonly logger: Logger,
    /** Called when postbacks are held in this shard: releases what may go. */
    private readonly release: ((keys: ShardKeys) => Promise<void>) | null = null,
  ) {}

  start(): void {
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** A postback was scheduled for `dueAt`: make sure a tick comes by then. */
  kick(dueAt: number): void {
    if (dueAt < this.nextAt) this.schedule(dueAt - Date.now());
  }

  private schedule(inMs: number): void {
    if (this.stopped) return;
    const delay = Math.max(0, Math.min(LOOK_MS, inMs));
    if (this.timer) clearTimeout(this.timer);
    this.nextAt = Date.now() + delay;
    this.timer = setTimeout(() => void this.tick(), delay);
  }

  private async tick(): Promise<void> {
    this.timer = null;
    this.nextAt = Infinity;
    if (this.running || this.stopped) return;
    this.running = true;
    const k = this.keys;
    try {
      const now = Date.now();
      const [moved, next, held] = await this.redis.pbPromote(k.delayed, k.stream, k.retries, k.retry, k.heldIndex, now, BATCH);
      if (this.failures > 0) this.logger.info('promoting due postbacks again');
      this.failures = 0;
      let wake = next === -1 ? LOOK_MS : next - Date.now();
      if (held > 0 && this.release !== null) {
        if (!this.releasing && now - this.releasedAt >= RELEASE_MS) {
          this.releasedAt = now;
          this.releasing = true;
          this.release(k).then(
            () => {
              if (this.releaseFailures > 0) this.logger.info('releasing held postbacks again');
              this.releaseFailures = 0;
              this.releasing = false;
            },
            (err: unknown) => {
              if (this.releaseFailures++ === 0) this.logger.warn({ err: (err as Error).message }, 'releasing held postbacks failed: retrying');
              this.releasing = false;
            },
          );
        }
        wake = Math.min(wake, RELEASE_MS);
      }
      this.running = false;
      if (moved >= BATCH) this.schedule(0);
      else this.schedule(wake);
    } catch (err) {
      if (this.failures++ === 0) this.logger.warn({ err: (err as Error).message }, 'promoting due postbacks failed: retrying');
      this.running = false;
      this.schedule(LOOK_MS);
    }
  }
}
