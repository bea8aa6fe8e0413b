/**
 * `node dist/cli.js dlq <list|replay|purge>`: the dead-letter store.
 *   dlq list [--json] [--limit N]   oldest first; --json: one object per line
 *   dlq replay <id...|--all>        back to the queue with a fresh attempt count
 *   dlq purge <id...|--all>         delete for good
 * Ids are postback ids (`<request id>:<index>`). Exit code 1 when an id was
 * not found, 2 on bad usage.
 */
import { parseArgs } from 'node:util';
import type { RedisClient } from '../queue/redis.js';
import { loadConfig, type Config } from '../config/index.js';
import { decodeDeadLetter, encodeEntry, encodeTemplate, type DeadLetter } from '../queue/codec.js';
import { allShards, templateKey, type ShardKeys } from '../queue/keys.js';
import { createRedis } from '../queue/redis.js';
import { templateId } from '../postback/template.js';

interface Stored {
  keys: ShardKeys;
  streamId: string;
  letter: DeadLetter | null;
}

const PAGE = 1_000;
const DAY_MS = 86_400_000;

async function* scan(redis: RedisClient, keys: ShardKeys): AsyncGenerator<Stored> {
  let start = '-';
  for (;;) {
    const page = await redis.xrangeBuffer(keys.dead, start, '+', 'COUNT', PAGE);
    for (const [idBuf, fields] of page) {
      let letter: DeadLetter | null = null;
      try {
        letter = decodeDeadLetter(fields[1] as Buffer);
      } catch {
        letter = null;
      }
      yield { keys, streamId: idBuf.toString(), letter };
    }
    if (page.length < PAGE) return;
    start = `(${(page[page.length - 1] as [Buffer, Buffer[]])[0].toString()}`;
  }
}

function shards(config: Config): ShardKeys[] {
  return allShards(config.redis.prefix, config.redis.shards);
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

async function list(redis: RedisClient, config: Config, json: boolean, limit: number): Promise<number> {
  let n = 0;
  for (const keys of shards(config)) {
    for await (const s of scan(redis, keys)) {
      if (n >= limit) return 0;
      n++;
      const d = s.letter;
      if (json) {
        process.stdout.write(`${JSON.stringify(d ? summary(d) : { id: null, streamId: s.streamId, outcome: 'undecodable', errorCode: 'PB_ERR_CODEC' })}\n`);
      } else if (d) {
        const why = d.status !== null ? `HTTP ${d.status}` : (d.errorCode ?? '');
        process.stdout.write(
          `${d.id}\t${d.outcome}\t${d.attempts} attempt${d.attempts === 1 ? '' : 's'}\t${why}\t${d.error ?? ''}\t${d.method} ${d.url || d.template}\n`,
        );
      } else {
        process.stdout.write(`(undecodable entry ${s.streamId})\n`);
      }
    }
  }
  if (!json) process.stderr.write(`${n} dead letter${n === 1 ? '' : 's'}\n`);
  return 0;
}

function selected(ids: string[], all: boolean): (d: DeadLetter | null) => boolean {
  const wanted = new Set(ids);
  return (d) => all || (d !== null && wanted.has(d.id));
}

async function replay(redis: RedisClient, config: Config, ids: string[], all: boolean): Promise<number> {
  const pick = selected(ids, all);
  const found = new Set<string>();
  let replayed = 0;
  const lifetime = config.delivery.ttlMs + config.delivery.maxDelayMs + DAY_MS;
  for (const keys of shards(config)) {
    for await (const s of scan(redis, keys)) {
      const d = s.letter;
      if (!pick(d) || d === null) continue;
      found.add(d.id);
      if (d.template === '') {
        process.stderr.write(`${d.id}: its URL template was lost; cannot replay (purge it)\n`);
        continue;
      }
      const colon = d.id.lastIndexOf(':');
      const tplId = templateId(d.method, d.template);
      const now = Date.now();
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
      const res = await redis
        .multi()
        .set(templateKey(keys, tplId), encodeTemplate({ method: d.method, url: d.template }), 'PX', lifetime)
        .xadd(keys.stream, '*', 'm', entry)
        .incrby(keys.count, 1)
        .xdel(keys.dead, s.streamId)
        .exec();
      if (res === null || res.some(([err]) => err)) throw new Error(`replaying ${d.id} failed`);
      replayed++;
    }
  }
  return report('replayed', replayed, ids, found, all);
}

async function purge(redis: RedisClient, config: Config, ids: string[], all: boolean): Promise<number> {
  let purged = 0;
  const found = new Set<string>();
  for (const keys of shards(config)) {
    if (all) {
      purged += await redis.xlen(keys.dead);
      await redis.del(keys.dead);
      continue;
    }
    const pick = selected(ids, false);
    for await (const s of scan(redis, keys)) {
      if (!pick(s.letter)) continue;
      found.add((s.letter as DeadLetter).id);
      purged += await redis.xdel(keys.dead, s.streamId);
    }
  }
  return report('purged', purged, ids, found, all);
}

function report(verb: string, n: number, ids: string[], found: Set<string>, all: boolean): number {
  process.stdout.write(`${verb} ${n}\n`);
  const missing = all ? [] : ids.filter((id) => !found.has(id));
  if (missing.length > 0) process.stderr.write(`not found: ${missing.join(' ')}\n`);
  return missing.length > 0 ? 1 : 0;
}

const USAGE = 'usage: dlq list [--json] [--limit N] | dlq replay <id...|--all> | dlq purge <id...|--all>\n';

export async function runDlq(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      all: { type: 'boolean', default: false },
      limit: { type: 'string', default: String(Number.MAX_SAFE_INTEGER) },
    },
  });
  const [command, ...ids] = positionals;
  const limit = Number(values.limit);
  const needsIds = command === 'replay' || command === 'purge';
  if (
    !(command === 'list' || needsIds) ||
    (needsIds && ids.length === 0 && !values.all) ||
    (needsIds && ids.length > 0 && values.all) ||
    !Number.isInteger(limit) ||
    limit < 0
  ) {
    process.stderr.write(USAGE);
    process.exitCode = 2;
    return;
  }
  const config = loadConfig();
  const redis = createRedis(config, 'cli', 'dlq');
  try {
    if (command === 'list') process.exitCode = await list(redis, config, values.json, limit);
    else if (command === 'replay') process.exitCode = await replay(redis, config, ids, values.all);
    else process.exitCode = await purge(redis, config, ids, values.all);
  } finally {
    redis.disconnect();
  }
}
