/**
 * `npm run bench [-- options]`: the benchmark harness of issue 4. Starts
 * everything itself on free ports (a private redis-server per run, the
 * service's roles as child processes, a sink, baselines), runs the chosen
 * scenarios --runs times each, prints a table per scenario and the targets,
 * and writes every figure to bench/results/<date>-<sha>.json.
 * See bench/README.md.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { cleanupSettings, installCleanup, keepDir, removeDir, scratchDir } from './lib/cleanup.js';
import { cpuSample, cpuShares, machineInfo } from './lib/env.js';
import { CLI } from './lib/procs.js';
import { portablePaths, repoPath } from './lib/repo.js';
import {
  fmt,
  medianMetrics,
  readResults,
  renderCompare,
  renderMachine,
  renderTable,
  renderTargetLine,
  renderTargets,
  type ResultsFile,
  type ScenarioResult,
} from './lib/report.js';
import type { Metrics, Options, Scenario } from './lib/scenario.js';
import { evaluate, TARGETS } from './lib/targets.js';
import { bandwidthScenario } from './scenarios/bandwidth.js';
import { e2eBullmqScenario } from './scenarios/e2e-bullmq.js';
import { e2eScenario } from './scenarios/e2e.js';
import { e2eClusterScenario } from './scenarios/e2e-cluster.js';
import { e2eTlsScenario } from './scenarios/e2e-tls.js';
import { e2eRemoteRedisScenario } from './scenarios/e2e-remote-redis.js';
import { e2eTrickleScenario } from './scenarios/e2e-trickle.js';
import { idleScenario } from './scenarios/idle.js';
import { ingestLoopScenario } from './scenarios/ingest-loop.js';
import { ingestScenario } from './scenarios/ingest.js';
import { slowPartnerScenario } from './scenarios/slow-partner.js';
import { manyOriginsScenario } from './scenarios/many-origins.js';
import { drainScenario } from './scenarios/drain.js';
import { partnerLimitScenario } from './scenarios/partner-limit.js';
import { partnerDownScenario } from './scenarios/partner-down.js';
import { sizingScenario } from './scenarios/sizing.js';

const SCENARIOS: Scenario[] = [
  ingestScenario,
  ingestLoopScenario,
  e2eScenario,
  e2eTrickleScenario,
  e2eBullmqScenario,
  slowPartnerScenario,
  idleScenario,
  bandwidthScenario,
  e2eClusterScenario,
  e2eTlsScenario,
  e2eRemoteRedisScenario,
  manyOriginsScenario,
  drainScenario,
  partnerLimitScenario,
  partnerDownScenario,
  sizingScenario,
];

const RESULTS_DIR = repoPath('bench', 'results');

const USAGE = `usage: npm run bench -- [options]

  --scenario NAME     run only these (repeatable, or a comma list); default: all
                      ${SCENARIOS.map((s) => s.name).join(', ')}
  --runs N            runs of each scenario; medians are reported (default 1; use 3 to quote)
  --duration S        autocannon measured seconds per run (default 5)
  --warmup S          autocannon warmup seconds before each (default 1)
  --connections C     autocannon connections in \`ingest\` (default 100)
  --n N               e2e, e2e-bullmq and e2e-tls postbacks (default 100000)
  --e2e-items K       items per ingest request in e2e, e2e-tls and slow-partner (default 100)
  --open-duration S   e2e open-loop seconds (default 10)
  --open-items K      items per request in the open loop (default: --e2e-items, the same workload at half the rate)
  --trickle-duration S e2e-trickle: seconds of sequential requests per shape (1 and 10 items; default 5)
  --trickle-n N       e2e-trickle: that many requests per shape instead of a duration
  --trickle-gap-ms MS e2e-trickle: wait after each 202 before the next request (default 0: at once)
  --trickle-warmup N  e2e-trickle: requests per shape and target before the measured ones, reported
                      apart (default 10000: past V8's tier-up at this load; 0: --warmup seconds instead)
  --slow-n N          slow-partner postbacks per run (default 50000)
  --down-n N          partner-down postbacks per run (default 600000: about 20 s, the partner down for the first half)
  --limit-rate R      partner-limit: the partner's limit, requests/s (default 500)
  --sizing-n N        sizing: postbacks queued per workload (default 200000)
  --idle S            idle window seconds (default 10)
  --bandwidth-n N     bandwidth postbacks (default 20000)
  --bandwidth-items K items per request in bandwidth (default 2, the v1 sample)
  --bandwidth-rate R  postbacks/s sent in bandwidth (default 2000)
  --origins N         many-origins: distinct partner origins (default 3000)
  --many-n N          many-origins: postbacks per phase, 10 a request (default 30000)
  --many-idle S       many-origins: seconds idle after each phase before RSS is read again (default 0)
  --drain-n N         drain: postbacks queued before delivery starts (default 1000000)
  --redis-delay-ms D  e2e-remote-redis: one-way delay between the roles and Redis, ms (default 0.5)
  --aof               Redis with AOF, fsync every second (default: no persistence)
  --env KEY=VALUE     extra environment for every role (repeatable), recorded in the results
  --out FILE          results file (default bench/results/<date>-<sha>[-<scenarios>].json)
  --compare FILE      print each median next to an earlier results file
  --keep              keep scratch dirs (bench/results/tmp/) for inspection
  --list              list scenarios and exit
`;

function num(v: string | undefined, name: string, def: number, min = 0): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, not "${v}"`);
  return n;
}

function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string', multiple: true },
      runs: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      n: { type: 'string' },
      'e2e-items': { type: 'string' },
      'open-duration': { type: 'string' },
      'open-items': { type: 'string' },
      'trickle-duration': { type: 'string' },
      'trickle-n': { type: 'string' },
      'trickle-gap-ms': { type: 'string' },
      'trickle-warmup': { type: 'string' },
      'slow-n': { type: 'string' },
      idle: { type: 'string' },
      'bandwidth-n': { type: 'string' },
      'bandwidth-items': { type: 'string' },
      'bandwidth-rate': { type: 'string' },
      origins: { type: 'string' },
      'many-n': { type: 'string' },
      'many-idle': { type: 'string' },
      'drain-n': { type: 'string' },
      'limit-rate': { type: 'string' },
      'down-n': { type: 'string' },
      'sizing-n': { type: 'string' },
      'redis-delay-ms': { type: 'string' },
      aof: { type: 'boolean', default: false },
      env: { type: 'string', multiple: true },
      out: { type: 'string' },
      compare: { type: 'string' },
      keep: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return null;
  }
  if (values.list) {
    for (const s of SCENARIOS) process.stdout.write(`${s.name.padEnd(13)} ${s.summary}\n`);
    return null;
  }
  const known = new Set(SCENARIOS.map((s) => s.name));
  const asked = (values.scenario ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  for (const s of asked) if (!known.has(s)) throw new Error(`unknown scenario "${s}"; one of: ${[...known].join(', ')}`);
  const env: Record<string, string> = {};
  for (const kv of values.env ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new Error(`--env takes KEY=VALUE, not "${kv}"`);
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return {
    // In the order of SCENARIOS, whatever the order asked.
    scenarios: asked.length === 0 ? [...known] : SCENARIOS.map((s) => s.name).filter((n) => asked.includes(n)),
    runs: num(values.runs, 'runs', 1, 1),
    durationS: num(values.duration, 'duration', 5, 1),
    warmupS: num(values.warmup, 'warmup', 1, 0),
    connections: num(values.connections, 'connections', 100, 1),
    n: num(values.n, 'n', 100_000, 1),
    e2eItems: num(values['e2e-items'], 'e2e-items', 100, 1),
    openDurationS: num(values['open-duration'], 'open-duration', 10, 1),
    // Half of the maximum measured with --e2e-items a request is half load
    // only for requests of that same shape.
    openItems: num(values['open-items'], 'open-items', num(values['e2e-items'], 'e2e-items', 100, 1), 1),
    trickleDurationS: num(values['trickle-duration'], 'trickle-duration', 5, 1),
    trickleN: num(values['trickle-n'], 'trickle-n', 0, 0),
    trickleGapMs: num(values['trickle-gap-ms'], 'trickle-gap-ms', 0, 0),
    trickleWarmupN: num(values['trickle-warmup'], 'trickle-warmup', 10_000, 0),
    slowN: num(values['slow-n'], 'slow-n', 50_000, 10),
    idleS: num(values.idle, 'idle', 10, 1),
    bandwidthN: num(values['bandwidth-n'], 'bandwidth-n', 20_000, 1),
    bandwidthItems: num(values['bandwidth-items'], 'bandwidth-items', 2, 1),
    bandwidthRate: num(values['bandwidth-rate'], 'bandwidth-rate', 2_000, 1),
    origins: num(values.origins, 'origins', 3_000, 1),
    manyN: num(values['many-n'], 'many-n', 30_000, 10),
    manyIdleS: num(values['many-idle'], 'many-idle', 0, 0),
    drainN: num(values['drain-n'], 'drain-n', 1_000_000, 100),
    limitRate: num(values['limit-rate'], 'limit-rate', 500, 1),
    downN: num(values['down-n'], 'down-n', 600_000, 100),
    sizingN: num(values['sizing-n'], 'sizing-n', 200_000, 100),
    redisDelayMs: num(values['redis-delay-ms'], 'redis-delay-ms', 0.5, 0),
    aof: values.aof,
    env,
    out: values.out,
    compare: values.compare,
    keep: values.keep,
  };
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-');
}

async function main(): Promise<number> {
  installCleanup();
  const opts = parseOptions(process.argv.slice(2));
  if (opts === null) return 0;
  cleanupSettings.keepScratch = opts.keep;
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" (npm run bench does)`);
  if (opts.compare && !existsSync(opts.compare)) throw new Error(`--compare: no file ${opts.compare}`);

  const started = performance.now();
  const machine = machineInfo();
  process.stdout.write(`${renderMachine(machine)}\n`);
  process.stdout.write(`scenarios: ${opts.scenarios.join(', ')}; runs: ${opts.runs}\n\n`);
  const runId = stamp();
  const scenarios: Record<string, ScenarioResult> = {};
  const failures: string[] = [];

  for (const name of opts.scenarios) {
    const scenario = SCENARIOS.find((s) => s.name === name) as Scenario;
    const runs: ScenarioResult['runs'] = [];
    for (let run = 1; run <= opts.runs; run++) {
      const scratch = scratchDir(join(RESULTS_DIR, 'tmp', `${runId}-${name}-${run}`));
      mkdirSync(scratch, { recursive: true });
      const label = `[${name}${opts.runs > 1 ? ` ${run}/${opts.runs}` : ''}]`;
      const t0 = performance.now();
      const progress = (msg: string) => {
        process.stderr.write(`${label} ${((performance.now() - t0) / 1000).toFixed(1).padStart(5)}s ${msg}\n`);
      };
      try {
        const c0 = cpuSample();
        const r = await scenario.run({ opts, scratch, progress });
        const shares = cpuShares(c0, cpuSample());
        // Noise: what the rest of the machine did meanwhile (% of one core, averaged over the run).
        r.metrics['machine.others_cpu_pct'] = shares.othersPct;
        r.metrics['machine.steal_pct'] = shares.stealPct;
        r.metrics['machine.bench_cpu_pct'] = shares.oursPct;
        runs.push({ ...r, seconds: (performance.now() - t0) / 1000 });
        removeDir(scratch);
      } catch (err) {
        progress(`FAILED: ${(err as Error).stack ?? String(err)}`);
        failures.push(`${name} run ${run}: ${(err as Error).message.split('\n')[0]}`);
        keepDir(scratch);
        progress(`scratch kept for inspection: ${scratch}`);
        break;
      }
    }
    if (runs.length === 0) continue;
    const med = medianMetrics(runs.map((r) => r.metrics));
    scenarios[name] = { summary: scenario.summary, runs, median: med };
    for (const t of scenario.tables(med)) process.stdout.write(`${renderTable(t)}\n`);
    // The targets this scenario completes, given what has run so far.
    const sofar: Record<string, Metrics> = {};
    for (const [n, sc] of Object.entries(scenarios)) sofar[n] = sc.median;
    const mine = evaluate(sofar).filter((t) => t.verdict !== 'n/a' && TARGETS.find((x) => x.id === t.id)?.needs.includes(name));
    for (const t of mine) process.stdout.write(`   target: ${renderTargetLine(t)}\n`);
    process.stdout.write(
      `   noise: other processes used ${fmt(med['machine.others_cpu_pct'])}% of a core on average during this scenario (steal ${fmt(med['machine.steal_pct'])}%; the bench itself ${fmt(med['machine.bench_cpu_pct'])}%)\n`,
    );
    process.stdout.write('\n');
  }

  const all: Record<string, Metrics> = {};
  for (const [name, s] of Object.entries(scenarios)) all[name] = s.median;
  const targets = evaluate(all);
  process.stdout.write(`${renderTargets(targets)}\n\n`);

  const results: ResultsFile = {
    schema: 1,
    date: new Date().toISOString(),
    command: process.argv.slice(2),
    machine,
    options: opts,
    scenarios,
    targets,
    wallSeconds: (performance.now() - started) / 1000,
  };
  const all7 = opts.scenarios.length === SCENARIOS.length;
  const day = results.date.slice(0, 10);
  const file = resolve(opts.out ?? join(RESULTS_DIR, `${day}-${machine.git.sha}${all7 ? '' : `-${opts.scenarios.join('+')}`}.json`));
  // Read before writing: today's default name for the same scenarios is the file compared with.
  const before = opts.compare ? readResults(opts.compare) : null;
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, `${portablePaths(JSON.stringify(results, null, 2))}\n`);
  process.stdout.write(`results: ${file} (${results.wallSeconds.toFixed(0)} s)\n`);
  if (before !== null && opts.compare) process.stdout.write(`\n${renderCompare(results, before, opts.compare)}\n`);
  if (failures.length > 0) {
    process.stderr.write(`\nfailed: ${failures.join('; ')}\n`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(2);
  },
);
