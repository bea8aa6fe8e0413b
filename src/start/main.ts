/**
 * `npm start`: everything on one machine. Starts the private Redis (unless
 * REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS names another), then
 * ingest, delivery and monitor as child processes,
 * each in its own process group so that Ctrl-C reaches only this
 * supervisor, which then stops them in order: roles first (each shuts down
 * gracefully), Redis last. A role that dies is started again with backoff.
 * A second Ctrl-C kills the roles at once.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, REDIS_MODE_SOURCE } from '../config/index.js';
import { createLogger, flushLogs } from '../observability/logger.js';
import { alive, startPrivateRedis, type PrivateRedis } from './private-redis.js';

const ROLES = ['ingest', 'delivery', 'monitor'] as const;
type Role = (typeof ROLES)[number];

interface Child {
  role: Role;
  proc: ChildProcess | null;
  restarts: number;
  /** The current process said 'ready'. */
  ready: boolean;
  /** Exits in a row before saying 'ready'. */
  failedStarts: number;
}

/** A role that ran this long before it exited starts its backoff over. */
const HEALTHY_RUN_MS = 60_000;
/** A role that exits this many times in a row before it is ready stops everything (exit 1). */
const FAILED_STARTS_MAX = 5;

/** The pid in a lock file, or null. */
function lockHolder(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

export async function runStart(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config, 'start');
  const cli = fileURLToPath(new URL('../cli.js', import.meta.url));
  let redis: PrivateRedis | null = null;
  let stopping = false;

  const children: Child[] = ROLES.map((role) => ({ role, proc: null, restarts: 0, ready: false, failedStarts: 0 }));

  // One supervisor per private Redis: a second `npm start` in the same
  // place would reuse the first one's redis-server, crash-loop its roles on
  // the ports in use, and stop that Redis under the first one at its exit.
  const lock = config.redis.mode === 'private' ? join(resolve(config.redis.dir), 'start.pid') : null;
  if (lock !== null) {
    const holder = lockHolder(lock);
    if (holder !== null && holder !== process.pid && alive(holder)) {
      logger.fatal(`another "npm start" (pid ${holder}) runs with REDIS_DIR ${resolve(config.redis.dir)}: stop it first (Ctrl-C in its terminal, or kill ${holder}), or give this one its own REDIS_DIR, REDIS_PORT and ports`);
      flushLogs();
      process.exit(1);
    }
    mkdirSync(resolve(config.redis.dir), { recursive: true });
    writeFileSync(lock, `${process.pid}\n`);
  }
  const unlock = () => {
    if (lock !== null && lockHolder(lock) === process.pid) rmSync(lock, { force: true });
  };

  const stop = async (code = 0): Promise<never> => {
    logger.info('stopping: roles first, Redis last');
    const exits = children.map((c) => c.proc && exited(c.proc, config.shutdownTimeoutMs + 5_000));
    for (const c of children) c.proc?.kill('SIGTERM');
    await Promise.all(exits);
    if (redis) await redis.stop();
    unlock();
    logger.info('stopped');
    flushLogs();
    process.exit(code);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: killing the roles now');
      for (const c of children) c.proc?.kill('SIGKILL');
      unlock();
      flushLogs();
      process.exit(1);
    }
    stopping = true;
    void stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // SIGHUP: every role reloads what it can (partner policies).
  process.on('SIGHUP', () => {
    for (const c of children) c.proc?.kill('SIGHUP');
  });

  try {
    if (config.redis.mode === 'private') redis = await startPrivateRedis(config, logger);
  } catch (err) {
    logger.fatal((err as Error).message);
    unlock();
    flushLogs();
    process.exit(1);
  }

  // The private Redis is supervised like the roles: if it dies, it is
  // started again (with its AOF), with backoff; the roles reconnect.
  const watchRedis = (r: PrivateRedis): void => {
    void r.exited.then(async () => {
      for (let attempt = 0; !stopping; attempt++) {
        const wait = Math.min(30_000, 500 * 2 ** attempt);
        logger.error({ restartInMs: wait }, 'the private redis-server exited: starting it again (roles wait for it and reconnect)');
        await new Promise((r2) => setTimeout(r2, wait));
        if (stopping) return;
        try {
          redis = await startPrivateRedis(config, logger);
          watchRedis(redis);
          return;
        } catch (err) {
          logger.error({ err: (err as Error).message }, 'could not start the private redis-server');
        }
      }
    });
  };
  if (redis) watchRedis(redis);

  const launch = (c: Child): Promise<void> =>
    new Promise((ready) => {
      // The roles find the private Redis as this process did (REDIS_PORT and
      // REDIS_PASSWORD_FILE): its password never goes into their
      // environment, where `ps e` would show it.
      const proc = fork(cli, [c.role], { env: process.env, detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const startedAt = Date.now();
      c.proc = proc;
      c.ready = false;
      proc.on('message', (m) => {
        if (m !== 'ready') return;
        c.ready = true;
        c.failedStarts = 0;
        ready();
      });
      proc.once('exit', (code, signal) => {
        ready();
        c.proc = null;
        if (stopping) return;
        if (Date.now() - startedAt >= HEALTHY_RUN_MS) c.restarts = 0;
        if (!c.ready && ++c.failedStarts >= FAILED_STARTS_MAX) {
          // A port in use, a configuration Redis refuses...: restarting will not help.
          logger.fatal({ role: c.role, code, signal }, `${c.role} exited ${FAILED_STARTS_MAX} times in a row before it was ready (its error is above): stopping everything`);
          stopping = true;
          void stop(1);
          return;
        }
        c.ready = false;
        const wait = Math.min(30_000, 500 * 2 ** c.restarts++);
        logger.error({ role: c.role, code, signal, restartInMs: wait }, 'role exited: starting it again');
        setTimeout(() => {
          if (!stopping) void launch(c);
        }, wait).unref();
      });
    });

  await Promise.all(children.map(launch));
  if (stopping) return;
  const notReady = children.filter((c) => !c.ready).map((c) => c.role);
  if (notReady.length > 0) {
    logger.warn({ notReady }, 'started, but not every role is ready yet: it is being started again (see its error above)');
    return;
  }
  logger.info(
    {
      ingest: `http://${config.ingest.host}:${config.ingest.port}/i`,
      monitor: `http://${config.monitor.host}:${config.monitor.port}/healthz`,
      redis: redis ? `127.0.0.1:${config.redis.port} (private, data in ${config.redis.dir}, password in ${config.redis.passwordFile})` : REDIS_MODE_SOURCE[config.redis.mode],
      log: `${config.log.dir}/postback.log`,
    },
    'postback delivery is running; Ctrl-C stops it',
  );
  process.send?.('ready');
}

function exited(proc: ChildProcess, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      resolve();
    }, timeoutMs);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
