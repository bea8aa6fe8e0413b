/**
 * `node dist/cli.js dlq <list|replay|purge>`: the dead-letter store (the
 * usage text is in args.ts). Ids are postback ids (`<request id>:<index>`).
 * Exit code 1 when an id was not found, 2 on bad usage.
 *
 * Dead letters are read a page at a time, never all at once, and a replay
 * or purge works on the dead letters that existed when it started: it stops
 * at the last one there was then, so postbacks that die again while it
 * runs (a partner still failing) are not taken a second time. A replayed
 * page goes back in one transaction: its templates, the entries, the
 * count, and the removal from the dead letters.
 */
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from '../queue/redis.js';
import { loadConfig, type Config } from '../config/index.js';
import { decodeDeadLetter, decodeEntry, decodeTemplate, encodeDeadLetter, encodeEntry, encodeTemplate, type DeadLetter, type Entry } from '../queue/codec.js';
import { allShards, templateKey, type ShardKeys } from '../queue/keys.js';
import { compareStreamIds } from '../queue/stream-id.js';
import { createRedis } from '../queue/redis.js';
import { templateId } from '../postback/template.js';
import { matches, parseDlqArgs, USAGE, type DlqPlan, type Filter } from './args.js';

interface Stored {
  streamId: string;
  letter: DeadLetter | null;
  /**
   * Set when the stream entry is a whole queue entry rather than a dead
   * letter: every postback of it, one letter each (this one among them).
   */
  siblings?: DeadLetter[];
}

/** The error of a postback dead-lettered inside a whole entry (see wholeEntryLetters). */
export const WHOLE_ENTRY_ERROR =
  'dead-lettered whole by a delivery process that could not read its format (an older version running beside a newer one during an upgrade); replay sends it';

/**
 * A delivery process that cannot decode an entry keeps it whole as a dead
 * letter. A delivery process from before entries v2 (0.2) does that to
 * every v2 entry a newer ingest or delivery writes while the two run side
 * by side during an upgrade: those postbacks were never attempted. This
 * version reads the entry, so each of its postbacks is listed, replayed and
 * purged as a dead letter of its own (PB_ERR_CODEC), its method and URL
 * template read from the shard's template key (a template lost to Redis
 * leaves it unreplayable, as any dead letter without its template).
 */
function wholeEntryLetters(e: Entry, template: { method: DeadLetter['method']; url: string } | null, deadTime: number): DeadLetter[] {
  return e.items.map((data, k) => ({
    id: `${e.requestId}:${e.firstIndex + k}`,
    method: template?.method ?? 'GET',
    template: template?.url ?? '',
    url: '',
    data,
    requestTime: e.requestTime,
    attempts: e.attempts,
    outcome: 'dead',
    status: e.last?.status ?? null,
    errorCode: 'PB_ERR_CODEC',
    error: WHOLE_ENTRY_ERROR,
    body: null,
    deadTime,
  }));
}

const PAGE = 1_000;
const DAY_MS = 86_400_000;

/** The id of the last dead letter in a shard now (the bound of a replay or purge), or null when there is none. */
async function lastId(redis: RedisClient, keys: ShardKeys): Promise<string | null> {
  const last = (await redis.xrevrange(keys.dead, '+', '-', 'COUNT', 1)) as [string, string[]][];
  return last[0]?.[0] ?? null;
}

