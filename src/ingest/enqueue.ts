/**
 * Writes one validated request to Redis: its template once
 * (content-addressed) and its postbacks as entries of up to
 * MAX_ITEMS_PER_ENTRY items, in one EVALSHA, so the request lands all or
 * none and costs one round trip (auto-pipelined with concurrent requests).
 * Requests go round-robin over the QUEUE_SHARDS shards, a whole request in
 * one shard (one hash tag, so one Cluster slot and one script call).
 * The same script refuses the write when the shard already holds
 * INGEST_MAX_QUEUE postbacks, and puts delayed postbacks in the delayed set.
 */
import type { RedisClient } from '../queue/redis.js';
import { PostbackError } from '../errors.js';
import { encodeEntry, encodeTemplate, MAX_ITEMS_PER_ENTRY } from '../queue/codec.js';
import { statsKey, templateKey, type ShardKeys } from '../queue/keys.js';
import { ENQUEUE_NEED_TEMPLATE, ENQUEUE_QUEUE_FULL } from '../queue/scripts.js';
import type { IngestRequest } from './parse-request.js';

const DAY_MS = 86_400_000;
const KNOWN_MAX = 10_000;

export interface EnqueueSettings {
  /** Longest a postback can live: TTL + largest delay. */
  lifetimeMs: number;
  /** Postbacks all shards together may hold before ingest answers 503 (0: no limit). */
  maxQueue: number;
  /** How long per-second statistics are kept. */
  statsRetentionS: number;
}

export class Enqueuer {
  /** `<shard> <template id>` this process has seen stored (the script re-checks). */
  private readonly known = new Set<string>();
  private next = 0;
  private readonly templateTtl: string;
  private readonly maxQueue: string;
  private readonly retention: string;

  constructor(
    private readonly redis: RedisClient,
    private readonly shards: readonly ShardKeys[],
    settings: EnqueueSettings,
  ) {
    // A day of margin past any postback that can still reference it.
    this.templateTtl = String(settings.lifetimeMs + DAY_MS);
    this.maxQueue = String(settings.maxQueue === 0 ? 0 : Math.max(1, Math.ceil(settings.maxQueue / shards.length)));
    this.retention = String(settings.statsRetentionS);
  }

  /**
   * Resolves with the number of postbacks written; rejects with
   * PB_ERR_QUEUE_FULL or PB_ERR_REDIS_UNAVAILABLE (nothing written).
   */
  async enqueue(req: IngestRequest, requestId: string, now: number): Promise<number> {
    const { template, items } = req;
    const dueTime = now + req.delayMs;
    const k = this.shards[this.next++ % this.shards.length] as ShardKeys;
    const known = `${k.shard} ${template.id}`;
    const args: (string | Buffer)[] = [
      templateKey(k, template.id),
      k.stream,
      k.delayed,
      k.count,
      statsKey(k, Math.floor(now / 1000)),
      '',
      this.templateTtl,
      String(dueTime),
      String(now),
      String(items.length),
      this.maxQueue,
      this.retention,
    ];
    for (let first = 0; first < items.length; first += MAX_ITEMS_PER_ENTRY) {
      args.push(
        encodeEntry({
          requestId,
          templateId: template.id,
          requestTime: now,
          dueTime,
          firstIndex: first,
          attempts: 0,
          items: first === 0 && items.length <= MAX_ITEMS_PER_ENTRY ? items : items.slice(first, first + MAX_ITEMS_PER_ENTRY),
          last: null,
        }),
      );
    }
    let added: number;
    try {
      if (!this.known.has(known)) args[5] = encodeTemplate({ method: template.method, url: template.source });
      added = await this.redis.pbEnqueue(...args);
      if (added === ENQUEUE_NEED_TEMPLATE) {
        this.known.delete(known);
        args[5] = encodeTemplate({ method: template.method, url: template.source });
        added = await this.redis.pbEnqueue(...args);
      }
    } catch (err) {
      const timedOut = (err as Error).message.includes('timed out');
      const message = timedOut
        ? 'Redis did not confirm the write in time; retry later (the request may have been queued)'
        : 'Redis is unavailable; nothing was queued, retry later';
      throw new PostbackError('PB_ERR_REDIS_UNAVAILABLE', message, { cause: err });
    }
    if (added === ENQUEUE_QUEUE_FULL) {
      throw new PostbackError('PB_ERR_QUEUE_FULL', 'the queue is full (INGEST_MAX_QUEUE); nothing was queued, retry later');
    }
    if (this.known.size >= KNOWN_MAX) this.known.clear();
    this.known.add(known);
    return items.length;
  }
}
