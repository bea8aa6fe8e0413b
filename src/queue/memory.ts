/**
 * Redis memory as `INFO memory` reports it, per primary: what `usage` adds
 * up, and what tells the dashboard that Redis is full.
 */
import { Cluster, type Redis } from 'ioredis';
import type { RedisClient } from './redis.js';

export interface Memory {
  used: number;
  /** maxmemory; 0 when none is set. */
  max: number;
  policy: string;
}

/** Pure: the `INFO memory` fields read here. */
export function parseMemoryInfo(info: string): Memory {
  return {
    used: Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0),
    max: Number(/^maxmemory:(\d+)/m.exec(info)?.[1] ?? 0),
    policy: /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? '',
  };
}

/** Pure: at maxmemory under noeviction Redis still answers reads but refuses every write. */
export function isFull(m: Memory): boolean {
  return m.max > 0 && m.policy === 'noeviction' && m.used >= m.max;
}

/** Every primary behind a client: the one Redis, or each master of a Cluster (once its slot map is loaded). */
export function primaries(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis as Redis];
}

/** The memory of one primary. */
export async function memoryOf(node: Redis): Promise<Memory> {
  return parseMemoryInfo(await node.info('memory'));
}
