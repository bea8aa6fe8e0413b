/**
 * Graceful shutdown for every role, on close-with-grace: the first SIGTERM
 * or SIGINT (or a crash) runs the role's ordered steps, each guarded so one
 * failure skips none (BullMQ `Worker.close`), then flushes logs and exits 0
 * (1 after an error). A second signal, or running past
 * `SHUTDOWN_TIMEOUT_MS`, exits 1 at once. Under `start`, a child whose
 * supervisor vanished (IPC disconnect) shuts down the same way.
 */
import closeWithGrace from 'close-with-grace';
import type { Logger } from './observability/logger.js';
import { flushLogs, reopenLogFiles } from './observability/logger.js';

export interface ShutdownStep {
  name: string;
  run: () => Promise<void> | void;
}

export interface Lifecycle {
  /** Starts the shutdown as if a signal had arrived. */
  close(): void;
}

/**
 * Under PM2, which passes each app's settings in its environment: the
 * warning when PM2 would kill a shutdown still within SHUTDOWN_TIMEOUT_MS.
 * kill_timeout is fixed when the app is created, so a SHUTDOWN_TIMEOUT_MS
 * raised later with `--update-env` leaves it behind (docs/OPERATIONS.md).
 */
export function killTimeoutWarning(env: NodeJS.ProcessEnv, timeoutMs: number): string | null {
  const killMs = Number(env.kill_timeout);
  if (env.pm_id === undefined || !Number.isFinite(killMs) || killMs <= 0 || killMs >= timeoutMs + 1_000) return null;
  return `PM2's kill_timeout (${killMs} ms) is not above SHUTDOWN_TIMEOUT_MS (${timeoutMs} ms): PM2 may kill a slow shutdown, and the attempts in flight go out again after reclaim. Recreate the app (npx pm2 delete ecosystem.config.cjs && npx pm2 start ecosystem.config.cjs)`;
}

export function installShutdown(logger: Logger, timeoutMs: number, steps: ShutdownStep[]): Lifecycle {
  const pm2 = killTimeoutWarning(process.env, timeoutMs);
  if (pm2 !== null) logger.warn(pm2);
  const cwg = closeWithGrace(
    {
      delay: timeoutMs,
      // SIGHUP means reload (partner policies), never stop.
      skip: ['SIGHUP'],
      logger: { error: (m: unknown) => logger.error({ detail: m }, 'shutdown') },
      onSecondSignal: (signal) => {
        logger.warn({ signal }, 'second signal: exiting now');
        flushLogs();
      },
      onTimeout: (delay) => {
        logger.error({ delayMs: delay }, 'graceful shutdown took too long: exiting now');
        flushLogs();
      },
    },
    async ({ signal, err, manual }) => {
      if (err) logger.error({ err }, 'fatal error: shutting down');
      else logger.info({ signal: signal ?? (manual ? 'manual' : 'exit') }, 'shutting down');
      const started = performance.now();
      for (const step of steps) {
        try {
          await step.run();
        } catch (stepErr) {
          logger.error({ err: stepErr, step: step.name }, 'shutdown step failed');
        }
      }
      logger.info({ ms: Math.round(performance.now() - started) }, 'shutdown complete');
      flushLogs();
    },
  );
  if (typeof process.send === 'function') {
    process.once('disconnect', () => cwg.close());
  }
  // SIGHUP reloads what can be reloaded (partner policies, and the log files
  // by their paths, for logrotate); it never stops a role.
  process.on('SIGHUP', () => {
    reopenLogFiles();
    logger.info('SIGHUP received: log files reopened');
  });
  return { close: () => cwg.close() };
}

/**
 * Tells a parent that started this role with an IPC channel (tests, the
 * benchmark) which port a listener got: with port 0 the kernel picks one.
 */
export function announceListening(name: string, port: number): void {
  process.send?.({ listening: name, port });
}

/** Tells PM2 (`wait_ready`) or the `start` supervisor that the role is up. */
export function signalReady(): void {
  process.send?.('ready');
}
