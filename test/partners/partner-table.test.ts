/**
 * The partners table's merge as a table test: statistics hashes of several
 * processes and 10-second buckets add up, the latest error wins, load
 * snapshots add up, held postbacks count as waiting, partners in trouble
 * come first, and torn or foreign fields are skipped.
 */
import t from 'tap';
import { mergePartnerRows } from '../../src/partners/partner-table.js';
import type { PartnerStatus } from '../../src/partners/status.js';
import { bucketOf } from '../../src/observability/latency-buckets.js';

const status = (origin: string, over: Partial<PartnerStatus> = {}): PartnerStatus => ({
  origin,
  state: 'closed',
  pause: null,
  breaker: null,
  limit: null,
  pattern: null,
  rate: null,
  burst: 1,
  concurrency: null,
  held: 0,
  ...over,
});

t.test('merging statistics, load and the control plane', async (t) => {
  const a = 'https://a.example';
  const b = 'https://b.example';
  const c = 'https://c.example';
  const l10 = bucketOf(10);
  const l900 = bucketOf(900);
  const rows = mergePartnerRows(
    [status(c, { state: 'open', held: 40, rate: 5 })],
    [
      { [`${a}|a`]: '90', [`${a}|d`]: '90', [`${a}|l${l10}`]: '90', [`${b}|a`]: '10', [`${b}|d`]: '5', [`${b}|l${l900}`]: '10', [`${b}|e`]: JSON.stringify({ at: 1, status: 500, code: null, error: 'old' }) },
      { [`${a}|a`]: '10', [`${a}|d`]: '9', [`${a}|l${l900}`]: '10', [`${b}|e`]: JSON.stringify({ at: 2, status: 503, code: null, error: 'new' }), 'garbage': '1', [`${a}|e`]: '{torn', [`${a}|lx`]: '3' },
    ],
    [{ [a]: '3,7', [c]: '0,2' }, { [a]: '1,1' }],
  );
  t.same(rows.map((r) => r.origin), [c, a, b], 'trouble first, then the busiest');
  t.match(rows[0], { state: 'open', held: 40, waiting: 42, rate: 5, attempts: 0, successPct: null, p99Ms: null });
  t.match(rows[1], { state: 'closed', attempts: 100, successPct: 99, inFlight: 4, waiting: 8, lastError: null });
  t.ok((rows[1]?.p99Ms ?? 0) >= 900, `p99 over both processes (${rows[1]?.p99Ms} ms)`);
  t.match(rows[2], { attempts: 10, successPct: 50, lastError: { at: 2, error: 'new' } }, 'the latest error');
  t.same(mergePartnerRows([], [], []), [], 'nothing: no rows');
});

t.test("a partner with traffic and no status row shows its policy's limits", async (t) => {
  const a = 'https://a.example';
  const policies: Record<string, { rate: number | null; concurrency: number | null }> = { [a]: { rate: 20, concurrency: 4 } };
  const rows = mergePartnerRows([status('https://c.example', { rate: 5 })], [{ [`${a}|a`]: '3', [`${a}|d`]: '3', 'https://b.example|a': '1' }], [], (o) => policies[o]);
  t.match(rows.find((r) => r.origin === a), { rate: 20, concurrency: 4, state: 'closed' }, 'from the policy file');
  t.match(rows.find((r) => r.origin === 'https://b.example'), { rate: null, concurrency: null }, 'no policy: none');
  t.match(rows.find((r) => r.origin === 'https://c.example'), { rate: 5 }, 'a status row keeps its own');
});