/** Pages of dead letters of a shard, oldest first, from `since` (ms) up to `end` (an id, inclusive). */
async function* pages(redis: RedisClient, keys: ShardKeys, since: number | null, end: string, size = PAGE): AsyncGenerator<Stored[]> {
  let start = since === null ? '-' : String(since);
  for (;;) {
    const page = await redis.xrangeBuffer(keys.dead, start, end, 'COUNT', size);
    const stored: Stored[] = [];
    const wholes: { streamId: string; entry: Entry; at: number }[] = [];
    for (const [idBuf, fields] of page) {
      const streamId = idBuf.toString();
      const blob = fields[1] as Buffer;
      let letter: DeadLetter | null = null;
      try {
        letter = decodeDeadLetter(blob);
      } catch {
        try {
          // A whole queue entry: its letters once its template is read, below.
          wholes.push({ streamId, entry: decodeEntry(blob), at: stored.length });
          stored.push({ streamId, letter: null, siblings: [] });
          continue;
        } catch {
          letter = null;
        }
      }
      stored.push({ streamId, letter });
    }
    if (wholes.length > 0) {
      const raw = await Promise.all(wholes.map((w) => redis.getBuffer(templateKey(keys, w.entry.templateId))));
      // Back to front, so that the indexes of the wholes not yet expanded stay valid.
      for (let i = wholes.length - 1; i >= 0; i--) {
        const w = wholes[i] as (typeof wholes)[number];
        let template: { method: DeadLetter['method']; url: string } | null = null;
        const buf = raw[i];
        if (buf) {
          try {
            template = decodeTemplate(buf);
          } catch {
            template = null;
          }
        }
        const letters = wholeEntryLetters(w.entry, template, Number(w.streamId.split('-')[0]));
        stored.splice(w.at, 1, ...letters.map((letter) => ({ streamId: w.streamId, letter, siblings: letters })));
      }
    }
    yield stored;
    if (page.length < size) return;
    start = `(${(page[page.length - 1] as [Buffer, Buffer[]])[0].toString()}`;
  }
}

function summary(d: DeadLetter): Record<string, unknown> {
  return {
    id: d.id,
    method: d.method,
    url: d.url,
    attempts: d.attempts,
    outcome: d.outcome,
    status: d.status,
    error: d.error,
    errorCode: d.errorCode,
    body: d.body,
    requestTime: d.requestTime,
    deadTime: d.deadTime,
    template: d.template,
    data: d.data,
  };
}

/** A shard's next dead letter in the merge, and the rest of that shard's. */
interface Head {
  rest: AsyncGenerator<Stored>;
  next: Stored;
}

/**
 * Every shard's dead letters from `since`, merged into one list oldest
 * first (by stream id), so that `--limit N` is the N oldest overall. It
 * holds one page per shard, smaller pages the more shards there are.
 */
async function* oldestFirst(redis: RedisClient, shards: ShardKeys[], since: number | null): AsyncGenerator<Stored> {
  const size = Math.max(100, Math.floor(PAGE / shards.length));
  const heads: Head[] = [];
  const letters = async function* (keys: ShardKeys): AsyncGenerator<Stored> {
    for await (const page of pages(redis, keys, since, '+', size)) yield* page;
  };
  for (const keys of shards) {
    const rest = letters(keys);
    const first = await rest.next();
    if (!first.done) heads.push({ rest, next: first.value });
  }
  while (heads.length > 0) {
    let oldest = 0;
    for (let i = 1; i < heads.length; i++) {
      if (compareStreamIds((heads[i] as Head).next.streamId, (heads[oldest] as Head).next.streamId) < 0) oldest = i;
    }
    const head = heads[oldest] as Head;
    yield head.next;
    const after = await head.rest.next();
    if (after.done) heads.splice(oldest, 1);
    else head.next = after.value;
  }
}

async function list(redis: RedisClient, shards: ShardKeys[], plan: Extract<DlqPlan, { command: 'list' }>): Promise<number> {
  let n = 0;
  const unfiltered = Object.values(plan.filter).every((v) => v === null);
  for await (const s of oldestFirst(redis, shards, plan.filter.since)) {
    // `| head` closed the pipe (cli.ts drops what follows): no reader, no list.
    if (n >= plan.limit || !process.stdout.writable) break;
    const d = s.letter;
    if (d === null ? !unfiltered : !matches(plan.filter, d)) continue;
    n++;
    if (plan.json) {
      process.stdout.write(`${JSON.stringify(d ? { ...summary(d), streamId: s.streamId } : { id: null, streamId: s.streamId, outcome: 'undecodable', errorCode: 'PB_ERR_CODEC' })}\n`);
    } else if (d) {
      const why = d.status !== null ? `HTTP ${d.status}` : (d.errorCode ?? '');
      process.stdout.write(
        `${d.id}\t${d.outcome}\t${d.attempts} attempt${d.attempts === 1 ? '' : 's'}\t${why}\t${d.error ?? ''}\t${d.method} ${d.url || d.template}\n`,
      );
    } else {
      process.stdout.write(`(undecodable entry ${s.streamId})\n`);
    }
  }
  if (!plan.json) process.stderr.write(`${n} dead letter${n === 1 ? '' : 's'}\n`);
  return 0;
}

