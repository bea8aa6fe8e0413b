/**
 * Brings due postbacks back: runs `promote-4.lua` (delayed first attempts
 * to the stream, due retries to the retry stream) when the earliest due
 * time says so, and at least every second to see what other processes
 * scheduled. One Redis call per tick; none when nothing is due soon beyond
 * that one-second look.
 */
import type { RedisClient } from '../queue/redis.js';
import type { Logger } from '../observability/logger.js';
import type { ShardKeys } from '../queue/keys.js';

const LOOK_MS = 1_000;
const BATCH = 1_000;

export class Promoter {
  private timer: NodeJS.Timeout | null = null;
  private nextAt = Infinity;
  private running = false;
  private stopped = false;
  private failures = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: ShardKeys,
    private readonly logger: Logger,
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
      const [moved, next] = await this.redis.pbPromote(k.delayed, k.stream, k.retries, k.retry, now, BATCH);
      if (this.failures > 0) this.logger.info('promoting due postbacks again');
      this.failures = 0;
      this.running = false;
      if (moved >= BATCH) this.schedule(0);
      else this.schedule(next === -1 ? LOOK_MS : next - Date.now());
    } catch (err) {
      if (this.failures++ === 0) this.logger.warn({ err: (err as Error).message }, 'promoting due postbacks failed: retrying');
      this.running = false;
      this.schedule(LOOK_MS);
    }
  }
}
