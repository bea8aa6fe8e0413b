/**
 * A real redis-server for the harness (the benchmark and the tests): on
 * 127.0.0.1, a free port (never 6379), `noeviction`, no persistence unless
 * `aof` asks for it, its files in `dir` (a fresh temporary directory by
 * default). It counts as started only when the server answering on the
 * port is this process (INFO server's process_id), not one another test
 * started on the same port in the meantime. `stop()` kills it (like a
 * crash), `start()` brings it back on the same port and directory (from
 * its AOF when `aof` is set), `destroy()` stops it and removes what it made.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onExit, track } from './cleanup.js';
import { freePort } from './ports.js';
import { RespClient } from './resp.js';

export interface RedisServerOptions {
  /** Data directory; default: a temporary one, removed by destroy() and at exit. */
  dir?: string;
  /** AOF on (default off: nothing on disk). */
  aof?: boolean;
  /** AOF fsync policy when `aof` is on (default everysec, the production setting). */
  appendfsync?: 'always' | 'everysec' | 'no';
  /** More redis-server arguments (e.g. --requirepass, --maxmemory). */
  args?: string[];
}

export interface RedisServer {
  port: number;
  url: string;
  dir: string;
  /** The arguments it runs with. */
  args: string[];
  /** Its process id (changes after start()). */
  readonly pid: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * The process id of the Redis answering on `port`: a number, 0 when it
 * asks for a password (it cannot tell, but it answered), null when nothing
 * answers.
 */
async function answeringPid(port: number): Promise<number | null> {
  let c: RespClient | undefined;
  try {
    c = await RespClient.connect(port);
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer')), 500).unref());
    const info = await Promise.race([c.info('server'), timeout]);
    return Number(info.process_id);
  } catch (err) {
    // NOAUTH: a server with a password answered (it will not say which it is).
    return (err as Error).message.includes('NOAUTH') ? 0 : null;
  } finally {
    c?.close();
  }
}

export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'pb-redis-'));
  const removeOwnDir = () => {
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };
  const offExit = onExit(removeOwnDir);
  let port = 0;
  let proc: ChildProcess | null = null;
  let args: string[] = [];

  const launch = async (): Promise<void> => {
    args = [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--protected-mode', 'yes',
      '--dir', dir,
      '--save', '',
      '--appendonly', opts.aof ? 'yes' : 'no',
      '--appendfsync', opts.appendfsync ?? 'everysec',
      '--maxmemory-policy', 'noeviction',
      '--loglevel', 'warning',
      '--daemonize', 'no',
      ...(opts.args ?? []),
    ];
    const p = track(spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] }));
    proc = p;
    let stderr = '';
    p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      if (p.exitCode !== null) throw new Error(`redis-server exited (${p.exitCode}) on port ${port}: ${stderr}`);
      const pid = await answeringPid(port);
      if (pid === p.pid || (pid === 0 && p.exitCode === null)) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    p.kill('SIGKILL');
    throw new Error(`redis-server did not start on port ${port}`);
  };

  for (let tries = 0; ; tries++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (err) {
      if (tries >= 4) {
        offExit();
        removeOwnDir();
        throw err;
      }
    }
  }

  const stop = async (): Promise<void> => {
    const p = proc;
    proc = null;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = once(p, 'exit');
    p.kill('SIGKILL');
    await gone;
  };

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    get args() {
      return args;
    },
    get pid() {
      return (proc as ChildProcess | null)?.pid ?? 0;
    },
    stop,
    start: launch,
    async destroy() {
      await stop();
      offExit();
      removeOwnDir();
    },
  };
}
