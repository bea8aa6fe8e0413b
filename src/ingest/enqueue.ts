/**
 * Writes validated requests to Redis. The requests of one event-loop turn
 * are gathered per shard and template and written by one `enqueue-n.lua`
 * call (group commit): one round trip and one script run for all of them, so the cost
 * of a Redis command is shared by every request that arrived together. No
 * request waits for another: the batch goes out at the end of the turn
 * (setImmediate), however small.
 *
 * Each request still lands whole or not at all, with its own answer: its
 * postbacks as entries of up to MAX_ITEMS_PER_ENTRY items, its template
 * once (content-addressed), refused alone when the shard holds
 * INGEST_MAX_QUEUE postbacks, put in the delayed set when it has a delay.
 * Requests go round-robin over the QUEUE_SHARDS shards, each whole in one
 * shard (one hash tag, so one Cluster slot and one script call); a request
 * with an idempotency key always goes to the key's shard, where the same
 * script run checks and records the key (idempotency.ts).
 *
 * Bytes to Redis are kept small (they are most of what a remote Redis
 * costs): one key name per call, a short header per request, no clock or
 * statistics in the call (`accepted` and `requests` are added up here and
 * written once a second, like delivery's).
 */
import { PostbackError } from '../errors.js';
import { StatsRecorder } from '../observability/stats.js';
import { encodeEntry, encodeTemplate, MAX_ITEMS_PER_ENTRY } from '../queue/codec.js';
import { templateKey, type ShardKeys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis.js';
import { ENQUEUE_NEED_TEMPLATE, ENQUEUE_QUEUE_FULL } from '../queue/scripts.js';
import type { CompiledTemplate } from '../postback/template.js';
import type { IngestRequest } from './parse-request.js';
import { parseRecord, recordOf, shardFor, type Idempotency } from './idempotency.js';

const DAY_MS = 86_400_000;
const KNOWN_MAX = 10_000;
/** Largest group written by one script call (bounded argument count and size). */
const GROUP_MAX_REQUESTS = 500;
const GROUP_MAX_BYTES = 4 * 1_048_576;

export interface EnqueueSettings {
  /** Longest a postback can live: TTL + largest delay. */
  lifetimeMs: number;
  /** Postbacks all shards together may hold before ingest answers 503 (0: no limit). */
  maxQueue: number;
  /** How long per-second statistics are kept. */
  statsRetentionS: number;
  /** INGEST_IDEMPOTENCY_TTL_MS. */
  idempotencyTtlMs: number;
  /** INGEST_WAIT_REPLICAS and INGEST_WAIT_REPLICAS_MS (0: no WAIT). */
  waitReplicas?: number;
  waitReplicasMs?: number;
}

/** What a request got: its id (the first request's, for a repeated idempotency key) and postbacks accepted. */
export interface Enqueued {
  id: string;
  accepted: number;
  /** The answer of an earlier request with the same idempotency key: nothing was queued now. */
  replayed: boolean;
}

interface Pending {
  template: CompiledTemplate;
  due: number;
  /** Due later than its ingest time: written to the delayed set. */
  delayed: boolean;
  postbacks: number;
  entries: Buffer[];
  bytes: number;
  /** Send the template even if this process believes it is stored. */
  withTemplate: boolean;
  requestId: string;
  idempotency: Idempotency | null;
  resolve: (r: Enqueued) => void;
  reject: (err: PostbackError) => void;
}

/** Nothing was written: Redis refused the call, or it never left. */
function notQueued(err: unknown): PostbackError {
  return new PostbackError('PB_ERR_REDIS_UNAVAILABLE', 'Redis is unavailable; nothing was queued, retry later', { cause: err });
}

/**
 * A failed script call as the client's answer. Only what proves the script
 * did not run says "nothing was queued": a reply error from Redis (OOM,
 * LOADING, READONLY ...: a script is refused whole), or a connection that
 * could not take the call. A timeout, or a connection lost with the call
 * written, may have queued it (Redis ran it, the reply was lost): the
 * answer says so, so that a client retries with its Idempotency-Key
 * rather than trust that a plain retry cannot duplicate.
 */
function unavailable(err: unknown): PostbackError {
  const e = err as Error;
  if (e.name === 'ReplyError') {
    if (e.message.startsWith('OOM')) {
      return new PostbackError('PB_ERR_REDIS_FULL', 'Redis is full (maxmemory reached); nothing was queued, retry later', { cause: err });
    }
    return notQueued(err);
  }
  if (e.message.includes("Stream isn't writeable")) return notQueued(err);
  const why = e.message.includes('timed out') ? 'in time' : 'before the connection was lost';
  return new PostbackError(
    'PB_ERR_REDIS_UNAVAILABLE',
    `Redis did not confirm the write ${why}: the request may have been queued; retry with the same Idempotency-Key to be safe`,
    { cause: err },
  );
}

export class Enqueuer {
  /** `<shard> <template id>` this process has seen stored (the script re-checks). */
  private readonly known = new Set<string>();
  private next = 0;
  private readonly templateTtl: string;
  private readonly maxQueue: string;
  private readonly idempotencyTtl: string;
  private readonly waitReplicas: number;
  private readonly waitReplicasMs: number;
  private readonly stats: StatsRecorder;
  /** Requests waiting for the end of this turn, per shard and template. */
  private readonly waiting = new Map<string, { shard: ShardKeys; list: Pending[] }>();
  private scheduled = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly shards: readonly ShardKeys[],
    settings: EnqueueSettings,
  ) {
    // A day of margin past any postback that can still reference it.
    this.templateTtl = String(settings.lifetimeMs + DAY_MS);
    this.maxQueue = String(settings.maxQueue === 0 ? 0 : Math.max(1, Math.ceil(settings.maxQueue / shards.length)));
    this.idempotencyTtl = String(settings.idempotencyTtlMs);
    this.waitReplicas = settings.waitReplicas ?? 0;
    this.waitReplicasMs = settings.waitReplicasMs ?? 0;
    this.stats = new StatsRecorder(redis, shards[0] as ShardKeys, settings.statsRetentionS);
    this.stats.start();
  }

  /** Writes the statistics gathered (at shutdown, after the last request). */
  close(): Promise<void> {
    return this.stats.close();
  }

  /**
   * Resolves with what the request got (for a repeated idempotency key,
   * the first request's answer, nothing written); rejects with
   * PB_ERR_QUEUE_FULL, PB_ERR_REDIS_FULL, PB_ERR_REDIS_UNAVAILABLE or
   * PB_ERR_IDEMPOTENCY_KEY_REUSED (nothing written).
   */
  enqueue(req: IngestRequest, requestId: string, now: number, idempotency: Idempotency | null = null): Promise<Enqueued> {
    const { template, items } = req;
    const entries: Buffer[] = [];
    let bytes = 0;
    for (let first = 0; first < items.length; first += MAX_ITEMS_PER_ENTRY) {
      const entry = encodeEntry({
        requestId,
        templateId: template.id,
        requestTime: now,
        dueTime: now + req.delayMs,
        firstIndex: first,
        attempts: 0,
        items: first === 0 && items.length <= MAX_ITEMS_PER_ENTRY ? items : items.slice(first, first + MAX_ITEMS_PER_ENTRY),
        last: null,
      });
      entries.push(entry);
      bytes += entry.length;
    }
    const index = idempotency === null ? this.next++ % this.shards.length : shardFor(idempotency.id, this.shards.length);
    const shard = this.shards[index] as ShardKeys;
    return new Promise<Enqueued>((resolve, reject) => {
      this.add(shard, { template, due: now + req.delayMs, delayed: req.delayMs > 0, postbacks: items.length, entries, bytes, withTemplate: false, requestId, idempotency, resolve, reject });
    });
  }

  private add(shard: ShardKeys, p: Pending): void {
    const key = `${shard.shard} ${p.template.id}`;
    let group = this.waiting.get(key);
    if (group === undefined) {
      group = { shard, list: [] };
      this.waiting.set(key, group);
    }
    group.list.push(p);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    for (const [key, { shard, list }] of this.waiting) {
      this.waiting.delete(key);
      let start = 0;
      while (start < list.length) {
        let end = start;
        let bytes = 0;
        while (end < list.length && end - start < GROUP_MAX_REQUESTS && (end === start || bytes + (list[end] as Pending).bytes <= GROUP_MAX_BYTES)) {
          bytes += (list[end] as Pending).bytes;
          end++;
        }
        void this.write(shard, list.slice(start, end));
        start = end;
      }
    }
  }

  /** Writes requests of one shard and one template. */
  private async write(shard: ShardKeys, group: Pending[]): Promise<void> {
    const t = (group[0] as Pending).template;
    const send = !this.known.has(`${shard.shard} ${t.id}`) || group.some((p) => p.withTemplate);
    // Every key the script touches, declared (scripts.ts): the template's, the
    // count, the stream or delayed set, each keyed request's record.
    const keys = new Set([templateKey(shard, t.id), shard.count]);
    for (const p of group) {
      keys.add(p.delayed ? shard.delayed : shard.stream);
      if (p.idempotency !== null) keys.add(shard.idemPrefix + p.idempotency.id);
    }
    const args: (string | number | Buffer)[] = [
      keys.size,
      ...keys,
      this.templateTtl,
      this.maxQueue,
      send ? encodeTemplate({ method: t.method, url: t.source }) : '',
      this.idempotencyTtl,
    ];
    for (const p of group) {
      const idem = p.idempotency;
      const head = p.delayed ? `${p.postbacks},${p.entries.length},${p.due}` : `${p.postbacks},${p.entries.length}`;
      if (idem === null) args.push(head, ...p.entries);
      else args.push(p.delayed ? `${head},i` : `${head},,i`, idem.id, recordOf(idem.fingerprint, p.requestId, p.postbacks), ...p.entries);
    }
    let codes: (number | string)[];
    try {
      codes = await this.redis.pbEnqueue(...args);
    } catch (err) {
      const e = unavailable(err);
      if (e.code === 'PB_ERR_REDIS_FULL' && group.length > 1 && group.some((p) => p.idempotency !== null)) {
        // A full Redis refuses the whole call at its first write, though a
        // repeated key's replay writes nothing: each keyed request again,
        // alone, so that a retry of one already queued gets its first answer.
        for (const p of group) {
          if (p.idempotency !== null) void this.write(shard, [p]);
          else p.reject(e);
        }
        return;
      }
      for (const p of group) p.reject(e);
      return;
    }
    const unreplicated = this.waitReplicas > 0 ? await this.replicated() : null;
    const answeredAt = Date.now();
    for (let i = 0; i < group.length; i++) {
      const p = group[i] as Pending;
      const code = codes[i];
      const known = `${shard.shard} ${p.template.id}`;
      if (typeof code === 'string') {
        // The key was recorded within its TTL: the first answer, or 422 for another request.
        const first = parseRecord(code);
        if (first === null || p.idempotency === null) p.reject(notQueued(new Error('unreadable idempotency record')));
        else if (first.fingerprint !== p.idempotency.fingerprint) {
          p.reject(new PostbackError('PB_ERR_IDEMPOTENCY_KEY_REUSED', `this Idempotency-Key was used for another request (${first.requestId}) within INGEST_IDEMPOTENCY_TTL_MS; nothing was queued`));
        } else if (unreplicated !== null) p.reject(unreplicated);
        else p.resolve({ id: first.requestId, accepted: first.accepted, replayed: true });
      } else if (code === ENQUEUE_NEED_TEMPLATE) {
        // Redis lost the template: once more, with it (never twice).
        this.known.delete(known);
        if (p.withTemplate) p.reject(notQueued(new Error('template not stored')));
        else this.add(shard, { ...p, withTemplate: true });
      } else if (code === ENQUEUE_QUEUE_FULL) {
        p.reject(new PostbackError('PB_ERR_QUEUE_FULL', 'the queue is full (INGEST_MAX_QUEUE); nothing was queued, retry later'));
      } else {
        if (this.known.size >= KNOWN_MAX) this.known.clear();
        this.known.add(known);
        this.stats.ingested(p.postbacks, answeredAt);
        if (unreplicated !== null) p.reject(unreplicated);
        else p.resolve({ id: p.requestId, accepted: p.postbacks, replayed: false });
      }
    }
  }

  /**
   * INGEST_WAIT_REPLICAS: Redis's WAIT on this connection, after the write,
   * so that a 202 means the replicas have it too and a failover cannot lose
   * it (replication is otherwise asynchronous: docs/SCALING.md). Null when
   * enough replicas confirmed in time; otherwise the 503 to answer: the
   * primary has the write, so it may well be delivered, and a retry with
   * the same Idempotency-Key gets its first answer once the replicas have it.
   */
  private async replicated(): Promise<PostbackError | null> {
    let confirmed: number;
    try {
      confirmed = Number(await this.redis.call('WAIT', String(this.waitReplicas), String(this.waitReplicasMs)));
    } catch (err) {
      return new PostbackError('PB_ERR_REDIS_UNAVAILABLE', 'Redis took the write, but asking its replicas failed: the request may have been queued; retry with the same Idempotency-Key', { cause: err });
    }
    if (confirmed >= this.waitReplicas) return null;
    return new PostbackError(
      'PB_ERR_REDIS_UNAVAILABLE',
      `Redis took the write, but ${confirmed} of the ${this.waitReplicas} replicas INGEST_WAIT_REPLICAS asks for confirmed it within INGEST_WAIT_REPLICAS_MS: the request may have been queued, and a failover could lose it; retry with the same Idempotency-Key`,
    );
  }
}
