/**
 * A private redis-server per scenario run: 127.0.0.1, a free port (never
 * 6379), no persistence (`--save '' --appendonly no`) unless --aof asks for
 * the production setting (AOF, fsync every second), `noeviction`. It is
 * killed when the scenario ends or the harness exits.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { track } from './cleanup.js';
import { freePort } from './ports.js';
import { RespClient } from './resp.js';

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

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function launch(port: number, opts: RedisOptions): Promise<{ proc: ChildProcess; args: string[] }> {
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--protected-mode', 'yes',
    '--dir', opts.dir,
    '--save', '',
    '--appendonly', opts.aof ? 'yes' : 'no',
    '--appendfsync', 'everysec',
    '--maxmemory-policy', 'noeviction',
    '--loglevel', 'warning',
    '--daemonize', 'no',
  ];
  const proc = track(spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] }));
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    if (proc.exitCode !== null) throw new Error(`redis-server exited (${proc.exitCode}) on port ${port}: ${err}`);
    try {
      const c = await RespClient.connect(port);
      const pong = await c.command('PING');
      c.close();
      if (pong === 'PONG') return { proc, args };
    } catch {
      // not listening yet
    }
    await sleep(25);
  }
  proc.kill('SIGKILL');
  throw new Error(`redis-server did not start on port ${port}`);
}

export async function startRedis(opts: RedisOptions): Promise<BenchRedis> {
  for (let tries = 0; ; tries++) {
    const port = await freePort();
    try {
      const { proc, args } = await launch(port, opts);
      const client = await RespClient.connect(port);
      return {
        port,
        url: `redis://127.0.0.1:${port}`,
        pid: proc.pid as number,
        args,
        client,
        async stop() {
          client.close();
          if (proc.exitCode === null && proc.signalCode === null) {
            const gone = once(proc, 'exit');
            proc.kill('SIGKILL');
            await gone;
          }
        },
      };
    } catch (err) {
      if (tries >= 4) throw err;
    }
  }
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
