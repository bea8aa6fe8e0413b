/**
 * Real role processes: `node dist/cli.js <role>` as a child with an IPC
 * channel, waited on until it says 'ready'. Tests send real signals.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { onExit } from './cleanup.js';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface RoleProcess {
  proc: ChildProcess;
  /** The port a listener of the role got (announced over IPC; port 0 lets the kernel pick). */
  port(name: string): number;
  output: () => string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

export function testEnv(redisUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  const logDir = mkdtempSync(join(tmpdir(), 'pb-log-'));
  onExit(() => rmSync(logDir, { recursive: true, force: true }));
  return {
    PATH: process.env.PATH ?? '',
    REDIS_URL: redisUrl,
    REDIS_PREFIX: `t${randomBytes(4).toString('hex')}`,
    LOG_DIR: logDir,
    LOG_LEVEL: 'warn',
    DELIVERY_ALLOW_PRIVATE: 'true',
    INGEST_HOST: '127.0.0.1',
    MONITOR_HOST: '127.0.0.1',
    ...extra,
  };
}

export async function spawnRole(role: string, env: Record<string, string>, args: string[] = []): Promise<RoleProcess> {
  const proc = fork(CLI, [role, ...args], { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  onExit(() => proc.kill('SIGKILL'));
  const ports = new Map<string, number>();
  proc.on('message', (m) => {
    const msg = m as { listening?: string; port?: number };
    if (typeof msg?.listening === 'string' && typeof msg.port === 'number') ports.set(msg.listening, msg.port);
  });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) =>
    proc.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${role} not ready in 20 s:\n${out}`)), 20_000);
    proc.on('message', (m) => {
      if (m === 'ready') {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${role} exited (${code}) before ready:\n${out}`));
    });
  });
  return {
    proc,
    port(name: string) {
      const p = ports.get(name);
      if (p === undefined) throw new Error(`${role} announced no "${name}" port`);
      return p;
    },
    output: () => out,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Runs a one-shot CLI command (`dlq list`, `config`, ...) to completion. */
export function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = fork(CLI, args, { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    let stdout = '';
    let stderr = '';
    proc.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
