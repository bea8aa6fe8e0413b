/**
 * A real redis-server per test file, on a free port (never 6379), with no
 * persistence unless asked. `stop()` and `start()` let a test take Redis
 * away and bring it back (empty, or from its AOF when `aof` is set).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';
import { onExit } from './cleanup.js';
import { ping } from '../../src/start/private-redis.js';

export interface TestRedis {
  port: number;
  url: string;
  dir: string;
  /** A fresh client (closed at teardown by the caller or by stop()). */
  client(): Redis;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops Redis and removes its files. */
  destroy(): Promise<void>;
}

/** process_id from INFO server of the Redis on a port (null: no answer; 0: it wants a password). */
function serverPid(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (pid: number | null) => {
      socket.destroy();
      resolve(pid);
    };
    socket.setTimeout(500, () => done(null));
    socket.on('connect', () => socket.write('INFO server\r\n'));
    socket.on('data', (d) => {
      reply += d.toString();
      const m = /process_id:(\d+)/.exec(reply);
      if (m) done(Number(m[1]));
      else if (reply.startsWith('-')) done(0); // NOAUTH: a password-protected server cannot tell
    });
    socket.on('error', () => done(null));
  });
}

export async function startRedis(opts: { aof?: boolean; args?: string[] } = {}): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'pb-redis-'));
  let port = 0;
  let proc: ChildProcess | null = null;
  onExit(() => {
    proc?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const clients: Redis[] = [];

  const launch = async (): Promise<void> => {
    const args = [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', dir,
      '--save', '',
      '--appendonly', opts.aof ? 'yes' : 'no',
      '--appendfsync', 'always',
      '--maxmemory-policy', 'noeviction',
      ...(opts.args ?? []),
    ];
    const p = spawn('redis-server', args, { stdio: 'ignore' });
    proc = p;
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      if (p.exitCode !== null) throw new Error(`redis-server exited with ${p.exitCode} on port ${port}`);
      // The answer must come from this redis-server, not one another test
      // started on the same port in the meantime.
      if (await ping(port, 200)) {
        const pid = await serverPid(port);
        if (pid === p.pid || (pid === 0 && p.exitCode === null)) return;
      }
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
      if (tries >= 4) throw err;
    }
  }

  const stop = async (): Promise<void> => {
    const p = proc;
    proc = null;
    if (!p || p.exitCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  };

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    client() {
      const c = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1, lazyConnect: false });
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    },
    stop,
    start: launch,
    async destroy() {
      for (const c of clients) c.disconnect();
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
