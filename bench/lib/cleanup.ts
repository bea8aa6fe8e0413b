/**
 * Whatever the harness (the benchmark, or a test file) starts, it stops:
 * cleanup tasks registered here run however the process ends: normally,
 * on an uncaught error, or on a signal (Ctrl-C, tap's SIGTERM on a
 * timeout, SIGHUP). Child processes are SIGKILLed, scratch directories
 * removed. The tasks are synchronous so they also run from
 * `process.on('exit')`.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

const tasks = new Set<() => void>();
const SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;
let installed = false;

function runAll(): void {
  for (const task of [...tasks]) {
    try {
      task();
    } catch {
      // best effort: the next task still runs
    }
  }
  tasks.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.once('exit', runAll);
  for (const [signal, n] of Object.entries(SIGNALS)) {
    process.once(signal, () => {
      runAll();
      process.exit(128 + n);
    });
  }
}

/** Runs `task` when the process ends; returns a function that unregisters it. */
export function onExit(task: () => void): () => void {
  install();
  tasks.add(task);
  return () => tasks.delete(task);
}

/** Registers a child so it is SIGKILLed if still running when the process ends; returns it. */
export function track<T extends ChildProcess>(child: T): T {
  const off = onExit(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  child.once('exit', off);
  return child;
}

export const cleanupSettings = { keepScratch: false };
const dirs = new Set<string>();
let dirsRegistered = false;

/** A scratch directory removed when the process ends (unless kept: --keep, or keepDir). */
export function scratchDir(dir: string): string {
  dirs.add(dir);
  if (!dirsRegistered) {
    dirsRegistered = true;
    onExit(() => {
      for (const d of [...dirs]) removeDir(d);
    });
  }
  return dir;
}

/** Removes a scratch directory now (and forgets it); --keep keeps it. */
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

/**
 * The benchmark's handlers: every registered task also runs on an uncaught
 * error, which then exits 1 (a test file leaves errors to tap).
 */
export function installCleanup(): void {
  install();
  const fatal = (what: string, err: unknown) => {
    process.stderr.write(`bench: ${what} ${(err as Error)?.stack ?? String(err)}\n`);
    runAll();
    process.exit(1);
  };
  process.on('uncaughtException', (err) => fatal('uncaught', err));
  process.on('unhandledRejection', (err) => fatal('unhandled rejection', err));
}
