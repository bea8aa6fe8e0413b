/**
 * Reads the state of the queue from Redis in one pipelined round trip per
 * shard: what waits, what is delayed, what is dead, how old the oldest
 * waiting postback is, and whether the consumer group exists. Used by the
 * Prometheus gauges and the dashboard.
 */
import type { RedisClient } from './redis.js';
import { GROUP, type ShardKeys } from './keys.js';

export interface QueueState {
  /** Postbacks not finished: waiting, delayed, retrying or in flight. */
  postbacks: number;
  /** Entries in the first-attempt and retry streams (waiting or in flight). */
  freshEntries: number;
  retryEntries: number;
  /** Entries waiting in the delayed and retries sets. */
  delayed: number;
  retries: number;
  deadLetters: number;
  /** Age in seconds of the oldest entry still in a stream (0 when empty). */
  lagSeconds: number;
  /** Entries read by a consumer and not yet acknowledged. */
  pending: number;
  consumers: number;
  groupPresent: boolean;
}

function idTime(reply: unknown): number | null {
  const first = (reply as [string, unknown][] | null)?.[0];
  if (!first) return null;
  const ms = Number(first[0].split('-')[0]);
  return Number.isFinite(ms) ? ms : null;
}

function groupInfo(reply: unknown): { present: boolean; consumers: number; pending: number } {
  for (const g of (reply as (string | number)[][] | null) ?? []) {
    const info: Record<string, string | number> = {};
    for (let i = 0; i + 1 < g.length; i += 2) info[String(g[i])] = g[i + 1] as string | number;
    if (info.name === GROUP) return { present: true, consumers: Number(info.consumers), pending: Number(info.pending) };
  }
  return { present: false, consumers: 0, pending: 0 };
}

export async function readQueueState(redis: RedisClient, shards: readonly ShardKeys[], now: number): Promise<QueueState> {
  const total: QueueState = {
    postbacks: 0,
    freshEntries: 0,
    retryEntries: 0,
    delayed: 0,
    retries: 0,
    deadLetters: 0,
    lagSeconds: 0,
    pending: 0,
    consumers: 0,
    groupPresent: shards.length > 0,
  };
  let oldest = Infinity;
  for (const k of shards) {
    // A pipeline, not MULTI: a full Redis (maxmemory, noeviction) refuses
    // every command queued in a MULTI, reads too, and the queue would read
    // as "Redis down" exactly when it is full (the dashboard, /readyz,
    // pb_redis_up and the queue gauges all come from here).
    const res = await redis
      .pipeline()
      .get(k.count)
      .xlen(k.stream)
      .xlen(k.retry)
      .zcard(k.delayed)
      .zcard(k.retries)
      .xlen(k.dead)
      .xrange(k.stream, '-', '+', 'COUNT', 1)
      .xrange(k.retry, '-', '+', 'COUNT', 1)
      .exec();
    if (res === null) throw new Error('queue state: pipeline aborted');
    // A pipeline answers each command apart (MULTI failed whole): Redis
    // away fails every one of them, and must not read as an empty queue.
    const failed = res.find(([err]) => err);
    if (failed) throw failed[0] as Error;
    const v = res.map(([, value]) => value);
    total.postbacks += Number(v[0] ?? 0);
    total.freshEntries += Number(v[1] ?? 0);
    total.retryEntries += Number(v[2] ?? 0);
    total.delayed += Number(v[3] ?? 0);
    total.retries += Number(v[4] ?? 0);
    total.deadLetters += Number(v[5] ?? 0);
    for (const r of [v[6], v[7]]) {
      const t = idTime(r);
      if (t !== null && t < oldest) oldest = t;
    }
    let groups: unknown = null;
    try {
      groups = await redis.xinfo('GROUPS', k.stream);
    } catch {
      groups = null; // no stream yet
    }
    const g = groupInfo(groups);
    total.groupPresent &&= g.present;
    total.consumers = Math.max(total.consumers, g.consumers);
    total.pending += g.pending;
  }
  total.lagSeconds = Number.isFinite(oldest) ? Math.max(0, (now - oldest) / 1000) : 0;
  return total;
}
