/**
 * What the results were measured on and with: Node and Redis versions, CPU
 * model and core count, memory, kernel, load at start, and the git commit
 * (with a dirty flag: uncommitted changes mean the sha alone does not name
 * the code that ran).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem, type as osType } from 'node:os';
import { clockTicks } from './procs.js';
import { redisVersion } from './redis.js';

export interface MachineInfo {
  node: string;
  redis: string;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  loadAvgAtStart: number[];
  git: { sha: string; dirty: boolean };
}

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export function gitInfo(): { sha: string; dirty: boolean } {
  const sha = git(['rev-parse', '--short', 'HEAD']) ?? 'nogit';
  const status = git(['status', '--porcelain', '--untracked-files=no']);
  return { sha, dirty: status !== null && status.length > 0 };
}

export function machineInfo(): MachineInfo {
  return {
    node: process.version,
    redis: redisVersion(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${osType()} ${release()}`,
    loadAvgAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    git: gitInfo(),
  };
}

export interface CpuSample {
  /** CPU seconds the whole machine spent busy (not idle, not iowait, not stolen). */
  busy: number;
  /** CPU seconds the hypervisor took (steal). */
  steal: number;
  /** CPU seconds of this harness and every child it has reaped (roles, Redis, baselines). */
  ours: number;
  at: number;
}

/**
 * A sample of machine-wide and harness CPU time. Between two samples taken
 * around a scenario run (its children killed and reaped by then), busy - ours
 * is what other processes on the machine used: the noise in that run.
 */
export function cpuSample(): CpuSample {
  const tck = clockTicks();
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  // cpu user nice system idle iowait irq softirq steal guest guest_nice
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const at = (i: number) => f[i] ?? 0;
  const self = readFileSync('/proc/self/stat', 'utf8');
  const s = self.slice(self.lastIndexOf(')') + 2).split(' ').map(Number);
  // utime, stime, cutime, cstime: fields 14-17 of the line, 11-14 here.
  const ours = ((s[11] ?? 0) + (s[12] ?? 0) + (s[13] ?? 0) + (s[14] ?? 0)) / tck;
  return {
    busy: (at(0) + at(1) + at(2) + at(5) + at(6)) / tck,
    steal: at(7) / tck,
    ours,
    at: performance.now() / 1000,
  };
}

/** Between two samples, as % of one core: the machine busy, the harness and its children, everything else, steal. */
export function cpuShares(a: CpuSample, b: CpuSample): { busyPct: number; oursPct: number; othersPct: number; stealPct: number } {
  const secs = Math.max(1e-9, b.at - a.at);
  const busy = b.busy - a.busy;
  const ours = b.ours - a.ours;
  return {
    busyPct: (100 * busy) / secs,
    oursPct: (100 * ours) / secs,
    othersPct: (100 * Math.max(0, busy - ours)) / secs,
    stealPct: (100 * (b.steal - a.steal)) / secs,
  };
}
