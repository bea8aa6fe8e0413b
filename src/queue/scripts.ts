/**
 * Lua scripts, each in `lua/<name>-<numKeys>.lua` opening with its KEYS /
 * ARGV / return contract; `-n`: the caller passes the number of keys
 * first, then the keys. Redis Cluster clients route a command by its keys,
 * and Redis checks the declared keys of a script against a slot being
 * migrated (ASK, TRYAGAIN): every key a script touches is declared, or a
 * script sent on by an ASK would run on the importing node beside keys
 * still on the other one (a second stream, a second count: the migration
 * then fails with BUSYKEY and what was written there is stranded). They are registered with ioredis `defineCommand`,
 * which sends EVALSHA and falls back to EVAL on NOSCRIPT, so a Redis that
 * restarted empty gets the scripts back without a process restart.
 */
import { readFileSync } from 'node:fs';
import type { Cluster, Redis, Result } from 'ioredis';

type Arg = string | Buffer | number;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    pbEnqueue(...args: Arg[]): Result<(number | string)[], Context>;
    pbFinalize(...args: Arg[]): Result<number, Context>;
    pbPromote(...args: Arg[]): Result<[number, number, number], Context>;
    pbRelease(...args: Arg[]): Result<[number, number, number], Context>;
    pbControlSet(...args: Arg[]): Result<number, Context>;
    pbRateTake(...args: Arg[]): Result<[number, number], Context>;
    pbRatePark(...args: Arg[]): Result<number[], Context>;
    pbBreaker(...args: Arg[]): Result<number | [number, string], Context>;
    pbStats(...args: Arg[]): Result<number, Context>;
    pbEnsureGroup(...args: Arg[]): Result<number, Context>;
    pbDlqPurge(...args: Arg[]): Result<number, Context>;
    pbMembers(...args: Arg[]): Result<string[], Context>;
  }
}

/** Per-request return codes of `enqueue-n.lua`. */
export const ENQUEUE_NEED_TEMPLATE = -1;
export const ENQUEUE_QUEUE_FULL = -2;

const SCRIPTS = [
  { command: 'pbEnqueue', file: 'enqueue-n.lua', keys: null },
  { command: 'pbStats', file: 'stats-1.lua', keys: 1 },
  { command: 'pbFinalize', file: 'finalize-n.lua', keys: null },
  { command: 'pbPromote', file: 'promote-5.lua', keys: 5 },
  { command: 'pbRelease', file: 'release-3.lua', keys: 3 },
  { command: 'pbControlSet', file: 'control-set-2.lua', keys: 2 },
  { command: 'pbRateTake', file: 'rate-take-1.lua', keys: 1 },
  { command: 'pbRatePark', file: 'rate-park-1.lua', keys: 1 },
  { command: 'pbBreaker', file: 'breaker-3.lua', keys: 3 },
  { command: 'pbEnsureGroup', file: 'ensure-group-1.lua', keys: 1 },
  { command: 'pbDlqPurge', file: 'dlq-purge-1.lua', keys: 1 },
  { command: 'pbMembers', file: 'members-1.lua', keys: 1 },
] as const;

/**
 * The scripts whose caller passes the number of keys first (`-n`). A
 * Cluster client's auto-pipelining picks a command's node by its first
 * argument, here the number of keys, not a key: these are sent alone,
 * routed by their keys (redis.ts).
 */
export const VARIADIC_SCRIPTS: string[] = SCRIPTS.filter((s) => s.keys === null).map((s) => s.command);

const sources = new Map<string, string>();

function source(file: string): string {
  let s = sources.get(file);
  if (s === undefined) {
    s = readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8');
    sources.set(file, s);
  }
  return s;
}

/** Registers every script on a client (idempotent per client). */
export function defineScripts<C extends Redis | Cluster>(redis: C): C {
  for (const s of SCRIPTS) {
    if (typeof (redis as unknown as Record<string, unknown>)[s.command] === 'function') continue;
    redis.defineCommand(s.command, { ...(s.keys === null ? {} : { numberOfKeys: s.keys }), lua: source(s.file) });
  }
  return redis;
}