type Change = Extract<DlqPlan, { command: 'replay' | 'purge' }>;

/** Which dead letters a replay or purge takes: by id, all, or by filter. */
function picker(plan: Change): (d: DeadLetter | null) => boolean {
  if (plan.ids.length > 0) {
    const wanted = new Set(plan.ids);
    return (d) => d !== null && wanted.has(d.id);
  }
  if (plan.all) return () => true;
  return (d) => d !== null && matches(plan.filter as Filter, d);
}

/** Whole entries of a page some of whose postbacks a replay or purge takes. */
interface Wholes {
  /** Their other postbacks: written back as dead letters of their own. */
  rest: DeadLetter[];
  /** All their postbacks, still in the shard's count (see settleWholes). */
  postbacks: number;
}

/**
 * Queues, in the page's transaction, what taking whole entries apart
 * needs. A delivery process that dead-letters an entry whole counts none
 * of its postbacks finished, so each entry taken apart leaves the count,
 * whatever becomes of its postbacks (replayed: counted again; purged;
 * left: ordinary dead letters, written back here).
 */
function settleWholes(tx: ChainableCommander, keys: ShardKeys, wholes: Wholes): void {
  for (const d of wholes.rest) tx.xadd(keys.dead, '*', 'm', encodeDeadLetter(d));
  if (wholes.postbacks > 0) tx.decrby(keys.count, wholes.postbacks);
}

/** Puts a page of dead letters back in the queue, atomically; returns how many. */
async function replayPage(
  redis: RedisClient,
  keys: ShardKeys,
  letters: { streamId: string; letter: DeadLetter }[],
  lifetimeMs: number,
  wholes: Wholes,
): Promise<number> {
  const tx = redis.multi();
  settleWholes(tx, keys, wholes);
  const templates = new Set<string>();
  const now = Date.now();
  for (const { letter: d } of letters) {
    const tplId = templateId(d.method, d.template);
    if (!templates.has(tplId)) {
      templates.add(tplId);
      tx.set(templateKey(keys, tplId), encodeTemplate({ method: d.method, url: d.template }), 'PX', lifetimeMs);
    }
    const colon = d.id.lastIndexOf(':');
    const entry = encodeEntry({
      requestId: d.id.slice(0, colon),
      templateId: tplId,
      requestTime: d.requestTime,
      dueTime: now,
      firstIndex: Number(d.id.slice(colon + 1)),
      attempts: 0,
      items: [d.data],
      last: null,
    });
    tx.xadd(keys.stream, '*', 'm', entry);
  }
  tx.incrby(keys.count, letters.length);
  tx.xdel(keys.dead, ...letters.map((l) => l.streamId));
  let res: Awaited<ReturnType<typeof tx.exec>>;
  try {
    res = await tx.exec();
  } catch (err) {
    // A full Redis refuses the XADDs as they are queued: the whole transaction is discarded.
    const full = /OOM|EXECABORT/.test((err as Error).message);
    throw new Error(
      full
        ? `Redis is full (maxmemory): none of this page of ${letters.length} dead letters was replayed; free memory or raise maxmemory (README, Failure modes), then run it again`
        : `replaying ${letters.length} dead letters failed: ${(err as Error).message}; none of this page was replayed`,
      { cause: err },
    );
  }
  if (res === null || res.some(([err]) => err)) {
    const err = res?.find(([e]) => e)?.[0];
    throw new Error(`replaying ${letters.length} dead letters failed${err ? `: ${err.message}` : ''}; none of this page was replayed`);
  }
  return letters.length;
}

