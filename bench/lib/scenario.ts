/**
 * What a scenario is to the runner: a name, the knobs it ran with, one run
 * that returns flat numeric metrics (the runner takes medians over --runs),
 * and tables built from the median metrics. Also the options every scenario
 * reads, and the per-run context (scratch dir, progress line).
 */

export interface Options {
  scenarios: string[];
  runs: number;
  /** autocannon measured duration and warmup, seconds. */
  durationS: number;
  warmupS: number;
  connections: number;
  /** e2e: postbacks in the closed-loop phase, and items per request. */
  n: number;
  e2eItems: number;
  /** e2e open-loop phase: seconds, and items per request. */
  openDurationS: number;
  openItems: number;
  /** e2e-trickle: seconds of sequential requests per shape, or (when > 0) requests per shape instead. */
  trickleDurationS: number;
  trickleN: number;
  /** e2e-trickle: ms to wait after each 202 before the next request (default 0). */
  trickleGapMs: number;
  /**
   * e2e-trickle: requests sent per shape and target before the measured
   * ones (their latency reported apart); 0: `warmupS` seconds instead.
   */
  trickleWarmupN: number;
  /** slow-partner: postbacks per run. */
  slowN: number;
  idleS: number;
  bandwidthN: number;
  bandwidthItems: number;
  /** Postbacks a second sent in the bandwidth scenario. */
  bandwidthRate: number;
  /** many-origins: distinct origins, postbacks per phase, idle seconds before a last RSS reading. */
  origins: number;
  manyN: number;
  manyIdleS: number;
  /** drain: postbacks queued before delivery starts. */
  drainN: number;
  /** partner-limit: the partner's rate limit, requests/s. */
  limitRate: number;
  /** partner-down: postbacks per run. */
  downN: number;
  /** sizing: postbacks queued per workload. */
  sizingN: number;
  /** e2e-remote-redis: one-way delay between the roles and Redis, ms. */
  redisDelayMs: number;
  /** Redis with AOF (appendfsync everysec) instead of no persistence. */
  aof: boolean;
  /** Extra environment for every role (--env KEY=VALUE). */
  env: Record<string, string>;
  out: string | undefined;
  compare: string | undefined;
  keep: boolean;
}

export type Metrics = Record<string, number | null>;

export interface RunContext {
  opts: Options;
  /** A fresh scratch directory for this run (logs, Redis dir), removed afterwards. */
  scratch: string;
  /** A progress line on stderr. */
  progress(msg: string): void;
}

export interface RunResult {
  metrics: Metrics;
  /** What the run used: env per role, durations, connections, commands. */
  knobs: Record<string, unknown>;
}

export interface Table {
  title: string;
  columns: string[];
  rows: (string | number | null)[][];
  notes?: string[];
}

export interface Scenario {
  name: string;
  /** One line: what it measures. */
  summary: string;
  run(ctx: RunContext): Promise<RunResult>;
  tables(m: Metrics): Table[];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A metric or null, for tables. */
export function get(m: Metrics, key: string): number | null {
  const v = m[key];
  return v === undefined ? null : v;
}

export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || b === 0) return null;
  return a / b;
}
