/**
 * `sizing`: Redis memory per waiting postback. For each workload, a fresh
 * Redis and ingest with no delivery running: `--sizing-n` postbacks are
 * queued, then Redis's used_memory (after the allocator settles) is read
 * against the empty baseline. Workloads: the v1 sample as sent (2 items a
 * request), the v1 sample 100 items a request, a 10-field postback one a
 * request, and 100 a request. Reported: bytes per waiting postback and the
 * queue depth one GiB of Redis holds.
 */
import { sendBulk } from '../lib/load.js';
import { SAMPLE_URL, sampleBody } from '../lib/payload.js';
import { get, type Metrics, type RunContext, type RunResult, type Scenario, type Table } from '../lib/scenario.js';
import { startStack } from '../lib/stack.js';

const GIB = 1024 ** 3;

/** A 10-field postback, realistic sizes: ids, a currency amount, a country, a timestamp. */
function tenFields(i: number): Record<string, string | number> {
  return {
    click_id: `c${(1e12 + i).toString(36)}${i.toString(16).padStart(8, '0')}`,
    offer_id: 1000 + (i % 500),
    affiliate_id: 20000 + (i % 3000),
    sub1: `campaign-${i % 97}`,
    sub2: `adset-${i % 31}`,
    payout: Number(((i % 1000) / 100).toFixed(2)),
    currency: 'USD',
    country: ['US', 'DE', 'BR', 'IN', 'FR'][i % 5] as string,
    event: 'install',
    ts: 1_795_000_000 + i,
  };
}

const TEN_URL = 'https://postback.partner.example/conv?click={click_id}&offer={offer_id}&aff={affiliate_id}&s1={sub1}&s2={sub2}&payout={payout}&cur={currency}&geo={country}&event={event}&ts={ts}';

const WORKLOADS = [
  { name: 'v1-sample-2', label: 'v1 sample, 2 items a request (as in the assignment)', items: 2, body: (_i: number) => sampleBody(2) },
  { name: 'v1-sample-100', label: 'v1 sample, 100 items a request', items: 100, body: (_i: number) => sampleBody(100) },
  { name: 'ten-fields-1', label: '10-field postback, 1 a request', items: 1, body: (i: number) => JSON.stringify({ endpoint: { method: 'GET', url: TEN_URL }, data: [tenFields(i)] }) },
  {
    name: 'ten-fields-100',
    label: '10-field postback, 100 a request',
    items: 100,
    body: (i: number) => JSON.stringify({ endpoint: { method: 'GET', url: TEN_URL }, data: Array.from({ length: 100 }, (_, k) => tenFields(i * 100 + k)) }),
  },
] as const;

async function usedMemory(ctx: { client: { info(s: string): Promise<Record<string, string>> } }): Promise<number> {
  // Twice, a moment apart: the first reading after a burst can still move.
  await new Promise((r) => setTimeout(r, 500));
  return Number((await ctx.client.info('memory')).used_memory ?? 0);
}

export const sizingScenario: Scenario = {
  name: 'sizing',
  summary: 'Redis memory per waiting postback (v1 sample and a 10-field postback) and the queue depth one GiB holds',
  async run(ctx: RunContext): Promise<RunResult> {
    const n = ctx.opts.sizingN;
    const m: Metrics = {};
    for (const w of WORKLOADS) {
      const stack = await startStack(ctx, { ingest: true, delivery: false }, { INGEST_MAX_QUEUE: '0' });
      try {
        // One request first so the fixed costs (template, count, statistics) are in the baseline.
        await sendBulk({ origin: stack.ingestOrigin, path: '/i', requests: 1, concurrency: 1, body: (i) => w.body(i) });
        const before = await usedMemory(stack.redis);
        ctx.progress(`${w.name}: queueing ${n} postbacks (${w.items} a request), no delivery`);
        const send = await sendBulk({ origin: stack.ingestOrigin, path: '/i', requests: Math.ceil(n / w.items), concurrency: 16, body: (i) => w.body(i + 1) });
        const after = await usedMemory(stack.redis);
        const per = (after - before) / Math.max(1, send.accepted);
        m[`${w.name}.queued`] = send.accepted;
        m[`${w.name}.bytes_per_postback`] = per;
        m[`${w.name}.postbacks_per_gib`] = per > 0 ? GIB / per : null;
        m[`${w.name}.request_bytes`] = Buffer.byteLength(w.body(0));
      } finally {
        await stack.stop();
      }
    }
    return { metrics: m, knobs: { n, sampleUrl: SAMPLE_URL, tenFieldUrl: TEN_URL } };
  },
  tables(m: Metrics): Table[] {
    return [
      {
        title: 'sizing: Redis memory per waiting postback (nothing delivered)',
        columns: ['workload', 'queued', 'request bytes', 'bytes per postback', 'postbacks per GiB'],
        rows: WORKLOADS.map((w) => [w.label, get(m, `${w.name}.queued`), get(m, `${w.name}.request_bytes`), get(m, `${w.name}.bytes_per_postback`), get(m, `${w.name}.postbacks_per_gib`)]),
        notes: ['used_memory after queueing minus before, over the postbacks queued: streams, entries, counters; templates are shared. Dead letters, held and delayed postbacks cost about the same per postback.'],
      },
    ];
  },
};
