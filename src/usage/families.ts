/**
 * Pure: every family of keys the service writes in Redis, how a key name
 * maps to its family, what bounds each family and what happens at the
 * bound. `node dist/cli.js usage` measures them; docs/OPERATIONS.md
 * ("Redis keys and their bounds") is the same table with measured sizes.
 */

export interface Family {
  id: string;
  /** What it holds. */
  holds: string;
  /** What bounds it, with the variable. */
  bound: string;
  /** What the service does at the bound. */
  atBound: string;
  /** How its items are counted: per key (a collection's length), or one item per key. */
  items: 'xlen' | 'zcard' | 'hlen' | 'keys';
}

export const FAMILIES: readonly Family[] = [
  { id: 'stream', holds: 'first attempts waiting for delivery or in flight (entries of up to 64 postbacks)', bound: 'INGEST_MAX_QUEUE (count, with the other queue families) and DELIVERY_TTL_MS (age)', atBound: 'ingest answers 503 queue_full; a postback past its TTL expires (dead letter)', items: 'xlen' },
  { id: 'retry', holds: 'retries that came due, waiting for delivery', bound: 'INGEST_MAX_QUEUE and DELIVERY_TTL_MS', atBound: 'as above', items: 'xlen' },
  { id: 'delayed', holds: 'first attempts with a delay, until due', bound: 'INGEST_MAX_QUEUE and DELIVERY_MAX_DELAY_MS + DELIVERY_TTL_MS', atBound: 'as above', items: 'zcard' },
  { id: 'retries', holds: 'retries and parked postbacks, until due', bound: 'INGEST_MAX_QUEUE and DELIVERY_TTL_MS', atBound: 'as above', items: 'zcard' },
  { id: 'held', holds: 'postbacks of paused partners or open breakers, and their index', bound: 'INGEST_MAX_QUEUE and DELIVERY_TTL_MS (expired ones are released and logged on time)', atBound: 'as above', items: 'zcard' },
  { id: 'dead', holds: 'dead letters (dlq list)', bound: 'DLQ_MAX (count) and DLQ_RETENTION_MS (age)', atBound: 'the oldest are trimmed, counted in pb_dead_letters_trimmed_total and logged', items: 'xlen' },
  { id: 'templates', holds: 'URL templates, one per distinct endpoint (content-addressed)', bound: 'DELIVERY_TTL_MS + DELIVERY_MAX_DELAY_MS + 1 day after last use (age)', atBound: 'expire; a postback whose template is gone fails with PB_ERR_TEMPLATE_MISSING (never happens within its lifetime)', items: 'keys' },
  { id: 'idempotency', holds: 'Idempotency-Key records (first answer of a keyed request)', bound: 'INGEST_IDEMPOTENCY_TTL_MS (age): keyed requests per window', atBound: 'expire; the key can be used again', items: 'keys' },
  { id: 'stats', holds: 'per-second statistics buckets (the dashboard\'s history)', bound: 'STATS_RETENTION_S (age): one hash per shard and second', atBound: 'expire', items: 'keys' },
  { id: 'count', holds: 'postbacks not finished, per shard (INGEST_MAX_QUEUE compares with it)', bound: 'one key per shard', atBound: '-', items: 'keys' },
  { id: 'control', holds: 'partner overrides and breakers, live delivery processes, rate budgets, partner statistics', bound: 'origins an operator or a breaker acted on; budgets, statistics and snapshots expire (2 min at most)', atBound: 'expire', items: 'keys' },
];

/** The family of a key under `prefix`, or null for a key that is not ours. */
export function familyOf(key: string, prefix: string): string | null {
  if (!key.startsWith(`${prefix}:`)) return null;
  const rest = key.slice(prefix.length + 1);
  if (rest.startsWith('{ctl}:')) return 'control';
  const m = /^\{\d+\}:(.*)$/.exec(rest);
  if (m === null) return null;
  const name = m[1] as string;
  if (name === 'stream' || name === 'retry' || name === 'delayed' || name === 'retries' || name === 'dead' || name === 'count') return name;
  if (name === 'held' || name.startsWith('held:')) return 'held';
  if (name.startsWith('tpl:')) return 'templates';
  if (name.startsWith('idem:')) return 'idempotency';
  if (name.startsWith('stats:')) return 'stats';
  return null;
}

export interface FamilyUsage {
  id: string;
  keys: number;
  items: number;
  bytes: number;
  /** Keys whose memory was measured (the rest estimated from them). */
  sampled: number;
}

/** Bytes per item, or null without items. */
export function bytesPerItem(u: FamilyUsage): number | null {
  return u.items > 0 ? Math.round(u.bytes / u.items) : null;
}

function mb(n: number): string {
  return n >= 1_048_576 ? `${(n / 1_048_576).toFixed(1)} MB` : n >= 1024 ? `${(n / 1024).toFixed(1)} kB` : `${n} B`;
}

/** The usage table as text. */
export function formatUsage(rows: readonly FamilyUsage[], total: { usedBytes: number; maxBytes: number }): string {
  const header = ['family', 'keys', 'items', 'memory', 'bytes/item', 'bound'];
  const lines = rows.map((u) => {
    const f = FAMILIES.find((x) => x.id === u.id) as Family;
    const per = bytesPerItem(u);
    return [u.id, String(u.keys), String(u.items), `${u.sampled < u.keys ? '~' : ''}${mb(u.bytes)}`, per === null ? '-' : String(per), f.bound];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const row = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ');
  const sum = rows.reduce((a, u) => a + u.bytes, 0);
  return [
    row(header),
    row(widths.map((w) => '-'.repeat(w))),
    ...lines.map(row),
    '',
    `ours: ${mb(sum)}; Redis used_memory ${mb(total.usedBytes)}${total.maxBytes > 0 ? ` of maxmemory ${mb(total.maxBytes)} (${((100 * total.usedBytes) / total.maxBytes).toFixed(1)}%)` : ' (no maxmemory set)'}`,
    '~: estimated from a sample of its keys',
  ].join('\n');
}
