/**
 * The benchmark's Redis per scenario run: a harness redis-server
 * (redis-server.ts: 127.0.0.1, a free port, `noeviction`, no persistence
 * unless --aof asks for the production setting, AOF with fsync every
 * second) and the harness's own RESP connection to it, whose bytes and
 * commands are subtracted from Redis's counters.
 */
import { execFileSync } from 'node:child_process';
import { RespClient } from './resp.js';
import { startRedisServer } from './redis-server.js';

export interface BenchRedis {
  port: number;
  url: string;
  pid: number;
  args: string[];
  /** The harness's own connection (INFO, FLUSHALL, GET). */
  client: RespClient;
  stop(): Promise<void>;
}

export interface RedisOptions {
  dir: string;
  aof: boolean;
}

export async function startRedis(opts: RedisOptions): Promise<BenchRedis> {
  const server = await startRedisServer({ dir: opts.dir, aof: opts.aof, appendfsync: 'everysec' });
  const client = await RespClient.connect(server.port);
  return {
    port: server.port,
    url: server.url,
    pid: server.pid,
    args: server.args,
    client,
    async stop() {
      client.close();
      await server.stop();
    },
  };
}

/** `redis-server --version`, e.g. "7.0.15". */
export function redisVersion(): string {
  try {
    const out = execFileSync('redis-server', ['--version'], { encoding: 'utf8' });
    return /v=(\S+)/.exec(out)?.[1] ?? out.trim();
  } catch {
    return 'unknown';
  }
}

export interface RedisCounters {
  commands: number;
  netIn: number;
  netOut: number;
}

/**
 * Snapshots Redis's own counters through the harness connection. Use
 * {@link counterDelta} to get the traffic between two snapshots without
 * the harness's part (its commands, their bytes and their replies).
 */
export async function snapshot(r: BenchRedis): Promise<RedisCounters & { harness: { commands: number; bytesIn: number; bytesOut: number } }> {
  // What the harness had sent and received before this INFO.
  const before = { commands: r.client.commands, bytesIn: r.client.bytesIn, bytesOut: r.client.bytesOut };
  const info = await r.client.info('stats');
  return {
    commands: Number(info.total_commands_processed),
    netIn: Number(info.total_net_input_bytes),
    netOut: Number(info.total_net_output_bytes),
    harness: before,
  };
}

/**
 * Traffic between snapshots `a` and `b`, less the harness's own. Redis
 * counts a command's input bytes when it reads them and its reply bytes when
 * it writes them, so the window holds a's INFO reply, b's INFO command (the
 * same size as a's) and whatever the harness sent in between: exactly the
 * harness's counters between the two snapshots.
 */
export function counterDelta(
  a: Awaited<ReturnType<typeof snapshot>>,
  b: Awaited<ReturnType<typeof snapshot>>,
): RedisCounters {
  const harnessCommands = b.harness.commands - a.harness.commands;
  const harnessIn = b.harness.bytesIn - a.harness.bytesIn;
  const harnessOut = b.harness.bytesOut - a.harness.bytesOut;
  return {
    commands: b.commands - a.commands - harnessCommands,
    netIn: b.netIn - a.netIn - harnessIn,
    netOut: b.netOut - a.netOut - harnessOut,
  };
}

/** Calls per command from INFO commandstats (`cmdstat_<name>:calls=N,...`). */
export function commandCalls(info: Record<string, string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(info)) {
    if (!k.startsWith('cmdstat_')) continue;
    const calls = /calls=(\d+)/.exec(v)?.[1];
    if (calls !== undefined) out[k.slice('cmdstat_'.length)] = Number(calls);
  }
  return out;
}
