/**
 * Output: fixed-width tables on stdout, the results file (every figure of
 * every run, medians, knobs, machine, targets), and `--compare`, which
 * prints each median metric next to the same metric of an earlier results
 * file with the ratio new/old.
 */
import { readFileSync } from 'node:fs';
import type { MachineInfo } from './env.js';
import type { Metrics, Options, Table } from './scenario.js';
import type { TargetResult } from './targets.js';

export interface ScenarioResult {
  summary: string;
  runs: { metrics: Metrics; knobs: Record<string, unknown>; seconds: number }[];
  median: Metrics;
}

export interface ResultsFile {
  schema: 1;
  date: string;
  command: string[];
  machine: MachineInfo;
  options: Options;
  scenarios: Record<string, ScenarioResult>;
  targets: TargetResult[];
  wallSeconds: number;
}

export function fmt(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 100 || Number.isInteger(v)) return String(Math.round(v));
  if (a >= 10) return v.toFixed(1);
  if (a >= 0.01) return v.toFixed(2);
  return v === 0 ? '0' : v.toFixed(3);
}

export function renderTable(t: Table): string {
  const cells = [t.columns, ...t.rows.map((r) => r.map(fmt))];
  const widths = t.columns.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  const line = (r: (string | number | null)[]) =>
    r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i] ?? 0) : String(c).padStart(widths[i] ?? 0))).join('  ');
  const out = [`== ${t.title}`, line(t.columns), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of cells.slice(1)) out.push(line(r));
  for (const n of t.notes ?? []) out.push(`   ${n}`);
  return out.join('\n');
}

export function renderTargets(targets: TargetResult[]): string {
  return renderTable({
    title: 'targets (the performance issues, as in the README), from the medians above',
    columns: ['target', 'measured', 'goal', 'verdict', 'of goal'],
    rows: targets.map((t) => [
      t.label,
      t.value === null ? 'n/a' : `${fmt(t.value)}${t.unit === 'x' ? 'x' : ` ${t.unit}`}`,
      `${t.op} ${t.goal}${t.unit === 'x' ? 'x' : ` ${t.unit}`}`,
      t.verdict,
      t.ofGoal === null ? '-' : `${fmt(t.ofGoal)}`,
    ]),
  });
}

/** One target on one line: `label: measured (goal) VERDICT`. */
export function renderTargetLine(t: TargetResult): string {
  const unit = (v: number) => (t.unit === 'x' ? `${fmt(v)}x` : `${fmt(v)} ${t.unit}`);
  return `${t.label}: ${t.value === null ? 'n/a' : unit(t.value)} (goal ${t.op} ${unit(t.goal)}) ${t.verdict}`;
}

export function renderMachine(mi: MachineInfo): string {
  return [
    `machine: ${mi.cpuModel}, ${mi.cores} cores, ${mi.memoryGiB} GiB, ${mi.os}; load at start ${mi.loadAvgAtStart.join(' ')}`,
    `node ${mi.node}, redis ${mi.redis}, git ${mi.git.sha}${mi.git.dirty ? ' (uncommitted changes)' : ''}`,
  ].join('\n');
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Median of each metric over the runs (metrics missing or null in a run are left out). */
export function medianMetrics(runs: Metrics[]): Metrics {
  const keys = new Set(runs.flatMap((r) => Object.keys(r)));
  const out: Metrics = {};
  for (const k of keys) {
    const vs = runs.map((r) => r[k]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    out[k] = vs.length === 0 ? null : median(vs);
  }
  return out;
}

/** A results file, read (for --compare: before this run writes its own, which may have the same name). */
export function readResults(file: string): ResultsFile {
  return JSON.parse(readFileSync(file, 'utf8')) as ResultsFile;
}

export function renderCompare(current: ResultsFile, old: ResultsFile, file: string): string {
  const rows: Table['rows'] = [];
  for (const [name, sc] of Object.entries(current.scenarios)) {
    const before = old.scenarios?.[name]?.median;
    if (!before) continue;
    for (const [k, v] of Object.entries(sc.median)) {
      const b = before[k];
      if (v === null || b === null || b === undefined) continue;
      if (v === 0 && b === 0) continue;
      rows.push([`${name}: ${k}`, b, v, b === 0 ? null : v / b]);
    }
  }
  const tgt = new Map((old.targets ?? []).map((t) => [t.id, t]));
  for (const t of current.targets) {
    const b = tgt.get(t.id);
    if (!b || b.value === null || t.value === null) continue;
    rows.push([`target: ${t.id}`, b.value, t.value, b.value === 0 ? null : t.value / b.value]);
  }
  return renderTable({
    title: `compare with ${file} (${old.date}, git ${old.machine?.git?.sha ?? '?'})`,
    columns: ['metric (median)', 'before', 'now', 'now / before'],
    rows,
    notes: rows.length === 0 ? ['no metric in common'] : [],
  });
}
