/**
 * The shipped alert rules (ops/prometheus/alerts.yml) and Grafana
 * dashboard (ops/grafana/*.json) name only metrics that exist: every pb_*
 * metric a rule or a panel query names is on the live /metrics of a real
 * pipeline (ingest, delivery, monitor). The rules pass `promtool check
 * rules` (Debian's prometheus package; .ci/run installs it, elsewhere
 * the check says skip).
 */
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { freePort } from '../../bench/lib/ports.js';
import { startStack } from '../helpers/stack.js';
import { spawnRole } from '../helpers/procs.js';
import { get } from '../helpers/http.js';

const OPS = fileURLToPath(new URL('../../ops/', import.meta.url));
const RULES = `${OPS}prometheus/alerts.yml`;

/** The pb_* metric names in a PromQL expression. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(pb_[a-z0-9_]+)\b/g)].map((m) => m[1] as string);
}

function queries(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  const rules = parseYaml(readFileSync(RULES, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
  for (const g of rules.groups) for (const r of g.rules) out.push({ where: `alert ${r.alert}`, expr: r.expr });
  for (const file of readdirSync(`${OPS}grafana`).filter((f) => f.endsWith('.json'))) {
    const dash = JSON.parse(readFileSync(`${OPS}grafana/${file}`, 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
    for (const p of dash.panels) for (const target of p.targets ?? []) out.push({ where: `${file}: ${p.title}`, expr: target.expr });
  }
  return out;
}

const promtool = spawnSync('promtool', ['--version']).status === 0;

t.test('promtool accepts the alert rules', { skip: promtool ? false : 'promtool is absent (apt-get install prometheus; .ci/run does)' }, async (t) => {
  const out = execFileSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
  t.match(out, /SUCCESS: \d+ rules found/);
});

t.test('every metric a rule or a panel names exists on a live /metrics', async (t) => {
  const all = queries();
  t.ok(all.length >= 10, `${all.length} rules and panel queries`);
  t.ok(all.every((q) => metricNames(q.expr).length > 0), 'each names at least one of ours');
  const deliveryPort = await freePort();
  const stack = await startStack({ MONITOR_PORT: '0', DELIVERY_METRICS_PORT: String(deliveryPort) });
  t.teardown(() => stack.stop());
  const monitor = await spawnRole('monitor', stack.env);
  t.teardown(() => monitor.stop());
  const pages = await Promise.all([`http://127.0.0.1:${monitor.port('monitor')}/metrics`, `http://127.0.0.1:${deliveryPort}/metrics`, `${stack.ingestUrl}/metrics`].map(async (u) => (await get(u)).body));
  const exposed = new Set([...pages.join('\n').matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string));
  t.ok(exposed.size > 20, `${exposed.size} metric families exposed`);
  for (const q of all) {
    const missing = metricNames(q.expr).filter((name) => !exposed.has(name) && !exposed.has(name.replace(/_(bucket|sum|count)$/, '')));
    t.same(missing, [], `${q.where}: ${q.expr}`);
  }
});
