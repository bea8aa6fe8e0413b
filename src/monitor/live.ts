/**
 * The live feed behind the dashboard: while at least one browser listens on
 * `/events` (Server-Sent Events), once a second it reads the last complete
 * second of statistics and the queue state from Redis and sends every
 * listener the same small JSON frame. With nobody listening it reads
 * nothing (an idle monitor costs Redis nothing). Keeps a short history for
 * new listeners and for the failing-origins table, and gives its queue
 * readings to the queue history (queue-history.ts) a new page starts from.
 */
import type { ServerResponse } from 'node:http';
import type { RedisClient } from '../queue/redis.js';
import { isFull, memoryOf, primaries } from '../queue/memory.js';
import type { Logger } from '../observability/logger.js';
import type { ShardKeys } from '../queue/keys.js';
import { readQueueState, type QueueState } from '../queue/state.js';
import { readPoints, topFailing, type Point } from './series.js';
import type { QueueHistory } from './queue-history.js';

/** Live dashboards one monitor feeds at once; past it, 503 overloaded. */
export const MAX_LISTENERS = 100;
/**
 * Frames a listener may leave unread (bytes buffered for it) before it is
 * dropped: a client that stops reading must not make the monitor keep a
 * frame a second for it for ever. A reconnecting browser (retry: 2000)
 * simply comes back.
 */
const MAX_UNREAD_BYTES = 1_048_576;

/** Seconds a bucket is given to fill before it is read (flushes run every second). */
const SETTLE_S = 2;
const HISTORY_S = 600;

export interface Frame {
  /** The latest complete second. */
  point: Point | null;
  /**
   * Every second completed since the frame before, oldest first: usually
   * one, more when a tick was late or skipped (timer drift across a
   * second, a slow Redis), so a client that adds them up misses none.
   */
  points: Point[];
  queue: QueueState | null;
  topFailing: [string, number][];
  redisUp: boolean;
  /**
   * Redis reached maxmemory (noeviction): it answers reads, so the numbers
   * still come, but it refuses every write: ingest answers 503 redis_full.
   */
  redisFull: boolean;
  at: number;
}

/** True when a Redis (any primary of a Cluster) is at its maxmemory under noeviction. */
async function redisFull(redis: RedisClient): Promise<boolean> {
  for (const node of primaries(redis)) if (isFull(await memoryOf(node))) return true;
  return false;
}

export class LiveFeed {
  private readonly clients = new Set<ServerResponse>();
  private readonly history: Point[] = [];
  private timer: NodeJS.Timeout | null = null;
  private last: Frame | null = null;
  private busy = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly shards: readonly ShardKeys[],
    private readonly logger: Logger,
    private readonly queueHistory: QueueHistory,
  ) {}

  /** History of the last `seconds` (read from Redis when not held). */
  async series(seconds: number): Promise<Point[]> {
    const to = Math.floor(Date.now() / 1000) - SETTLE_S;
    const from = to - Math.min(seconds, HISTORY_S) + 1;
    const held = this.history.filter((p) => p.t >= from);
    if (held.length >= to - from + 1) return held;
    return readPoints(this.redis, this.shards, from, to);
  }

  subscribe(res: ServerResponse): void {
    if (this.clients.size >= MAX_LISTENERS) {
      const body = JSON.stringify({ error: 'overloaded', message: `this monitor feeds ${MAX_LISTENERS} live dashboards already; retry, or open another monitor` });
      res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '5', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    res.write('retry: 2000\n\n');
    if (this.last) res.write(`data: ${JSON.stringify(this.last)}\n\n`);
    this.clients.add(res);
    res.on('close', () => {
      this.clients.delete(res);
      if (this.clients.size === 0) this.stop();
    });
    if (this.timer === null) this.timer = setInterval(() => void this.tick(), 1_000);
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    const now = Date.now();
    const t = Math.floor(now / 1000) - SETTLE_S;
    let frame: Frame;
    try {
      const lastHeld = this.history.at(-1)?.t ?? t - 1;
      const points = await readPoints(this.redis, this.shards, Math.max(lastHeld + 1, t - 60), t);
      for (const p of points) this.history.push(p);
      while (this.history.length > HISTORY_S) this.history.shift();
      const queue = await readQueueState(this.redis, this.shards, now);
      this.queueHistory.record(queue, now);
      const full = await redisFull(this.redis).catch(() => false);
      frame = { point: this.history.at(-1) ?? null, points, queue, topFailing: topFailing(this.history.slice(-60), 10), redisUp: true, redisFull: full, at: now };
    } catch (err) {
      if (this.last?.redisUp !== false) this.logger.warn({ err: (err as Error).message }, 'dashboard: Redis unavailable');
      frame = { point: null, points: [], queue: null, topFailing: [], redisUp: false, redisFull: false, at: now };
    }
    this.last = frame;
    const data = `data: ${JSON.stringify(frame)}\n\n`;
    for (const c of this.clients) {
      if (c.writableLength > MAX_UNREAD_BYTES) {
        this.clients.delete(c);
        c.destroy();
        continue;
      }
      c.write(data);
    }
    if (this.clients.size === 0) this.stop();
    this.busy = false;
  }

  close(): void {
    this.stop();
    for (const c of this.clients) c.end();
    this.clients.clear();
  }
}
