/**
 * Whether Redis answers now, for a readiness check: a PING to every
 * primary, each bounded by a timeout.
 *
 * A client's own status is not enough. A standalone or Sentinel client
 * stays 'ready' while the Redis it is connected to hangs, and a Cluster
 * client stays 'ready' while one primary is down (its slots' writes time
 * out) or the whole cluster refuses commands. Meanwhile every write times
 * out into a 503, and a load balancer reading `/readyz` kept sending
 * traffic to the process.
 *
 * One probe runs at a time, and its answer is kept for `cacheMs`: however
 * often `/readyz` is asked (it needs no token), Redis sees at most one
 * PING per primary per `cacheMs`.
 */
import { Cluster } from 'ioredis';
import type { RedisClient } from './redis.js';

export class RedisProbe {
  private last: { at: number; ok: boolean } | null = null;
  private running: Promise<boolean> | null = null;

  constructor(
    private readonly redis: RedisClient,
    private readonly timeoutMs: number,
    private readonly cacheMs = 1_000,
  ) {}

  /** True when every primary answered a PING within the timeout (at most `cacheMs` ago). */
  answers(now = Date.now()): Promise<boolean> {
    if (this.last !== null && now - this.last.at < this.cacheMs) return Promise.resolve(this.last.ok);
    this.running ??= this.probe().then((ok) => {
      this.last = { at: Date.now(), ok };
      this.running = null;
      return ok;
    });
    return this.running;
  }

  private async probe(): Promise<boolean> {
    const nodes = this.redis instanceof Cluster ? this.redis.nodes('master') : [this.redis];
    if (nodes.length === 0) return false;
    const answers = await Promise.all(nodes.map((node) => this.ping(node)));
    return answers.every(Boolean);
  }

  private ping(node: { ping(): Promise<string> }): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), this.timeoutMs);
      node.ping().then(
        (reply) => {
          clearTimeout(timer);
          resolve(reply === 'PONG');
        },
        () => {
          clearTimeout(timer);
          resolve(false);
        },
      );
    });
  }
}
