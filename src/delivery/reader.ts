/**
 * Everything the delivery process reads from the streams, as raw entries:
 * - `read()`: XREADGROUP on the first-attempt stream and the retry stream
 *   together (COUNT applies to each, so first attempts never wait behind
 *   retries), blocking on a dedicated connection: no polling when idle;
 * - `reclaim()`: XAUTOCLAIM of entries a dead consumer left pending longer
 *   than the visibility timeout;
 * - `heartbeat()`: XCLAIM JUSTID of the entries this process still holds,
 *   so a slow batch is never mistaken for a dead consumer's;
 * - consumer-group housekeeping (create from 0, recreate after NOGROUP,
 *   delete consumers that left nothing pending).
 */
import type { RedisClient } from '../queue/redis.js';
import type { Logger } from '../observability/logger.js';
import { GROUP, type ShardKeys } from '../queue/keys.js';

export interface RawEntry {
  stream: string;
  id: string;
  /** Null when the entry was deleted while pending. */
  blob: Buffer | null;
  /** Released as a circuit breaker's probe (field `p`): its first postback goes out while the breaker is open. */
  probe?: boolean;
}

type ReadReply = [Buffer, [Buffer, Buffer[] | null][]][] | null;
type ClaimReply = [Buffer, [Buffer, Buffer[] | null][], Buffer[]?];

/**
 * The Buffer variants ioredis generates for every command but does not type
 * for these two (`call()` cannot be used: auto-pipelining mistakes its
 * first argument for a key).
 */
interface BufferStreamCommands {
  xreadgroupBuffer(...args: (string | number)[]): Promise<ReadReply>;
  xautoclaimBuffer(...args: (string | number)[]): Promise<ClaimReply>;
}

function toRaw(stream: string, entries: [Buffer, Buffer[] | null][]): RawEntry[] {
  return entries.map(([id, fields]) => {
    const raw: RawEntry = { stream, id: id.toString(), blob: fields?.[1] ?? null };
    if (fields !== null && fields.length >= 4 && fields[2]?.toString() === 'p') raw.probe = true;
    return raw;
  });
}

export class StreamReader {
  readonly streams: readonly string[];

  constructor(
    private readonly redis: RedisClient,
    private readonly blocking: RedisClient,
    keys: ShardKeys,
    private readonly consumer: string,
    private readonly logger: Logger,
  ) {
    this.streams = [keys.stream, keys.retry];
  }

  /** Creates the consumer groups that do not exist (from id 0), even in a full Redis (ensure-group-1.lua). */
  async ensureGroups(): Promise<void> {
    for (const stream of this.streams) await this.redis.pbEnsureGroup(stream, GROUP);
  }

  /** Up to `count` new entries per stream; [] after `blockMs` without any. */
  async read(count: number, blockMs: number): Promise<RawEntry[]> {
    let reply: ReadReply;
    try {
      reply = await (this.blocking as unknown as BufferStreamCommands).xreadgroupBuffer(
        'GROUP', GROUP, this.consumer, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', ...this.streams, '>', '>',
      );
    } catch (err) {
      if ((err as Error).message.includes('NOGROUP')) {
        this.logger.warn('consumer group missing (Redis lost its data?): creating it again');
        await this.ensureGroups();
        return [];
      }
      throw err;
    }
    if (reply === null) return [];
    return reply.flatMap(([stream, entries]) => toRaw(stream.toString(), entries));
  }

  /** Entries pending longer than `minIdleMs` under any consumer, now ours. */
  async reclaim(minIdleMs: number, count: number): Promise<RawEntry[]> {
    const out: RawEntry[] = [];
    for (const stream of this.streams) {
      let cursor = '0-0';
      do {
        let reply: ClaimReply;
        try {
          reply = await (this.redis as unknown as BufferStreamCommands).xautoclaimBuffer(
            stream, GROUP, this.consumer, minIdleMs, cursor, 'COUNT', Math.max(1, count - out.length),
          );
        } catch (err) {
          if ((err as Error).message.includes('NOGROUP')) {
            await this.ensureGroups();
            break;
          }
          throw err;
        }
        cursor = reply[0].toString();
        out.push(...toRaw(stream, reply[1]).filter((e) => e.blob !== null));
      } while (cursor !== '0-0' && out.length < count);
    }
    return out;
  }

  /** Resets the idle time of entries this process still holds. */
  async heartbeat(stream: string, ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += 1000) {
      await this.redis.xclaim(stream, GROUP, this.consumer, 0, ...ids.slice(i, i + 1000), 'JUSTID');
    }
  }

  /**
   * Deletes consumers that hold nothing and were idle for `idleMs`: one is
   * left behind by every process that stopped. Never one with pending
   * entries (deleting it would orphan them).
   */
  async pruneConsumers(idleMs: number, includingSelf = false): Promise<number> {
    let pruned = 0;
    for (const stream of this.streams) {
      let consumers: unknown[];
      try {
        consumers = (await this.redis.xinfo('CONSUMERS', stream, GROUP)) as unknown[];
      } catch {
        continue;
      }
      for (const c of consumers as (string | number)[][]) {
        const info: Record<string, string | number> = {};
        for (let i = 0; i + 1 < c.length; i += 2) info[String(c[i])] = c[i + 1] as string | number;
        const self = info.name === this.consumer;
        if (Number(info.pending) !== 0 || (self && !includingSelf)) continue;
        if (!self && Number(info.idle) < idleMs) continue;
        await this.redis.xgroup('DELCONSUMER', stream, GROUP, String(info.name));
        pruned++;
      }
    }
    return pruned;
  }
}
