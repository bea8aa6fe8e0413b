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
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config/index.js';
import { createLogger, flushLogs } from '../observability/logger.js';
import { startPrivateRedis, type PrivateRedis } from './private-redis.js';

const ROLES = ['ingest', 'delivery', 'monitor'] as const;
type Role = (typeof ROLES)[number];
const MODE_SOURCE = { url: 'REDIS_URL', cluster: 'REDIS_CLUSTER_NODES', sentinel: 'REDIS_SENTINELS', private: 'private' } as const;

interface Child {
  role: Role;
  proc: ChildProcess | null;
  restarts: number;
}

export async function runStart(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config, 'start');
  const cli = fileURLToPath(new URL('../cli.js', import.meta.url));
  let redis: PrivateRedis | null = null;
  let stopping = false;

  const children: Child[] = ROLES.map((role) => ({ role, proc: null, restarts: 0 }));

  const stop = async (): Promise<never> => {
    logger.info('stopping: roles first, Redis last');
    const exits = children.map((c) => c.proc && exited(c.proc, config.shutdownTimeoutMs + 5_000));
    for (const c of children) c.proc?.kill('SIGTERM');
    await Promise.all(exits);
    if (redis) await redis.stop();
    logger.info('stopped');
    flushLogs();
    process.exit(0);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: killing the roles now');
      for (const c of children) c.proc?.kill('SIGKILL');
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
    flushLogs();
    process.exit(1);
  }

  const launch = (c: Child): Promise<void> =>
    new Promise((ready) => {
      // The roles find the private Redis as this process did (REDIS_PORT and
      // REDIS_PASSWORD_FILE): its password never goes into their
      // environment, where `ps e` would show it.
      const proc = fork(cli, [c.role], { env: process.env, detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      c.proc = proc;
      proc.on('message', (m) => {
        if (m === 'ready') ready();
      });
      proc.once('exit', (code, signal) => {
        ready();
        c.proc = null;
        if (stopping) return;
        const wait = Math.min(30_000, 500 * 2 ** c.restarts++);
        logger.error({ role: c.role, code, signal, restartInMs: wait }, 'role exited: starting it again');
        setTimeout(() => {
          if (!stopping) void launch(c);
        }, wait).unref();
      });
    });

  await Promise.all(children.map(launch));
  if (stopping) return;
  logger.info(
    {
      ingest: `http://${config.ingest.host}:${config.ingest.port}/i`,
      monitor: `http://${config.monitor.host}:${config.monitor.port}/healthz`,
      redis: redis ? `127.0.0.1:${config.redis.port} (private, data in ${config.redis.dir}, password in ${config.redis.passwordFile})` : MODE_SOURCE[config.redis.mode],
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
