/**
 * Real role processes for tests: `node dist/cli.js <role>` started by the
 * harness's spawner (bench/lib/procs.ts: IPC, 'ready', announced ports,
 * killed when the test process ends), the environment every test role
 * shares, and one-shot CLI commands.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { onExit } from '../../bench/lib/cleanup.js';
import { CLI, spawnRole as spawnHarnessRole, type Child } from '../../bench/lib/procs.js';

export { CLI };
export type RoleProcess = Child;

/** A role's environment: the test's Redis, a random key prefix, a temporary log dir, loopback listeners. */
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
    // No delivery metrics listener unless a test asks for one (on a free
    // port): the default 9091 belongs to a default install.
    DELIVERY_METRICS_PORT: '0',
    // Circuit breakers off unless a test turns them on (partner-breaker):
    // tests of retries, outages and statistics count the attempts a
    // breaker would hold back.
    PARTNER_BREAKER_CONSECUTIVE: '1000000',
    PARTNER_BREAKER_MIN_ATTEMPTS: '1000000',
    // Under `npm test` (c8), role processes report their coverage too.
    ...(process.env.NODE_V8_COVERAGE ? { NODE_V8_COVERAGE: process.env.NODE_V8_COVERAGE } : {}),
    ...extra,
  };
}

/** Starts a role and waits until it says 'ready' (20 s at most). */
export function spawnRole(role: string, env: Record<string, string>, args: string[] = []): Promise<RoleProcess> {
  return spawnHarnessRole(role, env, args, 20_000);
}

/** Runs a one-shot CLI command (`dlq list`, `config`, ...) to completion, killed after `timeoutMs`. */
export function runCli(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    // execArgv: [] as for the roles (bench/lib/procs.ts): not the test
    // runner's own loaders (tap's mock and processinfo hooks, tsx), which
    // dist/cli.js does not need and which more than double its start.
    const proc = fork(CLI, args, { env, execArgv: [], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    const off = onExit(() => proc.kill('SIGKILL'));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      proc.kill('SIGKILL');
    }, timeoutMs);
    let stdout = '';
    let stderr = '';
    proc.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      off();
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}