async function change(redis: RedisClient, config: Config, shards: ShardKeys[], plan: Change): Promise<number> {
  const verb = plan.command === 'replay' ? 'replayed' : 'purged';
  const lifetime = config.delivery.ttlMs + config.delivery.maxDelayMs + DAY_MS;
  const pick = picker(plan);
  const found = new Set<string>();
  let n = 0;
  for (const keys of shards) {
    if (plan.command === 'purge' && plan.all && !plan.dryRun) {
      // Counted and deleted in one script (dlq-purge-1.lua: not MULTI, which a full Redis refuses whole).
      n += Number(await redis.pbDlqPurge(keys.dead));
      continue;
    }
    const end = await lastId(redis, keys);
    if (end === null) continue;
    for await (const page of pages(redis, keys, plan.ids.length > 0 ? null : plan.filter.since, end)) {
      const taken: { streamId: string; letter: DeadLetter }[] = [];
      const undecodable: string[] = [];
      /** Whole entries some of whose postbacks were taken: the others stay, as dead letters of their own. */
      const split = new Map<string, { siblings: DeadLetter[]; taken: Set<DeadLetter> }>();
      for (const s of page) {
        if (!pick(s.letter)) continue;
        if (s.letter === null) {
          undecodable.push(s.streamId);
          continue;
        }
        found.add(s.letter.id);
        if (plan.command === 'replay' && s.letter.template === '') {
          process.stderr.write(`${s.letter.id}: its URL template was lost; cannot replay (purge it)\n`);
          continue;
        }
        taken.push({ streamId: s.streamId, letter: s.letter });
        if (s.siblings) {
          const part = split.get(s.streamId) ?? { siblings: s.siblings, taken: new Set<DeadLetter>() };
          part.taken.add(s.letter);
          split.set(s.streamId, part);
        }
      }
      const wholes: Wholes = {
        rest: [...split.values()].flatMap((p) => p.siblings.filter((d) => !p.taken.has(d))),
        postbacks: [...split.values()].reduce((n, p) => n + p.siblings.length, 0),
      };
      if (plan.dryRun) {
        n += taken.length + (plan.command === 'purge' ? undecodable.length : 0);
      } else if (plan.command === 'replay') {
        if (undecodable.length > 0) process.stderr.write(`${undecodable.length} undecodable dead letters left in place (purge them)\n`);
        if (taken.length > 0) n += await replayPage(redis, keys, taken, lifetime, wholes);
      } else {
        const ids = [...new Set(taken.map((l) => l.streamId)), ...undecodable];
        if (ids.length > 0) {
          const tx = redis.multi();
          settleWholes(tx, keys, wholes);
          tx.xdel(keys.dead, ...ids);
          const res = await tx.exec();
          const err = res?.find(([e]) => e)?.[0];
          if (res === null || err) throw new Error(`purging failed${err ? `: ${err.message}` : ''}; nothing of this page was purged`);
          n += taken.length + undecodable.length;
        }
      }
    }
  }
  process.stdout.write(plan.dryRun ? `would be ${verb}: ${n}\n` : `${verb} ${n}\n`);
  const missing = plan.ids.filter((id) => !found.has(id));
  if (missing.length > 0) process.stderr.write(`not found: ${missing.join(' ')}\n`);
  return missing.length > 0 ? 1 : 0;
}

export async function runDlq(argv: string[]): Promise<void> {
  const parsed = parseDlqArgs(argv);
  if (!parsed.ok) {
    process.stderr.write(`dlq: ${parsed.error}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const config = loadConfig();
  const redis = createRedis(config, 'cli', 'dlq');
  const shards = allShards(config.redis.prefix, config.redis.shards);
  try {
    const plan = parsed.plan;
    process.exitCode = plan.command === 'list' ? await list(redis, shards, plan) : await change(redis, config, shards, plan);
  } finally {
    redis.disconnect();
  }
}
