/**
 * Whatever the harness starts, it stops: every child process (roles,
 * redis-server, baselines) is registered here and SIGKILLed when the run
 * ends, fails, or is interrupted (Ctrl-C, SIGTERM, SIGHUP), and scratch
 * directories are removed. The handlers are synchronous so they also run
 * from `process.on('exit')`.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
let installed = false;

/** Registers a child so it is killed when the harness exits; returns it. */
export function track<T extends ChildProcess>(child: T): T {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** A scratch directory removed at exit (unless `keep` is set by --keep). */
export function scratchDir(dir: string): string {
  dirs.add(dir);
  return dir;
}

export const cleanupSettings = { keepScratch: false };

/** SIGKILLs every registered child still running. Safe to call repeatedly. */
export function killAll(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        c.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
}

/** Removes a scratch directory now (and forgets it). */
export function removeDir(dir: string): void {
  dirs.delete(dir);
  if (cleanupSettings.keepScratch) return;
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // best effort
  }
}

/** Keeps a scratch directory after exit (a failed run's, for inspection). */
export function keepDir(dir: string): void {
  dirs.delete(dir);
}

function removeAllDirs(): void {
  for (const d of [...dirs]) removeDir(d);
}

export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', () => {
    killAll();
    removeAllDirs();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping every child process\n`);
      killAll();
      removeAllDirs();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
  process.on('uncaughtException', (err) => {
    process.stderr.write(`bench: uncaught ${err.stack ?? err.message}\n`);
    killAll();
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`bench: unhandled rejection ${(err as Error)?.stack ?? String(err)}\n`);
    killAll();
    process.exit(1);
  });
}
