/**
 * Child processes the harness runs and measures: the service's roles
 * (`node dist/cli.js ingest|delivery|monitor`) and the harness's own
 * helpers (baseline server, BullMQ producer and worker, undici loop), each
 * forked with an IPC channel and waited on until it sends 'ready'. The
 * tests start their role processes with the same function. CPU time of
 * any pid comes from /proc/<pid>/stat (utime + stime, every thread).
 */
import { fork, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { track } from './cleanup.js';
import { repoPath } from './repo.js';

/** dist/cli.js of the service under test. */
export const CLI = repoPath('dist', 'cli.js');

/** A compiled harness script, by its path under dist/bench/. */
export function benchScript(rel: string): string {
  return repoPath('dist', 'bench', rel);
}

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  env: Record<string, string>;
  output(): string;
  /** Messages other than 'ready' the child sent, in order. */
  messages: unknown[];
  /** Resolves with the first message for which `match` holds. */
  message<T>(match: (m: unknown) => boolean, timeoutMs?: number): Promise<T>;
  /** The port a listener got, as the child announced it (`{listening: name, port}`; port 0 lets the kernel pick). */
  port(name: string): number;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
  /** Sends `signal` (default SIGTERM) and resolves with how it exited. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
  /** SIGKILL, and wait for it. */
  kill(): Promise<void>;
}

export interface SpawnOptions {
  args?: string[];
  env: Record<string, string>;
  readyTimeoutMs?: number;
  /** Working directory (default: this process's). */
  cwd?: string;
}

export async function spawnNode(name: string, script: string, opts: SpawnOptions): Promise<Child> {
  const proc = track(
    fork(script, opts.args ?? [], { env: opts.env, execArgv: [], stdio: ['ignore', 'pipe', 'pipe', 'ipc'], ...(opts.cwd ? { cwd: opts.cwd } : {}) }),
  );
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 64_000) out = out.slice(-32_000);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const messages: unknown[] = [];
  const listeners = new Set<(m: unknown) => void>();
  const ports = new Map<string, number>();
  proc.on('message', (m) => {
    if (m === 'ready') return;
    messages.push(m);
    const announced = m as { listening?: unknown; port?: unknown };
    if (typeof announced?.listening === 'string' && typeof announced.port === 'number') ports.set(announced.listening, announced.port);
    for (const l of listeners) l(m);
  });
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const timeoutMs = opts.readyTimeoutMs ?? 30_000;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not ready in ${timeoutMs} ms:\n${out}`)), timeoutMs);
    proc.on('message', (m) => {
      if (m === 'ready') {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').filter(Boolean).slice(-1)[0] ?? '';
      reject(new Error(`${name} exited (${code}) before ready: ${last}\n${out}`));
    });
  });
  const running = () => proc.exitCode === null && proc.signalCode === null;
  return {
    name,
    proc,
    pid: proc.pid as number,
    env: opts.env,
    output: () => out,
    messages,
    message<T>(match: (m: unknown) => boolean, ms = 600_000): Promise<T> {
      const found = messages.find(match);
      if (found !== undefined) return Promise.resolve(found as T);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(l);
          reject(new Error(`${name}: no expected message in ${ms} ms:\n${out}`));
        }, ms);
        const l = (m: unknown) => {
          if (!match(m)) return;
          clearTimeout(timer);
          listeners.delete(l);
          resolve(m as T);
        };
        listeners.add(l);
        void exited.then((code) => {
          if (!listeners.has(l)) return;
          clearTimeout(timer);
          listeners.delete(l);
          reject(new Error(`${name} exited (${code}):\n${out}`));
        });
      });
    },
    port(listener: string) {
      const p = ports.get(listener);
      if (p === undefined) throw new Error(`${name} announced no "${listener}" port`);
      return p;
    },
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (running()) proc.kill(signal);
      return exited;
    },
    async kill() {
      if (running()) proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** One of the service's roles, `node dist/cli.js <role>`. */
export function spawnRole(role: string, env: Record<string, string>, args: string[] = [], readyTimeoutMs?: number): Promise<Child> {
  return spawnNode(role, CLI, { args: [role, ...args], env, ...(readyTimeoutMs !== undefined ? { readyTimeoutMs } : {}) });
}

/**
 * The environment every role of one stack shares: the harness's Redis, a
 * random key prefix, a scratch log dir, private targets allowed, warnings
 * only; then `extra` (free ports, knobs from --env).
 */
export function roleEnv(redisUrl: string, logDir: string, extra: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    REDIS_URL: redisUrl,
    REDIS_PREFIX: `bench${randomBytes(4).toString('hex')}`,
    INGEST_HOST: '127.0.0.1',
    MONITOR_HOST: '127.0.0.1',
    DELIVERY_ALLOW_PRIVATE: 'true',
    LOG_DIR: logDir,
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

/** The environment as recorded in results: without PATH, which says nothing about the run. */
export function knobsOf(env: Record<string, string>): Record<string, string> {
  const { PATH: _path, ...rest } = env;
  return rest;
}

let clkTck: number | undefined;

/** Clock ticks per second of /proc/<pid>/stat times (usually 100). */
export function clockTicks(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** CPU seconds (user + system, all threads) a live process has used. */
export function cpuSeconds(pid: number): number {
  return statCpu(`/proc/${pid}/stat`);
}

/**
 * CPU seconds of a process's main thread alone (on Linux its thread id is
 * the pid): with DELIVERY_WORKERS > 0, what the event loop spends reading,
 * decoding, recording and acknowledging, apart from the worker threads.
 */
export function mainThreadCpuSeconds(pid: number): number {
  return statCpu(`/proc/${pid}/task/${pid}/stat`);
}

function statCpu(file: string): number {
  const stat = readFileSync(file, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
  return (Number(fields[11]) + Number(fields[12])) / clockTicks();
}

/** CPU seconds of several processes at once, by name. */
export function cpuOf(procs: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(procs)) out[name] = cpuSeconds(pid);
  return out;
}

/** The harness's own CPU seconds (every thread of this process). */
export function harnessCpu(): number {
  return cpuSeconds(process.pid);
}
