/**
 * `node dist/cli.js usage [--json]`: the live size and memory of every key
 * family the service writes (families.ts), read with SCAN (one pass over
 * our prefix, on every master of a Cluster) and MEMORY USAGE: exact for
 * the queue's collections, estimated from up to SAMPLE_MAX keys for
 * families of many small keys (templates, idempotency records, statistics).
 * Read only; on a busy Redis, SCAN spreads the work over many short calls.
 */
import { parseArgs } from 'node:util';
import { Cluster, type Redis } from 'ioredis';
import { loadConfig } from '../config/index.js';
import { createRedis } from '../queue/redis.js';
import { memoryOf, primaries } from '../queue/memory.js';
import { FAMILIES, familyOf, formatUsage, type FamilyUsage } from './families.js';

const SAMPLE_MAX = 1_000;
const SCAN_COUNT = 1_000;

export const USAGE = 'usage: node dist/cli.js usage [--json]   live size and memory of every Redis key family\n';

interface Acc extends FamilyUsage {
  sampleBytes: number;
}

async function scanNode(node: Redis, prefix: string, acc: Map<string, Acc>): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', SCAN_COUNT);
    cursor = next;
    const p = node.pipeline();
    const asked: [Acc, 'mem' | 'items'][] = [];
    for (const key of keys) {
      const id = familyOf(key, prefix);
      if (id === null) continue;
      const a = acc.get(id) as Acc;
      a.keys++;
      const family = FAMILIES.find((f) => f.id === id);
      const collection = family?.items !== 'keys' && !(id === 'held' && !key.includes(':held:'));
      if (collection) {
        p.call('MEMORY', 'USAGE', key, 'SAMPLES', '50');
        asked.push([a, 'mem']);
        if (family?.items === 'xlen') p.xlen(key);
        else p.zcard(key);
        asked.push([a, 'items']);
        a.sampled++;
      } else {
        if (family?.items === 'keys') a.items++;
        if (a.sampled < SAMPLE_MAX) {
          p.call('MEMORY', 'USAGE', key);
          asked.push([a, 'mem']);
          a.sampled++;
        }
      }
    }
    if (asked.length === 0) continue;
    const replies = (await p.exec()) ?? [];
    replies.forEach(([err, value], i) => {
      if (err) return;
      const [a, what] = asked[i] as [Acc, 'mem' | 'items'];
      if (what === 'mem') a.sampleBytes += Number(value) || 0;
      else a.items += Number(value) || 0;
    });
  } while (cursor !== '0');
}

export async function runUsage(argv: string[]): Promise<void> {
  let json = false;
  try {
    json = parseArgs({ args: argv, options: { json: { type: 'boolean' } }, strict: true }).values.json === true;
  } catch (err) {
    process.stderr.write(`usage: ${(err as Error).message.split('.')[0]}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const config = loadConfig();
  const redis = createRedis(config, 'cli', 'usage');
  try {
    const acc = new Map<string, Acc>(FAMILIES.map((f) => [f.id, { id: f.id, keys: 0, items: 0, bytes: 0, sampled: 0, sampleBytes: 0 }]));
    // A Cluster client knows its masters only once it has loaded the slot map.
    if (redis instanceof Cluster && redis.status !== 'ready') {
      await new Promise<void>((resolve, reject) => {
        redis.once('ready', () => resolve());
        redis.once('end', () => reject(new Error('cannot reach the Redis Cluster (REDIS_CLUSTER_NODES)')));
      });
    }
    let usedBytes = 0;
    let maxBytes = 0;
    for (const node of primaries(redis)) {
      await scanNode(node, config.redis.prefix, acc);
      const memory = await memoryOf(node);
      usedBytes += memory.used;
      maxBytes += memory.max;
    }
    const rows: FamilyUsage[] = [...acc.values()].map((a) => ({
      id: a.id,
      keys: a.keys,
      items: a.items,
      sampled: a.sampled,
      bytes: a.sampled > 0 && a.sampled < a.keys && FAMILIES.find((f) => f.id === a.id)?.items === 'keys' ? Math.round((a.sampleBytes / a.sampled) * a.keys) : a.sampleBytes,
    }));
    process.stdout.write(json ? `${JSON.stringify({ families: rows, usedBytes, maxBytes }, null, 2)}\n` : `${formatUsage(rows, { usedBytes, maxBytes })}\n`);
  } finally {
    redis.disconnect();
  }
}
