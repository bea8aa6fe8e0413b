/**
 * The private redis-server `npm start` runs when REDIS_URL is unset: bound to
 * 127.0.0.1 on REDIS_PORT (never 6379), AOF on with fsync every second,
 * `noeviction` (a full Redis refuses writes, it never drops postbacks),
 * data in REDIS_DIR. It runs in its own process group so a terminal Ctrl-C
 * reaches the supervisor, which stops Redis last. One left over from a run
 * that was killed is found by its pid file and reused.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { resolve, join } from 'node:path';
import type { Config } from '../config/index.js';
import type { Logger } from '../observability/logger.js';

export interface PrivateRedis {
  url: string;
  stop(): Promise<void>;
}

/** Resolves true when something on the port answers PING with PONG. */
export function ping(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let reply = '';
    const finish = (ok: boolean) => {
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d.toString();
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG') || reply.startsWith('-NOAUTH'));
    });
    socket.on('error', () => finish(false));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

export async function startPrivateRedis(config: Config, logger: Logger): Promise<PrivateRedis> {
  const port = config.redis.port;
  const dir = resolve(config.redis.dir);
  const pidFile = join(dir, 'redis.pid');
  const url = `redis://127.0.0.1:${port}`;
  mkdirSync(dir, { recursive: true });

  if (await ping(port)) {
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : NaN;
    if (Number.isInteger(pid) && alive(pid)) {
      logger.warn({ port, pid }, 'a private redis-server from an earlier run is still up: reusing it');
      return { url, stop: () => stopPid(pid) };
    }
    throw new Error(
      `port ${port} is taken by a Redis this run did not start; set REDIS_URL to use it, or REDIS_PORT to pick another port`,
    );
  }

  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--protected-mode', 'yes',
      '--dir', dir,
      '--pidfile', pidFile,
      '--logfile', join(dir, 'redis.log'),
      '--appendonly', 'yes',
      '--appendfsync', config.redis.appendfsync,
      '--save', '',
      '--maxmemory-policy', 'noeviction',
      '--daemonize', 'no',
    ],
    { detached: true, stdio: 'ignore' },
  );
  const spawned = await new Promise<Error | null>((done) => {
    child.once('spawn', () => done(null));
    child.once('error', (err) => done(err));
  });
  if (spawned) {
    throw new Error(`cannot run redis-server (${spawned.message}): run "npm run setup" or set REDIS_URL`);
  }
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  if (!(await waitFor(() => exited || ping(port), 10_000)) || exited) {
    throw new Error(`redis-server did not start on port ${port}; see ${join(dir, 'redis.log')}`);
  }
  logger.info({ port, dir, appendfsync: config.redis.appendfsync }, 'private redis-server started');
  return {
    url,
    stop: async () => {
      if (exited) return;
      child.kill('SIGTERM');
      if (!(await waitFor(() => exited, 10_000))) child.kill('SIGKILL');
    },
  };
}

async function stopPid(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  if (!(await waitFor(() => !alive(pid), 10_000))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
